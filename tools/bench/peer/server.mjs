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
// Seed 003's plain WebSocket dialog sockets (the contract of issue 13), with the
// npm `ws` 8.18 server on the same port: /ws/dialogs/{id}?token=JWT (the admin
// audience; the token's `rooms` must allow dialog:{id}), /ws/widget/dialogs/{id}
// ?assistant_id=… and /ws/site/dialogs/{id}?site_token=… (the site audience; any
// non-empty credential is admitted). `POST /api/v1/dialogs/{id}/messages` with a
// JSON object sends the body text as it came to the admin sockets of the dialog
// when its `sender` (or `message.sender`) is "user", else to admin and site
// sockets, and answers {"ok":true,"delivered":{"admin":N,"site":M}}.
// {"type":"ping"} from a dialog socket is answered {"type":"pong"}.
//
//   node server.mjs --port=0 --secret=S [--presence-broadcast=false] [--api-key=K] [--recovery=true]
// prints "peer listening on http://127.0.0.1:PORT" once it accepts.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";
import { WebSocketServer } from "ws";

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
  const dialog = /^\/api\/v1\/dialogs\/([^/?]+)\/messages$/.exec(req.url);
  if (req.url !== "/api/v1/publish" && !dialog) return error(404, "not_found", "Not found");
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
    const text = Buffer.concat(chunks).toString("utf8");
    let p;
    try {
      p = JSON.parse(text);
    } catch {
      return error(400, "invalid_json", "Malformed JSON");
    }
    if (dialog) return dialogMessage(dialog[1], text, p, answer, error);
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
  destroyUpgrade: false, // upgrades outside /socket.io/ are the dialog sockets' (below)
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

// Seed 003's dialog sockets: dialog id → the open sockets of each audience.
const dialogs = new Map();
const DIALOG_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const wss = new WebSocketServer({ noServer: true });

function audiences(id) {
  let d = dialogs.get(id);
  if (!d) dialogs.set(id, (d = { admin: new Set(), site: new Set() }));
  return d;
}

function dialogMessage(rawId, text, body, answer, error) {
  const id = decodeURIComponent(rawId);
  if (!DIALOG_ID.test(id)) return error(400, "invalid_path", "Malformed dialog id");
  if (body === null || typeof body !== "object" || Array.isArray(body))
    return error(400, "invalid_payload", "The body must be a JSON object");
  const sender = body.message !== null && typeof body.message === "object" ? body.message.sender : body.sender;
  const d = dialogs.get(id);
  const admin = d ? d.admin : new Set(), site = d && sender !== "user" ? d.site : new Set();
  for (const ws of admin) ws.send(text);
  for (const ws of site) ws.send(text);
  answer(200, { ok: true, delivered: { admin: admin.size, site: site.size } });
}

// Refuses an upgrade with an HTTP answer and a JSON error body.
function refuse(socket, status, code, message) {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

http.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://peer");
  if (url.pathname.startsWith("/socket.io/")) return; // socket.io's own
  const m = /^\/ws\/(?:(site|widget)\/)?dialogs\/([^/]+)$/.exec(url.pathname);
  if (!m) return refuse(socket, 404, "not_found", `No route for ${url.pathname}`);
  const id = decodeURIComponent(m[2]);
  if (!DIALOG_ID.test(id)) return refuse(socket, 400, "invalid_path", "Malformed dialog id");
  let audience = "site";
  if (!m[1]) {
    const token = url.searchParams.get("token");
    if (!token) return refuse(socket, 401, "unauthorized", "Missing token");
    const claims = verify(token);
    if (!claims) return refuse(socket, 403, "forbidden", "Invalid token");
    if (!mayJoin(claims, `dialog:${id}`)) return refuse(socket, 403, "forbidden", `Token does not allow dialog:${id}`);
    audience = "admin";
  } else {
    const [param, what] = m[1] === "site" ? ["site_token", "site_token"] : ["assistant_id", "assistant_id"];
    if (!url.searchParams.get(param)) return refuse(socket, 401, "unauthorized", `Missing ${what}`);
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const set = audiences(id)[audience];
    set.add(ws);
    ws.on("message", (data, isBinary) => {
      if (isBinary) return ws.send(JSON.stringify({ type: "error", message: "Binary messages are not supported" }));
      let msg;
      try {
        msg = JSON.parse(data.toString("utf8"));
      } catch {
        return ws.send(JSON.stringify({ type: "error", message: "Malformed JSON" }));
      }
      if (msg?.type === "ping") ws.send('{"type":"pong"}');
    });
    ws.on("close", () => {
      set.delete(ws);
      const d = dialogs.get(id);
      if (d && d.admin.size === 0 && d.site.size === 0) dialogs.delete(id);
    });
  });
});

http.listen(Number(opts.port ?? 0), "127.0.0.1", () => {
  console.log(`peer listening on http://127.0.0.1:${http.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
