// Socket.IO hardening: JSON nested too deep in a packet, requests that take
// effect in the order they were sent (join/leave, CONNECT/DISCONNECT/CONNECT),
// a publish to several rooms delivered once however many interleave, the
// WebSocket close codes answered, and a token's expiry ending its socket.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { api, connect, emitWithAck, recorder, startParley, token, withParley, withTimeout } from "./harness.mjs";
import { clientFrame, closePayload, rawSocket, rawWs } from "./hardening_wire.mjs";

// No presence broadcasts: the raw clients' frames are exactly what is asserted.
const QUIET = join(mkdtempSync(join(tmpdir(), "parley-hardening-")), "quiet.conf");
writeFileSync(QUIET, "[parley.presence]\nbroadcast=false\n");
const options = [`--config-file=${QUIET}`];

let parley;
before(async () => {
  parley = await startParley(options);
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const nest = (n) => "[".repeat(n) + "]".repeat(n);
// A JS value n arrays deep.
const nested = (n) => JSON.parse(nest(n));


// A socket.io-client socket that works: a join is acked.
async function assertServes(url, nsp = "/") {
  const s = await connect(url, nsp, { transports: ["websocket"], auth: { token: token({ sub: "other", rooms: ["r:*"] }) } });
  assert.deepEqual(await emitWithAck(s, "join", { room: "r:alive" }), { joined: "r:alive", userId: "other" });
  s.close();
}

function socketClosed(s) {
  return withTimeout(new Promise((resolve) => s.once("disconnect", resolve)), 5000, "disconnect");
}

describe("JSON nested too deep in a packet", () => {
  const levels = 150000;

  it("over long-polling: a CONNECT nested 150,000 levels closes the session; others are served", async () => {
    await withParley(options, async (p) => {
      const base = p.url + "/socket.io/?EIO=4&transport=polling";
      const open = await (await fetch(base)).text();
      assert.match(open, /^0\{"sid":"/);
      const { sid } = JSON.parse(open.slice(1));
      const post = await fetch(`${base}&sid=${sid}`, {
        method: "POST",
        body: `40{"a":${nest(levels)}}`,
      });
      // The POST is answered once its packets are handled: the parse error has
      // closed the session by then.
      assert.equal(post.status, 200);
      assert.equal(await post.text(), "ok");
      const poll = await fetch(`${base}&sid=${sid}`);
      assert.equal(poll.status, 400);
      assert.deepEqual(await poll.json(), { code: 1, message: "Session ID unknown" });
      await assertServes(p.url);
    });
  });

  it("over WebSocket: an EVENT nested 150,000 levels closes the session (close 1000); others are served", async () => {
    await withParley(options, async (p) => {
      const c = await rawSocket(p.url, { token: token({ sub: "deep", rooms: ["r:*"] }) });
      const start = c.texts.length;
      c.send(`42["join",${nest(levels)}]`);
      await c.until((x) => x.ended, "the server to close the connection");
      assert.deepEqual(c.closes, [{ code: 1000, reason: "" }]);
      assert.deepEqual(c.texts.slice(start), []);
      await assertServes(p.url);
    });
  });

  it("socket.io-client: join nested 100 levels → closed as an invalid packet ('transport close'); 60 levels → the schema's refusal", async () => {
    const s = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "n60", rooms: ["r:*"] }) } });
    // Deep but within the limit: refused by the schema only, the socket stays.
    assert.deepEqual(await emitWithAck(s, "join", { room: nested(60) }), {
      error: "Invalid payload for join: room must be string",
    });
    assert.deepEqual(await emitWithAck(s, "join", { room: "r:60" }), { joined: "r:60", userId: "n60" });
    s.close();

    const t = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "n100", rooms: ["r:*"] }) } });
    const rec = recorder(t);
    const closed = socketClosed(t);
    t.emit("join", { room: "r:100", x: nested(100) });
    assert.equal(await closed, "transport close");
    assert.deepEqual(rec.events, []);
    await assertServes(parley.url);
  });

  it("the limit is 64 levels, the packet's array included: 64 → acked, 65 → closed", async () => {
    const c = await rawSocket(parley.url, { token: token({ sub: "lim", rooms: ["r:*"] }) });
    // ["join",{"room":…,"x":[…62…]}]: 64 levels.
    c.send(`421["join",{"room":"r:lim","x":${nest(62)}}]`);
    assert.equal(await c.text(/^431/, "the ack"), '431[{"joined":"r:lim","userId":"lim"}]');
    const start = c.texts.length;
    c.send(`422["join",{"room":"r:lim","x":${nest(63)}}]`); // 65 levels
    await c.until((x) => x.ended, "the server to close the connection");
    assert.deepEqual(c.closes, [{ code: 1000, reason: "" }]);
    assert.deepEqual(c.texts.slice(start), []);
  });
});

describe("requests take effect in the order they were sent", () => {
  // Each round: the subject joins and leaves a room the observer is in. The
  // observer receiving a publish to that room means the room actor has fanned
  // it out to its members (to the I/O thread) in one step; the subject's fence,
  // published after that, is queued behind any copy it would have had.
  async function observer(url) {
    const s = await connect(url, "/", { transports: ["websocket"], auth: { token: token({ sub: "obs", rooms: ["r:*"] }) } });
    return { s, rec: recorder(s) };
  }

  it("raw frames: join and leave of a room in one write, 20 rounds → acks in order, not in the room", async () => {
    const obs = await observer(parley.url);
    const c = await rawSocket(parley.url, { token: token({ sub: "jl", rooms: ["r:*"] }) });
    c.send('420["join",{"room":"r:jl-fence"}]');
    assert.equal(await c.text(/^430\[/, "the fence room's ack"), '430[{"joined":"r:jl-fence","userId":"jl"}]');
    for (let i = 0; i < 20; i++) {
      const room = `r:jl-${i}`;
      assert.deepEqual(await emitWithAck(obs.s, "join", { room }), { joined: room, userId: "obs" });
      const from = c.texts.length;
      const [j, l] = [2 * i + 1, 2 * i + 2];
      c.send(`42${j}["join",{"room":"${room}"}]`, `42${l}["leave",{"room":"${room}"}]`);
      await c.until((x) => x.texts.length >= from + 2, `round ${i}: two acks`);
      assert.deepEqual(c.texts.slice(from, from + 2), [
        `43${j}[{"joined":"${room}","userId":"jl"}]`,
        `43${l}[{"left":"${room}","userId":"jl"}]`,
      ]);
      assert.equal((await api(parley.url, "POST", "/api/v1/publish", { room, event: "leak", data: i })).status, 200);
      await obs.rec.waitFor("leak", i + 1);
      const fence = await api(parley.url, "POST", "/api/v1/publish", { room: "r:jl-fence", event: "fence", data: i });
      await c.text(new RegExp(`^42\\["fence",${i},"\\d+"\\]$`), `round ${i}: the fence`, 5000, from);
      assert.deepEqual(c.texts.slice(from + 2), [`42["fence",${i},"${fence.json.offset}"]`], `round ${i}`);
    }
    c.close();
    obs.s.close();
  });

  it("socket.io-client: emit(join); emit(leave) without awaiting, 3 × 20 rounds → acks in order, in none of the rooms", async () => {
    const obs = await observer(parley.url);
    const s = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "jl2", rooms: ["r:*"] }) } });
    const rec = recorder(s);
    await emitWithAck(s, "join", { room: "r:jl2-fence" });
    for (let batch = 0; batch < 3; batch++) {
      const rooms = Array.from({ length: 20 }, (_, i) => `r:jl2-${batch}-${i}`);
      for (const room of rooms) await emitWithAck(obs.s, "join", { room });
      const acks = [];
      await withTimeout(
        Promise.all(
          rooms.flatMap((room) => [
            s.emitWithAck("join", { room }).then((a) => acks.push(["join", a])),
            s.emitWithAck("leave", { room }).then((a) => acks.push(["leave", a])),
          ]),
        ),
        10000,
        "40 acks",
      );
      assert.deepEqual(
        acks,
        rooms.flatMap((room) => [
          ["join", { joined: room, userId: "jl2" }],
          ["leave", { left: room, userId: "jl2" }],
        ]),
      );
      for (const [i, room] of rooms.entries()) await api(parley.url, "POST", "/api/v1/publish", { room, event: "leak", data: i });
      await obs.rec.waitFor("leak", 20 * (batch + 1));
      await api(parley.url, "POST", "/api/v1/publish", { room: "r:jl2-fence", event: "fence", data: batch });
      await rec.waitFor("fence", batch + 1);
      assert.deepEqual(rec.of("leak"), [], `batch ${batch}`);
    }
    s.close();
    obs.s.close();
  });

  for (const nsp of ["/", "/messages"]) {
    it(`CONNECT, DISCONNECT, CONNECT and an EVENT in one write on ${nsp} → one CONNECT answer, then the ack; that socket is the one served`, async () => {
      const prefix = nsp === "/" ? "" : `${nsp},`;
      for (let i = 0; i < 10; i++) {
        const c = await rawWs(parley.url);
        const auth = JSON.stringify({ token: token({ sub: `cdc${i}`, rooms: ["r:*"] }) });
        const room = `r:cdc-${nsp.length}-${i}`;
        c.send(`40${prefix}${auth}`, `41${prefix}`, `40${prefix}${auth}`, `42${prefix}7["join",{"room":"${room}"}]`);
        await c.text(new RegExp(`^43${prefix}7\\[`), `round ${i}: the ack`);
        const [answer, ack] = c.texts.slice(1);
        assert.match(answer ?? "", new RegExp(`^40${prefix}\\{"sid":"[A-Za-z0-9_-]+","pid":"[A-Za-z0-9_-]{15}"\\}$`), `round ${i}: ${c.texts}`);
        assert.equal(ack, `43${prefix}7[{"joined":"${room}","userId":"cdc${i}"}]`, `round ${i}`);
        const { sid } = JSON.parse(answer.slice(2 + prefix.length));
        // The socket that answers a publish asking for acks is the one whose sid
        // the CONNECT answer gave.
        const published = api(parley.url, "POST", "/api/v1/publish", { room, event: "probe", data: i, ack: true, timeoutMs: 3000 });
        const probe = await c.text(new RegExp(`^42${prefix}\\d+\\["probe",${i}\\]$`), `round ${i}: the probe`);
        const id = probe.slice(2 + prefix.length, probe.indexOf("["));
        c.send(`43${prefix}${id}["seen"]`);
        const res = await published;
        assert.equal(res.status, 200);
        assert.deepEqual(res.json, {
          ok: true,
          receivers: 1,
          acks: [{ sid, userId: `cdc${i}`, response: ["seen"] }],
          timedOut: 0,
          disconnected: 0,
        });
        // Everything the client got: the open packet, one CONNECT answer (the
        // first socket was gone before it could be accepted), the ack, the probe.
        assert.equal(c.texts.length, 4, JSON.stringify(c.texts));
        assert.deepEqual(c.closes, []);
        c.close();
      }
    });
  }
});

describe("a publish to several rooms", () => {
  it("50 broadcasts to 8 rooms at once reach a member of all 8 once each", async () => {
    const s = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "multi", rooms: ["a:*"] }) } });
    const rec = recorder(s);
    const rooms = Array.from({ length: 8 }, (_, i) => `a:${i + 1}`);
    for (const room of rooms) assert.deepEqual(await emitWithAck(s, "join", { room }), { joined: room, userId: "multi" });
    const N = 50;
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) => api(parley.url, "POST", "/api/v1/broadcast", { rooms, event: "b", data: i })),
    );
    assert.deepEqual(answers.map((r) => r.status), Array(N).fill(200));
    // Fences: a publish to each room, behind every copy that room fans out.
    for (const room of rooms) await api(parley.url, "POST", "/api/v1/publish", { room, event: "fence", data: room });
    await rec.waitFor("fence", rooms.length);
    const got = rec.of("b").map((e) => e.args[0]).sort((x, y) => x - y);
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => i));
    s.close();
  });
});

describe("WebSocket close frames", () => {
  // Sends a close frame (built by hand: `ws` refuses to send invalid codes);
  // resolves with the close frames the server sent until it closed the connection.
  async function closeWith(code, reason) {
    const c = await rawSocket(parley.url, { token: token({ sub: "closer" }) });
    const start = c.texts.length;
    c.write(clientFrame(0x8, closePayload(code, reason)));
    await c.until((x) => x.ended, "the server to close the connection");
    assert.deepEqual(c.texts.slice(start), []);
    return c.closes;
  }

  // Below 1000, reserved (1004), only for reporting and never sent (1005,
  // 1006, 1015), or past 4999: invalid on the wire (RFC 6455 §7.4).
  for (const code of [999, 1004, 1005, 1006, 1015, 5000, 65535]) {
    it(`a close with the invalid code ${code} is answered 1002`, async () => {
      assert.deepEqual(await closeWith(code), [{ code: 1002, reason: "" }]);
    });
  }

  it("a close with 1000 and a reason that is not UTF-8 (\\xff\\xfe) is answered 1002; 1000 'bye' is echoed", async () => {
    assert.deepEqual(await closeWith(1000, Buffer.from([0xff, 0xfe])), [{ code: 1002, reason: "" }]);
    assert.deepEqual(await closeWith(1000, "bye"), [{ code: 1000, reason: "" }]);
  });

  it("application codes: 4000 and 4999 echoed, 5000 answered 1002", async () => {
    assert.deepEqual(await closeWith(4000), [{ code: 4000, reason: "" }]);
    assert.deepEqual(await closeWith(4999), [{ code: 4999, reason: "" }]);
    assert.deepEqual(await closeWith(5000), [{ code: 1002, reason: "" }]);
  });
});

describe("token expiry", () => {
  it("a token expiring in 2 s: error {message:'Token expired', timestamp} then disconnect 'io server disconnect'", async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const s = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "expiring", exp }) } });
    const seen = [];
    const done = new Promise((resolve) => {
      s.on("error", (e) => seen.push(["error", e]));
      s.on("disconnect", (reason) => {
        seen.push(["disconnect", reason]);
        resolve();
      });
    });
    assert.deepEqual(await emitWithAck(s, "typing", { chatId: "none" }), { error: "Not allowed to join chat:none" });
    await withTimeout(done, 6000, "the disconnect at the token's expiry");
    assert.equal(seen.length, 2, JSON.stringify(seen));
    const [[kind, err], disconnect] = seen;
    assert.equal(kind, "error");
    assert.deepEqual(Object.keys(err), ["message", "timestamp"]);
    assert.equal(err.message, "Token expired");
    assert.match(err.timestamp, ISO);
    // Not before the expiry (both on this machine's clock; ms resolution).
    assert.ok(Date.parse(err.timestamp) >= exp * 1000, `${err.timestamp} is before exp ${exp}`);
    assert.deepEqual(disconnect, ["disconnect", "io server disconnect"]);
  });
});
