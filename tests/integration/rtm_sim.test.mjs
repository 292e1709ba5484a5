// build/rtm-sim, the simulated RTM service: login and its cookies, the /rtm
// WebSocket (Centrifugo connect, pings, pushes), the client API, and every
// control call that breaks things on purpose.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { eventually, httpRequest, loginRaw, refusedUpgrade, startRtmSim } from "./rtm_harness.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN_COOKIE = /^tld-token=([0-9a-f]{32}); Path=\/; HttpOnly$/;

let sim;
before(async () => {
  sim = await startRtmSim(["--profile=7:secret", "--profile=8:pass:with:colons"]);
});
after(async () => {
  assert.equal(await sim.stop(), 0);
});

// A session cookie without a password.
async function session(profileId, s = sim) {
  const r = await s.control("POST", "/control/sessions", { profileId });
  assert.equal(r.status, 200);
  return r.body.cookies;
}

describe("command line", () => {
  it("prints exactly the listening line on stdout", () => {
    assert.match(sim.stdout, /^rtm-sim listening on http:\/\/127\.0\.0\.1:\d+\n$/);
  });
  it("exits 2 naming a bad option", async () => {
    const r = await startRtmSim(["--ping-interval=soon"], { expectExit: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid value for --ping-interval: soon/);
    assert.equal(r.stdout, "");
    const u = await startRtmSim(["--colour=blue"], { expectExit: true });
    assert.equal(u.code, 2);
    assert.match(u.stderr, /unknown option --colour/);
  });
  it("exits 2 naming the line of a bad scenario", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rtm-sim-"));
    try {
      const file = join(dir, "bad.jsonl");
      await writeFile(file, '# fine\n\n{"delayMs":0,"action":"ping"}\n{"delayMs":0,"action":"release"}\n{"delayMs":10,"action":"emit","profileId":"7"}\n');
      const r = await startRtmSim([`--scenario=${file}`], { expectExit: true });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /line 5: "event" is required/);
      await writeFile(file, '{"delayMs":0,"action":"explode"}\n');
      const u = await startRtmSim([`--scenario=${file}`], { expectExit: true });
      assert.equal(u.code, 2);
      assert.match(u.stderr, /line 1: unknown action "explode"/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe("POST /auth/login", () => {
  it("200 with the session cookies for the right password", async () => {
    const r = await loginRaw(sim.url, "7", "secret");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, profileId: "7" });
    assert.equal(r.setCookies.length, 2);
    assert.match(r.setCookies[0], TOKEN_COOKIE);
    assert.equal(r.setCookies[1], "tld-user=7; Path=/");
    const other = await loginRaw(sim.url, "8", "pass:with:colons");
    assert.equal(other.status, 200);
    assert.notEqual(TOKEN_COOKIE.exec(other.setCookies[0])[1], TOKEN_COOKIE.exec(r.setCookies[0])[1]);
  });
  it("401 for a wrong password or an unknown profile", async () => {
    for (const [id, pw] of [["7", "wrong"], ["nobody", "secret"]]) {
      const r = await loginRaw(sim.url, id, pw);
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { error: "invalid credentials" });
      assert.deepEqual(r.setCookies, []);
    }
    const st = await sim.state();
    assert.equal(st.profiles["7"].failedLogins, 1);
    assert.equal(st.profiles.nobody.failedLogins, 1);
  });
  it("400 for malformed JSON or a missing field", async () => {
    const bad = await loginRaw(sim.url, "", "", { raw: '{"profileId":"7",' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^invalid JSON at offset \d+: /);
    const missing = await httpRequest(sim.url, "POST", "/auth/login", { body: { profileId: "7" } });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, { error: '"password" must be a string' });
  });
  it("the cookies open /rtm", async () => {
    const cookies = await sim.login("7", "secret");
    assert.match(cookies, /^tld-token=[0-9a-f]{32}; tld-user=7$/);
    const rtm = await sim.connect(cookies);
    rtm.close();
    assert.ok((await sim.state()).profiles["7"].logins >= 2);
  });
});

describe("GET /rtm upgrade", () => {
  it("401 without a cookie, with an unknown token, and 426 without an upgrade", async () => {
    assert.deepEqual(await refusedUpgrade(sim.wsUrl, undefined), { status: 401, body: { error: "session expired" } });
    assert.deepEqual(await refusedUpgrade(sim.wsUrl, "tld-token=feedface; tld-user=9"), {
      status: 401,
      body: { error: "session expired" },
    });
    assert.equal((await sim.state()).profiles["9"].refusedUpgrades, 1);
    const plain = await httpRequest(sim.url, "GET", "/rtm");
    assert.equal(plain.status, 426);
  });
  it("reads the token out of a longer Cookie header and records Origin and Cookie", async () => {
    const { token } = (await sim.control("POST", "/control/sessions", { profileId: "10" })).body;
    const cookie = `_ga=GA1.2; tld-token=${token} ; theme="dark"`;
    const opened = Date.now();
    const rtm = await sim.open(cookie, { origin: "https://talkytimes.example" });
    const st = (await sim.state()).profiles["10"];
    const read = Date.now();
    assert.equal(st.connections, 1);
    assert.equal(st.connectTimes.length, 1);
    // Epoch milliseconds of the upgrade, which happened between these two
    // readings of the same clock (both truncate to the millisecond).
    assert.ok(opened <= st.connectTimes[0] && st.connectTimes[0] <= read, `${opened} <= ${st.connectTimes[0]} <= ${read}`);
    assert.equal(st.lastOrigin, "https://talkytimes.example");
    assert.equal(st.lastCookie, cookie);
    rtm.close();
    await eventually(async () => (await sim.state()).profiles["10"].connections === 0, 5000, "the close to count");
  });
});

describe("Centrifugo protocol", () => {
  it("answers connect with the exact reply, other commands with 108", async () => {
    const rtm = await sim.open(await session("11"));
    rtm.send({ connect: { name: "js", version: "1.0" }, id: 5 });
    const reply = JSON.parse(await rtm.next());
    assert.deepEqual(Object.keys(reply), ["id", "connect"]);
    assert.equal(reply.id, 5);
    assert.match(reply.connect.client, UUID);
    assert.deepEqual(reply.connect, { client: reply.connect.client, version: "rtm-sim 1.0", ping: 25, pong: true });
    rtm.send('{"subscribe":{"channel":"news"},"id":6}\n{"presence":{},"id":7}');
    assert.equal(await rtm.next(), '{"id":6,"error":{"code":108,"message":"not available"}}');
    assert.equal(await rtm.next(), '{"id":7,"error":{"code":108,"message":"not available"}}');
    assert.equal((await sim.state()).profiles["11"].handshakes, 1);
    rtm.close();
  });
  it("closes 3501 on a malformed client frame", async () => {
    const rtm = await sim.open(await session("12"));
    rtm.send('{"connect":');
    assert.deepEqual(await rtm.closed, { code: 3501, reason: "bad request" });
  });
  it("pings every ping-interval and counts the pongs", async () => {
    const fast = await startRtmSim(["--ping-interval=1"]);
    try {
      const rtm = await fast.open(await session("13", fast));
      rtm.send({ connect: { name: "js", version: "1.0" }, id: 1 });
      assert.equal(JSON.parse(await rtm.next()).connect.ping, 1);
      assert.equal(await rtm.next(3000), "{}");
      rtm.send({});
      rtm.send("{}\n{}");
      await eventually(async () => (await fast.state()).profiles["13"].pongs === 3, 5000, "3 pongs");
      rtm.close();
    } finally {
      assert.equal(await fast.stop(), 0);
    }
  });
  it("control ping sends {} now, to subscribed connections only", async () => {
    const cookies = await session("14");
    const idle = await sim.open(cookies);
    const rtm = await sim.connect(cookies);
    assert.deepEqual((await sim.control("POST", "/control/ping", { profileId: "14" })).body, { delivered: 1 });
    assert.equal(await rtm.next(), "{}");
    assert.deepEqual(idle.messages, []);
    idle.close();
    rtm.close();
  });
});

describe("pushes", () => {
  it("emit sends the exact push frame to every subscribed connection of the profile", async () => {
    const cookies = await session("20");
    const a = await sim.connect(cookies);
    const b = await sim.connect(cookies);
    const other = await sim.connect(await session("21"));
    const event = { type: "rtm.message.new", data: { id: 991, text: "hi \"there\"" } };
    const r = await sim.control("POST", "/control/emit", { profileId: "20", event });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { delivered: 2 });
    const expected = JSON.stringify({ push: { channel: "personal:20", pub: { data: event } } });
    assert.equal(await a.next(), expected);
    assert.equal(await b.next(), expected);
    assert.deepEqual(other.messages.slice(1), []);
    for (const c of [a, b, other]) c.close();
  });
  it("emit before the connect handshake reaches nobody", async () => {
    const rtm = await sim.open(await session("22"));
    const r = await sim.control("POST", "/control/emit", { profileId: "22", event: { type: "x" } });
    assert.deepEqual(r.body, { delivered: 0 });
    rtm.close();
  });
  it("times 2 batch is one message of two lines; without batch two messages", async () => {
    const rtm = await sim.connect(await session("23"));
    const event = { type: "rtm.typing", n: 1 };
    const frame = JSON.stringify({ push: { channel: "personal:23", pub: { data: event } } });
    assert.deepEqual((await sim.control("POST", "/control/emit", { profileId: "23", event, times: 2, batch: true })).body, {
      delivered: 1,
    });
    assert.equal(await rtm.next(), `${frame}\n${frame}`);
    await sim.control("POST", "/control/emit", { profileId: "23", event, times: 2 });
    assert.equal(await rtm.next(), frame);
    assert.equal(await rtm.next(), frame);
    rtm.close();
  });
  it("malformed delivers the raw text as one message", async () => {
    const rtm = await sim.connect(await session("24"));
    assert.deepEqual((await sim.control("POST", "/control/malformed", { profileId: "24" })).body, { delivered: 1 });
    assert.equal(await rtm.next(), '{"push":{"channel":');
    await sim.control("POST", "/control/malformed", { profileId: "24", frame: "not json at all" });
    assert.equal(await rtm.next(), "not json at all");
    rtm.close();
  });
});

describe("drops", () => {
  it("drop closes with 1012 and the reconnect is recorded", async () => {
    const cookies = await session("30");
    const rtm = await sim.connect(cookies);
    assert.deepEqual((await sim.control("POST", "/control/drop", { profileId: "30" })).body, { dropped: 1 });
    assert.deepEqual(await rtm.closed, { code: 1012, reason: "dropped by rtm-sim" });
    const again = await sim.connect(cookies);
    const st = (await sim.state()).profiles["30"];
    assert.equal(st.connectTimes.length, 2);
    assert.ok(st.connectTimes[1] >= st.connectTimes[0]);
    assert.equal(st.connections, 1);
    assert.equal(st.handshakes, 2);
    again.close();
  });
  it("abrupt drop closes the socket without a close frame", async () => {
    const rtm = await sim.connect(await session("31"));
    assert.deepEqual((await sim.control("POST", "/control/drop", { profileId: "31", abrupt: true })).body, { dropped: 1 });
    assert.equal((await rtm.closed).code, 1006);
  });
});

describe("client API", () => {
  it("GET /clients/{id} is held for the latency while other traffic goes on; release answers it", async () => {
    const cookie = await session("40");
    const none = await httpRequest(sim.url, "GET", "/clients/501");
    assert.equal(none.status, 401);
    assert.deepEqual(none.body, { error: "session expired" });
    const fresh = await httpRequest(sim.url, "GET", "/clients/501", { headers: { cookie } });
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.body, { id: "501", name: "Client 501", avatar: "https://rtm-sim.local/avatars/501.png" });
    const put = await sim.control("PUT", "/control/clients/502", { name: "Olena", avatar: "https://cdn.example/o.png" });
    assert.deepEqual(put.body, { ok: true });
    // A latency no test waits out: the request is answered when the test releases it.
    assert.deepEqual((await sim.control("POST", "/control/api", { latencyMs: 600000 })).body, {
      ok: true,
      latencyMs: 600000,
      failureRate: 0,
    });
    try {
      let answered = false;
      const slow = httpRequest(sim.url, "GET", "/clients/502", { headers: { cookie } }).finally(() => (answered = true));
      // A held answer does not hold up anybody else: the control API answers meanwhile.
      await eventually(async () => (await sim.state()).clientApi.held === 1, 5000, "the request to be held");
      const api = (await sim.state()).clientApi;
      assert.equal(api.requests["502"], 1);
      assert.equal(api.answered["502"], undefined);
      assert.equal(answered, false, "the control API answered while the client API waited");
      assert.deepEqual((await sim.control("POST", "/control/release")).body, { released: 1 });
      const r = await slow;
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { id: "502", name: "Olena", avatar: "https://cdn.example/o.png" });
      const done = (await sim.state()).clientApi;
      assert.equal(done.answered["502"], 1);
      assert.equal(done.held, 0);
      assert.deepEqual((await sim.control("POST", "/control/release")).body, { released: 0 });
    } finally {
      await sim.control("POST", "/control/api", { latencyMs: 0 });
    }
  });
  it("a short latency answers by its timer", async () => {
    const cookie = await session("42");
    await sim.control("POST", "/control/api", { latencyMs: 300 });
    try {
      const started = performance.now();
      const r = await httpRequest(sim.url, "GET", "/clients/503", { headers: { cookie } });
      const waited = performance.now() - started;
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { id: "503", name: "Client 503", avatar: "https://rtm-sim.local/avatars/503.png" });
      // A lower bound that follows from the sim's timer: it starts after this
      // request was sent, and the sim's steady clock is this monotonic clock, so
      // it cannot fail unless the timer fires early.
      assert.ok(waited >= 300, `answered after ${waited} ms`);
      const api = (await sim.state()).clientApi;
      assert.equal(api.answered["503"], 1);
      assert.equal(api.held, 0);
    } finally {
      await sim.control("POST", "/control/api", { latencyMs: 0 });
    }
  });
  it("failureRate 1 answers 500 and counts the failures", async () => {
    const cookie = await session("41");
    await sim.control("POST", "/control/api", { failureRate: 1 });
    try {
      for (let i = 0; i < 2; i++) {
        const r = await httpRequest(sim.url, "GET", "/clients/600", { headers: { cookie } });
        assert.equal(r.status, 500);
        assert.deepEqual(r.body, { error: "simulated failure" });
      }
      const st = await sim.state();
      assert.equal(st.clientApi.requests["600"], 2);
      assert.equal(st.clientApi.answered["600"], 2);
      assert.equal(st.clientApi.failures, 2);
    } finally {
      await sim.control("POST", "/control/api", { failureRate: 0 });
    }
  });
});

describe("control API errors", () => {
  it("404 for an unknown path, 400 naming the problem, 405 for a wrong method", async () => {
    const unknown = await sim.control("POST", "/control/explode", {});
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body, { error: "no such endpoint: /control/explode" });
    assert.equal((await httpRequest(sim.url, "GET", "/nowhere")).status, 404);
    const bad = await httpRequest(sim.url, "POST", "/control/emit", { raw: "{nope" });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^invalid JSON at offset 1: /);
    const field = await sim.control("POST", "/control/emit", { profileId: "7", event: { a: 1 }, times: 0 });
    assert.equal(field.status, 400);
    assert.deepEqual(field.body, { error: '"times" must be a whole number from 1 to 10000' });
    const event = await sim.control("POST", "/control/emit", { profileId: "7", event: [1] });
    assert.deepEqual(event.body, { error: '"event" must be a JSON object' });
    assert.equal((await sim.control("GET", "/control/emit")).status, 405);
  });
});

// Refusing, stopping and expiring touch every connection: each gets its own sim.
describe("outages", () => {
  let own;
  before(async () => {
    own = await startRtmSim();
  });
  after(async () => {
    assert.equal(await own.stop(), 0);
  });

  it("refuse answers 503 for its time, then upgrades work again", async () => {
    const cookies = await session("50", own);
    const existing = await own.connect(cookies);
    assert.deepEqual((await own.control("POST", "/control/refuse", { seconds: 1 })).body, { ok: true });
    assert.deepEqual(await refusedUpgrade(own.wsUrl, cookies), { status: 503, body: { error: "unavailable" } });
    assert.equal((await own.state()).profiles["50"].refusedUpgrades, 1);
    assert.equal((await own.state()).profiles["50"].connections, 1, "existing connections stay");
    await eventually(async () => (await own.state()).refusing === false, 5000, "the refusal to end");
    const rtm = await own.connect(cookies);
    rtm.close();
    existing.close();
  });
  it("refuse with drop also closes the open connections", async () => {
    const rtm = await own.connect(await session("51", own));
    await own.control("POST", "/control/refuse", { seconds: 0.2, drop: true });
    assert.equal((await rtm.closed).code, 1012);
    // The next test connects: wait for the refusal to end.
    await eventually(async () => (await own.state()).refusing === false, 5000, "the refusal to end");
  });
  it("expire-sessions closes with 1008 and the next upgrade gets 401", async () => {
    const cookies = await session("52", own);
    const rtm = await own.connect(cookies);
    const r = await own.control("POST", "/control/expire-sessions", {});
    assert.equal(r.status, 200);
    assert.ok(r.body.expired >= 1);
    assert.equal(r.body.dropped, 1);
    assert.deepEqual(await rtm.closed, { code: 1008, reason: "session expired" });
    assert.deepEqual(await refusedUpgrade(own.wsUrl, cookies), { status: 401, body: { error: "session expired" } });
    const fresh = await own.connect(await session("52", own));
    fresh.close();
  });
  it("expire-sessions with drop false leaves connections open", async () => {
    await own.control("POST", "/control/expire-sessions", { drop: false }); // those of earlier tests
    const rtm = await own.connect(await session("53", own));
    assert.deepEqual((await own.control("POST", "/control/expire-sessions", { drop: false })).body, {
      expired: 1,
      dropped: 0,
    });
    assert.equal((await own.state()).profiles["53"].connections, 1);
    rtm.close();
  });
  it("stop closes with 1001 and refuses upgrades until start", async () => {
    const cookies = await session("54", own);
    const rtm = await own.connect(cookies);
    await own.control("POST", "/control/stop");
    assert.equal((await rtm.closed).code, 1001);
    assert.equal((await refusedUpgrade(own.wsUrl, cookies)).status, 503);
    assert.deepEqual((await own.control("POST", "/control/start")).body, { ok: true });
    const again = await own.connect(cookies);
    again.close();
  });
  it("the session ttl expires sessions", async () => {
    const short = await startRtmSim(["--session-ttl=1", "--profile=60:pw"]);
    try {
      const cookies = await short.login("60", "pw");
      (await short.connect(cookies)).close();
      // The client API checks the same session: it answers 200 until the session
      // expires, then refuses it, as the /rtm upgrade does.
      const r = await eventually(async () => {
        const x = await httpRequest(short.url, "GET", "/clients/1", { headers: { cookie: cookies } });
        return x.status === 200 ? null : x;
      }, 5000, "the session to expire");
      assert.deepEqual([r.status, r.body], [401, { error: "session expired" }]);
      assert.deepEqual(await refusedUpgrade(short.wsUrl, cookies), { status: 401, body: { error: "session expired" } });
    } finally {
      assert.equal(await short.stop(), 0);
    }
  });
});

describe("scenario file", () => {
  it("plays its lines in order, each after its delay", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rtm-sim-"));
    const file = join(dir, "two-emits.jsonl");
    await writeFile(
      file,
      [
        "# an account, then two messages for it",
        '{"delayMs":0,"action":"profiles","id":"70","password":"pw"}',
        "",
        '{"delayMs":1500,"action":"emit","profileId":"70","event":{"type":"rtm.message.new","n":1}}',
        '{"delayMs":100,"action":"emit","profileId":"70","event":{"type":"rtm.message.new","n":2}}',
      ].join("\n"),
    );
    const played = await startRtmSim([`--scenario=${file}`]);
    try {
      const rtm = await played.connect(await played.login("70", "pw"));
      const first = JSON.parse(await rtm.next(5000));
      const second = JSON.parse(await rtm.next(5000));
      assert.deepEqual(first, { push: { channel: "personal:70", pub: { data: { type: "rtm.message.new", n: 1 } } } });
      assert.deepEqual(second.push.pub.data, { type: "rtm.message.new", n: 2 });
      rtm.close();
    } finally {
      assert.equal(await played.stop(), 0);
      await rm(dir, { recursive: true });
    }
  });
});

describe("shutdown", () => {
  it("SIGTERM closes connections with 1001 and exits 0", async () => {
    const s = await startRtmSim();
    const rtm = await s.connect(await session("80", s));
    assert.equal(await s.stop(), 0);
    assert.equal((await rtm.closed).code, 1001);
  });
});
