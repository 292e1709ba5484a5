// The live console: /console and /console/events (Server-Sent Events) behind
// parley.console.key or the API key, and the page in a real browser (Debian's
// chromium driven by puppeteer-core): its connection count follows a client
// connecting, and a screenshot is written to build/console.png.
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { launchChromium, NO_CHROMIUM } from "./browser.mjs";
import { API_KEY, BUILD, connect, startParley, token, withTimeout } from "./harness.mjs";


async function get(url, headers = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}

// Opens the event stream and resolves with its first `data:` event, parsed.
async function firstEvent(url) {
  const ctl = new AbortController();
  try {
    return await withTimeout(
      (async () => {
        const res = await fetch(url, { signal: ctl.signal });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "text/event-stream");
        const decoder = new TextDecoder();
        let text = "";
        for await (const chunk of res.body) {
          text += decoder.decode(chunk, { stream: true });
          const m = /^data: (.*)\n\n/m.exec(text);
          if (m) return JSON.parse(m[1]);
        }
        throw new Error(`stream ended without an event: ${text}`);
      })(),
      5000,
      "the first console event",
    );
  } finally {
    ctl.abort();
  }
}

describe("console with parley.console.key", () => {
  let parley;
  before(async () => {
    parley = await startParley(["--parley.console.key=console-key"]);
  });
  after(async () => {
    assert.equal(await parley.stop(), 0);
  });

  it("serves the page with ?key= or Authorization: apikey", async () => {
    for (const r of [
      await get(`${parley.url}/console?key=console-key`),
      await get(`${parley.url}/console`, { authorization: "apikey console-key" }),
    ]) {
      assert.equal(r.status, 200);
      assert.equal(r.type, "text/html; charset=utf-8");
      assert.match(r.text, /<title>Parley console<\/title>/);
      assert.match(r.text, /id="connections"/);
      assert.doesNotMatch(r.text, /<script[^>]+src=|<link[^>]+href=/); // self-contained
    }
  });

  it("answers a missing or wrong key 401, and the API key is not the console key", async () => {
    const missing = await get(`${parley.url}/console`);
    assert.equal(missing.status, 401);
    assert.equal(missing.text, '{"error":{"code":"unauthorized","message":"Missing console key"}}');
    for (const r of [
      await get(`${parley.url}/console?key=nope`),
      await get(`${parley.url}/console?key=${API_KEY}`),
      await get(`${parley.url}/console`, { authorization: "apikey nope" }),
      await get(`${parley.url}/console/events?key=nope`),
    ]) {
      assert.equal(r.status, 401);
      assert.equal(r.type, "application/json");
      assert.equal(r.text, '{"error":{"code":"unauthorized","message":"Invalid console key"}}');
    }
    const events = await get(`${parley.url}/console/events`);
    assert.equal(events.status, 401);
    assert.equal(events.text, '{"error":{"code":"unauthorized","message":"Missing console key"}}');
  });

  it("answers other paths 404 and other methods 405", async () => {
    const r = await get(`${parley.url}/console/nothing?key=console-key`);
    assert.equal(r.status, 404);
    assert.equal(r.text, '{"error":{"code":"not_found","message":"No route for /console/nothing"}}');
    const post = await fetch(`${parley.url}/console?key=console-key`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET");
    assert.equal(await post.text(), '{"error":{"code":"method_not_allowed","message":"Use GET for /console"}}');
  });

  it("streams snapshots as Server-Sent Events", async () => {
    const s = await firstEvent(`${parley.url}/console/events?key=console-key`);
    for (const k of ["connections", "plainConnections", "sessions", "users", "rooms", "slowClientsDropped"])
      assert.equal(typeof s[k], "number", k);
    assert.equal(typeof s.t, "number");
    assert.ok(Math.abs(s.t - Date.now()) < 60000);
    assert.equal(typeof s.publishesPerSec, "number");
    assert.equal(typeof s.deliveriesPerSec, "number");
    assert.ok(Array.isArray(s.busiestRooms));
    assert.equal(s.rtm, null); // RTM is off
    assert.equal(s.cluster, null);
  });

  it("counts connections, users and the busiest rooms", async () => {
    const a = await connect(parley.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub: "ann", rooms: ["conversation:*"] }) } });
    const b = await connect(parley.url, "/messages", { transports: ["websocket"], auth: { token: token({ sub: "bob", rooms: ["conversation:*"] }) } });
    try {
      for (const s of [a, b]) await s.emitWithAck("conversation:join", { conversationId: "big" });
      await a.emitWithAck("conversation:join", { conversationId: "small" });
      const snap = await firstEvent(`${parley.url}/console/events?key=console-key`);
      assert.equal(snap.connections, 2);
      assert.equal(snap.users, 2);
      assert.deepEqual(snap.busiestRooms.slice(0, 2), [
        { room: "conversation:big", members: 2 },
        { room: "conversation:small", members: 1 },
      ]);
      assert.ok(snap.rooms >= 2);
    } finally {
      a.close();
      b.close();
    }
  });

  it("opens at most 16 streams at once", async () => {
    const ctl = new AbortController();
    try {
      const open = [];
      for (let i = 0; i < 16; i++) open.push(fetch(`${parley.url}/console/events?key=console-key`, { signal: ctl.signal }));
      for (const r of await Promise.all(open)) assert.equal(r.status, 200);
      const r = await get(`${parley.url}/console/events?key=console-key`);
      assert.equal(r.status, 503);
      assert.equal(r.text, '{"error":{"code":"too_many_streams","message":"At most 16 console streams may be open"}}');
    } finally {
      ctl.abort();
    }
    // Closed streams are noticed and free their places.
    await withTimeout(
      (async () => {
        for (;;) {
          const ctl2 = new AbortController();
          const r = await fetch(`${parley.url}/console/events?key=console-key`, { signal: ctl2.signal });
          ctl2.abort();
          if (r.status === 200) return;
          await new Promise((res) => setTimeout(res, 50));
        }
      })(),
      5000,
      "a stream place to free",
    );
  });
});

describe("console keys", () => {
  it("uses the API key when parley.console.key is empty", async () => {
    const parley = await startParley();
    try {
      assert.equal((await get(`${parley.url}/console?key=${API_KEY}`)).status, 200);
      assert.equal((await get(`${parley.url}/console`, { authorization: `apikey ${API_KEY}` })).status, 200);
      assert.equal((await get(`${parley.url}/console?key=other`)).status, 401);
    } finally {
      assert.equal(await parley.stop(), 0);
    }
  });

  it("is disabled (403) when neither key is set", async () => {
    const parley = await startParley([`--parley.api.key=""`]);
    try {
      for (const path of ["/console", "/console?key=x", "/console/events?key=x"]) {
        const r = await get(parley.url + path);
        assert.equal(r.status, 403);
        assert.equal(r.type, "application/json");
        assert.equal(
          r.text,
          '{"error":{"code":"console_disabled","message":"The console is disabled: set parley.console.key or parley.api.key"}}',
        );
      }
    } finally {
      assert.equal(await parley.stop(), 0);
    }
  });
});

describe("console in a browser", { skip: NO_CHROMIUM }, () => {
  let parley;
  let browser;
  before(async () => {
    parley = await startParley();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    assert.equal(await parley.stop(), 0);
  });

  it("shows the connection count change when a client connects, and a screenshot is written", async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${parley.url}/console?key=${API_KEY}`, { waitUntil: "domcontentloaded" });
    const shows = (n) =>
      page.waitForFunction((want) => document.getElementById("connections").textContent === want, { timeout: 5000 }, String(n));
    await shows(0);
    assert.equal(await page.$eval("#status", (e) => e.textContent), "live");
    assert.equal(await page.$eval("#login", (e) => getComputedStyle(e).display), "none"); // the key came with the URL
    const socket = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "carol" }) } });
    try {
      await shows(1);
      await page.waitForFunction(() => document.getElementById("users").textContent === "1", { timeout: 5000 });
      const file = join(BUILD, "console.png");
      await page.screenshot({ path: file, fullPage: true });
      assert.ok(statSync(file).size > 1000);
    } finally {
      socket.close();
    }
    await shows(0);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
