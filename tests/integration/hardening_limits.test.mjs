// Limits: rooms per socket under a burst of joins, sessions per client address
// and per node, and the per-socket event rate limit. Each test starts a Parley
// with the limits it is about.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connect, startParley, token, withParley, withTimeout } from "./harness.mjs";
import { rawHttp, rawSocket } from "./hardening_wire.mjs";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// No presence broadcasts: the raw clients' frames are exactly what is asserted.
const QUIET = join(mkdtempSync(join(tmpdir(), "parley-hardening-")), "quiet.conf");
writeFileSync(QUIET, "[parley.presence]\nbroadcast=false\n");

// Every Parley here reads QUIET first.
const withQuiet = (options, fn) => withParley([`--config-file=${QUIET}`, ...options], fn);

describe("rooms per socket under a burst of joins", () => {
  // n joins with ack ids 1..n, all in one write; the acks must be the first
  // `max` joins accepted and the rest refused, in request order.
  async function burst(url, n, max) {
    const c = await rawSocket(url, { token: token({ sub: "burst", rooms: ["r:*"] }) });
    const from = c.texts.length;
    c.send(...Array.from({ length: n }, (_, i) => `42${i + 1}["join",{"room":"r:${i + 1}"}]`));
    await c.until((x) => x.texts.length >= from + n, `${n} acks`, 20000);
    const acks = c.texts.slice(from);
    const expected = Array.from({ length: n }, (_, i) =>
      i < max ? `43${i + 1}[{"joined":"r:${i + 1}","userId":"burst"}]` : `43${i + 1}[{"error":"Too many rooms"}]`,
    );
    // Compared as a whole, but reported at the first difference (5,000 lines).
    const first = acks.findIndex((a, i) => a !== expected[i]);
    assert.equal(first, -1, `ack #${first + 1}: ${acks[first]}, expected ${expected[first]}`);
    assert.equal(acks.length, n);
    assert.equal(acks.filter((a) => a.includes('"joined"')).length, max);
    c.close();
  }

  it("5,000 joins in one write with max-rooms-per-socket=1000 → the first 1,000 joined, 4,000 'Too many rooms', in order", async () => {
    await withQuiet(
      ["--parley.limits.max-rooms-per-socket=1000", "--parley.limits.events-per-second=0"],
      (p) => burst(p.url, 5000, 1000),
    );
  });

  it("200 joins in one write with max-rooms-per-socket=150 (default rate limit) → the first 150 joined, 50 refused, in order", async () => {
    // 200 events are within the default burst (events-burst=200).
    await withQuiet(["--parley.limits.max-rooms-per-socket=150"], (p) => burst(p.url, 200, 150));
  });
});

describe("sessions per address and per node", () => {
  const polling = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
  const upgrade =
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

  // A polling handshake from `localAddress`: its response (the connection is
  // not kept).
  async function handshake(url, localAddress = "127.0.0.1") {
    const { response, destroy } = await rawHttp(url, polling, { localAddress });
    destroy();
    return response;
  }
  function opened(res) {
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /^0\{"sid":"/);
    return JSON.parse(res.body.slice(1)).sid;
  }
  // A refused WebSocket upgrade: the answer, Connection: close, and the
  // connection closed by the server.
  async function refusedUpgrade(url, status, body, localAddress = "127.0.0.1") {
    const { response, closed } = await rawHttp(url, upgrade, { localAddress });
    assert.equal(response.status, status);
    assert.equal(response.body, body);
    assert.equal(response.headers.connection, "close");
    assert.equal(await closed, true);
  }

  it("max-connections-per-ip=3: the 4th handshake from an address → 429; another address is counted apart; a closed session frees its place", async () => {
    await withQuiet(["--parley.limits.max-connections-per-ip=3"], async (p) => {
      const TOO_MANY = '{"code":3,"message":"Too many connections from this address"}';
      const sids = [];
      for (let i = 0; i < 3; i++) sids.push(opened(await handshake(p.url)));
      const fourth = await handshake(p.url);
      assert.equal(fourth.status, 429);
      assert.equal(fourth.headers["content-type"], "application/json");
      assert.equal(fourth.body, TOO_MANY);
      await refusedUpgrade(p.url, 429, TOO_MANY);
      // 127.0.0.2 is another client address on the loopback interface.
      opened(await handshake(p.url, "127.0.0.2"));
      // One of the three says goodbye: its place is free again, once.
      const bye = await fetch(`${p.url}/socket.io/?EIO=4&transport=polling&sid=${sids[0]}`, { method: "POST", body: "1" });
      assert.equal(bye.status, 200);
      assert.equal(await bye.text(), "ok");
      opened(await handshake(p.url));
      assert.equal((await handshake(p.url)).status, 429);
    });
  });

  it("max-connections=2: the 3rd handshake → 503; a refused upgrade is answered with Connection: close and closed", async () => {
    await withQuiet(["--parley.limits.max-connections=2"], async (p) => {
      const TOO_MANY = '{"code":3,"message":"Too many connections"}';
      opened(await handshake(p.url));
      opened(await handshake(p.url, "127.0.0.2"));
      const third = await handshake(p.url, "127.0.0.3");
      assert.equal(third.status, 503);
      assert.equal(third.headers["content-type"], "application/json");
      assert.equal(third.body, TOO_MANY);
      await refusedUpgrade(p.url, 503, TOO_MANY);
    });
  });
});

describe("event rate limit", () => {
  const options = ["--parley.limits.events-per-second=1", "--parley.limits.events-burst=5"];
  const LIMIT = "Rate limit exceeded: at most 1 events per second";

  it("socket.io-client, 20 events at once (1/s, burst 5): 5 acked, 5 refused, then error and 'io server disconnect'", async () => {
    await withQuiet(options, async (p) => {
      // Over long-polling: the client sends the first event alone and the 19
      // others in one POST, all handed to the socket before it is disconnected.
      // (Over WebSocket the later events may arrive after the disconnect: the
      // server then closes the whole session, as Node's server does for a
      // packet to a namespace not connected, and the outcome depends on timing.)
      const s = await connect(p.url, "/", { transports: ["polling"], auth: { token: token({ sub: "fast", rooms: ["chat:*"] }) } });
      const seen = [];
      const done = new Promise((resolve) => {
        s.on("error", (e) => seen.push(["error", e]));
        s.on("disconnect", (reason) => {
          seen.push(["disconnect", reason]);
          resolve();
        });
      });
      for (let i = 0; i < 20; i++) s.emit("typing", { chatId: "x" }, (a) => seen.push(["ack", i, a]));
      await withTimeout(done, 5000, "the disconnect");
      assert.equal(seen.length, 12, JSON.stringify(seen));
      assert.deepEqual(seen.slice(0, 10), [
        ...Array.from({ length: 5 }, (_, i) => ["ack", i, { success: true }]),
        ...Array.from({ length: 5 }, (_, i) => ["ack", 5 + i, { error: LIMIT }]),
      ]);
      const [kind, err] = seen[10];
      assert.equal(kind, "error");
      assert.deepEqual(Object.keys(err), ["message", "timestamp"]);
      assert.equal(err.message, "Rate limit exceeded: disconnected");
      assert.match(err.timestamp, ISO);
      assert.deepEqual(seen[11], ["disconnect", "io server disconnect"]);
    });
  });

  it("raw frames, 20 events in one write: exactly 5 acks, 5 refusals, the error event, DISCONNECT, nothing after", async () => {
    await withQuiet(options, async (p) => {
      const auth = { token: token({ sub: "raw", rooms: ["chat:*"] }) };
      const c = await rawSocket(p.url, auth);
      const from = c.texts.length;
      c.send(...Array.from({ length: 20 }, (_, i) => `42${i + 1}["typing",{"chatId":"x"}]`));
      await c.text(/^41$/, "the DISCONNECT", 5000, from);
      // The session stays: a new CONNECT on it is answered, after anything the
      // old socket could still have sent.
      c.send(`40${JSON.stringify(auth)}`);
      await c.text(/^40\{"sid":/, "the second CONNECT's answer", 5000, from);
      const got = c.texts.slice(from);
      assert.equal(got.length, 13, JSON.stringify(got));
      assert.deepEqual(got.slice(0, 10), [
        ...Array.from({ length: 5 }, (_, i) => `43${i + 1}[{"success":true}]`),
        ...Array.from({ length: 5 }, (_, i) => `43${6 + i}[{"error":"${LIMIT}"}]`),
      ]);
      const m = /^42\["error",\{"message":"Rate limit exceeded: disconnected","timestamp":"([^"]+)"\}\]$/.exec(got[10]);
      assert.ok(m, got[10]);
      assert.match(m[1], ISO);
      assert.equal(got[11], "41");
      assert.match(got[12], /^40\{"sid":"[A-Za-z0-9_-]+","pid":"[A-Za-z0-9_-]{15}"\}$/);
      c.close();
    });
  });
});
