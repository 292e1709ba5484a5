// The benchmark peer: a plain npm socket.io 4.8 server that answers the events
// the load generator uses exactly as Parley does (tools/bench/README.md):
// HS256 JWT in the CONNECT auth, `join {room}`, `conversation:join`,
// `send_message` (→ `message` to the room except the sender, `message_sent`
// and the ack to the sender), `typing:start|stop`, and `user:online|offline`
// to everyone else when a user's first connection arrives / last one leaves.
// `POST /api/v1/publish {"room","event","data"}` with `Authorization: apikey
// KEY` does io.to(room).emit(event, data) and answers {"ok":true}: in memory,
// not durable (Parley answers once the record is on disk). --recovery=true
// turns on socket.io's connectionStateRecovery (events to rooms then carry an
// offset, and a client cut off for up to 2 min gets what it missed).
//
//   node server.mjs --port=0 --secret=S [--presence-broadcast=false] [--api-key=K] [--recovery=true]
// prints "peer listening on http://127.0.0.1:PORT" once it accepts.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";

const opts = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`bad argument ${a}`);
    return [m[1], m[2]];
  }),
);
const secret = opts.secret ?? "bench-secret";
const broadcastPresence = opts["presence-broadcast"] !== "false";
const apiKey = opts["api-key"] ?? "bench-api-key";
const recovery = opts.recovery === "true";

function verify(token) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) return null;
  const want = createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], "base64url");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], "base64url"));
    claims = JSON.parse(Buffer.from(parts[1], "base64url"));
  } catch {
    return null;
  }
  if (header.alg !== "HS256" || typeof claims.sub !== "string") return null;
  if (typeof claims.exp === "number" && claims.exp < Date.now() / 1000) return null;
  return claims;
}

function mayJoin(claims, room) {
  for (const g of claims.rooms ?? []) {
    if (g.endsWith("*") ? room.startsWith(g.slice(0, -1)) : g === room) return true;
  }
  return false;
}

// The backend API: only the publish (socket.io takes /socket.io/ requests first).
const expectedAuth = Buffer.from(`apikey ${apiKey}`);
function api(req, res) {
  const answer = (status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  };
  const error = (status, code, message) => answer(status, { error: { code, message } });
  if (req.url !== "/api/v1/publish") return error(404, "not_found", "Not found");
  if (req.method !== "POST") return error(405, "method_not_allowed", "Use POST");
  const given = Buffer.from(req.headers.authorization ?? "");
  if (given.length !== expectedAuth.length || !timingSafeEqual(given, expectedAuth))
    return error(401, "unauthorized", "Invalid API key");
  const chunks = [];
  let size = 0;
  req.on("data", (d) => {
    size += d.length;
    if (size <= 1 << 20) chunks.push(d);
  });
  req.on("end", () => {
    if (size > 1 << 20) return error(413, "payload_too_large", "Body over 1 MiB");
    let p;
    try {
      p = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return error(400, "invalid_json", "Malformed JSON");
    }
    if (typeof p?.room !== "string" || typeof p?.event !== "string")
      return error(400, "invalid_body", "room and event must be strings");
    try {
      // Under connectionStateRecovery the adapter appends the offset to this emit.
      io.to(p.room).emit(p.event, p.data ?? null);
    } catch (e) {
      return error(400, "invalid_event", e.message); // a reserved name such as "connect"
    }
    answer(200, { ok: true });
  });
}

const http = createServer(api);
// Idle keep-alive connections are kept 60 s, as Parley keeps them (Node's
// default, 5 s, would close the generator's idle API connections under it).
http.keepAliveTimeout = 60000;
const io = new Server(http, {
  serveClient: false,
  cors: { origin: true },
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true } } : {}),
});

io.use((socket, next) => {
  const token = socket.handshake.auth?.token ?? socket.handshake.query?.token;
  if (!token) return next(new Error("Authentication failed: No token provided"));
  const claims = verify(token);
  if (!claims) return next(new Error("Authentication failed: Invalid token"));
  socket.data.claims = claims;
  next();
});

const live = new Map(); // userId → open connections
let nextId = 1;

io.on("connection", (socket) => {
  const claims = socket.data.claims;
  const userId = claims.sub;
  const n = (live.get(userId) ?? 0) + 1;
  live.set(userId, n);
  if (n === 1 && broadcastPresence) socket.broadcast.emit("user:online", { userId });

  const refuse = (ack, message) => {
    if (typeof ack === "function") ack({ error: message });
    else socket.emit("error", { message, timestamp: new Date().toISOString() });
  };

  socket.on("join", (p, ack) => {
    const room = p?.room ?? (p?.dialogId !== undefined ? `dialog:${p.dialogId}` : undefined);
    if (typeof room !== "string" || !mayJoin(claims, room)) return refuse(ack, `Not allowed to join ${room}`);
    socket.join(room);
    if (typeof ack === "function") ack({ joined: room, userId });
  });

  socket.on("conversation:join", (p, ack) => {
    const room = `conversation:${p?.conversationId}`;
    if (!mayJoin(claims, room)) return refuse(ack, `Not allowed to join ${room}`);
    socket.join(room);
    const body = { conversationId: p.conversationId, success: true };
    if (typeof ack === "function") ack(body);
    socket.emit("conversation:joined", body);
  });

  socket.on("send_message", (p, ack) => {
    const room = `chat:${p?.chatId}`;
    if (!socket.rooms.has(room)) return refuse(ack, `Not in ${room}`);
    const body = {
      id: `${Date.now()}-${nextId++}`,
      chatId: p.chatId,
      message: p.message,
      userId,
      timestamp: new Date().toISOString(),
    };
    socket.to(room).emit("message", body);
    socket.emit("message_sent", body);
    if (typeof ack === "function") ack(body);
  });

  for (const [event, typing] of [["typing:start", true], ["typing:stop", false]]) {
    socket.on(event, (p, ack) => {
      const room = `conversation:${p?.conversationId}`;
      if (!socket.rooms.has(room)) return refuse(ack, `Not in ${room}`);
      socket.to(room).emit(event, { conversationId: p.conversationId, userId, isTyping: typing });
      if (typeof ack === "function") ack({ success: true });
    });
  }

  socket.on("disconnect", () => {
    const left = live.get(userId) - 1;
    if (left > 0) return live.set(userId, left);
    live.delete(userId);
    if (broadcastPresence) socket.broadcast.emit("user:offline", { userId });
  });
});

http.listen(Number(opts.port ?? 0), "127.0.0.1", () => {
  console.log(`peer listening on http://127.0.0.1:${http.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
