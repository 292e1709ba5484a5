// Engine.IO edge cases a browser or a broken client produces, answered as a
// Node server answers them: overlapping polls, a POST after close, CORS, and an
// upgrade that never completes.
import assert from "node:assert/strict";
import { connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { sleep, startParley, withTimeout } from "./harness.mjs";

const ORIGIN = "http://app.example";
let parley;
before(async () => {
  parley = await startParley([
    `--parley.cors.origins=["${ORIGIN}"]`,
    "--parley.engineio.upgrade-timeout=300ms",
    "--parley.log.level=info",
  ]);
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const base = () => parley.url + "/socket.io/?EIO=4&transport=polling";

// Resolves once `text` has been printed by `p` (its log goes to stdout).
function logged(p, text, ms = 5000) {
  return withTimeout(
    (async () => {
      while (!p.stdout.includes(text)) await sleep(20);
    })(),
    ms,
    `the log line "${text}"`,
  );
}

// Opens a polling session; returns its sid.
async function openPolling() {
  const res = await fetch(base());
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^0\{"sid":"/);
  return JSON.parse(text.slice(1)).sid;
}

describe("long-polling misuse", () => {
  it("a second GET while one is pending → 400 Bad request, and the session closes", async () => {
    const sid = await openPolling();
    // Two GETs at once (two connections). Nothing is queued for the session, so
    // whichever the server reads first stays pending and the other overlaps it:
    // that one gets the 400, the pending one the close packet.
    const answers = await withTimeout(
      Promise.all([0, 1].map(async () => {
        const res = await fetch(`${base()}&sid=${sid}`);
        return [res.status, await res.text()];
      })),
      5000,
      "both GETs",
    );
    answers.sort((x, y) => x[0] - y[0]);
    assert.deepEqual(answers, [
      [200, "1"],
      [400, '{"code":3,"message":"Bad request"}'],
    ]);
    const after = await fetch(`${base()}&sid=${sid}`);
    assert.equal(after.status, 400);
    assert.deepEqual(await after.json(), { code: 1, message: "Session ID unknown" });
  });

  it("a POST after the client closed → 400 Session ID unknown", async () => {
    const sid = await openPolling();
    const bye = await fetch(`${base()}&sid=${sid}`, { method: "POST", body: "1" });
    assert.equal(bye.status, 200);
    assert.equal(await bye.text(), "ok");
    const late = await fetch(`${base()}&sid=${sid}`, { method: "POST", body: "40" });
    assert.equal(late.status, 400);
    assert.deepEqual(await late.json(), { code: 1, message: "Session ID unknown" });
  });
});

describe("CORS", () => {
  it("answers a preflight from an allowed origin with credentials", async () => {
    const res = await fetch(base(), {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), ORIGIN);
    assert.equal(res.headers.get("access-control-allow-credentials"), "true");
    assert.equal(res.headers.get("access-control-allow-methods"), "GET,HEAD,PUT,PATCH,POST,DELETE");
    assert.equal(res.headers.get("access-control-allow-headers"), "content-type");
  });

  it("marks the handshake of an allowed origin, and not of another", async () => {
    const ok = await fetch(base(), { headers: { origin: ORIGIN } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("access-control-allow-origin"), ORIGIN);
    assert.equal(ok.headers.get("access-control-allow-credentials"), "true");
    assert.equal(ok.headers.get("vary"), "Origin");
    await ok.text();
    const other = await fetch(base(), { headers: { origin: "http://evil.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    assert.equal(other.headers.get("access-control-allow-credentials"), null);
    await other.text();
    const pre = await fetch(base(), { method: "OPTIONS", headers: { origin: "http://evil.example" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), null);
  });
});

describe("upgrade", () => {
  it("a probe that never sends 5 is closed after the upgrade timeout; polling goes on", async () => {
    const sid = await openPolling();
    // Before the probe connects: the server's upgrade timer starts after this.
    const started = performance.now();
    const ws = new WebSocket(`${parley.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
    await withTimeout(new Promise((r, j) => { ws.once("open", r); ws.once("error", j); }), 5000, "probe open");
    ws.send("2probe");
    const pong = await withTimeout(new Promise((r) => ws.once("message", r)), 5000, "3probe");
    assert.equal(pong.toString(), "3probe");
    await withTimeout(new Promise((r) => ws.once("close", r)), 5000, "probe closed by the server");
    const waited = performance.now() - started;
    // Closed by the upgrade timer (it says so before it closes the probe)...
    await logged(parley, `eio ${sid}: upgrade not completed within the upgrade timeout, staying on polling`);
    // ...which does not end early: a lower bound from the 300 ms timer on the
    // server's steady clock, the monotonic clock measured here from before the
    // probe existed, so it cannot fail unless the timer fires early.
    assert.ok(waited >= 300, `closed after ${waited} ms, before the 300 ms upgrade timeout`);
    // The session is still there on polling: a message posted and a poll answered.
    const post = await fetch(`${base()}&sid=${sid}`, { method: "POST", body: "3" });
    assert.equal(post.status, 200);
    const close = await fetch(`${base()}&sid=${sid}`, { method: "POST", body: "1" });
    assert.equal(await close.text(), "ok");
  });
});

describe("descriptors", () => {
  it("out of descriptors, accepting pauses instead of spinning; the server goes on", async () => {
    const p = await startParley(["--parley.log.level=info"], { wrap: ["prlimit", "--nofile=32"] });
    try {
      const { port } = new URL(p.url);
      const socks = [];
      const started = performance.now(); // before the first failed accept
      try {
        for (let i = 0; i < 60; i++) {
          const s = tcpConnect({ host: "127.0.0.1", port: Number(port) });
          s.on("error", () => {});
          socks.push(s);
        }
        await withTimeout(Promise.all(socks.map((s) => new Promise((r) => s.once("connect", r)))), 5000, "tcp connects");
        await logged(p, "accept failed");
      } finally {
        for (const s of socks) s.destroy();
      }
      // Descriptors come back as those connections close; new clients get in.
      const health = await withTimeout(
        (async () => {
          for (;;) {
            try {
              const res = await fetch(p.url + "/health");
              if (res.status === 200) return res.json();
            } catch {}
            await sleep(50);
          }
        })(),
        10000,
        "/health after the storm",
      );
      assert.deepEqual(health, { status: "ok" });
      const waited = performance.now() - started;
      // The first accept that works again reports how many failed in a row; it
      // is printed after all of them, by the same thread: the fence for "once".
      await logged(p, "failed accepts");
      const m = /accepting again after (\d+) failed accepts/.exec(p.stdout);
      assert.ok(m, p.stdout);
      const run = p.stdout.slice(0, m.index);
      assert.equal(run.match(/accept failed: Too many open files/g).length, 1, "logged once");
      // Pausing 50 ms after each failure, n failures take (n-1) × 50 ms at least,
      // all within the time measured here (monotonic); a spinning loop makes
      // thousands.
      const failures = Number(m[1]);
      assert.ok(failures >= 1 && failures <= waited / 50 + 1, `${failures} failed accepts in ${waited} ms`);
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});

// Sends raw upgrade request bytes; resolves with everything the server wrote
// until it closed the connection, or, given `until`, until until(bytes) holds.
function rawExchange(request, { until } = {}) {
  const [host, port] = parley.url.replace("http://", "").split(":");
  let s;
  return withTimeout(
    new Promise((resolve, reject) => {
      s = tcpConnect({ host, port: Number(port) }, () => s.write(request));
      let got = Buffer.alloc(0);
      s.on("data", (d) => {
        got = Buffer.concat([got, d]);
        if (until?.(got)) resolve(got);
      });
      s.on("close", () => resolve(got));
      s.on("error", reject);
    }),
    5000,
    until ? "the upgrade answer" : "the server to close the connection",
  ).finally(() => s.destroy());
}

// True once `bytes` hold an HTTP head and a whole short WebSocket frame after it.
function headAndFrame(bytes) {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0 || bytes.length < end + 6) return false;
  return bytes.length >= end + 6 + (bytes[end + 5] & 0x7f);
}

describe("WebSocket upgrade handshake", () => {
  const upgrade = (headers) =>
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    headers +
    "\r\n";

  it("answers 101 with the RFC 6455 accept value and the open packet in one write", async () => {
    const got = await rawExchange(upgrade("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"), { until: headAndFrame });
    const text = got.toString("latin1");
    const end = text.indexOf("\r\n\r\n");
    assert.equal(
      text.slice(0, end),
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        // The RFC's own example key and answer.
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    );
    // Then an unmasked text frame with the Engine.IO open packet.
    const frame = got.subarray(end + 4);
    assert.equal(frame[0], 0x81);
    const len = frame[1] & 0x7f;
    assert.match(frame.subarray(2, 2 + len).toString(), /^0\{"sid":"[A-Za-z0-9_-]{15}","upgrades":\[\],"pingInterval":25000/);
  });

  for (const [what, headers, message] of [
    ["no key", "Sec-WebSocket-Version: 13\r\n", "Missing or invalid Sec-WebSocket-Key header"],
    ["a key of the wrong length", "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n", "Missing or invalid Sec-WebSocket-Key header"],
    ["version 8", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", "Missing or invalid Sec-WebSocket-Version header"],
  ]) {
    it(`refuses an upgrade with ${what}: 400, the reason, Sec-WebSocket-Version: 13, closed`, async () => {
      const text = (await rawExchange(upgrade(headers))).toString();
      assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(text, /\r\nSec-WebSocket-Version: 13\r\n/i);
      assert.match(text, /\r\nConnection: close\r\n/i);
      assert.equal(text.slice(text.indexOf("\r\n\r\n") + 4), message);
    });
  }

  it("a refused upgrade leaves the others alone", async () => {
    const ws = new WebSocket(parley.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket");
    const [first] = await withTimeout(new Promise((r) => ws.once("message", (d) => r([d.toString()]))), 3000, "open");
    assert.match(first, /^0\{"sid"/);
    await rawExchange(upgrade("Sec-WebSocket-Version: 13\r\n"));
    ws.send("40");
    const [connected] = await withTimeout(new Promise((r) => ws.once("message", (d) => r([d.toString()]))), 3000, "40");
    assert.ok(connected.startsWith("40") || connected.startsWith("44"), connected);
    ws.close();
  });
});
