// The plain WebSocket endpoints (issue 13): /ws (subscribe socket),
// /ws/dialogs/{id} (admin), /ws/site/dialogs/{id}, /ws/widget/dialogs/{id},
// driven with the `ws` client (and a raw TCP client for frames `ws` will not
// send). Covers each refusal at the upgrade with its exact JSON body, the
// credential checks (static lists, a validation backend with its cache and
// timeout), routing of POST /api/v1/dialogs/{id}/messages and /events to the
// admin and site audiences byte for byte, client messages and their errors,
// the /ws subscribe socket beside Socket.IO, the connection limits, the
// heartbeat, protocol errors, replay with `after`, token expiry and shutdown.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { api, connect, emitWithAck, recorder, sleep, startParley, stored, token, withTimeout } from "./harness.mjs";
import { rawHttp } from "./hardening_wire.mjs";
import {
  closedPort,
  frame,
  plain,
  plainNoWait,
  rawPlain,
  refusal,
  validationBackend,
} from "./plainws_harness.mjs";

const STATIC = ['--parley.plainws.site-tokens=["s1"]', '--parley.plainws.assistants=["a1"]'];
const ADMIN = token({ sub: "admin", rooms: ["dialog:*"] });
const SUBSCRIBER = token({ sub: "subscriber", rooms: ["conversation:*"] });
const PING = { type: "ping" };

const parse = (t) => {
  try {
    return JSON.parse(t);
  } catch {
    return undefined;
  }
};
const error = (message) => ({ type: "error", message });
const refused = (code, message) => ({ error: { code, message } });

const admin = (p, id, q = "", tok = ADMIN) => plain(p.url, `/ws/dialogs/${id}?token=${tok}${q}`);
const site = (p, id, q = "", cred = "s1") => plain(p.url, `/ws/site/dialogs/${id}?site_token=${cred}${q}`);
const widget = (p, id, q = "", cred = "a1") => plain(p.url, `/ws/widget/dialogs/${id}?assistant_id=${cred}${q}`);
const subscriber = (p, tok = SUBSCRIBER) => plain(p.url, `/ws?token=${tok}`);

const postMessage = (p, id, raw) =>
  api(p.url, "POST", `/api/v1/dialogs/${id}/messages`, undefined, { raw: typeof raw === "string" ? raw : JSON.stringify(raw) });
const postEvent = (p, id, raw, audience) =>
  api(p.url, "POST", `/api/v1/dialogs/${id}/events${audience === undefined ? "" : `?audience=${audience}`}`, undefined, {
    raw: typeof raw === "string" ? raw : JSON.stringify(raw),
  });
const publish = (p, room, event, data) => api(p.url, "POST", "/api/v1/publish", { room, event, data });
const history = (p, room) => api(p.url, "GET", `/api/v1/rooms/${encodeURIComponent(room)}/messages`);

// Polls pred every 5 ms until it holds; fails after ms.
async function poll(pred, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

// Sends a ping and expects the pong as the next frame: the connection is open
// and answering.
async function pingPong(c) {
  assert.deepEqual(parse(await c.ask(PING)), { type: "pong" });
}

// Sends `msg`, expects the error `message` as the next frame, then a ping is
// still answered (the connection stays).
async function expectError(c, msg, message) {
  const got = await c.ask(msg);
  assert.deepEqual(parse(got), error(message), `answer to ${typeof msg === "string" ? msg : JSON.stringify(msg)}`);
  await pingPong(c);
  assert.equal(c.closeInfo, null);
}

// Waits until dialog `id` has exactly `want` = {admin, site} members, by
// posting volatile typing_stop events to it (not stored) until the answer's
// `delivered` says so; then drops those from every client's record.
let settleMarker = 0;
async function settle(p, id, want, clients) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const marker = ++settleMarker;
    const r = await postEvent(p, id, { type: "typing_stop", settle: marker }, "all");
    if (r.status === 200 && r.json?.delivered?.admin === want.admin && r.json?.delivered?.site === want.site) {
      for (const c of clients) {
        const f = await c.frame((t) => parse(t)?.settle === marker, `the settle marker ${marker}`);
        c.frames.splice(0, c.frames.indexOf(f) + 1);
      }
      return;
    }
    if (Date.now() > deadline)
      assert.fail(`dialog ${id} never had ${JSON.stringify(want)} members; last answer ${r.status} ${r.text}`);
    await sleep(20);
  }
}

// -- the main server: static site-token / assistant lists ---------------------------------

let A;
before(async () => {
  A = await startParley(STATIC);
});
after(async () => {
  assert.equal(await A.stop(), 0);
});

describe("endpoints", () => {
  it("each endpoint accepts the upgrade and answers a ping with a pong", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      `/ws?token=${SUBSCRIBER}`,
      `/ws?token=${token({ sub: "plain" })}`,
      `/ws/dialogs/d1?token=${ADMIN}`,
      `/ws/dialogs/7?token=${token({ sub: "op", rooms: ["dialog:7"] })}`,
      `/ws/dialogs/d1?token=${token({ sub: "op", rooms: ["dialog:*"], exp: now + 600 })}&after=0`,
      "/ws/site/dialogs/d1?site_token=s1",
      "/ws/site/dialogs/d1?site_token=s1&after=0",
      "/ws/widget/dialogs/d1?assistant_id=a1",
      "/ws/widget/dialogs/d1?assistant_id=a1&after=12345",
      "/ws/site/dialogs/Az09_.:-x?site_token=s1",
      `/ws/widget/dialogs/${"w".repeat(128)}?assistant_id=a1`,
    ];
    for (const path of cases) {
      const c = await plain(A.url, path);
      await pingPong(c);
      await c.close();
    }
  });

  it("/ws takes the token from Authorization: Bearer", async () => {
    const c = await plain(A.url, "/ws", { headers: { authorization: `Bearer ${SUBSCRIBER}` } });
    await pingPong(c);
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "bearer" })), {
      type: "subscribed",
      conversationId: "bearer",
    });
    await c.close();
  });

  it("answers WebSocket pings (opcode 9) with pongs carrying the same payload", async () => {
    const c = await widget(A, "d1");
    c.ws.ping("hello");
    await c.until((x) => x.pongs.length === 1, "the pong");
    assert.equal(c.pongs[0].toString(), "hello");
    await c.close();
  });
});

describe("refusals at the upgrade", () => {
  const now = Math.floor(Date.now() / 1000);
  const expired = token({ sub: "old", rooms: ["dialog:*", "conversation:*"], exp: now - 10 });
  const badSig = token({ sub: "forged", rooms: ["dialog:*", "conversation:*"] }, { secret: "another-secret" });
  const long = "x".repeat(129);
  const rows = [
    ["/ws", 401, "unauthorized", "Missing token"],
    ["/ws?userId=u1", 401, "unauthorized", "Missing token"],
    ["/ws/dialogs/d1", 401, "unauthorized", "Missing token"],
    ["/ws/site/dialogs/d1", 401, "unauthorized", "Missing site_token"],
    ["/ws/widget/dialogs/d1", 401, "unauthorized", "Missing assistant_id"],
    ["/ws?token=garbage", 403, "forbidden", "Invalid token"],
    [`/ws?token=${expired}`, 403, "forbidden", "Invalid token"],
    [`/ws?token=${badSig}`, 403, "forbidden", "Invalid token"],
    ["/ws/dialogs/d1?token=garbage", 403, "forbidden", "Invalid token"],
    [`/ws/dialogs/d1?token=${expired}`, 403, "forbidden", "Invalid token"],
    [`/ws/dialogs/d1?token=${badSig}`, 403, "forbidden", "Invalid token"],
    [`/ws/dialogs/d1?token=${token({ sub: "op", rooms: ["dialog:7"] })}`, 403, "forbidden", "Token does not allow dialog:d1"],
    [`/ws/dialogs/d1?token=${token({ sub: "op" })}`, 403, "forbidden", "Token does not allow dialog:d1"],
    [`/ws/dialogs/d1?token=${SUBSCRIBER}`, 403, "forbidden", "Token does not allow dialog:d1"],
    ["/ws/site/dialogs/d1?site_token=nope", 403, "forbidden", "site_token refused for dialog d1"],
    ["/ws/site/dialogs/d1?site_token=a1", 403, "forbidden", "site_token refused for dialog d1"],
    ["/ws/widget/dialogs/d2?assistant_id=nope", 403, "forbidden", "assistant_id refused for dialog d2"],
    ["/ws/widget/dialogs/d2?assistant_id=s1", 403, "forbidden", "assistant_id refused for dialog d2"],
    ["/ws/site/dialogs/bad!id?site_token=s1", 400, "invalid_path", "Malformed dialog id"],
    ["/ws/site/dialogs/a%20b?site_token=s1", 400, "invalid_path", "Malformed dialog id"],
    [`/ws/widget/dialogs/${long}?assistant_id=a1`, 400, "invalid_path", "Malformed dialog id"],
    [`/ws/dialogs/a$b?token=${ADMIN}`, 400, "invalid_path", "Malformed dialog id"],
    ["/ws/site/dialogs/d1?site_token=s1&after=abc", 400, "invalid_query", "after must be an offset (a decimal number)"],
    ["/ws/widget/dialogs/d1?assistant_id=a1&after=-1", 400, "invalid_query", "after must be an offset (a decimal number)"],
    [`/ws/dialogs/d1?token=${ADMIN}&after=1.5`, 400, "invalid_query", "after must be an offset (a decimal number)"],
    ["/ws/foo", 404, "not_found", "No route for /ws/foo"],
    ["/ws/widget", 404, "not_found", "No route for /ws/widget"],
  ];
  for (const [path, status, code, message] of rows) {
    it(`${path.replace(/token=[^&]{40,}/, "token=<jwt>").slice(0, 90)} → ${status} ${code} "${message}"`, async () => {
      const r = await refusal(A.url, path);
      assert.equal(r.status, status, r.body);
      assert.deepEqual(r.json, refused(code, message), r.body);
    });
  }

  it("an invalid Authorization: Bearer token on /ws → 403 Invalid token", async () => {
    const r = await refusal(A.url, "/ws", { headers: { authorization: "Bearer garbage" } });
    assert.equal(r.status, 403);
    assert.deepEqual(r.json, refused("forbidden", "Invalid token"));
  });

  it("a refused upgrade is answered with a JSON body, then the connection is closed", async () => {
    const req =
      "GET /ws/site/dialogs/d1?site_token=nope HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const { response, closed } = await rawHttp(A.url, req);
    assert.equal(response.status, 403);
    assert.deepEqual(JSON.parse(response.body), refused("forbidden", "site_token refused for dialog d1"));
    assert.equal(await closed, true);
  });

  it("a plain GET (no upgrade) on each endpoint → 426 upgrade_required; another path under /ws/ → 404", async () => {
    for (const path of [
      `/ws?token=${SUBSCRIBER}`,
      `/ws/dialogs/d1?token=${ADMIN}`,
      "/ws/site/dialogs/d1?site_token=s1",
      "/ws/widget/dialogs/d1?assistant_id=a1",
    ]) {
      const res = await fetch(A.url + path);
      assert.equal(res.status, 426, path);
      assert.deepEqual(await res.json(), refused("upgrade_required", "Connect with a WebSocket upgrade"), path);
    }
    const res = await fetch(`${A.url}/ws/foo`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), refused("not_found", "No route for /ws/foo"));
  });
});

describe("routing of POST /api/v1/dialogs/{id}/messages and /events", () => {
  let a1, a2, s1, w1, other, sio, sioRec;
  let fences = 0;
  before(async () => {
    a1 = await admin(A, "r1");
    a2 = await admin(A, "r1", "", token({ sub: "admin2", rooms: ["dialog:r1"] }));
    s1 = await site(A, "r1");
    w1 = await widget(A, "r1");
    other = await admin(A, "r2");
    sio = await connect(A.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "sio", rooms: ["dialog:*"] }) } });
    sioRec = recorder(sio);
    assert.deepEqual(await emitWithAck(sio, "join", { dialogId: "r1" }), { joined: "dialog:r1", userId: "sio" });
    await settle(A, "r1", { admin: 3, site: 2 }, [a1, a2, s1, w1]);
    await settle(A, "r2", { admin: 1, site: 0 }, [other]);
  });
  after(async () => {
    for (const c of [a1, a2, s1, w1, other]) await c?.close();
    sio?.close();
  });

  // Posts through `post` (answer {ok, delivered} expected), then a fence (a
  // "manager" message, to both audiences) to r1 and r2: `to` must each have got
  // the posted body byte for byte exactly once, the others nothing but the fence.
  async function routed(post, raw, delivered, to) {
    const all = [a1, a2, s1, w1];
    for (const c of [...all, other]) c.clear();
    const r = await post();
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true, delivered });
    assert.deepEqual(Object.keys(r.json), ["ok", "delivered"]);
    for (const c of to) await c.frameCount(1);
    const fence = JSON.stringify({ sender: "manager", fence: ++fences });
    assert.equal((await postMessage(A, "r1", fence)).status, 200);
    assert.equal((await postMessage(A, "r2", fence)).status, 200);
    for (const c of [...all, other]) await c.frame(fence, `fence ${fences}`);
    // Socket.IO's copy of the fence too, so that its count can be checked.
    const n = fences;
    await poll(() => sioRec.of("message").some((e) => e.args[0]?.fence === n), `fence ${n} on Socket.IO`);
    for (const c of all) {
      if (to.includes(c)) {
        assert.deepEqual(c.texts(), [raw, fence]);
        assert.deepEqual(c.frames[0].bytes, Buffer.from(raw));
        assert.equal(c.frames[0].binary, false);
      } else {
        assert.deepEqual(c.texts(), [fence]);
      }
    }
    assert.deepEqual(other.texts(), [fence]);
  }

  it('sender "user": the admin audience only (plain admins and Socket.IO), byte for byte', async () => {
    const raw = '{ "zeta" :1,\n\t"sender":  "user" , "text":"h\u00e9llo  w\u00f6rld \u{1F600}", "alpha":[ 1 , 2.50 ,{"b":null,"a":true}] }';
    const before = sioRec.of("message").length;
    await routed(() => postMessage(A, "r1", raw), raw, { admin: 3, site: 0 }, [a1, a2]);
    await sioRec.waitFor("message", before + 1);
    assert.deepEqual(stored(sioRec.of("message")[before].args), [JSON.parse(raw)]);
  });

  for (const sender of ["manager", "assistant"]) {
    it(`sender "${sender}": both audiences, byte for byte`, async () => {
      const raw = `{"id":  "m-${sender}",  "sender" :"${sender}","text" : "hi   there"}`;
      await routed(() => postMessage(A, "r1", raw), raw, { admin: 3, site: 2 }, [a1, a2, s1, w1]);
    });
  }

  it("no sender: both audiences", async () => {
    const raw = '{"text":"system notice" , "n":1}';
    await routed(() => postMessage(A, "r1", raw), raw, { admin: 3, site: 2 }, [a1, a2, s1, w1]);
  });

  it('the legacy {"message":{…}} form is routed by message.sender and delivered as posted', async () => {
    const user = '{ "message" : { "sender":"user", "text":"from the user" } }';
    await routed(() => postMessage(A, "r1", user), user, { admin: 3, site: 0 }, [a1, a2]);
    const manager = '{"message":{"text":"from the manager","sender" : "manager"},"extra":1}';
    await routed(() => postMessage(A, "r1", manager), manager, { admin: 3, site: 2 }, [a1, a2, s1, w1]);
  });

  it('a top-level sender wins over an object-valued "message" field', async () => {
    const raw = '{"sender":"user","message":{"text":"quoted","sender":"manager"}}';
    await routed(() => postMessage(A, "r1", raw), raw, { admin: 3, site: 0 }, [a1, a2]);
  });

  it('an API publish with "ack":true reaches plain members, which are not waited for', async () => {
    other.clear();
    const r = await api(A.url, "POST", "/api/v1/publish", {
      room: "dialog:r2", event: "note", data: { acked: 1 }, ack: true, timeoutMs: 2000,
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.receivers, 0);
    await other.frame('{"acked":1}', "the ack publish");
    assert.deepEqual(other.texts(), ['{"acked":1}']);
  });

  it("Socket.IO members of dialog:{id} get the message as event `message` with its offset", async () => {
    const body = { sender: "assistant", text: "to socket.io", n: 3 };
    const before = sioRec.of("message").length;
    await routed(() => postMessage(A, "r1", body), JSON.stringify(body), { admin: 3, site: 2 }, [a1, a2, s1, w1]);
    await sioRec.waitFor("message", before + 1);
    assert.deepEqual(stored(sioRec.of("message")[before].args), [body]);
  });

  it("a message to a dialog nobody is connected to: delivered 0 and 0", async () => {
    const r = await postMessage(A, "nobody-here", { sender: "manager", text: "x" });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true, delivered: { admin: 0, site: 0 } });
  });

  const event = { type: "handoff_started", dialog_id: 456, manager: { id: 9, name: "Ann" } };
  const eventRaw = JSON.stringify(event);
  it("/events?audience=admin: admins only; Socket.IO gets an event named by its type", async () => {
    const before = sioRec.of("handoff_started").length;
    await routed(() => postEvent(A, "r1", eventRaw, "admin"), eventRaw, { admin: 3, site: 0 }, [a1, a2]);
    await sioRec.waitFor("handoff_started", before + 1);
    assert.deepEqual(stored(sioRec.of("handoff_started")[before].args), [event]);
  });

  it("/events?audience=site: site and widget sockets only", async () => {
    const before = sioRec.of("handoff_started").length;
    await routed(() => postEvent(A, "r1", eventRaw, "site"), eventRaw, { admin: 0, site: 2 }, [s1, w1]);
    assert.equal(sioRec.of("handoff_started").length, before);
  });

  it("/events?audience=all and no audience: everybody", async () => {
    await routed(() => postEvent(A, "r1", eventRaw, "all"), eventRaw, { admin: 3, site: 2 }, [a1, a2, s1, w1]);
    const spaced = '{ "type" : "dialog_closed",  "dialog_id":"r1" }';
    await routed(() => postEvent(A, "r1", spaced), spaced, { admin: 3, site: 2 }, [a1, a2, s1, w1]);
  });

  it("/events without a string type: Socket.IO gets an event named `event`", async () => {
    const body = { what: "untyped", type: 7, manager: "Ann" };
    const before = sioRec.of("event").length;
    await routed(() => postEvent(A, "r1", body, "admin"), JSON.stringify(body), { admin: 3, site: 0 }, [a1, a2]);
    await sioRec.waitFor("event", before + 1);
    assert.deepEqual(stored(sioRec.of("event")[before].args), [body]);
  });

  it("typing_start/typing_stop events are delivered but not stored; other events and messages are", async () => {
    const typing = '{"type":"typing_start","who":"manager"}';
    await routed(() => postEvent(A, "r1", typing, "site"), typing, { admin: 0, site: 2 }, [s1, w1]);
    const h = await history(A, "dialog:r1");
    assert.equal(h.status, 200, h.text);
    const types = h.json.messages.map((m) => m.data?.type);
    assert.ok(!types.includes("typing_start") && !types.includes("typing_stop"), JSON.stringify(types));
    assert.ok(types.includes("handoff_started"), JSON.stringify(types));
    assert.ok(h.json.messages.some((m) => m.event === "message" && m.data.text === "to socket.io"));
  });

  it("an ordinary /api/v1/publish to dialog:{id} reaches both audiences with its data as the frame", async () => {
    const data = { kind: "notice", text: "published", list: [1, 2] };
    for (const c of [a1, a2, s1, w1]) c.clear();
    const r = await publish(A, "dialog:r1", "anything", data);
    assert.equal(r.status, 200, r.text);
    for (const c of [a1, a2, s1, w1]) {
      await c.frameCount(1);
      assert.equal(c.frames[0].text, JSON.stringify(data));
    }
  });

  it("400s: bad JSON, not an object, a malformed id, a bad audience", async () => {
    const bad = await postMessage(A, "r1", "{nope");
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, "invalid_json");
    for (const raw of ["[1,2]", '"text"', "42", "null"]) {
      for (const r of [await postMessage(A, "r1", raw), await postEvent(A, "r1", raw)]) {
        assert.equal(r.status, 400, raw);
        assert.deepEqual(r.json, refused("invalid_payload", "The body must be a JSON object"), raw);
      }
    }
    for (const id of ["bad!id", "x".repeat(129), "a%20b"]) {
      for (const r of [await postMessage(A, id, { sender: "user" }), await postEvent(A, id, { type: "x" })]) {
        assert.equal(r.status, 400, id);
        assert.deepEqual(r.json, refused("invalid_path", "Malformed dialog id"), id);
      }
    }
    for (const audience of ["everyone", "admins", "ADMIN"]) {
      const r = await postEvent(A, "r1", { type: "x" }, audience);
      assert.equal(r.status, 400, audience);
      assert.deepEqual(r.json, refused("invalid_query", "audience must be admin, site or all"), audience);
    }
  });
});

describe("client messages on dialog sockets", () => {
  let a1, a2, s1, w1, w2;
  before(async () => {
    a1 = await admin(A, "t1");
    a2 = await admin(A, "t1");
    s1 = await site(A, "t1");
    w1 = await widget(A, "t1");
    w2 = await widget(A, "t1");
    await settle(A, "t1", { admin: 2, site: 3 }, [a1, a2, s1, w1, w2]);
  });
  after(async () => {
    for (const c of [a1, a2, s1, w1, w2]) await c?.close();
  });

  // `from` sends {type}; `to` get exactly that text, the rest (and the sender)
  // nothing (checked behind a fence to both audiences).
  let fences = 0;
  async function typing(from, type, to) {
    const all = [a1, a2, s1, w1, w2];
    for (const c of all) c.clear();
    from.send({ type });
    const text = `{"type":"${type}"}`;
    for (const c of to) await c.frame(text);
    const fence = JSON.stringify({ sender: "manager", typingFence: ++fences });
    await postMessage(A, "t1", fence);
    for (const c of all) await c.frame(fence);
    for (const c of all) assert.deepEqual(c.texts(), to.includes(c) ? [text, fence] : [fence]);
  }

  it("typing_start from a widget reaches the admins, not the sender nor the other site sockets", async () => {
    await typing(w1, "typing_start", [a1, a2]);
  });
  it("typing_stop from a site socket reaches the admins only", async () => {
    await typing(s1, "typing_stop", [a1, a2]);
  });
  it("typing_start / typing_stop from an admin reach the site and widget sockets, not the other admin", async () => {
    await typing(a1, "typing_start", [s1, w1, w2]);
    await typing(a2, "typing_stop", [s1, w1, w2]);
  });
  it("client typing is not stored", async () => {
    const h = await history(A, "dialog:t1");
    assert.equal(h.status, 200);
    assert.ok(h.json.messages.every((m) => m.data?.type !== "typing_start" && m.data?.type !== "typing_stop"), h.text);
  });

  it("errors: malformed JSON, no string type, unknown type, binary; the connection stays", async () => {
    for (const c of [w1, a1, s1]) {
      await expectError(c, "{not json", "Malformed JSON");
      await expectError(c, "", "Malformed JSON");
      await expectError(c, "[]", 'A message needs a string "type"');
      await expectError(c, '"ping"', 'A message needs a string "type"');
      await expectError(c, "null", 'A message needs a string "type"');
      await expectError(c, {}, 'A message needs a string "type"');
      await expectError(c, { type: 5 }, 'A message needs a string "type"');
      await expectError(c, { type: "zap" }, "Unknown message type: zap");
      await expectError(c, { type: "subscribe", conversationId: "c1" }, "Unknown message type: subscribe");
      const n = c.frames.length;
      c.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
      await c.frameCount(n + 1);
      assert.deepEqual(parse(c.frames[n].text), error("Binary messages are not supported"));
      await pingPong(c);
    }
  });
});

describe("the /ws subscribe socket", () => {
  it("subscribe / unsubscribe answers; subscribing twice is answered twice; unsubscribe when not subscribed", async () => {
    const c = await subscriber(A);
    const ask = async (m) => parse(await c.ask(m));
    assert.deepEqual(await ask({ type: "subscribe", conversationId: "c1" }), { type: "subscribed", conversationId: "c1" });
    assert.deepEqual(await ask({ type: "subscribe", conversationId: "c1" }), { type: "subscribed", conversationId: "c1" });
    assert.deepEqual(await ask({ type: "unsubscribe", conversationId: "c1" }), { type: "unsubscribed", conversationId: "c1" });
    assert.deepEqual(await ask({ type: "unsubscribe", conversationId: "c1" }), { type: "unsubscribed", conversationId: "c1" });
    assert.deepEqual(await ask({ type: "unsubscribe", conversationId: "never" }), { type: "unsubscribed", conversationId: "never" });
    await c.close();
  });

  it("errors: conversationId missing, empty, not a string, too long; not allowed; typing; unknown; binary", async () => {
    const c = await subscriber(A, token({ sub: "narrow", rooms: ["conversation:c1"] }));
    await expectError(c, { type: "subscribe" }, "subscribe needs a conversationId");
    await expectError(c, { type: "subscribe", conversationId: "" }, "subscribe needs a conversationId");
    await expectError(c, { type: "subscribe", conversationId: 5 }, "subscribe needs a conversationId");
    await expectError(c, { type: "subscribe", conversationId: "c".repeat(129) }, "subscribe needs a conversationId");
    await expectError(c, { type: "unsubscribe" }, "unsubscribe needs a conversationId");
    await expectError(c, { type: "unsubscribe", conversationId: "" }, "unsubscribe needs a conversationId");
    await expectError(c, { type: "subscribe", conversationId: "c2" }, "Not allowed to subscribe to conversation:c2");
    await expectError(c, { type: "typing_start" }, "Unknown message type: typing_start");
    await expectError(c, { type: "typing_stop" }, "Unknown message type: typing_stop");
    await expectError(c, { type: "nope" }, "Unknown message type: nope");
    await expectError(c, "{x", "Malformed JSON");
    await expectError(c, "[1]", 'A message needs a string "type"');
    const n = c.frames.length;
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await c.frameCount(n + 1);
    assert.deepEqual(parse(c.frames[n].text), error("Binary messages are not supported"));
    await pingPong(c);
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "c1" })), { type: "subscribed", conversationId: "c1" });
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "c".repeat(128) })), error("Not allowed to subscribe to conversation:" + "c".repeat(128)));
    await c.close();
  });

  it("a Socket.IO member and a /ws subscriber of conversation:c1 each get one API publish; after unsubscribe, nothing", async () => {
    const sio = await connect(A.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub: "sio-c1", rooms: ["conversation:*"] }) } });
    const rec = recorder(sio);
    assert.deepEqual(await emitWithAck(sio, "conversation:join", { conversationId: "c1" }), { conversationId: "c1", success: true });
    const c = await subscriber(A);
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "c1" })), { type: "subscribed", conversationId: "c1" });
    // subscribed twice: still one subscription
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "c1" })), { type: "subscribed", conversationId: "c1" });
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "c9" })), { type: "subscribed", conversationId: "c9" });
    c.clear();

    const data = { conversationId: "c1", messageId: "m1", senderId: "x", content: { text: "hi" } };
    const r = await publish(A, "conversation:c1", "message", data);
    assert.equal(r.status, 200, r.text);
    await rec.waitFor("message", 1);
    await c.frameCount(1);
    // a fence behind it in the same room
    await publish(A, "conversation:c1", "fence", 1);
    await rec.waitFor("fence", 1);
    await c.frameCount(2);
    assert.deepEqual(rec.of("message").map((e) => e.args), [[data, r.json.offset]]);
    assert.deepEqual(c.jsons(), [
      { type: "message", room: "conversation:c1", data },
      { type: "fence", room: "conversation:c1", data: 1 },
    ]);

    assert.deepEqual(parse(await c.ask({ type: "unsubscribe", conversationId: "c1" })), { type: "unsubscribed", conversationId: "c1" });
    c.clear();
    await publish(A, "conversation:c1", "message", { after: "unsubscribe" });
    await rec.waitFor("message", 2);
    await publish(A, "conversation:c9", "fence", 9);
    await c.frameCount(1);
    await sleep(50);
    assert.deepEqual(c.jsons(), [{ type: "fence", room: "conversation:c9", data: 9 }]);
    sio.close();
    await c.close();
  });

  it("a Socket.IO client's typing:start in the conversation reaches the /ws subscriber", async () => {
    const sio = await connect(A.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub: "typer", rooms: ["conversation:*"] }) } });
    await emitWithAck(sio, "conversation:join", { conversationId: "c3" });
    const c = await subscriber(A);
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "c3" })), { type: "subscribed", conversationId: "c3" });
    c.clear();
    await emitWithAck(sio, "typing:start", { conversationId: "c3" });
    await c.frameCount(1);
    assert.deepEqual(c.jsons(), [
      { type: "typing:start", room: "conversation:c3", data: { conversationId: "c3", userId: "typer", isTyping: true } },
    ]);
    sio.close();
    await c.close();
  });

  it("/api/v1/broadcast reaches a /ws subscriber of one of the rooms", async () => {
    const c = await subscriber(A);
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "b1" })), { type: "subscribed", conversationId: "b1" });
    c.clear();
    const r = await api(A.url, "POST", "/api/v1/broadcast", { rooms: ["conversation:b0", "conversation:b1"], event: "all", data: "x" });
    assert.equal(r.status, 200, r.text);
    await c.frameCount(1);
    assert.deepEqual(c.jsons(), [{ type: "all", room: "conversation:b1", data: "x" }]);
    await c.close();
  });
});

describe("replay with after", () => {
  it("dialog sockets: the stored messages after the offset, in order, by audience, then live ones, none twice", async () => {
    const id = "rp1";
    const bodies = [
      '{"sender":"manager","text":"one"}',
      '{"sender":"manager","text":"two"}',
      '{"sender":"user","text":"from the user"}',
      '{"sender":"assistant","text":"three"}',
    ];
    for (const b of bodies) assert.equal((await postMessage(A, id, b)).status, 200);
    const h = await history(A, `dialog:${id}`);
    assert.equal(h.status, 200, h.text);
    assert.deepEqual(h.json.messages.map((m) => [m.event, m.data]), bodies.map((b) => ["message", JSON.parse(b)]));
    const offs = h.json.messages.map((m) => m.offset);
    const [m1, m2, mu, m3] = bodies;

    const w = await widget(A, id, `&after=${offs[0]}`);
    const s = await site(A, id, "&after=0");
    const a = await admin(A, id, `&after=${offs[0]}`);
    const late = await widget(A, id, `&after=${offs[2]}`);
    await late.frameCount(1);
    await w.frameCount(2);
    await s.frameCount(3);
    await a.frameCount(3);
    const live = '{"sender":"manager","text":"live"}';
    const r = await postMessage(A, id, live);
    assert.deepEqual(r.json, { ok: true, delivered: { admin: 1, site: 3 } });
    const fence = '{"sender":"manager","text":"fence"}';
    await postMessage(A, id, fence);
    for (const c of [w, s, a, late]) await c.frame(fence);
    assert.deepEqual(w.texts(), [m2, m3, live, fence]);
    assert.deepEqual(s.texts(), [m1, m2, m3, live, fence]);
    assert.deepEqual(a.texts(), [m2, mu, m3, live, fence]);
    assert.deepEqual(late.texts(), [m3, live, fence]);
    for (const c of [w, s, a, late]) await c.close();
  });

  it("/ws subscribe with after: subscribed, then the stored events, then live ones", async () => {
    const room = "conversation:rc1";
    const offs = [];
    for (let i = 1; i <= 3; i++) {
      const r = await publish(A, room, "message", { n: i });
      assert.equal(r.status, 200, r.text);
      offs.push(r.json.offset);
    }
    const c = await subscriber(A);
    c.send({ type: "subscribe", conversationId: "rc1", after: offs[0] });
    const d = await subscriber(A);
    d.send({ type: "subscribe", conversationId: "rc1", after: Number(offs[0]) });
    await c.frameCount(3);
    await d.frameCount(3);
    const r4 = await publish(A, room, "message", { n: 4 });
    assert.equal(r4.status, 200);
    await publish(A, room, "fence", null);
    const expected = [
      { type: "subscribed", conversationId: "rc1" },
      { type: "message", room, data: { n: 2 } },
      { type: "message", room, data: { n: 3 } },
      { type: "message", room, data: { n: 4 } },
      { type: "fence", room, data: null },
    ];
    await c.frameCount(5);
    await d.frameCount(5);
    await sleep(50);
    assert.deepEqual(c.jsons(), expected);
    assert.deepEqual(d.jsons(), expected);
    await c.close();
    await d.close();
  });

  it("/ws subscribe with a bad after → error", async () => {
    const c = await subscriber(A);
    for (const after of ["abc", "-1", "1.5", true]) {
      c.clear();
      c.send({ type: "subscribe", conversationId: "rc2", after });
      const f = await c.frame((t) => parse(t)?.type === "error", `the error for after ${JSON.stringify(after)}`);
      assert.deepEqual(parse(f.text), error("after must be an offset (a decimal number)"));
      await pingPong(c);
    }
    await c.close();
  });
});

describe("token expiry", () => {
  it("an admin or /ws socket whose JWT exp passes is closed with 1008 token expired", async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const a = await admin(A, "exp1", "", token({ sub: "short", rooms: ["dialog:*"], exp }));
    const s = await subscriber(A, token({ sub: "short", rooms: ["conversation:*"], exp }));
    const w = await widget(A, "exp1");
    assert.deepEqual(await a.closed(5000), { code: 1008, reason: "token expired" });
    assert.deepEqual(await s.closed(5000), { code: 1008, reason: "token expired" });
    assert.ok(Date.now() >= exp * 1000 - 200, "not closed before exp");
    await pingPong(w);
    await w.close();
  });
});

// -- a validation backend -----------------------------------------------------------------

describe("credential checks with a validation backend", () => {
  let B, backend;
  before(async () => {
    backend = await validationBackend();
    B = await startParley([
      `--parley.plainws.validate-url=${backend.url}`,
      "--parley.plainws.validate-timeout=300ms",
      "--parley.plainws.validate-cache-ttl=2s",
      '--parley.plainws.site-tokens=["s1"]',
    ]);
  });
  after(async () => {
    if (B) assert.equal(await B.stop(), 0);
    await backend?.close();
  });

  it("asks with POST, the JSON body, Authorization: apikey and Content-Type; {allow:true} admits", async () => {
    const s = await site(B, "v1", "", "ok-1");
    await pingPong(s);
    const w = await widget(B, "v1", "", "ok-w1");
    await pingPong(w);
    const [rs] = backend.of("ok-1");
    const [rw] = backend.of("ok-w1");
    assert.equal(backend.of("ok-1").length, 1);
    assert.equal(backend.of("ok-w1").length, 1);
    for (const r of [rs, rw]) {
      assert.equal(r.method, "POST");
      assert.equal(r.url, "/check");
      assert.equal(r.headers.authorization, "apikey integration-api-key");
      assert.equal(r.headers["content-type"], "application/json");
    }
    assert.deepEqual(rs.json, { mode: "site_token", credential: "ok-1", dialogId: "v1" });
    assert.deepEqual(rw.json, { mode: "assistant_id", credential: "ok-w1", dialogId: "v1" });
    await s.close();
    await w.close();
  });

  it("{allow:false}: 403 … refused for dialog {id}", async () => {
    const r1 = await refusal(B.url, "/ws/site/dialogs/v1?site_token=no-1");
    assert.equal(r1.status, 403);
    assert.deepEqual(r1.json, refused("forbidden", "site_token refused for dialog v1"));
    const r2 = await refusal(B.url, "/ws/widget/dialogs/v1?assistant_id=no-w1");
    assert.equal(r2.status, 403);
    assert.deepEqual(r2.json, refused("forbidden", "assistant_id refused for dialog v1"));
    assert.equal(backend.of("no-1").length, 1);
    assert.equal(backend.of("no-w1").length, 1);
  });

  it("a 5xx answer is no decision: 403 … could not be checked: the backend answered 500, asked again next time", async () => {
    for (let i = 1; i <= 2; i++) {
      const r = await refusal(B.url, "/ws/site/dialogs/v1?site_token=fail-1");
      assert.equal(r.status, 403);
      assert.deepEqual(r.json, refused("forbidden", "site_token could not be checked: the backend answered 500"));
      assert.equal(backend.of("fail-1").length, i);
    }
  });

  it("any other answer (a 4xx, a body that is not {allow:true}) refuses, and the refusal is cached", async () => {
    for (const cred of ["forbid-1", "junk-1"]) {
      for (let i = 0; i < 2; i++) {
        const r = await refusal(B.url, `/ws/widget/dialogs/v1?assistant_id=${cred}`);
        assert.equal(r.status, 403);
        assert.deepEqual(r.json, refused("forbidden", "assistant_id refused for dialog v1"));
      }
      assert.equal(backend.of(cred).length, 1);
    }
  });

  it("a credential longer than 512 bytes is refused without asking", async () => {
    const long = "ok" + "x".repeat(600);
    const r = await refusal(B.url, `/ws/site/dialogs/v1?site_token=${long}`);
    assert.equal(r.status, 403);
    assert.deepEqual(r.json, refused("forbidden", "site_token refused for dialog v1"));
    assert.equal(backend.of(long).length, 0);
  });

  it("a credential in the static list is admitted without asking the backend", async () => {
    const s = await site(B, "v1");
    await pingPong(s);
    assert.equal(backend.of("s1").length, 0);
    await s.close();
  });

  it("no answer within validate-timeout: 403 … could not be checked: no answer within 300 ms; not cached", async () => {
    const t0 = Date.now();
    const r = await refusal(B.url, "/ws/site/dialogs/v1?site_token=slow-1");
    const took = Date.now() - t0;
    assert.equal(r.status, 403);
    assert.deepEqual(r.json, refused("forbidden", "site_token could not be checked: no answer within 300 ms"));
    assert.ok(took >= 250 && took < 2000, `answered after ${took} ms`);
    const again = await refusal(B.url, "/ws/site/dialogs/v1?site_token=slow-1");
    assert.deepEqual(again.json, refused("forbidden", "site_token could not be checked: no answer within 300 ms"));
    assert.equal(backend.of("slow-1").length, 2);
    const w = await refusal(B.url, "/ws/widget/dialogs/v1?assistant_id=slow-w");
    assert.equal(w.status, 403);
    assert.deepEqual(w.json, refused("forbidden", "assistant_id could not be checked: no answer within 300 ms"));
  });

  it("concurrent identical checks share one request", async () => {
    const [x, y] = await Promise.all([site(B, "v4", "", "late-1"), site(B, "v4", "", "late-1")]);
    await pingPong(x);
    await pingPong(y);
    assert.equal(backend.of("late-1").length, 1);
    await x.close();
    await y.close();
  });

  it("refusals are cached a tenth of validate-cache-ttl", async () => {
    const first = await refusal(B.url, "/ws/site/dialogs/v2?site_token=no-c");
    assert.deepEqual(first.json, refused("forbidden", "site_token refused for dialog v2"));
    const second = await refusal(B.url, "/ws/site/dialogs/v2?site_token=no-c");
    assert.deepEqual(second.json, refused("forbidden", "site_token refused for dialog v2"));
    assert.equal(backend.of("no-c").length, 1);
    await sleep(350);
    const third = await refusal(B.url, "/ws/site/dialogs/v2?site_token=no-c");
    assert.deepEqual(third.json, refused("forbidden", "site_token refused for dialog v2"));
    assert.equal(backend.of("no-c").length, 2);
  });

  it("admissions are cached per (mode, credential, dialogId) for validate-cache-ttl", async () => {
    const open = async (c) => {
      const x = await c;
      await pingPong(x);
      await x.close();
    };
    await open(site(B, "v2", "", "ok-c"));
    await open(site(B, "v2", "", "ok-c"));
    assert.equal(backend.of("ok-c").length, 1);
    await open(site(B, "v3", "", "ok-c"));
    assert.equal(backend.of("ok-c").length, 2);
    await open(widget(B, "v2", "", "ok-c"));
    assert.equal(backend.of("ok-c").length, 3);
    assert.deepEqual(backend.of("ok-c").map((r) => [r.json.mode, r.json.dialogId]), [
      ["site_token", "v2"],
      ["site_token", "v3"],
      ["assistant_id", "v2"],
    ]);
    await sleep(2300);
    await open(site(B, "v2", "", "ok-c"));
    assert.equal(backend.of("ok-c").length, 4);
  });
});

// -- connection limits, subscriptions, rate -------------------------------------------------

describe("limits", () => {
  let C;
  before(async () => {
    C = await startParley([
      ...STATIC,
      "--parley.plainws.max-per-dialog=2",
      "--parley.plainws.max-total=3",
      "--parley.limits.max-rooms-per-socket=2",
      "--parley.limits.events-per-second=5",
      "--parley.limits.events-burst=5",
      "--parley.recovery.max-replay=2",
    ]);
  });
  after(async () => {
    if (C) assert.equal(await C.stop(), 0);
  });

  it("max-per-dialog and max-total: accepted, then closed 1013 with the reason; a freed place is taken again", async () => {
    const a = await admin(C, "L1");
    const s = await site(C, "L1");
    const third = plainNoWait(C.url, "/ws/widget/dialogs/L1?assistant_id=a1");
    assert.deepEqual(await third.closed(), { code: 1013, reason: "too many connections to this dialog (max-per-dialog 2)" });
    assert.equal(third.opened, true, "the 101 came first");
    await sleep(100);
    const l2 = await widget(C, "L2");
    await pingPong(l2);
    for (const path of ["/ws/site/dialogs/L3?site_token=s1", `/ws/dialogs/L3?token=${ADMIN}`, `/ws?token=${SUBSCRIBER}`]) {
      const fourth = plainNoWait(C.url, path);
      assert.deepEqual(await fourth.closed(), { code: 1013, reason: "too many plain WebSocket connections (max-total 3)" }, path);
      assert.equal(fourth.opened, true);
    }
    await pingPong(a);
    await pingPong(s);
    await s.close();
    await sleep(200);
    const again = await widget(C, "L1");
    await pingPong(again);
    await sleep(100);
    assert.equal(again.closeInfo, null);
    for (const c of [a, l2, again]) await c.close();
    await sleep(200);
  });

  it("more subscriptions than max-rooms-per-socket: Too many subscriptions (max 2)", async () => {
    const c = await subscriber(C);
    const ask = async (m) => parse(await c.ask(m));
    assert.deepEqual(await ask({ type: "subscribe", conversationId: "x1" }), { type: "subscribed", conversationId: "x1" });
    assert.deepEqual(await ask({ type: "subscribe", conversationId: "x2" }), { type: "subscribed", conversationId: "x2" });
    assert.deepEqual(await ask({ type: "subscribe", conversationId: "x1" }), { type: "subscribed", conversationId: "x1" });
    assert.deepEqual(await ask({ type: "subscribe", conversationId: "x3" }), error("Too many subscriptions (max 2)"));
    assert.deepEqual(await ask({ type: "unsubscribe", conversationId: "x2" }), { type: "unsubscribed", conversationId: "x2" });
    await sleep(1100); // the token bucket (5/s) refills
    assert.deepEqual(await ask({ type: "subscribe", conversationId: "x3" }), { type: "subscribed", conversationId: "x3" });
    await c.close();
    await sleep(100);
  });

  it("replay over parley.recovery.max-replay: Cannot replay …, still subscribed and live", async () => {
    const room = "conversation:mr";
    for (let i = 1; i <= 3; i++) assert.equal((await publish(C, room, "m", i)).status, 200);
    const c = await subscriber(C);
    c.send({ type: "subscribe", conversationId: "mr", after: "0" });
    await c.frameCount(2);
    const frames = c.jsons();
    assert.deepEqual(frames[0], { type: "subscribed", conversationId: "mr" });
    assert.equal(frames[1].type, "error");
    assert.match(frames[1].message, /^Cannot replay conversation:mr after 0: ./);
    c.clear();
    await publish(C, room, "m", 4);
    await c.frameCount(1);
    assert.deepEqual(c.jsons(), [{ type: "m", room, data: 4 }]);
    await c.close();
    await sleep(100);
  });

  it("over events-per-second: Rate limit exceeded, and the connection stays", async () => {
    const c = await widget(C, "rate");
    for (let i = 0; i < 8; i++) c.send(PING);
    await c.frameCount(6);
    await sleep(300);
    const got = c.jsons();
    assert.deepEqual(got.slice(0, 5), Array(5).fill({ type: "pong" }));
    assert.ok(got.length >= 6 && got.length <= 8, JSON.stringify(got));
    for (const f of got.slice(5)) assert.deepEqual(f, error("Rate limit exceeded: at most 5 messages per second"));
    await sleep(1100);
    assert.equal(c.closeInfo, null);
    await pingPong(c);
    await c.close();
  });
});

// -- heartbeat and protocol errors ------------------------------------------------------------

describe("heartbeat and protocol errors", () => {
  let D;
  before(async () => {
    D = await startParley([
      ...STATIC,
      "--parley.plainws.ping-interval=200ms",
      "--parley.plainws.ping-timeout=300ms",
      "--parley.plainws.max-message=1024",
    ]);
  });
  after(async () => {
    if (D) assert.equal(await D.stop(), 0);
  });

  it("a client answering pings stays connected across several intervals; the pings are empty", async () => {
    const w = await widget(D, "hb1");
    const s = await subscriber(D);
    await sleep(1300);
    for (const c of [w, s]) {
      assert.equal(c.closeInfo, null);
      assert.ok(c.pings.length >= 4 && c.pings.length <= 8, `${c.pings.length} pings in 1.3 s`);
      for (const p of c.pings) assert.equal(p.length, 0);
      await pingPong(c);
      await c.close();
    }
  });

  it("a client that does not answer pings is closed with 1001 ping timeout", async () => {
    const t0 = Date.now();
    const c = await plain(D.url, "/ws/site/dialogs/hb2?site_token=s1", { autoPong: false });
    const info = await c.closed(3000);
    const took = Date.now() - t0;
    assert.deepEqual(info, { code: 1001, reason: "ping timeout" });
    assert.ok(c.pings.length >= 1);
    assert.ok(took >= 250 && took < 2000, `closed after ${took} ms`);
  });

  it("a message over max-message is closed with 1009; one under it is served", async () => {
    const c = await widget(D, "big");
    const under = JSON.stringify({ type: "ping", pad: "x".repeat(1000 - 24) });
    assert.equal(under.length, 1000);
    assert.deepEqual(parse(await c.ask(under)), { type: "pong" });
    c.send(JSON.stringify({ type: "ping", pad: "x".repeat(2000) }));
    const info = await c.closed();
    assert.equal(info.code, 1009);
  });

  it("raw frames: a fragmented message is served; an over-long fragmented one → 1009", async () => {
    const c = await rawPlain(D.url, "/ws/widget/dialogs/raw1?assistant_id=a1");
    c.write(frame(0x1, '{"type":', { fin: false }), frame(0x0, '"ping"}'));
    await c.until((x) => x.texts.length === 1, "the pong");
    assert.deepEqual(parse(c.texts[0]), { type: "pong" });
    c.write(frame(0x1, "x".repeat(600), { fin: false }), frame(0x0, "y".repeat(600)));
    assert.equal((await c.closeFrame()).code, 1009);
    c.destroy();
  });

  it("invalid UTF-8 in a text frame → 1007", async () => {
    const c = await rawPlain(D.url, "/ws/site/dialogs/raw2?site_token=s1");
    c.write(frame(0x1, '{"type":"ping"}'));
    await c.until((x) => x.texts.length === 1, "the pong");
    c.write(frame(0x1, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])));
    assert.equal((await c.closeFrame()).code, 1007);
    await c.until((x) => x.ended, "the connection to end");
  });

  for (const [what, bytes] of [
    ["an unmasked frame", () => frame(0x1, '{"type":"ping"}', { mask: false })],
    ["a reserved bit", () => frame(0x1, '{"type":"ping"}', { rsv: 4 })],
    ["a reserved opcode", () => frame(0x3, "x")],
  ]) {
    it(`${what} → 1002`, async () => {
      const c = await rawPlain(D.url, `/ws?token=${SUBSCRIBER}`);
      c.write(bytes());
      assert.equal((await c.closeFrame()).code, 1002);
      await c.until((x) => x.ended, "the connection to end");
    });
  }
});

// -- an unreachable backend, development mode, shutdown ---------------------------------------

describe("an unreachable backend, ?userId= in development mode, shutdown", () => {
  let E;
  before(async () => {
    const port = await closedPort();
    E = await startParley([
      ...STATIC,
      `--parley.plainws.validate-url=http://127.0.0.1:${port}/check`,
      "--parley.auth.allow-anonymous-dev",
    ]);
  });
  after(async () => {
    if (E) await E.stop();
  });

  it("a backend that cannot be reached: 403 … could not be checked: <why>", async () => {
    const s = await refusal(E.url, "/ws/site/dialogs/u1?site_token=unknown");
    assert.equal(s.status, 403);
    assert.equal(s.json.error.code, "forbidden");
    assert.match(s.json.error.message, /^site_token could not be checked: \S/);
    const w = await refusal(E.url, "/ws/widget/dialogs/u1?assistant_id=unknown");
    assert.equal(w.status, 403);
    assert.equal(w.json.error.code, "forbidden");
    assert.match(w.json.error.message, /^assistant_id could not be checked: \S/);
    const ok = await site(E, "u1");
    await pingPong(ok);
    await ok.close();
  });

  it("/ws?userId= when allow-anonymous-dev is on", async () => {
    const c = await plain(E.url, "/ws?userId=dev1");
    assert.deepEqual(parse(await c.ask({ type: "subscribe", conversationId: "any" })), { type: "subscribed", conversationId: "any" });
    await c.close();
  });

  it("SIGTERM closes every plain socket with 1001 server shutting down", async () => {
    const cs = [await site(E, "u2"), await widget(E, "u2"), await admin(E, "u2"), await plain(E.url, "/ws?userId=dev2")];
    const code = await E.stop();
    for (const c of cs) assert.deepEqual(await c.closed(), { code: 1001, reason: "server shutting down" });
    assert.equal(code, 0);
  });
});

describe("shutdown while a credential check is on its way, and the per-address limit", () => {
  it("SIGTERM during a check: Parley exits 0 and the late admission is closed, not served", async () => {
    const backend = await validationBackend();
    const P = await startParley([`--parley.plainws.validate-url=${backend.url}`]);
    try {
      const c = plainNoWait(P.url, "/ws/site/dialogs/z1?site_token=late-1");
      await poll(() => backend.of("late-1").length === 1, "the check to reach the backend");
      const code = await withTimeout(P.stop(), 5000, "parley to stop");
      assert.equal(code, 0);
      const info = await c.closed();
      assert.ok(info.code === 1001 || info.code === 1006, JSON.stringify(info));
      if (info.code === 1001) assert.equal(info.reason, "server shutting down");
    } finally {
      await backend.close();
    }
  });

  it("parley.limits.max-connections-per-ip applies to plain connections: 1013 with the reason", async () => {
    const P = await startParley([...STATIC, "--parley.limits.max-connections-per-ip=2"]);
    try {
      const a = await widget(P, "ip1");
      const b = await site(P, "ip2");
      const third = plainNoWait(P.url, `/ws?token=${SUBSCRIBER}`);
      assert.deepEqual(await third.closed(), {
        code: 1013,
        reason: "too many connections from this address (max-connections-per-ip 2)",
      });
      await pingPong(a);
      await b.close();
      await sleep(200);
      const again = await subscriber(P);
      await pingPong(again);
      for (const c of [a, again]) await c.close();
    } finally {
      assert.equal(await P.stop(), 0);
    }
  });
});
