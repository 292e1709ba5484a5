// The benchmark peer: a plain npm socket.io 4.8 server that answers the events
// the load generator uses exactly as Parley does (tools/bench/README.md):
// HS256 JWT in the CONNECT auth, `join {room}`, `conversation:join`,
// `send_message` (→ `message` to the room except the sender, `message_sent`
// and the ack to the sender), `typing:start|stop`, and `user:online|offline`
// to everyone else when a user's first connection arrives / last one leaves.
//
//   node server.mjs --port=0 --secret=S [--presence-broadcast=false]
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

const http = createServer();
const io = new Server(http, { serveClient: false, cors: { origin: true } });

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
