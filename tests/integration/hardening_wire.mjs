// Raw clients for the hardening tests: HTTP requests written byte for byte on
// a TCP socket, and a WebSocket client over node:net that writes hand-made
// frames (several in one write, or ones `ws` refuses to send) and reads the
// server's frames one by one. Every wait has a deadline.
import { randomBytes } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { withTimeout } from "./harness.mjs";

function endpoint(url) {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port) };
}

// Parses one HTTP/1.1 response from the start of `bytes`; null while
// incomplete.
export function parseResponse(bytes) {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const lines = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const [, status] = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]) ?? [];
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  // Every answer tested here has a Content-Length; one without counts as empty.
  const length = Number(headers["content-length"] ?? 0);
  if (bytes.length < end + 4 + length) return null;
  return {
    status: Number(status),
    headers,
    body: bytes.subarray(end + 4, end + 4 + length).toString(),
    size: end + 4 + length,
  };
}

// All whole responses at the start of `bytes`.
function parseResponses(bytes) {
  const all = [];
  for (let r; (r = parseResponse(bytes)); bytes = bytes.subarray(r.size)) all.push(r);
  return all;
}

// Writes `request` (string or Buffer) on a new connection. Resolves with
// { response, responses, closed, destroy } once `count` whole responses have
// arrived or the server closed the connection: the first response (null if
// none), all of them, and a promise of the connection's end (true once the
// server has closed it; its deadline is `closeMs`).
export async function rawHttp(url, request, { count = 1, ms = 5000, closeMs = 5000, localAddress } = {}) {
  const s = tcpConnect({ ...endpoint(url), localAddress });
  s.on("error", () => {}); // a reset ends it as a close does
  let got = Buffer.alloc(0);
  const ended = new Promise((resolve) => s.once("close", () => resolve(true)));
  s.once("connect", () => s.write(request));
  const responses = await withTimeout(
    new Promise((resolve) => {
      s.on("data", (d) => {
        got = Buffer.concat([got, d]);
        const all = parseResponses(got);
        if (all.length >= count) resolve(all);
      });
      ended.then(() => resolve(parseResponses(got)));
    }),
    ms,
    `${count} HTTP response(s)`,
  ).catch((e) => {
    s.destroy();
    throw e;
  });
  const closed = withTimeout(ended, closeMs, "the server to close the connection").finally(() => s.destroy());
  closed.catch(() => {}); // observed only if the caller asks
  return { response: responses[0] ?? null, responses, closed, destroy: () => s.destroy() };
}

// A client frame (masked, FIN set): opcode 0x1 text, 0x8 close, ...
export function clientFrame(opcode, payload) {
  const data = Buffer.from(payload);
  const mask = randomBytes(4);
  let head;
  if (data.length < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | data.length]);
  } else if (data.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(data.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, masked]);
}

// A close frame's payload: the 2-byte code, then the reason's bytes.
export function closePayload(code, reason = Buffer.alloc(0)) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code, 0);
  return Buffer.concat([b, Buffer.from(reason)]);
}

// An Engine.IO WebSocket session over a raw TCP socket. `texts` holds every text
// frame from the server (the open packet first), `closes` every close frame
// ({code, reason}); the server's pings are answered unless `pong` is false.
// A 'data' listener for a raw client's socket after its upgrade request:
// sets c.head to the response head, then calls onFrame(opcode, payload) for
// each complete server frame (any number per read, split across reads), then
// after(), once per read.
export function upgradeReader(c, onFrame, after) {
  let buf = Buffer.alloc(0);
  return (d) => {
    buf = Buffer.concat([buf, d]);
    if (!c.head) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      c.head = buf.subarray(0, end).toString("latin1");
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) break;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (buf.length < off + len) break;
      const payload = buf.subarray(off, off + len);
      buf = buf.subarray(off + len);
      onFrame(opcode, payload);
    }
    after();
  };
}

export async function rawWs(url, { localAddress, pong = true } = {}) {
  const s = tcpConnect({ ...endpoint(url), localAddress });
  s.on("error", () => {});
  const key = randomBytes(16).toString("base64");
  s.once("connect", () =>
    s.write(
      "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  const c = {
    texts: [],
    closes: [],
    head: null,
    ended: false,
    waiters: new Set(),
    write(...frames) {
      s.write(Buffer.concat(frames));
    },
    // Writes text frames, all in one write.
    send(...texts) {
      c.write(...texts.map((t) => clientFrame(0x1, t)));
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
    // Resolves with the first text frame matching `re` at or after index `from`.
    async text(re, what = String(re), ms = 5000, from = 0) {
      const find = () => c.texts.slice(from).find((t) => re.test(t));
      await c.until(() => find() !== undefined, what, ms);
      return find();
    },
    close() {
      s.destroy();
    },
  };
  const notify = () => {
    for (const w of [...c.waiters]) w();
  };
  s.on("data", upgradeReader(c, (opcode, payload) => {
    if (opcode === 0x1) {
      const t = payload.toString();
      if (pong && t === "2") c.send("3");
      c.texts.push(t);
    } else if (opcode === 0x8) {
      c.closes.push({
        code: payload.length >= 2 ? payload.readUInt16BE(0) : null,
        reason: payload.subarray(2).toString("latin1"),
      });
    }
  }, notify));
  s.on("close", () => {
    c.ended = true;
    notify();
  });
  await c.until((x) => x.texts.length > 0 || x.ended, "the Engine.IO open packet");
  if (!c.head?.startsWith("HTTP/1.1 101 ")) throw new Error(`upgrade refused: ${c.head}`);
  return c;
}

// rawWs, then CONNECT to `nsp` ("/" → "40") with `auth`; resolves once the
// CONNECT is answered {sid}.
export async function rawSocket(url, auth, opts = {}) {
  const c = await rawWs(url, opts);
  c.send(`40${JSON.stringify(auth)}`);
  await c.text(/^40\{"sid":/, "the CONNECT answer");
  return c;
}
