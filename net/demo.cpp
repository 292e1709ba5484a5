#include "net/demo.hpp"

#include <chrono>

#include "net/engineio_server.hpp"
#include "net/jwt.hpp"
#include "net/listener.hpp"
#include "net/socketio_packet.hpp"

namespace parley::demo {

namespace {

constexpr const char* page = R"PARLEYDEMO(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley demo</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; display: flex; height: 100vh; color: #222; }
  aside { width: 220px; background: #f4f4f6; padding: 12px; border-right: 1px solid #ddd; overflow: auto; }
  main { flex: 1; display: flex; flex-direction: column; }
  #log { flex: 1; overflow: auto; padding: 12px; }
  #log div { margin: 2px 0; }
  .me { color: #0a5; } .sys { color: #888; font-style: italic; } .ts { color: #aaa; font-size: 12px; }
  form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #ddd; }
  input { font: inherit; padding: 5px 8px; }
  #text { flex: 1; }
  #typing { height: 20px; padding: 0 12px; color: #888; font-size: 13px; }
  label { display: block; font-size: 12px; color: #666; margin-top: 10px; }
  aside input { width: 180px; }
  #online div::before { content: "● "; color: #0a5; }
</style>
</head>
<body>
<aside>
  <strong>Parley demo</strong>
  <label>your name</label><input id="name">
  <label>room</label><input id="room" value="lobby">
  <p><button id="go">join</button></p>
  <div id="state" class="sys">not connected</div>
  <label>online</label><div id="online"></div>
</aside>
<main>
  <div id="log"></div>
  <div id="typing"></div>
  <form id="send"><input id="text" placeholder="say something" autocomplete="off" disabled><button disabled>send</button></form>
</main>
<script src="/socket.io/socket.io.js"></script>
<script>
const $ = (id) => document.getElementById(id);
$("name").value = localStorage.getItem("parley-demo-name") || "guest-" + Math.random().toString(36).slice(2, 6);
let socket, room, me, typingTimer, typingSent = false;
const typers = new Map();
const online = new Set();

function line(text, cls, ts) {
  const d = document.createElement("div");
  if (cls) d.className = cls;
  d.textContent = text;
  if (ts) { const s = document.createElement("span"); s.className = "ts"; s.textContent = "  " + new Date(ts).toLocaleTimeString(); d.append(s); }
  $("log").append(d);
  $("log").scrollTop = $("log").scrollHeight;
}
function showMessage(m) { line((m.userId === me ? "you" : m.userId) + ": " + m.message, m.userId === me ? "me" : "", m.timestamp); }
function showOnline() {
  $("online").replaceChildren(...[...online].sort().map((u) => { const d = document.createElement("div"); d.textContent = u; return d; }));
}
function showTyping() {
  const names = [...typers.keys()];
  $("typing").textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
}

$("go").onclick = async () => {
  me = $("name").value.trim();
  room = $("room").value.trim();
  if (!me || !room) return;
  localStorage.setItem("parley-demo-name", me);
  if (socket) socket.disconnect();
  $("log").replaceChildren();
  online.clear(); typers.clear(); showOnline(); showTyping();
  const { token } = await (await fetch("/demo/token?user=" + encodeURIComponent(me))).json();
  socket = io({ auth: { token } });
  socket.on("connect", async () => {
    $("state").textContent = (socket.recovered ? "reconnected as " : "connected as ") + me;
    online.add(me); showOnline();
    const joined = await socket.emitWithAck("join", { room: "chat:" + room });
    if (joined.error) { line("cannot join: " + joined.error, "sys"); return; }
    if (socket.recovered) return;
    // The room's history (the message log), newest page, oldest first.
    const res = await fetch("/api/v1/rooms/" + encodeURIComponent("chat:" + room) + "/messages?before=9999999999999999999&limit=50",
                            { headers: { authorization: "Bearer " + token } });
    if (res.ok) {
      const { messages } = await res.json();
      if (messages.length) line("— earlier in " + room + " —", "sys");
      for (const m of messages) showMessage(m.data);
    }
    line("you joined " + room, "sys");
    $("text").disabled = false; $("send").querySelector("button").disabled = false; $("text").focus();
  });
  socket.on("disconnect", (reason) => { $("state").textContent = "disconnected (" + reason + ")"; });
  socket.on("connect_error", (e) => { $("state").textContent = "cannot connect: " + e.message; });
  socket.on("message", (m) => { typers.delete(m.userId); showTyping(); showMessage(m); });
  socket.on("message_sent", (m) => showMessage(m));
  socket.on("typing", (t) => {
    clearTimeout(typers.get(t.userId));
    if (t.isTyping) typers.set(t.userId, setTimeout(() => { typers.delete(t.userId); showTyping(); }, 5000));
    else typers.delete(t.userId);
    showTyping();
  });
  socket.on("user:online", (p) => { online.add(p.userId); showOnline(); line(p.userId + " is online", "sys"); });
  socket.on("user:offline", (p) => { online.delete(p.userId); showOnline(); line(p.userId + " went offline", "sys"); });
  socket.on("error", (e) => line("error: " + (e.message || JSON.stringify(e)), "sys"));
};

$("text").oninput = () => {
  if (!socket) return;
  if (!typingSent) { socket.emit("typing", { chatId: room, isTyping: true }); typingSent = true; }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { socket.emit("typing", { chatId: room, isTyping: false }); typingSent = false; }, 2000);
};
$("send").onsubmit = async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !socket) return;
  $("text").value = "";
  clearTimeout(typingTimer);
  if (typingSent) { socket.emit("typing", { chatId: room, isTyping: false }); typingSent = false; }
  const ack = await socket.emitWithAck("send_message", { chatId: room, message: text });
  if (ack && ack.error) line("not sent: " + ack.error, "sys");
};
</script>
</body>
</html>
)PARLEYDEMO";

} // namespace

std::string token_for(const std::string& user, const std::string& secret) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
               .count();
  std::string payload = "{\"sub\":";
  sio::append_json_string(payload, user);
  payload += ",\"rooms\":[\"*\"],\"iat\":" + std::to_string(now) + ",\"exp\":" + std::to_string(now + 86400) + "}";
  return jwt::sign_hs256(payload, secret);
}

void handle(const runtime& rt, const std::shared_ptr<net::http_session>& hs, net::request&& req) {
  using namespace net;
  auto path = target_path(req.target());
  if (req.method() != http::verb::get) {
    auto res = json_error(req, http::status::method_not_allowed, "method_not_allowed", "Use GET for " + std::string{path});
    res.set(http::field::allow, "GET");
    hs->reply(std::move(res));
    return;
  }
  if (path == "/demo" || path == "/demo/") {
    auto res = make_response(req, http::status::ok, page, "text/html; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    hs->reply(std::move(res));
    return;
  }
  if (path == "/demo/token") {
    auto user = eio::query_param(req.target(), "user").value_or("");
    if (user.empty() || user.size() > 64) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_query", "user must be 1 to 64 characters"));
      return;
    }
    if (rt.cfg.auth.jwt_secret.empty()) {
      hs->reply(json_error(req, http::status::not_found, "not_found",
                           "No token here: Parley verifies tokens with parley.auth.jwt-public-key-file"));
      return;
    }
    std::string body = "{\"token\":";
    sio::append_json_string(body, token_for(user, rt.cfg.auth.jwt_secret));
    body += "}";
    auto res = make_response(req, http::status::ok, std::move(body), "application/json");
    res.set(http::field::cache_control, "no-store");
    hs->reply(std::move(res));
    return;
  }
  hs->reply(json_error(req, http::status::not_found, "not_found", "No route for " + std::string{path}));
}

} // namespace parley::demo
