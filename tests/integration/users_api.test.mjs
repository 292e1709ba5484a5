// The backend API on a user's sockets and a room's members, as Socket.IO's
// server API offers them: POST /api/v1/users/{userId}/join and /leave
// (socketsJoin / socketsLeave), /disconnect (disconnectSockets), and
// GET /api/v1/rooms/{room} (fetchSockets).
import assert from "node:assert/strict";
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

// A tab of a user whose token grants no rooms at all.
const open = (sub) =>
  connect(parley.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub, rooms: [] }) } });
const post = (path, body) => api(parley.url, "POST", path, body);
const publish = (room, event, data) => post("/api/v1/publish", { room, event, data });
// What a recorder got, presence announcements left out.
const frames = (rec) => rec.events.filter((e) => !e.event.startsWith("user:"));

// GET /api/v1/presence/{user} polled until it says `n` connections.
async function connections(user, n) {
  await withTimeout(
    (async () => {
      for (;;) {
        const r = await api(parley.url, "GET", `/api/v1/presence/${user}`);
        if (r.json?.connections === n) return;
        await sleep(20);
      }
    })(),
    5000,
    `${user} to have ${n} connections`,
  );
}

describe("join and leave", () => {
  it("every live socket of the user joins (whatever its token allows), then leaves", async () => {
    const [tab1, tab2, other] = [await open("ann"), await open("ann"), await open("ben")];
    const [r1, r2, ro] = [tab1, tab2, other].map(recorder);
    await connections("ann", 2);

    const joined = await post("/api/v1/users/ann/join", { rooms: ["team:7", "team:8"] });
    assert.equal(joined.status, 200);
    assert.equal(joined.text, '{"ok":true,"sockets":2}');
    const first = await publish("team:7", "note", { n: 1 });
    assert.equal(first.status, 200);
    for (const r of [r1, r2]) await r.waitFor("note");
    assert.deepEqual(frames(r1), [{ event: "note", args: [{ n: 1 }, first.json.offset] }]);
    assert.deepEqual(frames(r2), [{ event: "note", args: [{ n: 1 }, first.json.offset] }]);

    let room = await api(parley.url, "GET", "/api/v1/rooms/team:7");
    assert.equal(room.status, 200);
    assert.equal(room.text, '{"room":"team:7","sockets":2,"users":["ann"]}');
    assert.equal((await post("/api/v1/users/ben/join", { rooms: ["team:7"] })).text, '{"ok":true,"sockets":1}');
    room = await api(parley.url, "GET", "/api/v1/rooms/team%3A7");
    assert.equal(room.text, '{"room":"team:7","sockets":3,"users":["ann","ben"]}');

    // Joining again changes nothing: the same members, one frame each.
    assert.equal((await post("/api/v1/users/ann/join", { rooms: ["team:7"] })).text, '{"ok":true,"sockets":2}');
    const left = await post("/api/v1/users/ann/leave", { rooms: ["team:7"] });
    assert.equal(left.status, 200);
    assert.equal(left.text, '{"ok":true,"sockets":2}');
    const second = await publish("team:7", "note", { n: 2 });
    // ben gets it (his join came after the first publish); ann's tabs, out of the room, nothing more.
    await ro.waitFor("note");
    assert.deepEqual(frames(ro), [{ event: "note", args: [{ n: 2 }, second.json.offset] }]);
    const third = await publish("team:8", "note", { n: 3 });
    for (const r of [r1, r2]) await r.waitFor("note", 2);
    for (const r of [r1, r2])
      assert.deepEqual(frames(r), [
        { event: "note", args: [{ n: 1 }, first.json.offset] },
        { event: "note", args: [{ n: 3 }, third.json.offset] },
      ]);
    assert.deepEqual(frames(ro), [{ event: "note", args: [{ n: 2 }, second.json.offset] }]);
    room = await api(parley.url, "GET", "/api/v1/rooms/team:7");
    assert.equal(room.text, '{"room":"team:7","sockets":1,"users":["ben"]}');
    for (const s of [tab1, tab2, other]) s.close();
  });

  it("a backend join alongside a join of the socket itself: both take effect", async () => {
    const s = await connect(parley.url, "/messages", {
      transports: ["websocket"],
      auth: { token: token({ sub: "cleo", rooms: ["conversation:*"] }) },
    });
    const rec = recorder(s);
    await connections("cleo", 1);
    const ack = emitWithAck(s, "conversation:join", { conversationId: "9" });
    const joined = await post("/api/v1/users/cleo/join", { rooms: ["team:9"] });
    assert.equal(joined.text, '{"ok":true,"sockets":1}');
    assert.deepEqual(await ack, { conversationId: "9", success: true });
    const room = await api(parley.url, "GET", "/api/v1/rooms/conversation:9");
    assert.equal(room.text, '{"room":"conversation:9","sockets":1,"users":["cleo"]}');
    const pub = await publish("team:9", "note", "x");
    await rec.waitFor("note");
    assert.deepEqual(rec.of("note"), [{ event: "note", args: ["x", pub.json.offset] }]);
    s.close();
  });

  it("the rooms count against max-rooms-per-socket: a socket that is full is not counted", async () => {
    const p = await startParley(["--parley.limits.max-rooms-per-socket=2"]);
    try {
      const s = await connect(p.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub: "dee" }) } });
      for (;;) {
        const r = await api(p.url, "GET", "/api/v1/presence/dee");
        if (r.json?.connections === 1) break;
        await sleep(20);
      }
      const full = await api(p.url, "POST", "/api/v1/users/dee/join", { rooms: ["a", "b", "c"] });
      assert.equal(full.text, '{"ok":true,"sockets":0}');
      for (const [room, n] of [["a", 1], ["b", 1], ["c", 0]]) {
        const r = await api(p.url, "GET", `/api/v1/rooms/${room}`);
        assert.equal(r.text, `{"room":"${room}","sockets":${n},"users":[${n ? '"dee"' : ""}]}`);
      }
      assert.equal((await api(p.url, "POST", "/api/v1/users/dee/join", { rooms: ["b"] })).text, '{"ok":true,"sockets":1}');
      s.close();
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  it("a room joined by the backend is kept by connection-state recovery", async () => {
    const s = io(parley.url, {
      forceNew: true,
      transports: ["websocket"],
      reconnectionDelay: 300,
      reconnectionDelayMax: 300,
      randomizationFactor: 0,
      auth: { token: token({ sub: "rex", rooms: [] }) },
    });
    await withTimeout(new Promise((r) => s.once("connect", r)), 5000, "connect");
    const rec = recorder(s);
    await connections("rex", 1);
    assert.equal((await post("/api/v1/users/rex/join", { rooms: ["granted:1"] })).text, '{"ok":true,"sockets":1}');
    const back = withTimeout(new Promise((r) => s.once("connect", r)), 8000, "the reconnection");
    const down = withTimeout(new Promise((r) => s.once("disconnect", r)), 5000, "the disconnection");
    s.io.engine.close();
    await down;
    const missed = await publish("granted:1", "m", 1);
    await back;
    assert.equal(s.recovered, true);
    await rec.waitFor("m");
    const fresh = await publish("granted:1", "m", 2);
    await rec.waitFor("m", 2);
    assert.deepEqual(rec.of("m").map((e) => e.args), [
      [1, missed.json.offset],
      [2, fresh.json.offset],
    ]);
    s.close();
  });
});

describe("disconnect", () => {
  it("every socket of the user gets a server-side DISCONNECT; others are untouched", async () => {
    const [tab1, tab2, other] = [await open("cat"), await open("cat"), await open("dan")];
    await connections("cat", 2);
    await connections("dan", 1);
    const reasons = Promise.all([tab1, tab2].map((s) => new Promise((r) => s.once("disconnect", r))));
    let otherGone = false;
    other.on("disconnect", () => (otherGone = true));
    const r = await post("/api/v1/users/cat/disconnect");
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"ok":true,"sockets":2}');
    assert.deepEqual(await withTimeout(reasons, 5000, "the disconnects"), ["io server disconnect", "io server disconnect"]);
    await connections("cat", 0);
    assert.equal((await post("/api/v1/users/cat/disconnect")).text, '{"ok":true,"sockets":0}');
    // dan is still connected and in his rooms.
    assert.equal((await post("/api/v1/users/dan/join", { rooms: ["d"] })).text, '{"ok":true,"sockets":1}');
    const rec = recorder(other);
    const pub = await publish("d", "still", true);
    await rec.waitFor("still");
    assert.deepEqual(rec.of("still"), [{ event: "still", args: [true, pub.json.offset] }]);
    assert.equal(otherGone, false);
    assert.equal(other.connected, true);
    other.close();
  });

  it("a user with no sockets: 0 for join, leave and disconnect", async () => {
    assert.equal((await post("/api/v1/users/nobody/join", { rooms: ["x"] })).text, '{"ok":true,"sockets":0}');
    assert.equal((await post("/api/v1/users/nobody/leave", { rooms: ["x"] })).text, '{"ok":true,"sockets":0}');
    assert.equal((await post("/api/v1/users/nobody/disconnect")).text, '{"ok":true,"sockets":0}');
  });
});

describe("GET /api/v1/rooms/{room}", () => {
  it("a room nobody is in", async () => {
    const r = await api(parley.url, "GET", "/api/v1/rooms/empty%20room");
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"room":"empty room","sockets":0,"users":[]}');
  });
});

describe("errors", () => {
  const cases = [
    ["POST", "/api/v1/users/u/join", { rooms: ["a"] }],
    ["POST", "/api/v1/users/u/leave", { rooms: ["a"] }],
    ["POST", "/api/v1/users/u/disconnect", undefined],
    ["GET", "/api/v1/rooms/a", undefined],
  ];
  it("401 without the API key, or with a wrong one", async () => {
    for (const [method, path, body] of cases) {
      const none = await api(parley.url, method, path, body, { key: null });
      assert.equal(none.status, 401);
      assert.equal(none.text, '{"error":{"code":"unauthorized","message":"Missing API key"}}');
      const wrong = await api(parley.url, method, path, body, { key: "nope" });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.text, '{"error":{"code":"unauthorized","message":"Invalid API key"}}');
    }
  });

  it("405 for another method, with Allow", async () => {
    for (const [method, path, allow] of [
      ["GET", "/api/v1/users/u/join", "POST"],
      ["PUT", "/api/v1/users/u/leave", "POST"],
      ["GET", "/api/v1/users/u/disconnect", "POST"],
      ["POST", "/api/v1/rooms/a", "GET"],
      ["DELETE", "/api/v1/rooms/a", "GET"],
    ]) {
      const res = await fetch(parley.url + path, { method, headers: { authorization: "apikey integration-api-key" } });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow);
      assert.equal(await res.text(), `{"error":{"code":"method_not_allowed","message":"Use ${allow} for ${path}"}}`);
    }
  });

  it("400 for bodies that are not JSON, or not {rooms:[names]}", async () => {
    const bad = await api(parley.url, "POST", "/api/v1/users/u/join", undefined, { raw: '{"rooms":' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, "invalid_json");
    assert.match(bad.json.error.message, /^Malformed JSON: .+ at offset \d+$/);
    for (const [body, message] of [
      [{}, "rooms is required"],
      [{ rooms: ["a"], extra: 1 }, "unexpected property extra"],
      [{ rooms: [] }, null],
      [{ rooms: [""] }, null],
      [{ rooms: "a" }, null],
      [{ rooms: [1] }, null],
    ]) {
      for (const action of ["join", "leave"]) {
        const r = await post(`/api/v1/users/u/${action}`, body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.json.error.code, "invalid_payload");
        assert.match(r.json.error.message, /^Invalid payload for api\.users\.rooms: /);
        if (message) assert.equal(r.json.error.message, `Invalid payload for api.users.rooms: ${message}`);
      }
    }
  });

  it("400 for a malformed user id or room name", async () => {
    const u = await post("/api/v1/users/%zz/join", { rooms: ["a"] });
    assert.equal(u.status, 400);
    assert.equal(u.text, '{"error":{"code":"invalid_path","message":"Malformed user id"}}');
    const r = await api(parley.url, "GET", "/api/v1/rooms/%zz");
    assert.equal(r.status, 400);
    assert.equal(r.text, '{"error":{"code":"invalid_path","message":"Malformed room name"}}');
  });
});
