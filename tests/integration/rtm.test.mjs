// The RTM upstream end to end: build/parley connected to build/rtm-sim with
// one profile that logs in with a password (7) and one that brings session
// cookies (8); real socket.io-client operators receive what the simulator
// pushes, translated into seed 000's events.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { api, connect, emitWithAck, recorder, sleep, startParley, stored, token, withTimeout } from "./harness.mjs";
import { startRtmSim } from "./rtm_harness.mjs";

const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 3200;
const DEDUP_TTL_MS = 1500;

let sim;
let parley;
let op7; // operator of profile 7, in dialog:7-42
let lurker7; // operator of profile 7, in no dialog
let op8; // operator of profile 8 only

// Polls `check` until it returns something truthy; fails naming `what`.
async function until(what, check, ms = 10000) {
  return withTimeout(
    (async () => {
      for (;;) {
        const v = await check();
        if (v) return v;
        await sleep(25);
      }
    })(),
    ms,
    what,
  );
}

const status = async () => (await api(parley.url, "GET", "/api/tt/rtm-status")).json;
const simState = async () => (await sim.state()).profiles;
async function metric(name) {
  const text = (await api(parley.url, "GET", "/metrics")).text;
  const m = new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

async function emit(profileId, event, extra = {}) {
  const r = await sim.control("POST", "/control/emit", { profileId, event, ...extra });
  assert.equal(r.status, 200);
  assert.equal(r.body.delivered, 1, `profile ${profileId} has one subscribed upstream`);
}

const DATE = "2026-11-25T10:00:00Z";
function chat(id, from, to, text = "Hello <b>there</b>", type = "chat_MessageNew") {
  return { type, data: { message: { id, idUserFrom: from, idUserTo: to, type: "text", content: { message: text }, dateCreated: DATE } } };
}

// Resolves once Parley has printed `text` (its log goes to stdout) after
// position `from` of its output.
const logged = (text, from = 0) => until(`the log line "${text}"`, () => parley.stdout.indexOf(text, from) >= 0);

// Copies of a message are duplicates only within the dedup TTL of the first.
// Runs round(n) for n = 0, 1, ... until one takes less than the TTL by the
// monotonic clock (Parley's steady clock): every copy it emitted reached the
// dedup within that time, so the TTL held for all of them; only then does it
// run the checks round(n) returned. A round a stalled machine stretched past
// the TTL proves nothing and is played again (with new ids). Resolves with the
// time the good round ended, which is after its first copy was recorded.
async function withinTtl(round) {
  for (let n = 0; n < 3; n++) {
    const began = performance.now();
    const checks = await round(n);
    const ended = performance.now();
    if (ended - began < DEDUP_TTL_MS) {
      await checks();
      return ended;
    }
  }
  assert.fail(`three rounds in a row took longer than the ${DEDUP_TTL_MS} ms dedup TTL`);
}

// Emits a message from client 42 to profile 7 and waits until both of its
// deliveries (toast to profile:7, message to dialog:7-42) reached op7: every
// earlier event of profile 7 has been delivered by then.
let fences = 0;
async function fence() {
  const id = 90000 + ++fences;
  await emit("7", chat(id, 42, 7, "fence"));
  await until(`fence ${id}`, () =>
    op7.rec.of("message_toast").some((e) => e.args[0].messageId === id) &&
    op7.rec.of("message").some((e) => e.args[0].id === id) &&
    lurker7.rec.of("message_toast").some((e) => e.args[0].messageId === id),
  );
}
const toastsOf = (who, id) => who.rec.of("message_toast").filter((e) => e.args[0].messageId === id);

async function operator(claims) {
  const s = await connect(parley.url, "/", { auth: { token: token(claims) } });
  return { s, rec: recorder(s) };
}

before(async () => {
  sim = await startRtmSim(["--profile=7:pw7", "--ping-interval=1"]);
  const session8 = await sim.control("POST", "/control/sessions", { profileId: "8" });
  assert.equal(session8.status, 200);
  const dir = mkdtempSync(join(tmpdir(), "parley-rtm-"));
  const conf = join(dir, "rtm.conf");
  writeFileSync(
    conf,
    `[parley.rtm]
url="${sim.wsUrl}"
api-url="${sim.url}"
login-url="${sim.url}/auth/login"
origin="https://anchat.test"
backoff-base=${BACKOFF_BASE_MS}ms
backoff-max=${BACKOFF_MAX_MS}ms
backoff-jitter=0
dedup-ttl=${DEDUP_TTL_MS}ms
client-wait=300ms
client-cache-ttl=1min
profiles=[{id="7", password="pw7"}, {id="8", cookies="${session8.body.cookies}"}]
`,
  );
  // At info level Parley logs the backoff it chooses and a toast sent without a name.
  parley = await startParley([`--config-file=${conf}`, "--parley.log.level=info"]);
  op7 = await operator({ sub: "op7", profiles: ["7"] });
  lurker7 = await operator({ sub: "lurker7", profiles: ["7"] });
  op8 = await operator({ sub: "op8", profiles: ["8"] });
  assert.deepEqual(await emitWithAck(op7.s, "join", { dialogId: "7-42" }), { joined: "dialog:7-42", userId: "op7" });
});

after(async () => {
  for (const o of [op7, lurker7, op8]) o?.s.close();
  if (parley) assert.equal(await parley.stop(), 0);
  if (sim) await sim.stop();
});

describe("rtm", () => {
  it("connects every configured profile, logging in where it has a password", async () => {
    const st = await until("rtm-status connected", async () => {
      const s = await status();
      return s.status === "connected" ? s : null;
    });
    assert.deepEqual(st, {
      status: "connected",
      profiles: {
        7: { state: "connected", reconnects: 0, lastEventAt: null, nextAttemptAt: null },
        8: { state: "connected", reconnects: 0, lastEventAt: null, nextAttemptAt: null },
      },
    });
    const p = await simState();
    assert.equal(p["7"].logins, 1);
    assert.equal(p["7"].connections, 1);
    assert.equal(p["8"].logins, 0);
    assert.equal(p["8"].connections, 1);
    assert.equal(p["7"].lastOrigin, "https://anchat.test");
    assert.match(p["7"].lastCookie, /(^|; )tld-token=[0-9a-f]{32}(;|$)/);
    // The simulator pings every second; Parley answers each.
    await until("a pong from Parley", async () => (await simState())["7"].pongs >= 1, 5000);
    assert.equal(await metric('parley_rtm_upstream_connected{profile="7"}'), 1);
    assert.equal(await metric("parley_rtm_upstreams_connected"), 2);
  });

  it("an operator without the profile cannot join its dialogs", async () => {
    const r = await emitWithAck(op8.s, "join", { dialogId: "7-42" });
    assert.deepEqual(r, { error: "Not allowed to join dialog:7-42" });
  });

  it("every event type reaches the right rooms with seed 000's payloads", async () => {
    const avatar = "https://rtm-sim.local/avatars/42.png";
    await emit("7", chat(1001, 42, 7));
    const toast = { messageId: 1001, idUserFrom: 42, idUserTo: 7, dateCreated: DATE, type: "new_message", dialogId: "7-42" };
    const full = { ...toast, clientName: "Client 42", clientAvatar: avatar, preview: "Hello there", fromSelf: false };
    assert.deepEqual(stored((await op7.rec.waitFor("message_toast", 1))[0].args), [full]);
    assert.deepEqual(stored((await lurker7.rec.waitFor("message_toast", 1))[0].args), [full]);
    assert.deepEqual(stored((await op7.rec.waitFor("message", 1))[0].args), [
      { id: 1001, idUserFrom: 42, idUserTo: 7, type: "text", content: { message: "Hello <b>there</b>" }, message: "Hello there", dateCreated: DATE },
    ]);

    // Sent by the profile itself (the MessageSent shape, message at data.message).
    await emit("7", { type: "MessageSent", message: { id: 1002, idUserFrom: 7, idUserTo: 42, type: "text", content: { message: "Hi" }, dateCreated: DATE } });
    assert.deepEqual(stored((await op7.rec.waitFor("message_toast", 2))[1].args), [
      { messageId: 1002, idUserFrom: 7, idUserTo: 42, dateCreated: DATE, type: "new_message", dialogId: "7-42", clientName: "Client 42", clientAvatar: avatar, preview: "Hi", fromSelf: true },
    ]);

    await emit("7", { type: "email", email: { id: 5001, id_user_from: 42, id_user_to: 7, id_correspondence: 900, title: "A letter", content: "<p>Dear&nbsp;Ann,</p><p>see you</p>", dateCreated: DATE } });
    assert.deepEqual(stored((await op7.rec.waitFor("message_toast", 3))[2].args), [
      { messageId: 5001, idUserFrom: 42, idUserTo: 7, dateCreated: DATE, type: "new_email", dialogId: "7-42", correspondenceId: 900, title: "A letter", clientName: "Client 42", clientAvatar: avatar, preview: "Dear Ann, see you", fromSelf: false },
    ]);

    await emit("7", { type: "chat_MessageRead", data: { idInterlocutor: 42, idMessage: 1001 } });
    await emit("7", { type: "chat_DialogLimitChanged", data: { idUser: 7, idInterlocutor: 42, limitLeft: 3 } });
    await emit("7", { type: "platform_CorrespondenceLimitChanged", data: { idUser: 7, idInterlocutor: 42, limitLeft: 2 } });
    await emit("7", { type: "chat_DialogTyping", data: { idUser: 42, idInterlocutor: 7 } });
    await emit("7", { type: "platform_Bonus", data: { amount: 5 } });
    await fence();

    // op7 is in profile:7 and dialog:7-42: each event reaches it once; lurker7 through profile:7.
    for (const who of [op7, lurker7]) {
      assert.deepEqual(who.rec.of("message_read").map((e) => stored(e.args)), [[{ messageId: 1001, idInterlocutor: 42, dialogId: "7-42" }]]);
      assert.deepEqual(who.rec.of("dialog_limit_changed").map((e) => stored(e.args)), [
        [{ idUser: 7, idInterlocutor: 42, limitLeft: 3, dialogId: "7-42" }],
        [{ idUser: 7, idInterlocutor: 42, limitLeft: 2, dialogId: "7-42" }],
      ]);
      assert.deepEqual(who.rec.of("typing").map((e) => e.args), [[{ dialogId: "7-42", idUser: 42, idInterlocutor: 7, isTyping: true }]]);
      assert.deepEqual(who.rec.of("rtm.message").map((e) => stored(e.args)), [
        [{ profileId: "7", type: "platform_Bonus", data: { type: "platform_Bonus", data: { amount: 5 } } }],
      ]);
      assert.deepEqual(toastsOf(who, 1001).length, 1);
    }
    // Dialog messages only reach the dialog's room.
    assert.equal(lurker7.rec.of("message").length, 0);
    assert.deepEqual(op7.rec.of("message").map((e) => e.args[0].id), [1001, 1002, 90000 + fences]);
    const st = await status();
    assert.match(st.profiles["7"].lastEventAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(st.profiles["8"].lastEventAt, null);
    // Nothing of profile 7 reaches an operator of profile 8. Fence: an event of
    // profile 8 passes the same dedup and translator after all of the above and
    // is published to profile:8, the room a misrouted one would have reached.
    await emit("8", { type: "chat_DialogTyping", data: { idUser: 42, idInterlocutor: 8 } });
    await op8.rec.waitFor("typing");
    assert.deepEqual(op8.rec.events, [
      { event: "typing", args: [{ dialogId: "8-42", idUser: 42, idInterlocutor: 8, isTyping: true }] },
    ]);
  });

  it("the same message twice within the TTL is one toast, after the TTL another", async () => {
    let id;
    const firstSeenBy = await withinTtl(async (n) => {
      id = 2001 + n;
      const dropped = await metric("parley_rtm_duplicates_dropped_total");
      await emit("7", chat(id, 42, 7, "twice"), { times: 2, batch: true });
      await emit("7", chat(id, 42, 7, "twice"));
      await fence();
      return async () => {
        assert.equal(toastsOf(op7, id).length, 1);
        assert.equal(op7.rec.of("message").filter((e) => e.args[0].id === id).length, 1);
        assert.equal(await metric("parley_rtm_duplicates_dropped_total"), dropped + 2);
      };
    });
    // Past the first copy's TTL (it was recorded before firstSeenBy, on the
    // clock read here) the same message is new again.
    await sleep(firstSeenBy + DEDUP_TTL_MS - performance.now());
    await emit("7", chat(id, 42, 7, "twice"));
    await fence();
    assert.equal(toastsOf(op7, id).length, 2);
    // Emails are keyed by the email id.
    await withinTtl(async (n) => {
      const mail = { type: "email", email: { id: 5002 + n, id_user_from: 42, id_user_to: 7, id_correspondence: 901, title: "Again", content: "x", dateCreated: DATE } };
      await emit("7", mail, { times: 2 });
      await fence();
      return async () => assert.equal(toastsOf(op7, 5002 + n).length, 1);
    });
  });

  it("malformed frames between valid ones are skipped; the connection stays up", async () => {
    const malformed = await metric("parley_rtm_malformed_total");
    const connects = (await simState())["7"].connectTimes.length;
    await emit("7", chat(3001, 42, 7, "before"));
    for (const frame of [
      '{"push":{"channel":',
      "[1,2,3]",
      '{"push":{"channel":"personal:7","pub":{"data":{"type":"chat_MessageRead","data":{}}}}}',
      '{"push":{"channel":"personal:7"}}',
    ]) {
      const r = await sim.control("POST", "/control/malformed", { profileId: "7", frame });
      assert.equal(r.body.delivered, 1);
    }
    await emit("7", chat(3002, 42, 7, "after"));
    await fence();
    assert.equal(toastsOf(op7, 3001).length, 1);
    assert.equal(toastsOf(op7, 3002).length, 1);
    assert.equal(await metric("parley_rtm_malformed_total"), malformed + 4);
    const p = (await simState())["7"];
    assert.equal(p.connections, 1);
    assert.equal(p.connectTimes.length, connects);
    assert.equal((await status()).profiles["7"].state, "connected");
  });

  it("a failing or slow profile API delays no toast", async () => {
    const failures = await metric("parley_rtm_client_api_failures_total");
    await sim.control("POST", "/control/api", { failureRate: 1 });
    await emit("7", chat(4001, 43, 7, "from 43"));
    const [t1] = (await until("toast 4001", () => toastsOf(op7, 4001)[0])).args;
    assert.equal(t1.clientName, null);
    assert.equal(t1.clientAvatar, null);
    assert.equal(t1.preview, "from 43");
    assert.equal(await metric("parley_rtm_client_api_failures_total"), failures + 1);

    // Slow: the sim holds the answer until released, so the toast goes out after
    // client-wait (300 ms) without the name; the answer, once in, names the next one.
    const from = parley.stdout.length;
    await sim.control("POST", "/control/api", { failureRate: 0, latencyMs: 600000 });
    try {
      await emit("7", chat(4002, 44, 7, "from 44"));
      const [t2] = (await until("toast 4002", () => toastsOf(op7, 4002)[0])).args;
      assert.equal(t2.clientName, null);
      await logged("rtm: profile API slow for client 44: toast sent without name", from);
      let clientApi = (await sim.state()).clientApi;
      assert.equal(clientApi.requests["44"], 1);
      assert.equal(clientApi.held, 1);
      assert.deepEqual((await sim.control("POST", "/control/release")).body, { released: 1 });
      await until("the answer for client 44", async () => (await sim.state()).clientApi.answered["44"] === 1);
      // The answer is in Parley's socket before 4003 is even emitted; Parley's
      // one I/O thread hands it straight to the translator, while 4003 has the
      // upstream and the dedup to pass first.
      await emit("7", chat(4003, 44, 7, "again"));
      const [t3] = (await until("toast 4003", () => toastsOf(op7, 4003)[0])).args;
      assert.equal(t3.clientName, "Client 44");
      clientApi = (await sim.state()).clientApi;
      assert.equal(clientApi.requests["44"], 1, "cached");
      assert.equal(clientApi.held, 0);
    } finally {
      await sim.control("POST", "/control/api", { latencyMs: 0 });
      await sim.control("POST", "/control/release");
    }
  });

  it("dropped 5 times in a row, it reconnects each time with growing delays", async () => {
    const connects7 = (await simState())["7"].connectTimes.length;
    const from = parley.stdout.length;
    const delays = [];
    for (let i = 0; i < 5; i++) {
      const before = (await simState())["8"].connectTimes.length;
      const t0 = Date.now();
      const r = await sim.control("POST", "/control/drop", { profileId: "8" });
      assert.equal(r.body.dropped, 1);
      const times = await until(`reconnect ${i + 1}`, async () => {
        const p = (await simState())["8"];
        return p.connections === 1 && p.connectTimes.length === before + 1 ? p.connectTimes : null;
      });
      delays.push(times.at(-1) - t0);
      await until(`subscribed ${i + 1}`, async () => (await sim.control("POST", "/control/emit", { profileId: "8", event: { type: "after_drop", data: { n: i } } })).body.delivered === 1);
      await op8.rec.waitFor("rtm.message", i + 1);
    }
    // The delays Parley chose (backoff-jitter=0): base × 2^n, as it logs them.
    const chosen = () => [...parley.stdout.slice(from).matchAll(/rtm 8: next attempt in (\d+) ms/g)].map((m) => Number(m[1]));
    await until("five backoff lines", () => chosen().length >= 5);
    assert.deepEqual(chosen(), [0, 1, 2, 3, 4].map((i) => BACKOFF_BASE_MS * 2 ** i));
    // And it waited them out: a lower bound from the backoff timer (t0 is read
    // before the drop is asked for, the sim stamps the upgrade after the timer),
    // both readings of this machine's clock in whole milliseconds; only a step
    // of the system clock could break it.
    delays.forEach((d, i) => {
      const nominal = BACKOFF_BASE_MS * 2 ** i;
      assert.ok(d >= nominal, `delay ${i + 1} is ${d} ms, at least ${nominal} ms`);
    });
    assert.deepEqual(op8.rec.of("rtm.message").map((e) => e.args[0].data.data.n), [0, 1, 2, 3, 4]);
    const st = await status();
    assert.equal(st.profiles["8"].reconnects, 5);
    assert.equal(st.profiles["7"].reconnects, 0);
    // Profile 7's upstream was never touched.
    assert.equal((await simState())["7"].connectTimes.length, connects7);
  });

  it("expired sessions: a password profile logs in again, a cookie profile reports auth_failed", async () => {
    const logins = (await simState())["7"].logins;
    const r = await sim.control("POST", "/control/expire-sessions", {});
    assert.equal(r.status, 200);
    assert.equal(r.body.dropped, 2);
    await until("profile 7 logged in again", async () => {
      const p = (await simState())["7"];
      return p.logins === logins + 1 && p.connections === 1;
    });
    await until("profile 7 subscribed", async () => (await sim.control("POST", "/control/emit", { profileId: "7", event: chat(6001, 42, 7, "after expiry") })).body.delivered === 1);
    await until("toast 6001", () => toastsOf(op7, 6001)[0]);

    const st = await until("profile 8 auth_failed", async () => {
      const s = await status();
      return s.profiles["8"].state === "auth_failed" ? s : null;
    });
    assert.equal(st.status, "degraded");
    assert.equal(st.profiles["7"].state, "connected");
    assert.match(st.profiles["8"].nextAttemptAt, /^\d{4}-\d\d-\d\dT/);
    assert.match(st.profiles["8"].lastError, /401/);
    assert.ok((await metric("parley_rtm_auth_failures_total")) >= 1);

    // A fresh session through the API brings it back at once.
    const fresh = await sim.control("POST", "/control/sessions", { profileId: "8" });
    const put = await api(parley.url, "PUT", "/api/v1/rtm/profiles/8", { cookies: fresh.body.cookies });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, { ok: true, created: false });
    await until("everything connected", async () => (await status()).status === "connected");
    await until("profile 8 subscribed", async () => (await sim.control("POST", "/control/emit", { profileId: "8", event: { type: "after_drop", data: { n: 5 } } })).body.delivered === 1);
    await op8.rec.waitFor("rtm.message", 6);
  });

  it("a wrong password is auth_failed, retried with backoff, and touches nobody else", async () => {
    await sim.control("POST", "/control/profiles", { id: "6", password: "right" });
    const put = await api(parley.url, "PUT", "/api/v1/rtm/profiles/6", { password: "wrong" });
    assert.deepEqual([put.status, put.json], [200, { ok: true, created: true }]);
    const st = await until("profile 6 auth_failed", async () => {
      const s = await status();
      return s.profiles["6"]?.state === "auth_failed" ? s : null;
    });
    assert.equal(st.status, "degraded");
    await until("a second failed login", async () => (await simState())["6"]?.failedLogins >= 2);
    assert.equal((await simState())["6"].connectTimes.length, 0);
    // The others go on.
    await emit("7", chat(7001, 42, 7, "still here"));
    await until("toast 7001", () => toastsOf(op7, 7001)[0]);

    const del = await api(parley.url, "DELETE", "/api/v1/rtm/profiles/6");
    assert.deepEqual([del.status, del.json], [200, { ok: true }]);
    const again = await api(parley.url, "DELETE", "/api/v1/rtm/profiles/6");
    assert.deepEqual([again.status, again.json], [404, { error: { code: "not_found", message: "No RTM profile 6" } }]);
    assert.equal((await status()).status, "connected");
  });

  it("bad profile bodies are refused with the problem named", async () => {
    const r1 = await api(parley.url, "PUT", "/api/v1/rtm/profiles/9", {});
    assert.deepEqual([r1.status, r1.json], [400, { error: { code: "invalid_payload", message: "Invalid payload for api.rtm.profile: cookies or password is required" } }]);
    const r2 = await api(parley.url, "PUT", "/api/v1/rtm/profiles/9", { cookies: "tld-token=x", expiresAt: "tomorrow" });
    assert.deepEqual([r2.status, r2.json], [400, { error: { code: "invalid_payload", message: "Invalid payload for api.rtm.profile: expiresAt must be an ISO 8601 time" } }]);
    assert.equal((await status()).profiles["9"], undefined);
  });
});
