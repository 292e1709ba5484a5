// Acknowledgements both ways: a client's event acked by Parley (client → server),
// and an event Parley emits asking every receiver for an ack (server → client),
// through the backend API's publish with "ack": true, over both transports.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { api, connect, emitWithAck, startParley, token } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

async function member(user, transports) {
  const s = await connect(parley.url, "/messages", {
    transports,
    auth: { token: token({ sub: user, rooms: ["conversation:*"] }) },
  });
  // client → server: the join's ack
  assert.deepEqual(await emitWithAck(s, "conversation:join", { conversationId: "acks" }), {
    conversationId: "acks",
    success: true,
  });
  return s;
}

it("every receiver's ack reaches the publisher, over websocket and polling", async () => {
  const a = await member("ann", ["websocket"]);
  const b = await member("ben", ["polling"]);
  a.on("message:status", (data, cb) => cb({ seen: data.messageId, by: "ann" }));
  b.on("message:status", (data, cb) => cb({ seen: data.messageId, by: "ben" }, 2));
  const res = await api(parley.url, "POST", "/api/v1/publish", {
    room: "conversation:acks",
    event: "message:status",
    data: { messageId: "m1", status: "delivered" },
    ack: true,
    timeoutMs: 3000,
  });
  assert.equal(res.status, 200);
  const acks = [...res.json.acks].sort((x, y) => x.userId.localeCompare(y.userId));
  assert.deepEqual(res.json, {
    ok: true,
    receivers: 2,
    acks: res.json.acks,
    timedOut: 0,
    disconnected: 0,
  });
  assert.deepEqual(acks, [
    { sid: a.id, userId: "ann", response: [{ seen: "m1", by: "ann" }] },
    { sid: b.id, userId: "ben", response: [{ seen: "m1", by: "ben" }, 2] },
  ]);
  a.close();
  b.close();
});

it("counts a receiver that never answers as timed out, and one that leaves as disconnected", async () => {
  const a = await member("cat", ["websocket"]);
  const quiet = await member("dan", ["websocket"]);
  const leaving = await member("eve", ["websocket"]);
  const got = { cat: [], dan: [], eve: [] };
  a.on("ping:check", (data, cb) => (got.cat.push(data), cb("pong")));
  quiet.on("ping:check", (data) => got.dan.push(data)); // receives it, never acks
  leaving.on("ping:check", (data) => (got.eve.push(data), leaving.disconnect()));
  const started = performance.now();
  const res = await api(parley.url, "POST", "/api/v1/publish", {
    room: "conversation:acks",
    event: "ping:check",
    data: 1,
    ack: true,
    timeoutMs: 500,
  });
  const waited = performance.now() - started;
  // Every receiver had the event; the one that got it and never answered is
  // what the timeout counts (the collector only reports timedOut when its
  // timer ends the wait, never when every receiver has answered).
  assert.deepEqual(got, { cat: [1], dan: [1], eve: [1] });
  // The timer's lower bound: the collector's 500 ms starts after this request
  // was sent, on CAF's steady clock, which is the monotonic clock measured
  // here, so this cannot fail unless the timer fires early (e.g. timeoutMs read
  // in the wrong unit, which the state above would not show).
  assert.ok(waited >= 500, `answered after ${waited} ms, before the 500 ms timeout`);
  assert.deepEqual(res.json, {
    ok: true,
    receivers: 3,
    acks: [{ sid: a.id, userId: "cat", response: ["pong"] }],
    timedOut: 1,
    disconnected: 1,
  });
  a.close();
  quiet.close();
});

it("skips the excepted socket and answers at once for an empty room", async () => {
  const a = await member("fay", ["websocket"]);
  const b = await member("gus", ["websocket"]);
  let aGot = 0;
  a.on("hello", (d, cb) => {
    aGot++;
    cb("a");
  });
  b.on("hello", (d, cb) => cb("b"));
  const res = await api(parley.url, "POST", "/api/v1/publish", {
    room: "conversation:acks",
    event: "hello",
    except: a.id,
    ack: true,
  });
  assert.deepEqual(res.json, {
    ok: true,
    receivers: 1,
    acks: [{ sid: b.id, userId: "gus", response: ["b"] }],
    timedOut: 0,
    disconnected: 0,
  });
  assert.equal(aGot, 0);
  const empty = await api(parley.url, "POST", "/api/v1/publish", {
    room: "conversation:nobody",
    event: "hello",
    ack: true,
    timeoutMs: 60000,
  });
  assert.deepEqual(empty.json, { ok: true, receivers: 0, acks: [], timedOut: 0, disconnected: 0 });
  const bad = await api(parley.url, "POST", "/api/v1/publish", {
    room: "conversation:acks",
    event: "hello",
    ack: true,
    timeoutMs: 0,
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, {
    error: { code: "invalid_payload", message: "Invalid payload for api.publish: timeoutMs must be at least 1" },
  });
  a.close();
  b.close();
});
