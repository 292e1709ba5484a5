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
  ]);
});
after(async () => {
  assert.equal(await parley.stop(), 0);
});

const base = () => parley.url + "/socket.io/?EIO=4&transport=polling";

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
    const first = fetch(`${base()}&sid=${sid}`);
    await new Promise((r) => setTimeout(r, 100)); // the first GET is now pending
    const second = await fetch(`${base()}&sid=${sid}`);
    assert.equal(second.status, 400);
    assert.deepEqual(await second.json(), { code: 3, message: "Bad request" });
    const firstRes = await withTimeout(first, 5000, "the pending GET");
    assert.equal(firstRes.status, 200);
    assert.equal(await firstRes.text(), "1"); // close packet
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
    const ws = new WebSocket(`${parley.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
    await withTimeout(new Promise((r, j) => { ws.once("open", r); ws.once("error", j); }), 5000, "probe open");
    ws.send("2probe");
    const pong = await withTimeout(new Promise((r) => ws.once("message", r)), 5000, "3probe");
    assert.equal(pong.toString(), "3probe");
    const started = Date.now();
    await withTimeout(new Promise((r) => ws.once("close", r)), 5000, "probe closed by the server");
    assert.ok(Date.now() - started >= 200, "closed by the timeout, not at once");
    // The session is still there on polling: a message posted and a poll answered.
    const post = await fetch(`${base()}&sid=${sid}`, { method: "POST", body: "3" });
    assert.equal(post.status, 200);
    const close = await fetch(`${base()}&sid=${sid}`, { method: "POST", body: "1" });
    assert.equal(await close.text(), "ok");
  });
});

describe("descriptors", () => {
  it("out of descriptors, accepting pauses instead of spinning; the server goes on", async () => {
    const p = await startParley([], { wrap: ["prlimit", "--nofile=32"] });
    try {
      const { port } = new URL(p.url);
      const socks = [];
      try {
        for (let i = 0; i < 60; i++) {
          const s = tcpConnect({ host: "127.0.0.1", port: Number(port) });
          s.on("error", () => {});
          socks.push(s);
        }
        await withTimeout(Promise.all(socks.map((s) => new Promise((r) => s.once("connect", r)))), 5000, "tcp connects");
        await withTimeout(
          (async () => {
            while (!p.stdout.includes("accept failed")) await sleep(20);
          })(),
          5000,
          "the accept failure to be logged",
        );
        await sleep(300);
        assert.equal(p.stdout.match(/accept failed: Too many open files/g).length, 1, "logged once");
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
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});
