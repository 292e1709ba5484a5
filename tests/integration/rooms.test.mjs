// Rooms as the seed frontends use them: joins and their acks, refusals, the
// publish API reaching exactly a room's members, typing not echoed, profiles
// joined from the token, send_message.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { api, connect, emitWithAck, recorder, startParley, stored, token } from "./harness.mjs";

let parley;
before(async () => {
  parley = await startParley();
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

async function client(claims, nsp = "/messages") {
  const s = await connect(parley.url, nsp, { transports: ["websocket"], auth: { token: token(claims) } });
  return { s, rec: recorder(s) };
}

describe("joining", () => {
  it("conversation:join is acked and answered with conversation:joined", async () => {
    const { s, rec } = await client({ sub: "alice", rooms: ["conversation:*"] });
    assert.deepEqual(await emitWithAck(s, "conversation:join", { conversationId: "42" }), {
      conversationId: "42",
      success: true,
    });
    const [ev] = await rec.waitFor("conversation:joined");
    assert.deepEqual(ev.args, [{ conversationId: "42", success: true }]);
    assert.deepEqual(await emitWithAck(s, "conversation:leave", { conversationId: "42" }), {
      conversationId: "42",
      success: true,
    });
    s.close();
  });

  it("refuses a room the token does not grant, with an error ack", async () => {
    const { s } = await client({ sub: "bob", rooms: ["conversation:1"] });
    assert.deepEqual(await emitWithAck(s, "conversation:join", { conversationId: "2" }), {
      error: "Not allowed to join conversation:2",
    });
    assert.deepEqual(await emitWithAck(s, "conversation:join", { conversationId: "1" }), {
      conversationId: "1",
      success: true,
    });
    s.close();
  });

  it("refuses without an ack by an error event {message, timestamp}", async () => {
    const { s, rec } = await client({ sub: "bob", rooms: [] });
    s.emit("session:join", { sessionId: "s9" });
    const [ev] = await rec.waitFor("error");
    assert.equal(ev.args[0].message, "Not allowed to join session:s9");
    assert.match(ev.args[0].timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    s.close();
  });

  it("join {dialogId} and {room} ack {joined, userId}", async () => {
    const { s } = await client({ sub: "op1", profiles: [77] }, "/");
    assert.deepEqual(await emitWithAck(s, "join", { dialogId: "77-500" }), { joined: "dialog:77-500", userId: "op1" });
    assert.deepEqual(await emitWithAck(s, "join", { room: "profile:77" }), { joined: "profile:77", userId: "op1" });
    assert.deepEqual(await emitWithAck(s, "join", { dialogId: "78-500" }), { error: "Not allowed to join dialog:78-500" });
    assert.deepEqual(await emitWithAck(s, "leave", { dialogId: "77-500" }), { left: "dialog:77-500", userId: "op1" });
    s.close();
  });
});

describe("publish API", () => {
  it("reaches exactly the room's members, once each", async () => {
    const a = await client({ sub: "a", rooms: ["conversation:*"] });
    const b = await client({ sub: "b", rooms: ["conversation:*"] });
    const c = await client({ sub: "c", rooms: ["conversation:*"] });
    await emitWithAck(a.s, "conversation:join", { conversationId: "pub" });
    await emitWithAck(b.s, "subscribe", { conversationId: "pub" });
    await emitWithAck(c.s, "conversation:join", { conversationId: "other" });
    const data = { conversationId: "pub", messageId: "m1", senderId: "x", type: "text", content: { text: "hi" }, status: "sent", timestamp: "2025-01-01T00:00:00.000Z" };
    const res = await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:pub", event: "message:received", data });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.json), ["ok", "id", "offset"]);
    const [ea] = await a.rec.waitFor("message:received");
    const [eb] = await b.rec.waitFor("message:received");
    assert.deepEqual(ea.args, [data, res.json.offset]);
    assert.deepEqual(eb.args, [data, res.json.offset]);
    // Fences. A later publish to conversation:pub is fanned out by the same room
    // actor behind the first, so a second copy to a or b would arrive before it.
    // c is not in that room: its fence goes through conversation:other, published
    // once a has its copy, i.e. after the one I/O-thread step that queued every
    // copy of the first publish, so it is queued to c's session behind any copy.
    await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:pub", event: "fence" });
    await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:other", event: "fence" });
    for (const x of [a, b, c]) await x.rec.waitFor("fence");
    assert.equal(a.rec.of("message:received").length, 1);
    assert.equal(b.rec.of("message:received").length, 1);
    assert.equal(c.rec.of("message:received").length, 0);
    for (const x of [a, b, c]) x.s.close();
  });

  it("broadcast reaches several rooms, a member of two of them once", async () => {
    const a = await client({ sub: "a", rooms: ["session:*"] });
    const b = await client({ sub: "b", rooms: ["session:*"] });
    await emitWithAck(a.s, "session:join", { sessionId: "1" });
    await emitWithAck(a.s, "session:join", { sessionId: "3" });
    await emitWithAck(b.s, "session:join", { sessionId: "2" });
    const res = await api(parley.url, "POST", "/api/v1/broadcast", {
      rooms: ["session:1", "session:2", "session:3"],
      event: "session:status-changed",
      data: { newStatus: "running" },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(stored((await a.rec.waitFor("session:status-changed"))[0].args), [{ newStatus: "running" }]);
    assert.deepEqual((await b.rec.waitFor("session:status-changed"))[0].args, [{ newStatus: "running" }, res.json.offsets["session:2"]]);
    // Later publishes to each of a's rooms are the fence: each room delivers in
    // order, so by then a second copy would have arrived.
    await api(parley.url, "POST", "/api/v1/publish", { room: "session:1", event: "fence" });
    await api(parley.url, "POST", "/api/v1/publish", { room: "session:3", event: "fence" });
    await a.rec.waitFor("fence", 2);
    assert.equal(a.rec.of("session:status-changed").length, 1);
    a.s.close();
    b.s.close();
  });

  it("profile:{id} rooms are joined from the token at connect", async () => {
    const op = await client({ sub: "op", profiles: ["p5", 6] }, "/");
    const res = await api(parley.url, "POST", "/api/v1/publish", { room: "profile:6", event: "message_toast", data: { messageId: 1 } });
    assert.equal(res.status, 200);
    assert.deepEqual((await op.rec.waitFor("message_toast"))[0].args, [{ messageId: 1 }, res.json.offset]);
    op.s.close();
  });
});

describe("typing and messages", () => {
  it("typing:start reaches the room but not the sender", async () => {
    const a = await client({ sub: "ann", rooms: ["conversation:*"] });
    const b = await client({ sub: "ben", rooms: ["conversation:*"] });
    await emitWithAck(a.s, "conversation:join", { conversationId: "t" });
    await emitWithAck(b.s, "conversation:join", { conversationId: "t" });
    a.s.emit("typing:start", { conversationId: "t" });
    a.s.emit("typing:stop", { conversationId: "t" });
    const [start] = await b.rec.waitFor("typing:start");
    const [stop] = await b.rec.waitFor("typing:stop");
    assert.deepEqual(start.args, [{ conversationId: "t", userId: "ann", isTyping: true }]);
    assert.deepEqual(stop.args, [{ conversationId: "t", userId: "ann", isTyping: false }]);
    // Fence: published after b saw typing:stop, through the same room actor, so
    // any typing event sent to ann would reach her before it.
    await api(parley.url, "POST", "/api/v1/publish", { room: "conversation:t", event: "fence" });
    await a.rec.waitFor("fence");
    await b.rec.waitFor("fence");
    assert.equal(b.rec.of("typing:start").length, 1);
    assert.equal(b.rec.of("typing:stop").length, 1);
    assert.equal(a.rec.of("typing:start").length, 0);
    assert.equal(a.rec.of("typing:stop").length, 0);
    a.s.close();
    b.s.close();
  });

  it("send_message answers message_sent and sends message to the chat room", async () => {
    const a = await client({ sub: "amy", rooms: ["chat:*"] }, "/");
    const b = await client({ sub: "bo", rooms: ["chat:*"] }, "/");
    await emitWithAck(a.s, "join", { room: "chat:9" });
    await emitWithAck(b.s, "join", { room: "chat:9" });
    a.s.emit("send_message", { chatId: "9", message: "hello" });
    const [sent] = await a.rec.waitFor("message_sent");
    const [got] = await b.rec.waitFor("message");
    const { offset, ...data } = sent.args[0];
    assert.deepEqual(got.args, [data, offset]);
    assert.equal(got.args[0].message, "hello");
    assert.equal(got.args[0].userId, "amy");
    assert.equal(got.args[0].chatId, "9");
    // Fence: published after b got the message, through the same room actor, so
    // a copy sent to amy would reach her before it.
    await api(parley.url, "POST", "/api/v1/publish", { room: "chat:9", event: "fence" });
    await a.rec.waitFor("fence");
    await b.rec.waitFor("fence");
    assert.equal(b.rec.of("message").length, 1);
    assert.equal(a.rec.of("message").length, 0);
    a.s.close();
    b.s.close();
  });
});

describe("invalid payloads", () => {
  it("answer with exact error texts", async () => {
    const { s, rec } = await client({ sub: "v", rooms: ["conversation:*"] });
    assert.deepEqual(await emitWithAck(s, "conversation:join", {}), {
      error: "Invalid payload for conversation:join: conversationId is required",
    });
    assert.deepEqual(await emitWithAck(s, "conversation:join", { conversationId: true }), {
      error: "Invalid payload for conversation:join: conversationId must be string or integer",
    });
    assert.deepEqual(await emitWithAck(s, "send_message", { chatId: 1 }), {
      error: "Invalid payload for send_message: message is required",
    });
    assert.deepEqual(await emitWithAck(s, "no-such-event", {}), { error: "Unknown event no-such-event" });
    s.emit("typing:start", "not an object");
    const [ev] = await rec.waitFor("error");
    assert.equal(ev.args[0].message, "Invalid payload for typing:start: payload must be an object");
    // the socket is still fine
    assert.deepEqual(await emitWithAck(s, "conversation:join", { conversationId: "ok" }), {
      conversationId: "ok",
      success: true,
    });
    s.close();
  });
});

describe("binary", () => {
  it("a binary attachment round-trips: websocket sender, polling receiver", async () => {
    const claims = (sub) => ({ sub, rooms: ["chat:*"] });
    const a = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token(claims("pic")) } });
    const b = await connect(parley.url, "/", { transports: ["polling"], auth: { token: token(claims("viewer")) } });
    const ra = recorder(a);
    const rb = recorder(b);
    await emitWithAck(a, "join", { room: "chat:photos" });
    await emitWithAck(b, "join", { room: "chat:photos" });
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255, 10, 30]);
    const reply = await emitWithAck(a, "send_message", { chatId: "photos", message: "photo", attachment: bytes });
    assert.match(reply.id, /^\d+-\d+$/);
    const [got] = await rb.waitFor("message");
    const [sent] = await ra.waitFor("message_sent");
    for (const e of [got, sent]) {
      assert.equal(e.args[0].id, reply.id);
      assert.equal(e.args[0].message, "photo");
      assert.ok(Buffer.isBuffer(e.args[0].attachment), "arrives as a Buffer");
      assert.deepEqual([...e.args[0].attachment], [...bytes]);
    }
    a.close();
    b.close();
  });
});
