// One client flooding Parley with events costs nobody else anything: its
// socket is not read while its connection is behind (backpressure), so a
// burst of 200,000 events over WebSocket, or a long-polling POST after
// another of 1 MB each, stays within a few MB of server memory while another
// client's round trips go on; and with the event rate limit on (the default)
// the flooder is refused and then disconnected.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { api, connect, emitWithAck, recorder, startParley, token, withTimeout } from "./harness.mjs";

const MB = 1024 * 1024;
const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;

async function metric(url, name) {
  const text = (await api(url, "GET", "/metrics")).text;
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

// A raw Engine.IO WebSocket client connected to "/" (answers pings).
async function rawSocket(url, claims) {
  const ws = new WebSocket(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket");
  const frames = [];
  const waiters = [];
  ws.on("message", (d) => {
    const text = d.toString();
    if (text === "2") ws.send("3");
    frames.push(text);
    for (const w of [...waiters]) w();
  });
  await withTimeout(new Promise((r, j) => { ws.once("open", r); ws.once("error", j); }), 5000, "raw socket open");
  ws.send("40" + JSON.stringify({ token: token(claims) }));
  const until = (pred, what, ms = 10000) =>
    withTimeout(new Promise((resolve) => {
      const w = () => {
        const f = frames.find(pred);
        if (f !== undefined) {
          waiters.splice(waiters.indexOf(w), 1);
          resolve(f);
        }
      };
      waiters.push(w);
      w();
    }), ms, what);
  await until((f) => f.startsWith('40{"sid"'), "CONNECT answer");
  const closed = new Promise((r) => ws.once("close", (code) => r(code)));
  return { ws, frames, until, closed };
}

describe("backpressure (no event rate limit)", () => {
  let parley;
  let other;
  before(async () => {
    parley = await startParley(["--parley.limits.events-per-second=0"]);
    other = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "other", rooms: ["chat:*"] }) } });
    await emitWithAck(other, "join", { room: "chat:other" });
  });
  after(async () => {
    other?.close();
    if (parley) assert.equal(await parley.stop(), 0);
  });

  // Samples the server's RSS every 20 ms while `work` runs; resolves with the peak.
  async function peakDuring(work) {
    let peak = rssOf(parley.child.pid);
    let done = false;
    const sampler = (async () => {
      while (!done) {
        peak = Math.max(peak, rssOf(parley.child.pid));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await work();
    } finally {
      done = true;
      await sampler;
    }
    return Math.max(peak, rssOf(parley.child.pid));
  }

  it("a 200,000-event WebSocket burst: every event handled, < 50 MB more memory, others answered meanwhile", async () => {
    const N = 200000;
    const flooder = await rawSocket(parley.url, { sub: "flooder", rooms: ["chat:*"] });
    const inBefore = await metric(parley.url, "parley_packets_in_total");
    const base = rssOf(parley.child.pid);
    let othersAnswered = 0;
    const peak = await peakDuring(async () => {
      // Queued at once: ws writes them as fast as the socket takes them.
      for (let i = 0; i < N; i++) flooder.ws.send(`42["typing",{"chatId":"f${i % 100}"}]`);
      // Another client's round trips go on during the flood: 20 in a row.
      for (let k = 0; k < 20; k++) {
        assert.deepEqual(await emitWithAck(other, "typing", { chatId: "other" }), { success: true });
        othersAnswered++;
      }
      // Every event of the flood is handled (packets_in counts each handled packet).
      await withTimeout((async () => {
        while ((await metric(parley.url, "parley_packets_in_total")) < inBefore + N + othersAnswered)
          await new Promise((r) => setTimeout(r, 50));
      })(), 60000, "all 200,000 events handled");
    });
    assert.equal(await metric(parley.url, "parley_packets_in_total"), inBefore + N + othersAnswered);
    assert.ok(peak - base < 50 * MB, `the flood added ${((peak - base) / MB).toFixed(1)} MB (limit 50 MB)`);
    // The flooder's connection is fine: its own ack round trip still works.
    flooder.ws.send('421["typing",{"chatId":"f"}]');
    assert.equal(await flooder.until((f) => f.startsWith("431"), "the flooder's ack"), '431[{"success":true}]');
    flooder.ws.close();
    await flooder.closed;
    await withTimeout((async () => {
      while ((await metric(parley.url, "parley_sessions")) !== 1) await new Promise((r) => setTimeout(r, 20));
    })(), 5000, "the flooder's session gone");
  });

  it("long-polling: five 1 MB POSTs of events are handled in order, < 50 MB more memory", async () => {
    const base = parley.url + "/socket.io/?EIO=4&transport=polling";
    const open = await (await fetch(base)).text();
    const sid = JSON.parse(open.slice(1)).sid;
    const post = (body) => fetch(`${base}&sid=${sid}`, { method: "POST", body }).then(async (r) => [r.status, await r.text()]);
    assert.deepEqual(await post("40" + JSON.stringify({ token: token({ sub: "poller", rooms: ["chat:*"] }) })), [200, "ok"]);
    assert.match(await (await fetch(`${base}&sid=${sid}`)).text(), /^40\{"sid":"[^"]+","pid":"[A-Za-z0-9_-]{15}"\}$/);
    const one = '42["typing",{"chatId":"p"}]';
    const perPost = Math.floor(990000 / (one.length + 1));
    const body = Array(perPost).fill(one).join("\x1e");
    const inBefore = await metric(parley.url, "parley_packets_in_total");
    const rss0 = rssOf(parley.child.pid);
    const peak = await peakDuring(async () => {
      for (let k = 0; k < 5; k++) assert.deepEqual(await post(body), [200, "ok"]);
      // The last one is answered once its packets are handed on; then handled.
      await withTimeout((async () => {
        while ((await metric(parley.url, "parley_packets_in_total")) < inBefore + 5 * perPost)
          await new Promise((r) => setTimeout(r, 50));
      })(), 60000, "every polled event handled");
    });
    assert.equal(await metric(parley.url, "parley_packets_in_total"), inBefore + 5 * perPost);
    assert.ok(peak - rss0 < 50 * MB, `the POSTs added ${((peak - rss0) / MB).toFixed(1)} MB (limit 50 MB)`);
    assert.deepEqual(await post("1"), [200, "ok"]);
  });
});

describe("the event rate limit (defaults: 100 per second, burst 200)", () => {
  let parley;
  before(async () => {
    parley = await startParley();
  });
  after(async () => {
    if (parley) assert.equal(await parley.stop(), 0);
  });

  it("a flooder is disconnected after a burst's worth of refusals; another client is untouched", async () => {
    const other = await connect(parley.url, "/", { transports: ["websocket"], auth: { token: token({ sub: "calm", rooms: ["chat:*"] }) } });
    const rec = recorder(other);
    const flooder = await rawSocket(parley.url, { sub: "flooder", rooms: ["chat:*"] });
    const inBefore = await metric(parley.url, "parley_packets_in_total");
    for (let i = 0; i < 200000; i++) flooder.ws.send(`42["typing",{"chatId":"f"}]`);
    // Refused without an ack: one `error` event, then the disconnect.
    // The notice and DISCONNECT go out before the session closes (the rest of
    // the flood, for a namespace no longer connected, then closes it, as Node's
    // socket.io does).
    const err = await flooder.until((f) => f.includes("Rate limit exceeded: disconnected"), "the disconnect notice", 20000);
    assert.match(err, /^42\["error",\{"message":"Rate limit exceeded: disconnected","timestamp":"[^"]+"\}\]$/);
    await flooder.until((f) => f === "41", "DISCONNECT");
    const notices = flooder.frames.filter((f) => f.startsWith('42["error"'));
    assert.equal(notices.length, 2, notices.join("\n"));
    assert.match(notices[0], /^42\["error",\{"message":"Rate limit exceeded: at most 100 events per second","timestamp":"[^"]+"\}\]$/);
    // Handled: the burst (200, plus what refilled meanwhile), then 201 refusals; the rest never reached the actor.
    const handled = (await metric(parley.url, "parley_packets_in_total")) - inBefore;
    assert.ok(handled >= 401 && handled < 1000, `${handled} events handled`);
    flooder.ws.close();
    assert.deepEqual(await emitWithAck(other, "typing", { chatId: "calm" }), { success: true });
    assert.equal(rec.of("error").length, 0);
    other.close();
  });
});
