// The message log: publishes answered after commit with id and offset, the
// offset as the last argument of every stored event, history paging, who may
// read it, volatile events, retention, a store that cannot open, and a
// restart (SIGTERM and kill -9) losing nothing that was acknowledged.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { api, connect, emitWithAck, recorder, sleep, startParley, token, withTimeout } from "./harness.mjs";

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ID = /^[0-9a-f]{32}$/;

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const publish = (url, body) => api(url, "POST", "/api/v1/publish", body);
const history = (url, room, query = "", opts) =>
  api(url, "GET", `/api/v1/rooms/${encodeURIComponent(room)}/messages${query}`, undefined, opts);

describe("publish through the log", () => {
  it("a publish to a room nobody is in is stored and answered with its id and offset", async () => {
    const r = await publish(parley.url, { room: "store:empty", event: "news", data: { n: 1 } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ["ok", "id", "offset"]);
    assert.equal(r.json.ok, true);
    assert.match(r.json.id, ID);
    assert.match(r.json.offset, /^[1-9]\d*$/);
    const h = await history(parley.url, "store:empty");
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.next, null);
    assert.equal(h.json.messages.length, 1);
    const [m] = h.json.messages;
    assert.deepEqual(Object.keys(m), ["id", "offset", "room", "event", "data", "ts"]);
    assert.equal(m.id, r.json.id);
    assert.equal(m.offset, r.json.offset);
    assert.equal(m.room, "store:empty");
    assert.equal(m.event, "news");
    assert.deepEqual(m.data, { n: 1 });
    assert.match(m.ts, ISO_MS);
    assert.ok(Math.abs(Date.parse(m.ts) - Date.now()) < 60000);
  });

  it("members get the event with its offset as the last argument; offsets increase in publish order", async () => {
    const s = await connect(parley.url, "/", { query: { token: token({ sub: "u1", rooms: ["store:*"] }) } });
    const rec = recorder(s);
    await emitWithAck(s, "join", { room: "store:live" });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await publish(parley.url, { room: "store:live", event: "tick", data: i }));
    const got = await rec.waitFor("tick", 5);
    for (let i = 0; i < 5; i++) {
      assert.equal(answers[i].status, 200);
      assert.deepEqual(got[i].args, [i, answers[i].json.offset]);
      if (i > 0) assert.ok(BigInt(answers[i].json.offset) > BigInt(answers[i - 1].json.offset));
    }
    s.close();
  });

  it("a publish without data is stored with data null", async () => {
    const r = await publish(parley.url, { room: "store:nodata", event: "ping" });
    assert.equal(r.status, 200);
    const h = await history(parley.url, "store:nodata");
    assert.equal(h.json.messages[0].data, null);
  });

  it("broadcast: one id, an offset per room, and a socket in two of the rooms gets it once", async () => {
    const s = await connect(parley.url, "/", { query: { token: token({ sub: "u2", rooms: ["store:*"] }) } });
    const rec = recorder(s);
    await emitWithAck(s, "join", { room: "store:b1" });
    await emitWithAck(s, "join", { room: "store:b2" });
    const r = await api(parley.url, "POST", "/api/v1/broadcast", { rooms: ["store:b1", "store:b2", "store:b3"], event: "all", data: "x" });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.id, ID);
    assert.deepEqual(Object.keys(r.json.offsets).sort(), ["store:b1", "store:b2", "store:b3"]);
    const offs = Object.values(r.json.offsets);
    assert.equal(new Set(offs).size, 3);
    await rec.waitFor("all", 1);
    await sleep(200);
    assert.equal(rec.of("all").length, 1);
    assert.equal(rec.of("all")[0].args[0], "x");
    assert.ok([r.json.offsets["store:b1"], r.json.offsets["store:b2"]].includes(rec.of("all")[0].args[1]));
    for (const room of ["store:b1", "store:b2", "store:b3"]) {
      const h = await history(parley.url, room);
      assert.equal(h.json.messages.length, 1);
      assert.equal(h.json.messages[0].id, r.json.id);
      assert.equal(h.json.messages[0].offset, r.json.offsets[room]);
    }
    s.close();
  });

  it("volatile events (typing) are delivered without an offset and never stored", async () => {
    const a = await connect(parley.url, "/", { query: { token: token({ sub: "ta", rooms: ["conversation:*"] }) } });
    const b = await connect(parley.url, "/", { query: { token: token({ sub: "tb", rooms: ["conversation:*"] }) } });
    const rb = recorder(b);
    await emitWithAck(a, "conversation:join", { conversationId: "vol" });
    await emitWithAck(b, "conversation:join", { conversationId: "vol" });
    await emitWithAck(a, "typing:start", { conversationId: "vol" });
    const [t] = await rb.waitFor("typing:start", 1);
    assert.deepEqual(t.args, [{ conversationId: "vol", userId: "ta", isTyping: true }]);
    const r = await publish(parley.url, { room: "conversation:vol", event: "typing", data: { x: 1 } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { ok: true });
    const [t2] = await rb.waitFor("typing", 1);
    assert.deepEqual(t2.args, [{ x: 1 }]);
    const h = await history(parley.url, "conversation:vol");
    assert.deepEqual(h.json, { messages: [], next: null });
    a.close();
    b.close();
  });

  it("send_message: message_sent and the ack carry the stored id and offset; the room gets it with the offset", async () => {
    const a = await connect(parley.url, "/", { query: { token: token({ sub: "sa", rooms: ["chat:*"] }) } });
    const b = await connect(parley.url, "/", { query: { token: token({ sub: "sb", rooms: ["chat:*"] }) } });
    const ra = recorder(a);
    const rb = recorder(b);
    await emitWithAck(a, "join", { room: "chat:s1" });
    await emitWithAck(b, "join", { room: "chat:s1" });
    const acked = await emitWithAck(a, "send_message", { chatId: "s1", message: "hello" });
    assert.match(acked.id, ID);
    assert.match(acked.offset, /^\d+$/);
    assert.deepEqual(Object.keys(acked), ["id", "chatId", "message", "userId", "timestamp", "offset"]);
    const [sent] = await ra.waitFor("message_sent", 1);
    assert.deepEqual(sent.args, [acked]);
    const [got] = await rb.waitFor("message", 1);
    const { offset, ...data } = acked;
    assert.deepEqual(got.args, [data, offset]);
    const h = await history(parley.url, "chat:s1");
    assert.equal(h.json.messages.length, 1);
    assert.deepEqual(h.json.messages[0], {
      id: acked.id, offset, room: "chat:s1", event: "message", data, ts: acked.timestamp, sender: "sa",
    });
    a.close();
    b.close();
  });
});

describe("history", () => {
  const room = "store:paged";
  const offsets = [];
  before(async () => {
    for (let i = 0; i < 25; i++) {
      const r = await publish(parley.url, { room, event: "n", data: i });
      offsets.push(r.json.offset);
    }
  });

  it("pages forward with after and limit, oldest first", async () => {
    const seen = [];
    let next = "0";
    let pages = 0;
    while (next !== null) {
      const h = await history(parley.url, room, `?after=${next}&limit=10`);
      assert.equal(h.status, 200);
      seen.push(...h.json.messages.map((m) => m.data));
      next = h.json.next;
      pages++;
      if (next !== null) assert.equal(next, h.json.messages.at(-1).offset);
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...Array(25).keys()]);
  });

  it("the default limit is 100; a page of exactly what is left has next null", async () => {
    const h = await history(parley.url, room);
    assert.equal(h.json.messages.length, 25);
    assert.equal(h.json.next, null);
    const last = await history(parley.url, room, `?after=${offsets[14]}&limit=10`);
    assert.deepEqual(last.json.messages.map((m) => m.data), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    assert.equal(last.json.next, null);
  });

  it("pages backwards with before, each page oldest first", async () => {
    const h1 = await history(parley.url, room, `?before=${BigInt(offsets[24]) + 1n}&limit=10`);
    assert.deepEqual(h1.json.messages.map((m) => m.data), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    assert.equal(h1.json.next, offsets[15]);
    const h2 = await history(parley.url, room, `?before=${h1.json.next}&limit=10`);
    assert.deepEqual(h2.json.messages.map((m) => m.data), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    const h3 = await history(parley.url, room, `?before=${h2.json.next}&limit=10`);
    assert.deepEqual(h3.json.messages.map((m) => m.data), [0, 1, 2, 3, 4]);
    assert.equal(h3.json.next, null);
  });

  it("after and before together bound the range", async () => {
    const h = await history(parley.url, room, `?after=${offsets[2]}&before=${offsets[6]}`);
    assert.deepEqual(h.json.messages.map((m) => m.data), [3, 4, 5]);
    assert.equal(h.json.next, null);
  });

  it("400 for a bad limit or offset", async () => {
    for (const [q, message] of [
      ["?limit=0", "limit must be within 1..1000"],
      ["?limit=1001", "limit must be within 1..1000"],
      ["?limit=x", "limit must be within 1..1000"],
      ["?after=abc", "after must be an offset (a decimal number)"],
      ["?before=-1", "before must be an offset (a decimal number)"],
    ]) {
      const h = await history(parley.url, room, q);
      assert.equal(h.status, 400, q);
      assert.deepEqual(h.json, { error: { code: "invalid_query", message } }, q);
    }
    const ok = await history(parley.url, room, "?limit=1000");
    assert.equal(ok.status, 200);
  });

  it("a user's token may read the rooms its claims allow: 403 otherwise, 401 without or with a bad one", async () => {
    const t = token({ sub: "reader", rooms: ["store:pa*"] });
    const ok = await history(parley.url, room, "?limit=1", { authorization: `Bearer ${t}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.messages[0].data, 0);
    const no = await history(parley.url, "store:other", "", { authorization: `Bearer ${t}` });
    assert.equal(no.status, 403);
    assert.deepEqual(no.json, { error: { code: "forbidden", message: "Not allowed to read store:other" } });
    const bad = await history(parley.url, room, "", { authorization: `Bearer ${t}x` });
    assert.equal(bad.status, 401);
    assert.deepEqual(bad.json, { error: { code: "unauthorized", message: "Invalid token" } });
    const none = await history(parley.url, room, "", { key: null });
    assert.equal(none.status, 401);
    assert.deepEqual(none.json, { error: { code: "unauthorized", message: "Missing API key or token" } });
    const wrong = await history(parley.url, room, "", { key: "nope" });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json, { error: { code: "unauthorized", message: "Invalid API key" } });
    const post = await api(parley.url, "POST", `/api/v1/rooms/${room}/messages`, {});
    assert.equal(post.status, 405);
  });

  it("a browser of an allowed origin may read it (CORS, with its preflight)", async () => {
    const p = await startParley(['--parley.cors.origins=["https://app.example"]']);
    try {
      await publish(p.url, { room: "cors:1", event: "e", data: 1 });
      const t = token({ sub: "web", rooms: ["cors:*"] });
      const pre = await fetch(`${p.url}/api/v1/rooms/cors%3A1/messages`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example", "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.example");
      assert.equal(pre.headers.get("access-control-allow-methods"), "GET");
      assert.equal(pre.headers.get("access-control-allow-headers"), "authorization");
      const r = await fetch(`${p.url}/api/v1/rooms/cors%3A1/messages`, { headers: { origin: "https://app.example", authorization: `Bearer ${t}` } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("access-control-allow-origin"), "https://app.example");
      assert.equal(r.headers.get("access-control-allow-credentials"), "true");
      assert.equal((await r.json()).messages.length, 1);
      const other = await fetch(`${p.url}/api/v1/rooms/cors%3A1/messages`, { headers: { origin: "https://evil.example", authorization: `Bearer ${t}` } });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
      const denied = await fetch(`${p.url}/api/v1/rooms/other/messages`, { headers: { origin: "https://app.example", authorization: `Bearer ${t}` } });
      assert.equal(denied.status, 403);
      assert.equal(denied.headers.get("access-control-allow-origin"), "https://app.example");
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  it("room names are percent-decoded; an unknown room has no messages", async () => {
    const r = await publish(parley.url, { room: "store:a/b c", event: "e", data: 1 });
    assert.equal(r.status, 200);
    const h = await history(parley.url, "store:a/b c");
    assert.equal(h.json.messages.length, 1);
    assert.equal(h.json.messages[0].room, "store:a/b c");
    assert.deepEqual((await history(parley.url, "store:never")).json, { messages: [], next: null });
  });
});

describe("configuration", () => {
  it("parley.store.rooms limits what is stored", async () => {
    const p = await startParley(['--parley.store.rooms=["kept:*"]']);
    try {
      const kept = await publish(p.url, { room: "kept:1", event: "e", data: 1 });
      assert.match(kept.json.offset, /^\d+$/);
      const live = await publish(p.url, { room: "other:1", event: "e", data: 1 });
      assert.deepEqual(live.json, { ok: true });
      assert.deepEqual((await history(p.url, "other:1")).json, { messages: [], next: null });
      assert.equal((await history(p.url, "kept:1")).json.messages.length, 1);
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  it("retention keeps the newest max-per-room records of each room", async () => {
    const p = await startParley(["--parley.store.max-per-room=5"]);
    try {
      for (let i = 0; i < 40; i++) await publish(p.url, { room: "ret:a", event: "e", data: i });
      await publish(p.url, { room: "ret:b", event: "e", data: "b" });
      let data = [];
      for (let i = 0; i < 50; i++) {
        data = (await history(p.url, "ret:a")).json.messages.map((m) => m.data);
        if (data.length === 5) break;
        await sleep(100);
      }
      assert.deepEqual(data, [35, 36, 37, 38, 39]);
      assert.equal((await history(p.url, "ret:b")).json.messages.length, 1);
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  it("the memory backend stores and pages the same way", async () => {
    const p = await startParley(["--parley.store.backend=memory"]);
    try {
      const a = await publish(p.url, { room: "m:1", event: "e", data: 1 });
      const b = await publish(p.url, { room: "m:1", event: "e", data: 2 });
      assert.equal(BigInt(b.json.offset), BigInt(a.json.offset) + 1n);
      const h = await history(p.url, "m:1", "?limit=1");
      assert.deepEqual(h.json.messages.map((m) => m.data), [1]);
      assert.equal(h.json.next, a.json.offset);
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});

describe("a store that cannot open", () => {
  it("refuses stored publishes with 503 store_unavailable, keeps serving the rest, and says why once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parley-bad-"));
    const file = join(dir, "not-a-db");
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const p = await startParley([`--parley.store.path=${file}`, "--parley.log.level=info"]);
    try {
      const r = await publish(p.url, { room: "x:1", event: "e", data: 1 });
      assert.equal(r.status, 503);
      assert.equal(r.json.error.code, "store_unavailable");
      assert.ok(r.json.error.message.startsWith(`The message store is unavailable: cannot open ${file}: `), r.json.error.message);
      const h = await history(p.url, "x:1");
      assert.equal(h.status, 503);
      assert.equal(h.json.error.code, "store_unavailable");
      const vol = await publish(p.url, { room: "x:1", event: "typing", data: 1 });
      assert.deepEqual(vol.json, { ok: true });
      const s = await connect(p.url, "/", { query: { token: token({ sub: "u", rooms: ["chat:*"] }) } });
      await emitWithAck(s, "join", { room: "chat:1" });
      const refused = await emitWithAck(s, "send_message", { chatId: "1", message: "m" });
      assert.deepEqual(refused, { error: "Could not send to chat:1: the message store is unavailable" });
      s.close();
      const metrics = await api(p.url, "GET", "/metrics");
      assert.match(metrics.text, /^parley_store_available 0$/m);
      assert.match(metrics.text, /^parley_store_failures_total 2$/m); // the publish and the send_message
      const lines = p.stdout.split("\n").filter((l) => l.includes("store:") && l.includes(file));
      assert.equal(lines.length, 1, p.stdout);
      assert.match(lines[0], / error store: cannot open .*; publishes to stored rooms are refused \(503 store_unavailable\) until it opens$/);
    } finally {
      assert.equal(await p.stop(), 0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a store path that cannot be created", () => {
  it("a directory under a regular file: 503 store_unavailable naming the path, and Parley serves on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parley-badpath-"));
    const file = join(dir, "plain-file");
    writeFileSync(file, "x");
    const path = join(file, "sub", "parley.db");
    const p = await startParley([`--parley.store.path=${path}`]);
    try {
      const r = await publish(p.url, { room: "x:1", event: "e", data: 1 });
      assert.equal(r.status, 503);
      assert.equal(r.json.error.code, "store_unavailable");
      assert.ok(r.json.error.message.startsWith(`The message store is unavailable: cannot open ${path}: `), r.json.error.message);
      assert.equal((await api(p.url, "GET", "/health")).status, 200);
    } finally {
      assert.equal(await p.stop(), 0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a store that cannot write", () => {
  it("a full disk: the publish that does not fit gets 503, what was acknowledged stays, and Parley serves on", async () => {
    // Files may grow to 1 MiB (prlimit): the log fills up.
    const p = await startParley(["--parley.log.level=info", "--parley.store.max-per-room=0"], { wrap: ["prlimit", "--fsize=1048576"] });
    try {
      const big = "x".repeat(20000);
      const acked = [];
      let refused;
      for (let i = 0; i < 200 && !refused; i++) {
        const r = await publish(p.url, { room: "full:1", event: "e", data: { i, big } });
        if (r.status === 200) acked.push(r.json.offset);
        else refused = r;
      }
      assert.ok(refused, "the log should have filled up");
      assert.ok(acked.length > 10, `${acked.length} publishes fitted`);
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error.code, "store_unavailable");
      assert.match(refused.json.error.message, /^The message store is unavailable: cannot write .+: (database or disk is full|disk I\/O error)$/);
      assert.match(p.stdout, / error store: commit of 1 records failed: cannot write .*; they were refused \(503 store_unavailable\)/);
      // Small publishes may still fit or be refused the same way; reads go on.
      const h = await history(p.url, "full:1", "?limit=1000");
      assert.equal(h.status, 200);
      assert.deepEqual(h.json.messages.map((m) => m.offset), acked);
      const vol = await publish(p.url, { room: "full:1", event: "typing", data: 1 });
      assert.deepEqual(vol.json, { ok: true });
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});

describe("restarts", () => {
  it("a stopped and restarted Parley keeps the log, and offsets go on increasing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parley-restart-"));
    const path = `--parley.store.path=${join(dir, "p.db")}`;
    try {
      let p = await startParley([path]);
      const first = await publish(p.url, { room: "keep:1", event: "e", data: "before" });
      assert.equal(await p.stop(), 0);
      p = await startParley([path]);
      const second = await publish(p.url, { room: "keep:1", event: "e", data: "after" });
      assert.ok(BigInt(second.json.offset) > BigInt(first.json.offset));
      const h = await history(p.url, "keep:1");
      assert.deepEqual(h.json.messages.map((m) => [m.offset, m.data]), [[first.json.offset, "before"], [second.json.offset, "after"]]);
      assert.equal(await p.stop(), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("kill -9 mid-stream: every publish answered 200 is in the history after a restart, in order, once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parley-crash-"));
    const path = `--parley.store.path=${join(dir, "p.db")}`;
    try {
      let p = await startParley([path]);
      const acked = []; // [writer, seq, offset]
      let killed = false;
      const writers = [...Array(8).keys()].map(async (w) => {
        for (let seq = 0; !killed; seq++) {
          let r;
          try {
            r = await publish(p.url, { room: "crash:1", event: "e", data: { w, seq } });
          } catch {
            return; // the connection died with the server
          }
          if (r.status === 200) acked.push([w, seq, r.json.offset]);
        }
      });
      while (acked.length < 400) await sleep(5);
      p.child.kill("SIGKILL");
      killed = true;
      await withTimeout(Promise.all(writers), 10000, "the writers to stop");
      await withTimeout(new Promise((r) => (p.child.exitCode !== null || p.child.signalCode ? r() : p.child.once("exit", r))), 5000, "exit");
      p = await startParley([path]);
      const stored = [];
      let next = "0";
      while (next !== null) {
        const h = await history(p.url, "crash:1", `?after=${next}&limit=1000`);
        stored.push(...h.json.messages);
        next = h.json.next;
      }
      const byOffset = new Map(stored.map((m) => [m.offset, m.data]));
      assert.equal(byOffset.size, stored.length, "no offset twice");
      const keys = stored.map((m) => `${m.data.w}/${m.data.seq}`);
      assert.equal(new Set(keys).size, keys.length, "no publish twice");
      for (const [w, seq, offset] of acked) assert.deepEqual(byOffset.get(offset), { w, seq }, `acknowledged ${w}/${seq} at ${offset}`);
      for (let i = 1; i < stored.length; i++) assert.ok(BigInt(stored[i].offset) > BigInt(stored[i - 1].offset));
      // Each writer's publishes are stored in the order it made them, without gaps before its last acknowledged one.
      for (let w = 0; w < 8; w++) {
        const seqs = stored.filter((m) => m.data.w === w).map((m) => m.data.seq);
        const lastAcked = Math.max(-1, ...acked.filter((a) => a[0] === w).map((a) => a[1]));
        assert.deepEqual(seqs.slice(0, lastAcked + 1), [...Array(lastAcked + 1).keys()], `writer ${w}`);
      }
      const after = await publish(p.url, { room: "crash:1", event: "e", data: "new" });
      assert.ok(BigInt(after.json.offset) > BigInt(stored.at(-1).offset));
      assert.equal(await p.stop(), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
