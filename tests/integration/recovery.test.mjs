// Connection-state recovery with the real socket.io-client 4.8: a client whose
// transport is cut comes back with socket.recovered === true, the same id, its
// rooms, and every stored event it missed, in order, exactly once, before any
// new one — also across a kill -9 and restart of Parley. Otherwise (expired,
// disconnected on purpose, someone else's pid) it gets a new session.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { api, connect, emitWithAck, recorder, sleep, startParley, token, withTimeout } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const publish = (url, room, event, data) => api(url, "POST", "/api/v1/publish", { room, event, data });

// A socket.io-client socket that reconnects by itself (as browsers' do).
async function reconnecting(url, claims, opts = {}) {
  const s = io(url, {
    forceNew: true,
    transports: ["websocket"],
    reconnectionDelay: 300,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
    auth: { token: token(claims) },
    ...opts,
  });
  await withTimeout(new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", reject);
  }), 5000, "connect");
  return s;
}

const nextConnect = (s, ms = 8000) => withTimeout(new Promise((r) => s.once("connect", r)), ms, "the reconnection");
const nextDisconnect = (s) => withTimeout(new Promise((r) => s.once("disconnect", r)), 5000, "the disconnection");

// The `n` events of a name a recorder has, as [data, offset] pairs.
const got = (rec, name) => rec.of(name).map((e) => e.args);

describe("connection-state recovery", () => {
  it("the CONNECT answer carries a pid; a fresh socket is not recovered", async () => {
    const s = await reconnecting(parley.url, { sub: "r0" });
    assert.equal(s.recovered, false);
    assert.match(s._pid, /^[A-Za-z0-9_-]{15}$/);
    s.close();
  });

  it("a cut transport: back with recovered true, the same id, its rooms, what it missed in order and once", async () => {
    const s = await reconnecting(parley.url, { sub: "r1", rooms: ["rec:*"] });
    const rec = recorder(s);
    const id = s.id;
    await emitWithAck(s, "join", { room: "rec:a" });
    await emitWithAck(s, "join", { room: "rec:b" });
    const first = await publish(parley.url, "rec:a", "m", 0);
    await rec.waitFor("m", 1);
    assert.deepEqual(got(rec, "m"), [[0, first.json.offset]]);

    const down = nextDisconnect(s);
    const back = nextConnect(s);
    s.io.engine.close(); // the transport breaks (the client's reason); it will reconnect
    assert.equal(await down, "forced close");
    const missed = [];
    for (let i = 1; i <= 5; i++) missed.push(await publish(parley.url, i % 2 ? "rec:a" : "rec:b", "m", i));
    const other = await publish(parley.url, "rec:c", "m", "not mine");
    assert.equal(other.status, 200);
    await back;
    assert.equal(s.recovered, true);
    assert.equal(s.id, id);
    await rec.waitFor("m", 6);
    // Still in its rooms: a new publish arrives after the missed ones.
    const fresh = await publish(parley.url, "rec:b", "m", 6);
    await rec.waitFor("m", 7);
    await sleep(100);
    assert.deepEqual(got(rec, "m"), [
      [0, first.json.offset],
      ...missed.map((r, i) => [i + 1, r.json.offset]),
      [6, fresh.json.offset],
    ]);
    s.close();
  });

  it("publishes all through the cut and the reconnection: each reaches the client exactly once, in order", async () => {
    const s = await reconnecting(parley.url, { sub: "r2", rooms: ["rec:*"] });
    const rec = recorder(s);
    await emitWithAck(s, "join", { room: "rec:stream" });
    const offsets = [];
    let recovered;
    const publisher = (async () => {
      for (let i = 0; i < 300; i++) {
        const r = await publish(parley.url, "rec:stream", "n", i);
        assert.equal(r.status, 200);
        offsets.push(r.json.offset);
        if (i === 50) {
          await rec.waitFor("n", 1);
          const back = nextConnect(s);
          s.io.engine.close();
          back.then(() => (recovered = s.recovered));
        }
      }
    })();
    await publisher;
    await rec.waitFor("n", 300, 10000);
    await sleep(200);
    assert.equal(recovered, true);
    assert.deepEqual(got(rec, "n"), offsets.map((o, i) => [i, o]));
    s.close();
  });

  it("send_message: the sender is not given its own message again; others' are replayed", async () => {
    const a = await reconnecting(parley.url, { sub: "ra", rooms: ["chat:*"] });
    const b = await connect(parley.url, "/", { auth: { token: token({ sub: "rb", rooms: ["chat:*"] }) } });
    const ra = recorder(a);
    await emitWithAck(a, "join", { room: "chat:rec" });
    await emitWithAck(b, "join", { room: "chat:rec" });
    const hello = await emitWithAck(b, "send_message", { chatId: "rec", message: "hello" });
    await ra.waitFor("message", 1);
    const back = nextConnect(a);
    a.io.engine.close();
    const fromB = await emitWithAck(b, "send_message", { chatId: "rec", message: "while away" });
    await back;
    const mine = await emitWithAck(a, "send_message", { chatId: "rec", message: "mine" });
    const fromB2 = await emitWithAck(b, "send_message", { chatId: "rec", message: "after" });
    await ra.waitFor("message", 3);
    await sleep(100);
    assert.equal(a.recovered, true);
    assert.deepEqual(ra.of("message").map((e) => [e.args[0].message, e.args[1]]), [
      ["hello", hello.offset], ["while away", fromB.offset], ["after", fromB2.offset],
    ]);
    assert.ok(BigInt(mine.offset) > BigInt(fromB.offset));
    a.close();
    b.close();
  });

  it("a client that got no stored event yet recovers from where its session began", async () => {
    const s = await reconnecting(parley.url, { sub: "r3", rooms: ["rec:*"] });
    const rec = recorder(s);
    await emitWithAck(s, "join", { room: "rec:quiet" });
    const back = nextConnect(s);
    s.io.engine.close();
    const r = await publish(parley.url, "rec:quiet", "q", 1);
    await back;
    assert.equal(s.recovered, true);
    await rec.waitFor("q", 1);
    assert.deepEqual(got(rec, "q"), [[1, r.json.offset]]);
    s.close();
  });

  it("a socket disconnected on purpose, or coming back after max-disconnection, gets a new session", async () => {
    const s = await reconnecting(parley.url, { sub: "r4", rooms: ["rec:*"] });
    await emitWithAck(s, "join", { room: "rec:x" });
    const id = s.id;
    s.disconnect(); // a DISCONNECT packet: the server forgets the session
    await sleep(100);
    const back = nextConnect(s);
    s.connect();
    await back;
    assert.equal(s.recovered, false);
    assert.notEqual(s.id, id);
    s.close();

    const p = await startParley(["--parley.recovery.max-disconnection=300ms"]);
    try {
      const t = await reconnecting(p.url, { sub: "r5", rooms: ["rec:*"] }, { reconnectionDelay: 1200, reconnectionDelayMax: 1200 });
      const rec = recorder(t);
      await emitWithAck(t, "join", { room: "rec:y" });
      const tid = t.id;
      const again = nextConnect(t);
      t.io.engine.close();
      await publish(p.url, "rec:y", "lost", 1);
      await again;
      assert.equal(t.recovered, false);
      assert.notEqual(t.id, tid);
      await sleep(100);
      assert.equal(rec.of("lost").length, 0);
      t.close();
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  it("more missed events than parley.recovery.max-replay: not recovered, the rest as a new session", async () => {
    const p = await startParley(["--parley.recovery.max-replay=5", "--parley.log.level=info"]);
    try {
      const s = await reconnecting(p.url, { sub: "r6", rooms: ["rec:*"] });
      const rec = recorder(s);
      await emitWithAck(s, "join", { room: "rec:many" });
      await publish(p.url, "rec:many", "m", 0);
      await rec.waitFor("m", 1);
      s.io.reconnection(false);
      const down = nextDisconnect(s);
      s.io.engine.close();
      await down;
      for (let i = 1; i <= 6; i++) assert.equal((await publish(p.url, "rec:many", "m", i)).status, 200);
      const back = nextConnect(s);
      s.connect();
      await back;
      assert.equal(s.recovered, false);
      const after = await publish(p.url, "rec:many", "m", 7);
      await rec.waitFor("m", 2);
      await sleep(100);
      assert.deepEqual(got(rec, "m").slice(1), [[7, after.json.offset]]);
      assert.match(p.stdout, /not recovered \(more than 5 events missed \(parley\.recovery\.max-replay\)\): a new session/);
      s.close();
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  it("someone else's pid gives a new session, not theirs", async () => {
    const victim = await reconnecting(parley.url, { sub: "v", rooms: ["rec:*"] });
    await emitWithAck(victim, "join", { room: "rec:v" });
    const r = await publish(parley.url, "rec:v", "secret", 1);
    const pid = victim._pid;
    const vid = victim.id;
    victim.io.reconnection(false);
    victim.io.engine.close();
    await sleep(100);
    const thief = io(parley.url, {
      forceNew: true,
      reconnection: false,
      auth: { token: token({ sub: "thief", rooms: ["rec:*"] }), pid, offset: String(BigInt(r.json.offset) - 1n) },
    });
    const rec = recorder(thief);
    await withTimeout(new Promise((res) => thief.once("connect", res)), 5000, "connect");
    assert.equal(thief.recovered, false);
    assert.notEqual(thief.id, vid);
    await sleep(200);
    assert.equal(rec.of("secret").length, 0);
    thief.close();
    victim.close();
  });
});

describe("recovery across a restart", () => {
  // A client in one room that got one event; Parley is stopped by `stop` and
  // started again on the same port and log, and `missed` events are published
  // before the client is let back in. It must come back recovered, with the
  // same id and room, the missed events, then a live one.
  async function acrossRestart(sub, stop, missed) {
    const dir = mkdtempSync(join(tmpdir(), "parley-recover-"));
    const path = `--parley.store.path=${join(dir, "p.db")}`;
    const room = `rec:${sub}`;
    let p = await startParley([path]);
    const port = new URL(p.url).port;
    try {
      const s = await reconnecting(p.url, { sub, rooms: ["rec:*"] });
      const rec = recorder(s);
      const id = s.id;
      await emitWithAck(s, "join", { room });
      const first = await publish(p.url, room, "e", 0);
      await rec.waitFor("e", 1);
      const down = nextDisconnect(s);
      s.io.reconnection(false); // it comes back only once the events were published
      await stop(p);
      await down;
      p = await startParley([path, `--parley.http.port=${port}`]);
      const away = [];
      for (let i = 1; i <= missed; i++) away.push(await publish(p.url, room, "e", i));
      for (const m of away) assert.equal(m.status, 200, m.text);
      s.io.reconnection(true);
      const back = nextConnect(s, 10000);
      s.connect();
      await back;
      assert.equal(s.recovered, true);
      assert.equal(s.id, id);
      await rec.waitFor("e", 1 + missed);
      const live = await publish(p.url, room, "e", missed + 1);
      await rec.waitFor("e", missed + 2);
      await sleep(100);
      assert.deepEqual(got(rec, "e"), [
        [0, first.json.offset],
        ...away.map((r, i) => [i + 1, r.json.offset]),
        [missed + 1, live.json.offset],
      ]);
      s.close();
      assert.equal(await p.stop(), 0);
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("kill -9 and a restart on the same port: recovered true, same id, rooms, the missed events", async () => {
    await acrossRestart("k", (p) => p.child.kill("SIGKILL"), 3);
  });

  it("a graceful restart (SIGTERM) is recoverable too", async () => {
    await acrossRestart("g", async (p) => assert.equal(await p.stop(), 0), 1);
  });
});
