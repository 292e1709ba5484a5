// Clients for the plain WebSocket endpoints (/ws, /ws/dialogs/{id},
// /ws/site/dialogs/{id}, /ws/widget/dialogs/{id}): a recording `ws` client,
// a refused upgrade read through `ws`'s 'unexpected-response', a raw TCP
// client writing frames by hand (ones `ws` will not send), and a credential
// validation backend that records what Parley asks it. Every wait has a
// deadline.
import { once } from "node:events";
import { createServer } from "node:http";
import { connect as tcpConnect, createServer as createTcpServer } from "node:net";
import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { API_KEY, withTimeout } from "./harness.mjs";
import { upgradeReader } from "./hardening_wire.mjs";

export { WebSocket };

export const wsUrl = (url, path) => url.replace(/^http/, "ws") + path;

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// Wraps a `ws` socket: records every frame (text and bytes), the pings it got
// and how it closed. Listeners are attached at once, so nothing sent right
// after the 101 (a replay, a 1013 close) is missed.
function record(ws) {
  const c = {
    ws,
    opened: false,
    frames: [], // { text, bytes, binary }
    pings: [], // payloads of the server's pings
    pongs: [], // payloads of pongs to our pings
    closeInfo: null, // { code, reason } once closed
    waiters: new Set(),
    // The text frames, as strings / as parsed JSON.
    texts() {
      return c.frames.map((f) => f.text);
    },
    jsons() {
      return c.frames.map((f) => parse(f.text));
    },
    // Resolves once pred(c) holds.
    until(pred, what, ms = 5000) {
      if (pred(c)) return Promise.resolve();
      let w;
      return withTimeout(
        new Promise((resolve) => {
          w = () => pred(c) && resolve();
          c.waiters.add(w);
        }),
        ms,
        what,
      ).finally(() => c.waiters.delete(w));
    },
    // Resolves with the frames once there are at least n.
    async frameCount(n, ms = 5000) {
      await c.until((x) => x.frames.length >= n, `${n} frame(s) (have ${c.frames.length}: ${JSON.stringify(c.texts())})`, ms);
      return c.frames;
    },
    // Resolves with the first frame whose text satisfies pred (a function or an
    // exact string).
    async frame(pred, what, ms = 5000) {
      const test = typeof pred === "string" ? (t) => t === pred : pred;
      const find = () => c.frames.find((f) => test(f.text));
      await c.until(() => find() !== undefined, `${what ?? pred} (have ${JSON.stringify(c.texts())})`, ms);
      return find();
    },
    // Sends (an object as JSON, a string as is) and resolves with the next
    // frame's text.
    async ask(msg, ms = 5000) {
      const n = c.frames.length;
      c.send(msg);
      await c.frameCount(n + 1, ms);
      return c.frames[n].text;
    },
    send(msg) {
      ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
    },
    // Resolves with { code, reason } once the connection is closed.
    closed(ms = 5000) {
      return c.until((x) => x.closeInfo !== null, "the connection to close", ms).then(() => c.closeInfo);
    },
    // Closes from our side and waits for the close to complete.
    async close() {
      if (c.closeInfo === null) {
        ws.close();
        await c.closed().catch(() => ws.terminate());
      }
    },
    clear() {
      c.frames.length = 0;
    },
  };
  const notify = () => {
    for (const w of [...c.waiters]) w();
  };
  ws.on("open", () => {
    c.opened = true;
    notify();
  });
  ws.on("message", (data, binary) => {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    c.frames.push({ text: binary ? null : bytes.toString(), bytes, binary });
    notify();
  });
  ws.on("ping", (d) => {
    c.pings.push(d);
    notify();
  });
  ws.on("pong", (d) => {
    c.pongs.push(d);
    notify();
  });
  ws.on("close", (code, reason) => {
    c.closeInfo = { code, reason: reason.toString() };
    notify();
  });
  ws.on("error", () => {}); // reported by 'close' (1006) or by the open promise
  return c;
}

// A plain WebSocket client on `path` (with its query); resolves once open
// (rejects if the upgrade is refused).
export async function plain(url, path, { headers, autoPong = true } = {}) {
  const ws = new WebSocket(wsUrl(url, path), { headers, autoPong });
  const c = record(ws);
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("unexpected-response", (req, res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          req.destroy();
          reject(new Error(`upgrade of ${path} refused: ${res.statusCode} ${body}`));
        });
      });
      ws.once("error", reject);
      ws.once("close", () => reject(new Error(`${path} closed before it opened`)));
    }),
    5000,
    `${path} to open`,
  );
  return c;
}

// Connects a plain client without waiting: the recorder at once (for a
// connection expected to open and then be closed).
export function plainNoWait(url, path, { headers, autoPong = true } = {}) {
  return record(new WebSocket(wsUrl(url, path), { headers, autoPong }));
}

// An upgrade expected to be refused: resolves with the HTTP status, headers,
// body text and parsed JSON body.
export function refusal(url, path, { headers } = {}) {
  const ws = new WebSocket(wsUrl(url, path), { headers });
  ws.on("error", () => {});
  return withTimeout(
    new Promise((resolve, reject) => {
      ws.once("unexpected-response", (req, res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          resolve({ status: res.statusCode, headers: res.headers, body, json: parse(body) });
          req.destroy();
        });
        res.on("error", reject);
      });
      ws.once("open", () => {
        ws.terminate();
        reject(new Error(`${path}: the upgrade was accepted, a refusal was expected`));
      });
      ws.once("error", (e) => reject(e));
    }),
    5000,
    `the refusal of ${path}`,
  );
}

// -- a raw client ------------------------------------------------------------------

// A client frame (masked unless `mask` is false; FIN set; `rsv` bits 0..7 in
// bits 4..6 of the first byte).
export function frame(opcode, payload, { mask = true, rsv = 0, fin = true } = {}) {
  const data = Buffer.from(payload);
  let head;
  if (data.length < 126) {
    head = Buffer.from([0, data.length]);
  } else if (data.length < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(data.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | opcode;
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, masked]);
}

// A WebSocket over a raw TCP socket on `path`: `texts` holds the server's text
// frames, `closes` its close frames ({code, reason}), `ended` whether the TCP
// connection is gone. Server pings are answered.
export async function rawPlain(url, path) {
  const { hostname, port } = new URL(url);
  const s = tcpConnect({ host: hostname, port: Number(port) });
  s.on("error", () => {});
  const key = randomBytes(16).toString("base64");
  s.once("connect", () =>
    s.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  const c = {
    head: null,
    texts: [],
    closes: [],
    ended: false,
    waiters: new Set(),
    write(...bufs) {
      s.write(Buffer.concat(bufs));
    },
    until(pred, what, ms = 5000) {
      if (pred(c)) return Promise.resolve();
      let w;
      return withTimeout(
        new Promise((resolve) => {
          w = () => pred(c) && resolve();
          c.waiters.add(w);
        }),
        ms,
        what,
      ).finally(() => c.waiters.delete(w));
    },
    // Resolves with the first close frame, and then once the TCP connection ends.
    async closeFrame(ms = 5000) {
      await c.until((x) => x.closes.length > 0, `a close frame (texts ${JSON.stringify(c.texts)})`, ms);
      return c.closes[0];
    },
    destroy() {
      s.destroy();
    },
  };
  const notify = () => {
    for (const w of [...c.waiters]) w();
  };
  s.on("data", upgradeReader(c, (opcode, payload) => {
    if (opcode === 0x1) c.texts.push(payload.toString());
    else if (opcode === 0x9) s.write(frame(0xa, payload));
    else if (opcode === 0x8)
      c.closes.push({ code: payload.length >= 2 ? payload.readUInt16BE(0) : null, reason: payload.subarray(2).toString() });
  }, notify));
  s.on("close", () => {
    c.ended = true;
    notify();
  });
  await c.until((x) => x.head !== null || x.ended, `the answer to the upgrade of ${path}`);
  if (!c.head?.startsWith("HTTP/1.1 101 ")) throw new Error(`upgrade of ${path} refused: ${c.head}`);
  return c;
}

// -- the credential validation backend ------------------------------------------------

// An HTTP server on 127.0.0.1 standing in for the backend Parley asks about
// site_token / assistant_id. It answers by the credential's prefix:
// "ok…" 200 {"allow":true}, "late…" the same after 150 ms, "slow…" never,
// anything else 200 {"allow":false}. `requests` records each one.
export async function validationBackend() {
  const requests = [];
  const hanging = new Set();
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const json = parse(body);
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, json });
      const cred = typeof json?.credential === "string" ? json.credential : "";
      const answer = (status, text) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(text);
      };
      if (cred.startsWith("slow")) hanging.add(res);
      else if (cred.startsWith("late")) setTimeout(() => answer(200, '{"allow":true}'), 150);
      else if (cred.startsWith("ok")) answer(200, '{"allow":true}');
      else if (cred.startsWith("fail")) answer(500, '{"error":"database down"}');
      else if (cred.startsWith("forbid")) answer(403, '{"allow":true}');
      else if (cred.startsWith("junk")) answer(200, "allow");
      else answer(200, '{"allow":false}');
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/check`,
    requests,
    // The requests about one credential.
    of(credential) {
      return requests.filter((r) => r.json?.credential === credential);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

// A TCP port nothing listens on (bound, then released).
export async function closedPort() {
  const srv = createTcpServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

export const apiKeyHeader = `apikey ${API_KEY}`;
