// A client that stops reading is dropped once its write queue passes the limit;
// the other members of the room receive every message.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import WebSocket from "ws";
import { api, connect, emitWithAck, recorder, startParley, token, withTimeout } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley(["--parley.limits.max-write-queue=2097152"]);
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

// A raw Socket.IO client over ws, so the test controls when it reads.
async function rawClient(url, claims) {
  const ws = new WebSocket(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket");
  const frames = [];
  let notify = () => {};
  ws.on("message", (d, isBinary) => {
    const text = d.toString();
    if (text === "2") ws.send("3");
    frames.push(text);
    notify();
  });
  const next = (pred) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const i = frames.findIndex(pred);
          if (i >= 0) resolve(frames.splice(i, 1)[0]);
        };
        notify = check;
        check();
      }),
      5000,
      "a frame",
    );
  await next((f) => f.startsWith("0{"));
  ws.send(`40${JSON.stringify({ token: token(claims) })}`);
  await next((f) => f.startsWith("40{"));
  ws.send('421["conversation:join",{"conversationId":"slow"}]');
  assert.equal(await next((f) => f.startsWith("431")), '431[{"conversationId":"slow","success":true}]');
  return ws;
}

it("drops the client that stopped reading, delivers everything to the others", async () => {
  const claims = { sub: "s", rooms: ["conversation:*"] };
  const stuck = await rawClient(parley.url, claims);
  const good = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token(claims) } });
  const rec = recorder(good);
  await emitWithAck(good, "conversation:join", { conversationId: "slow" });
  stuck._socket.pause(); // stops reading: the server's writes to it back up
  const closed = new Promise((resolve) => stuck.once("close", (code) => resolve(code)));

  const N = 200;
  const blob = "x".repeat(100 * 1024);
  for (let i = 0; i < N; i++) {
    const r = await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:slow", event: "message:new", data: { i, blob } });
    assert.equal(r.status, 200);
  }
  const got = await rec.waitFor("message:new", N, 30000);
  assert.equal(got.length, N);
  assert.deepEqual(got.map((e) => e.args[0].i), [...Array(N).keys()], "in order, none lost");

  const m = await api(parley.url, "GET", "/metrics", undefined, { key: null });
  assert.match(m.text, /^parley_slow_clients_dropped_total 1$/m);
  stuck._socket.resume();
  await withTimeout(closed, 10000, "the stuck client to see its connection closed");
  good.close();
});

it("a client that pauses gets every frame once it reads again, coalesced into few writes", async () => {
  const parley = await startParley(["--parley.limits.max-write-queue=33554432"]);
  const claims = { sub: "p", rooms: ["conversation:*"] };
  const paused = await rawClient(parley.url, claims);
  const metric = async (name) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec((await api(parley.url, "GET", "/metrics", undefined, { key: null })).text)[1]);
  const writesBefore = await metric("parley_ws_writes_total");
  const received = [];
  paused.on("message", (d) => {
    const t = d.toString();
    if (t.startsWith('42["burst"')) received.push(JSON.parse(t.slice(2))[1]);
  });
  paused._socket.pause();
  // Sizes that take each WebSocket length encoding: 7-bit, 16-bit and 64-bit.
  // About 12 MB in all: more than the kernel buffers for a client that does not
  // read (up to 4 MiB sent, ~128 KiB received), under this server's queue limit.
  const sizes = [10, 1000, 400 * 1024];
  const N = 90;
  for (let i = 0; i < N; i++) {
    const r = await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:slow", event: "burst", data: { i, pad: "y".repeat(sizes[i % 3]) } });
    assert.equal(r.status, 200);
  }
  paused._socket.resume();
  await withTimeout(
    (async () => {
      while (received.length < N) await new Promise((r) => setTimeout(r, 20));
    })(),
    10000,
    "every burst frame",
  );
  assert.deepEqual(received.map((d) => d.i), [...Array(N).keys()]);
  assert.deepEqual(received.map((d) => d.pad.length), [...Array(N).keys()].map((i) => sizes[i % 3]));
  const writes = (await metric("parley_ws_writes_total")) - writesBefore;
  assert.ok(writes < N / 2, `${N} frames went out in ${writes} writes`);
  paused.close();
  assert.equal(await parley.stop(), 0);
});
