#include "actors/connection.hpp"

#include <chrono>
#include <ctime>
#include <functional>
#include <random>
#include <unordered_set>

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/store.hpp"
#include "net/engineio_server.hpp"
#include "net/metrics.hpp"
#include "net/plain_wire.hpp"
#include "net/socketio_packet.hpp"
#include "schema/events.hpp"

namespace parley {

std::string iso_now() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::variant<identity, std::string> authenticate(const connect_request& req, const runtime& rt,
                                                 int64_t now_unix) {
  std::string token = req.auth_token;
  if (token.empty() && req.authorization.rfind("Bearer ", 0) == 0)
    token = req.authorization.substr(7);
  if (token.empty())
    token = req.query_token;
  if (token.empty()) {
    if (rt.cfg.auth.allow_anonymous_dev && !req.query_user_id.empty()) {
      identity who;
      who.user_id = req.query_user_id;
      who.anonymous = true;
      return who;
    }
    return std::string{"Authentication failed: No token provided"};
  }
  if (!rt.verifier) {
    spdlog::info("refused a token: no jwt-secret or jwt-public-key-file configured");
    return std::string{"Authentication failed: Invalid token"};
  }
  auto verified = rt.verifier->verify(token, now_unix);
  if (auto f = std::get_if<jwt::failure>(&verified)) {
    spdlog::info("refused a token: {}", jwt::to_string(*f));
    return std::string{"Authentication failed: Invalid token"};
  }
  auto& c = std::get<jwt::claims>(verified);
  identity who;
  who.user_id = c.sub;
  who.email = c.email;
  who.role = c.role;
  who.rooms = c.rooms;
  who.profiles = c.profiles;
  who.expires_at = c.exp;
  return who;
}

bool may_join(const identity& who, const std::string& room) {
  if (who.anonymous)
    return true;
  for (auto& g : who.rooms) {
    if (!g.empty() && g.back() == '*') {
      if (room.compare(0, g.size() - 1, g, 0, g.size() - 1) == 0)
        return true;
    } else if (g == room) {
      return true;
    }
  }
  for (auto& p : who.profiles) {
    if (room == "profile:" + p)
      return true;
    auto dialogs = "dialog:" + p + "-";
    if (room.size() > dialogs.size() && room.compare(0, dialogs.size(), dialogs) == 0)
      return true;
  }
  return false;
}

namespace {

using self_ptr = caf::stateful_actor<connection_state>*;
using ack_id = std::optional<uint64_t>;

// -- sending --------------------------------------------------------------------

void emit(self_ptr self, std::string_view event, std::string_view data_json,
          const buffers& attachments = {}) {
  auto& sock = *self->state.sock;
  auto body = sio::event_array(event, data_json);
  if (attachments.empty()) {
    sock.send(eio::text_frame(sio::encode(sio::packet_type::event, sock.nsp(), std::nullopt, body)));
  } else {
    std::vector<eio::frame> fs;
    fs.push_back(eio::text_frame(sio::encode(sio::packet_type::binary_event, sock.nsp(), std::nullopt,
                                             body, attachments.size())));
    for (auto& b : attachments)
      fs.push_back(eio::frame{b, true});
    sock.send(std::move(fs));
  }
  counters().packets_out.fetch_add(1, std::memory_order_relaxed);
}

void ack(self_ptr self, ack_id id, std::string_view data_json) {
  if (!id)
    return;
  auto& sock = *self->state.sock;
  std::string args = "[";
  args.append(data_json);
  args += "]";
  sock.send(eio::text_frame(sio::encode(sio::packet_type::ack, sock.nsp(), id, args)));
  counters().packets_out.fetch_add(1, std::memory_order_relaxed);
}

// A refusal goes back the way the request came: as its ack when it asked for
// one, else as an `error` event.
void refuse(self_ptr self, ack_id id, const std::string& message) {
  std::string m;
  sio::append_json_string(m, message);
  if (id) {
    ack(self, id, "{\"error\":" + m + "}");
  } else {
    emit(self, "error", "{\"message\":" + m + ",\"timestamp\":\"" + iso_now() + "\"}");
  }
}

std::string json_str(std::string_view s) {
  std::string out;
  sio::append_json_string(out, s);
  return out;
}

// An id as the client sent it, as text for room names ("42" for 42 and "42").
std::string id_text(const rapidjson::Value& v) {
  if (v.IsString())
    return {v.GetString(), v.GetStringLength()};
  if (v.IsInt64())
    return std::to_string(v.GetInt64());
  if (v.IsUint64())
    return std::to_string(v.GetUint64());
  return sio::to_json(v);
}

// -- rooms --------------------------------------------------------------------

void drain(self_ptr self);

// The delay before trying again to reach an actor that is being restarted.
std::chrono::milliseconds retry_delay(uint8_t attempt) {
  static thread_local std::minstd_rand rng{std::random_device{}()};
  auto base = std::min<int64_t>(1000, int64_t{50} << std::min<int>(attempt, 5));
  return std::chrono::milliseconds{base / 2 + static_cast<int64_t>(rng() % (base / 2 + 1))};
}

// A private session id: 88 random bits (as a socket id), short enough to be
// kept inline in the connection's state. Recovery also needs the user's
// token, so the pid alone gives nobody a session.
std::string new_pid() {
  return eio::random_id();
}

// The session as the store keeps it for recovery: its rooms (not its
// namespace's, joined anyway) and, when it went away for now, since when.
void write_session(self_ptr self, int64_t disconnected_ms = 0) {
  auto& st = self->state;
  auto store = st.rt->store();
  if (!store)
    return;
  store::session_row row;
  row.pid = st.pid;
  row.sid = st.sock->sid();
  row.nsp = st.sock->nsp();
  row.user = st.who.user_id;
  row.base = st.session_base;
  row.disconnected_ms = disconnected_ms;
  auto own = namespace_room(st.sock->nsp());
  for (auto& kvp : st.rooms)
    if (kvp.first != own) {
      row.rooms.push_back(kvp.first);
      // A room its token does not allow: the backend joined it
      // (POST /api/v1/users/{id}/join), and recovery keeps it.
      if (!may_join(st.who, kvp.first))
        row.granted.push_back(kvp.first);
    }
  std::sort(row.rooms.begin(), row.rooms.end());
  std::sort(row.granted.begin(), row.granted.end());
  self->send(store, session_write_atom::value, std::move(row));
}

// The rooms of a recoverable session changed.
void sync_session_rooms(self_ptr self) {
  auto& st = self->state;
  if (!st.pid.empty() && st.connected && !st.closing)
    write_session(self);
}

// Asks the room's directory shard to add this socket; `done(true)` once it is
// a member, `done(false)` when the shard could not be reached (it is being
// restarted).
void request_join(self_ptr self, const std::string& room, std::function<void(bool)> done) {
  auto& st = self->state;
  auto dir = st.rt->directory_for(room);
  if (!dir) {
    done(false);
    return;
  }
  // No timeout (it would hold a timer per join): a shard or room that dies
  // with the request answers it with an error.
  self->request(dir, caf::infinite, join_atom::value, room, caf::actor{self}, st.sock)
    .then(
      [self, room, done](joined_atom, const caf::actor& r) {
        auto& st = self->state;
        if (st.closing)
          return;
        st.rooms[room] = r;
        done(true);
      },
      [self, room, done](caf::error& err) {
        auto& st = self->state;
        if (st.closing)
          return;
        spdlog::warn("socket {}: joining {} failed: {}", st.sock->sid(), room, self->system().render(err));
        done(false);
      });
}

// A join the socket asked for (or a re-join): the socket is `busy` until it is
// answered, and what it sends meanwhile waits, so that its requests take
// effect in the order it sent them.
void join_room(self_ptr self, const std::string& room, std::function<void(bool)> done) {
  auto& st = self->state;
  if (auto it = st.rooms.find(room); it != st.rooms.end() && it->second) {
    done(true);
    return;
  }
  st.busy = true;
  request_join(self, room, [self, done](bool ok) {
    self->state.busy = false;
    if (ok)
      sync_session_rooms(self);
    done(ok);
    drain(self);
  });
}

void leave_room(self_ptr self, const std::string& room) {
  auto& st = self->state;
  auto it = st.rooms.find(room);
  if (it == st.rooms.end())
    return;
  auto actor = std::move(it->second);
  st.rooms.erase(it);
  sync_session_rooms(self);
  if (!actor)
    return; // was waiting to be joined again: nothing holds it
  // Straight to the room (also while its shard restarts); a later join,
  // through the shard, reaches the room after it.
  self->send(actor, leave_atom::value, room, caf::actor{self});
}

void rejoin(self_ptr self, const std::string& room, uint8_t attempt) {
  auto& st = self->state;
  auto it = st.rooms.find(room);
  if (it == st.rooms.end() || it->second)
    return; // left meanwhile, or joined again by the client
  join_room(self, room, [self, room, attempt](bool ok) {
    if (!ok)
      self->delayed_send(self, retry_delay(attempt + 1), rejoin_atom::value, room,
                         static_cast<uint8_t>(std::min(attempt + 1, 250)));
  });
}

// Publishes to a room this socket may speak in, excluding itself; with
// attachments it goes out as a BINARY_EVENT carrying the same buffers.
void speak(self_ptr self, const std::string& room, const std::string& event,
           const std::string& data, const buffers& attachments = {}) {
  auto& st = self->state;
  if (attachments.empty() && st.rt->stores(room, event)) {
    st.rt->publish(room, event, data, st.sock->sid(), st.who.user_id);
    return;
  }
  auto it = st.rooms.find(room);
  bool member = it != st.rooms.end() && it->second;
  if (attachments.empty()) {
    if (member)
      self->send(it->second, publish_atom::value, event, data, st.sock->sid());
    else
      st.rt->publish(room, event, data, st.sock->sid());
    return;
  }
  if (member)
    self->send(it->second, publish_atom::value, event, data, st.sock->sid(), attachments);
  else if (auto dir = st.rt->directory_for(room))
    self->send(dir, publish_atom::value, room, event, data, st.sock->sid(), attachments);
}

bool check_room(self_ptr self, ack_id id, const std::string& room) {
  if (may_join(self->state.who, room))
    return true;
  spdlog::info("socket {} (user {}): refused room {}", self->state.sock->sid(),
               self->state.who.user_id, room);
  refuse(self, id, "Not allowed to join " + room);
  return false;
}

bool check_room_limit(self_ptr self, ack_id id, const std::string& room) {
  // The namespace's own room is not counted.
  auto& rooms = self->state.rooms;
  if (rooms.count(room) || rooms.size() < self->state.rt->cfg.limits.max_rooms_per_socket + 1)
    return true;
  refuse(self, id, "Too many rooms");
  return false;
}

// -- event handlers, one per client event ----------------------------------------

using handler = void (*)(self_ptr, const rapidjson::Value& payload, ack_id id);

// conversation:join {conversationId} → ack and conversation:joined
//  {conversationId, success:true}; session:join likewise with sessionId.
template <const char* Prefix, const char* Key, const char* JoinedEvent>
void handle_room_join(self_ptr self, const rapidjson::Value& p, ack_id id) {
  auto& key = p[Key];
  auto room = std::string{Prefix} + id_text(key);
  if (!check_room(self, id, room) || !check_room_limit(self, id, room))
    return;
  auto body = "{\"" + std::string{Key} + "\":" + sio::to_json(key) + ",\"success\":true}";
  join_room(self, room, [self, id, body, room](bool ok) {
    if (!ok) {
      refuse(self, id, "Could not join " + room + ": rooms are restarting, try again");
      return;
    }
    ack(self, id, body);
    if (JoinedEvent[0] != '\0')
      emit(self, JoinedEvent, body);
  });
}

template <const char* Prefix, const char* Key, const char* LeftEvent>
void handle_room_leave(self_ptr self, const rapidjson::Value& p, ack_id id) {
  auto& key = p[Key];
  auto room = std::string{Prefix} + id_text(key);
  leave_room(self, room);
  auto body = "{\"" + std::string{Key} + "\":" + sio::to_json(key) + ",\"success\":true}";
  ack(self, id, body);
  if (LeftEvent[0] != '\0')
    emit(self, LeftEvent, body);
}

constexpr char conversation_prefix[] = "conversation:";
constexpr char session_prefix[] = "session:";
constexpr char conversation_key[] = "conversationId";
constexpr char session_key[] = "sessionId";
constexpr char conversation_joined[] = "conversation:joined";
constexpr char conversation_left[] = "conversation:left";
constexpr char session_joined[] = "session:joined";
constexpr char session_left[] = "session:left";
constexpr char no_event[] = "";

// join {room} | {dialogId} → ack {joined: room, userId} or {error}
std::string join_target(const rapidjson::Value& p) {
  if (p.HasMember("room"))
    return id_text(p["room"]);
  return "dialog:" + id_text(p["dialogId"]);
}

void handle_join(self_ptr self, const rapidjson::Value& p, ack_id id) {
  auto room = join_target(p);
  if (!check_room(self, id, room) || !check_room_limit(self, id, room))
    return;
  join_room(self, room, [self, id, room](bool ok) {
    if (!ok) {
      refuse(self, id, "Could not join " + room + ": rooms are restarting, try again");
      return;
    }
    ack(self, id, "{\"joined\":" + json_str(room) + ",\"userId\":" + json_str(self->state.who.user_id) + "}");
  });
}

void handle_leave(self_ptr self, const rapidjson::Value& p, ack_id id) {
  auto room = join_target(p);
  leave_room(self, room);
  ack(self, id, "{\"left\":" + json_str(room) + ",\"userId\":" + json_str(self->state.who.user_id) + "}");
}

// typing:start|stop {conversationId} → the room except the sender:
// {conversationId, userId, isTyping}
template <bool Typing>
void handle_typing_conversation(self_ptr self, const rapidjson::Value& p, ack_id id) {
  auto& key = p["conversationId"];
  auto room = "conversation:" + id_text(key);
  if (!check_room(self, id, room))
    return;
  auto body = "{\"conversationId\":" + sio::to_json(key) + ",\"userId\":"
              + json_str(self->state.who.user_id) + ",\"isTyping\":" + (Typing ? "true" : "false")
              + "}";
  speak(self, room, Typing ? "typing:start" : "typing:stop", body);
  ack(self, id, "{\"success\":true}");
}

// typing {chatId|conversationId|dialogId, isTyping} → `typing` to that room except the sender
void handle_typing(self_ptr self, const rapidjson::Value& p, ack_id id) {
  std::string room;
  std::string key;
  if (p.HasMember("chatId")) {
    key = "chatId";
    room = "chat:" + id_text(p["chatId"]);
  } else if (p.HasMember("conversationId")) {
    key = "conversationId";
    room = "conversation:" + id_text(p["conversationId"]);
  } else {
    key = "dialogId";
    room = "dialog:" + id_text(p["dialogId"]);
  }
  if (!check_room(self, id, room))
    return;
  bool typing = !p.HasMember("isTyping") || p["isTyping"].GetBool();
  auto body = "{\"" + key + "\":" + sio::to_json(p[key.c_str()]) + ",\"userId\":"
              + json_str(self->state.who.user_id) + ",\"isTyping\":" + (typing ? "true" : "false")
              + "}";
  speak(self, room, "typing", body);
  ack(self, id, "{\"success\":true}");
}

// send_message {chatId, message, ...} → message_sent to the sender, `message` to
// the chat room except the sender. Other fields (e.g. a binary `attachment`)
// travel along; binary attachments are relayed as they came.
void handle_send_message(self_ptr self, const rapidjson::Value& p, ack_id id) {
  auto& chat = p["chatId"];
  auto room = "chat:" + id_text(chat);
  if (!check_room(self, id, room))
    return;
  auto& st = self->state;
  auto& attachments = st.attachments;
  auto now_ms = unix_ms();
  bool stored = attachments.empty() && st.rt->stores(room, "message");
  std::string msg_id;
  if (stored) {
    msg_id = store::new_record_id();
  } else {
    static std::atomic<uint64_t> next_id{1};
    msg_id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-"
             + std::to_string(next_id.fetch_add(1));
  }
  auto body = "{\"id\":" + json_str(msg_id) + ",\"chatId\":" + sio::to_json(chat) + ",\"message\":"
              + sio::to_json(p["message"]) + ",\"userId\":" + json_str(st.who.user_id)
              + ",\"timestamp\":\"" + format_iso8601_ms(now_ms) + "\"";
  if (p.HasMember("attachment"))
    body += ",\"attachment\":" + sio::to_json(p["attachment"]);
  body += "}";
  if (stored) {
    // Into the log first: message_sent and the ack carry the record's id and
    // offset, so they wait for the commit. What the socket sends next does
    // not: the record is already on its way (behind it, a later message to
    // the room gets a later offset), and answers come back in commit order.
    store::record rec;
    rec.id = msg_id;
    rec.room = room;
    rec.event = "message";
    rec.data = body;
    rec.ts_ms = now_ms;
    rec.sender = st.who.user_id;
    rec.origin = st.sock->sid();
    auto it = st.rooms.find(room);
    caf::actor target = it != st.rooms.end() && it->second ? it->second : st.rt->directory_for(room);
    if (!target) {
      refuse(self, id, "Could not send to " + room + ": rooms are restarting, try again");
      return;
    }
    self->request(target, std::chrono::seconds(10), publish_atom::value, std::move(rec), st.sock->sid(),
                  sio::delivered_ptr{})
      .then(
        [self, id, body](uint64_t offset) {
          if (self->state.closing)
            return;
          auto sent = body;
          sent.pop_back();
          sent += ",\"offset\":\"" + std::to_string(offset) + "\"}";
          emit(self, "message_sent", sent);
          ack(self, id, sent);
        },
        [self, id, room](caf::error& err) {
          auto& st = self->state;
          if (st.closing)
            return;
          spdlog::warn("socket {}: send_message to {} not stored: {}", st.sock->sid(), room,
                       self->system().render(err));
          refuse(self, id, "Could not send to " + room + ": the message store is unavailable");
        });
    return;
  }
  speak(self, room, "message", body, attachments);
  emit(self, "message_sent", body, attachments);
  if (attachments.empty())
    ack(self, id, body);
  else
    ack(self, id, "{\"id\":" + json_str(msg_id) + "}");
}

const std::unordered_map<std::string_view, handler>& handlers() {
  static const std::unordered_map<std::string_view, handler> all = {
    {"conversation:join", &handle_room_join<conversation_prefix, conversation_key, conversation_joined>},
    {"conversation:leave", &handle_room_leave<conversation_prefix, conversation_key, conversation_left>},
    {"subscribe", &handle_room_join<conversation_prefix, conversation_key, no_event>},
    {"unsubscribe", &handle_room_leave<conversation_prefix, conversation_key, no_event>},
    {"session:join", &handle_room_join<session_prefix, session_key, session_joined>},
    {"session:leave", &handle_room_leave<session_prefix, session_key, session_left>},
    {"join", &handle_join},
    {"leave", &handle_leave},
    {"typing:start", &handle_typing_conversation<true>},
    {"typing:stop", &handle_typing_conversation<false>},
    {"typing", &handle_typing},
    {"send_message", &handle_send_message},
  };
  return all;
}

void on_event(self_ptr self, sio::packet& p) {
  auto& args = *p.payload;
  if (!args[0].IsString()) {
    refuse(self, p.id, "Event names must be strings");
    return;
  }
  std::string_view name{args[0].GetString(), args[0].GetStringLength()};
  auto& table = handlers();
  auto it = table.find(name);
  if (it == table.end()) {
    counters().invalid_payloads.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("socket {}: unknown event {}", self->state.sock->sid(), name);
    refuse(self, p.id, "Unknown event " + std::string{name});
    return;
  }
  static const rapidjson::Value null_value;
  const rapidjson::Value& payload = args.Size() > 1 ? args[1] : null_value;
  if (auto err = schema::catalogue::instance().validate(name, payload)) {
    counters().invalid_payloads.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("socket {}: {}", self->state.sock->sid(), *err);
    refuse(self, p.id, *err);
    return;
  }
  self->state.attachments = p.buffers;
  it->second(self, payload, p.id);
  self->state.attachments.clear();
}

void close_connection(self_ptr self, const std::string& reason);

// Server-side disconnect: an `error` event saying why, then DISCONNECT.
void disconnect(self_ptr self, const std::string& why) {
  auto& st = self->state;
  if (st.closing)
    return;
  emit(self, "error", "{\"message\":" + json_str(why) + ",\"timestamp\":\"" + iso_now() + "\"}");
  st.sock->disconnect();
  close_connection(self, why);
}

// The event rate limit (actors/rate_limit.hpp). False when the event is
// refused; a socket refused more than a burst's worth in a row is
// disconnected. An event asking for an ack always gets the refusal.
bool within_rate(self_ptr self, ack_id id) {
  auto& st = self->state;
  auto& lim = st.rt->cfg.limits;
  auto verdict = st.rate.take(lim.events_per_second, lim.events_burst);
  if (verdict == rate_bucket::pass)
    return true;
  if (verdict == rate_bucket::disconnect) {
    spdlog::info("socket {} (user {}): over the event rate limit for more than {} events, disconnecting",
                 st.sock->sid(), st.who.user_id, lim.events_burst);
    disconnect(self, "Rate limit exceeded: disconnected");
    return false;
  }
  if (id || verdict == rate_bucket::refuse_and_tell)
    refuse(self, id, "Rate limit exceeded: at most " + std::to_string(lim.events_per_second) + " events per second");
  if (st.rate.refused == 1)
    spdlog::info("socket {} (user {}): over the event rate limit", st.sock->sid(), st.who.user_id);
  return false;
}

void handle_packet(self_ptr self, const packet_ptr& p) {
  counters().packets_in.fetch_add(1, std::memory_order_relaxed);
  switch (p->type) {
    case sio::packet_type::event:
    case sio::packet_type::binary_event:
      if (within_rate(self, p->id) && !self->state.closing)
        on_event(self, *p);
      break;
    default:
      break; // ACKs of our events are taken on the I/O thread; stray ones are ignored
  }
}

// The backend's join (POST /api/v1/users/{id}/join): the rooms one after the
// other through the socket's ordered join path, whatever its token allows
// (the backend decides), within max-rooms-per-socket (rooms over it are not
// joined, and the answer is false). A room whose shard is being restarted is
// kept and joined again later, as at connect.
void backend_join(self_ptr self, std::shared_ptr<backend_request> r, size_t i) {
  auto& st = self->state;
  for (; i < r->rooms.size(); ++i) {
    if (st.closing) {
      r->rp.deliver(false);
      return;
    }
    auto& room = r->rooms[i];
    if (st.rooms.count(room))
      continue;
    if (st.rooms.size() >= st.rt->cfg.limits.max_rooms_per_socket + 1) {
      spdlog::info("socket {} (user {}): the backend's join of {} is over the room limit", st.sock->sid(),
                   st.who.user_id, room);
      r->all = false;
      continue;
    }
    join_room(self, room, [self, r, i](bool ok) {
      auto& st = self->state;
      if (!ok && !st.closing) {
        auto& room = r->rooms[i];
        st.rooms[room] = nullptr;
        self->delayed_send(self, retry_delay(0), rejoin_atom::value, room, uint8_t{0});
      }
      backend_join(self, r, i + 1);
    });
    return;
  }
  r->rp.deliver(r->all);
}

void run_backend(self_ptr self, std::shared_ptr<backend_request> r) {
  if (self->state.closing) {
    r->rp.deliver(false);
    return;
  }
  if (r->join) {
    backend_join(self, std::move(r), 0);
    return;
  }
  for (auto& room : r->rooms)
    if (room != namespace_room(self->state.sock->nsp()))
      leave_room(self, room);
  r->rp.deliver(true);
}

// Handles what waited behind a join, in order, until the next join.
void drain(self_ptr self) {
  auto& st = self->state;
  while (!st.busy && !st.closing && st.waiting && !st.waiting->empty()) {
    auto next = std::move(st.waiting->front());
    st.waiting->pop_front();
    if (next.packet) {
      handle_packet(self, next.packet);
      st.sock->packet_done();
    } else if (next.backend) {
      run_backend(self, std::move(next.backend));
    } else {
      rejoin(self, next.rejoin, 0);
    }
  }
  if (st.waiting && st.waiting->empty() && !st.busy)
    st.waiting.reset();
}

void enqueue(self_ptr self, connection_state::pending item) {
  auto& st = self->state;
  if (!st.waiting)
    st.waiting = std::make_unique<std::deque<connection_state::pending>>();
  st.waiting->push_back(std::move(item));
}

// The CONNECT answer; for a recovered session then what it missed (`replay`,
// in offset order, each publish once, not what it sent itself), then what
// was fanned out to it meanwhile beyond `head`.
void finish_connect(self_ptr self, const std::vector<store::record>* replay = nullptr, uint64_t head = 0) {
  auto& st = self->state;
  st.connected = true;
  st.sock->accept();
  if (replay && !replay->empty()) {
    auto& nsp = st.sock->nsp();
    std::vector<eio::frame> fs;
    std::unordered_set<std::string_view> ids;
    for (auto& r : *replay) {
      if (r.origin == st.sock->sid() || !wire::reaches(nsp, r.audience) || !ids.insert(r.id).second)
        continue;
      fs.push_back(eio::text_frame(
        sio::encode(sio::packet_type::event, nsp, std::nullopt, stored_event_array(r, true))));
    }
    if (!fs.empty()) {
      counters().packets_out.fetch_add(fs.size(), std::memory_order_relaxed);
      st.sock->send(std::move(fs));
    }
  }
  st.sock->release(head);
  counters().sockets.fetch_add(1, std::memory_order_relaxed);
  counters().connects.fetch_add(1, std::memory_order_relaxed);
  if (auto p = st.rt->presence())
    self->send(p, online_atom::value, st.who.user_id, st.sock->sid(), caf::actor{self});
}

void close_connection(self_ptr self, const std::string& reason) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.closing = true;
  for (auto& [name, actor] : st.rooms)
    if (actor)
      self->send(actor, leave_atom::value, name, caf::actor{self});
  if (!st.pid.empty() && !st.recovering) {
    // Kept for recovery when the client may come back (as Socket.IO does).
    // (One being recovered stays as it was in the store.)
    static const std::unordered_set<std::string_view> recoverable{
      "transport close", "transport error", "ping timeout", "forced close", "server shutting down"};
    if (recoverable.count(reason) > 0) {
      write_session(self, unix_ms());
    } else if (auto store = st.rt->store()) {
      self->send(store, session_close_atom::value, st.pid);
    }
  }
  st.rooms.clear();
  if (st.connected) {
    counters().sockets.fetch_sub(1, std::memory_order_relaxed);
    if (auto p = st.rt->presence())
      self->send(p, offline_atom::value, st.who.user_id, st.sock->sid());
  }
  spdlog::debug("socket {} closed: {}", st.sock->sid(), reason);
  self->quit();
}

// Joins the rooms (at connect: its namespace's, its profiles', a recovered
// session's), then `done`. A room whose shard is being restarted is joined
// again later.
void join_all(self_ptr self, const std::vector<std::string>& rooms, std::function<void(bool all_joined)> done) {
  struct progress {
    size_t pending;
    bool all = true;
  };
  auto p = std::make_shared<progress>(progress{rooms.size()});
  for (auto& room : rooms)
    request_join(self, room, [self, p, room, done](bool ok) {
      if (!ok) {
        p->all = false;
        self->state.rooms[room] = nullptr;
        self->delayed_send(self, retry_delay(0), rejoin_atom::value, room, uint8_t{0});
      }
      if (--p->pending == 0)
        done(p->all);
    });
}

// A new session (with recovery on: a pid the client can come back with).
void start_session(self_ptr self, std::vector<std::string> rooms) {
  auto& st = self->state;
  if (st.rt->cfg.recovery.enabled) {
    st.pid = new_pid();
    st.session_base = committed_offset();
    st.sock->set_pid(st.pid);
    write_session(self);
  }
  join_all(self, rooms, [self](bool) {
    self->state.busy = false;
    finish_connect(self);
    drain(self);
  });
}

// A session given back could not be completed (a room could not be joined,
// or the replay was refused): the socket goes on as a new session (new pid,
// recovered false for the client), with what was held delivered after its
// CONNECT answer; the old session is forgotten.
void abandon_recovery(self_ptr self, const std::string& why) {
  auto& st = self->state;
  spdlog::info("socket {} (user {}): not recovered ({}): a new session", st.sock->sid(), st.who.user_id, why);
  if (auto store = st.rt->store())
    self->send(store, session_close_atom::value, st.pid);
  st.recovering = false;
  st.pid = new_pid();
  st.session_base = committed_offset();
  st.sock->set_pid(st.pid);
  st.busy = false;
  finish_connect(self);
  write_session(self);
  drain(self);
}

// Connection-state recovery: the CONNECT carried {pid, offset}. When the
// store gives the session back, the socket takes its old id and rooms, and
// gets every stored event of those rooms after the offset before anything
// new; otherwise it is a new session (the client sees recovered false).
void try_recover(self_ptr self, const connect_request& req, std::vector<std::string> initial) {
  auto& st = self->state;
  auto store = st.rt->store();
  if (!store) {
    start_session(self, std::move(initial));
    return;
  }
  self
    ->request(store, std::chrono::seconds(5), session_take_atom::value, req.pid, st.sock->nsp(), st.who.user_id,
              req.offset, req.has_offset, initial)
    .then(
      [self, initial, store](store::session_row& row, uint64_t after) {
        auto& st = self->state;
        st.pid = row.pid;
        st.session_base = row.base;
        st.recovering = true;
        st.sock->set_sid(row.sid);
        st.sock->set_pid(row.pid);
        auto rooms = initial;
        for (auto& r : row.rooms)
          if (std::find(rooms.begin(), rooms.end(), r) == rooms.end()
              && (may_join(st.who, r) || std::binary_search(row.granted.begin(), row.granted.end(), r))
              && rooms.size() < st.rt->cfg.limits.max_rooms_per_socket + 1)
            rooms.push_back(r);
        join_all(self, rooms, [self, rooms, after, store](bool all_joined) {
          if (self->state.closing)
            return;
          if (!all_joined) {
            // A room it would miss events of until joined again.
            abandon_recovery(self, "a room could not be joined");
            return;
          }
          self->request(store, std::chrono::seconds(10), replay_atom::value, rooms, after)
            .then(
              [self](std::vector<store::record>& missed, uint64_t head) {
                auto& st = self->state;
                if (st.closing)
                  return;
                spdlog::debug("socket {} (user {}): session recovered, {} events replayed", st.sock->sid(),
                              st.who.user_id, missed.size());
                st.recovering = false;
                st.busy = false;
                finish_connect(self, &missed, head);
                sync_session_rooms(self);
                drain(self);
              },
              [self](caf::error& err) {
                if (self->state.closing)
                  return;
                abandon_recovery(self, error_text(self->system(), err));
              });
        });
      },
      [self, initial](caf::error& err) {
        auto& st = self->state;
        if (st.closing)
          return;
        spdlog::info("socket {} (user {}): not recovered ({}): a new session", st.sock->sid(), st.who.user_id,
                     error_text(self->system(), err));
        start_session(self, initial);
      });
}

// A join or leave of the backend: now, or after what the socket asked for
// before it (while a join is on its way). Answered once done.
caf::result<bool> backend(self_ptr self, std::vector<std::string> rooms, bool join) {
  auto& st = self->state;
  if (st.closing)
    return false;
  auto r = std::make_shared<backend_request>();
  r->rooms = std::move(rooms);
  r->join = join;
  r->rp = self->make_response_promise();
  auto rp = r->rp;
  if (st.busy)
    enqueue(self, {nullptr, {}, std::move(r)});
  else
    run_backend(self, std::move(r));
  return rp;
}

} // namespace

caf::behavior connection(caf::stateful_actor<connection_state>* self, socket_ptr sock,
                         connect_request req, runtime_ptr rt) {
  auto& st = self->state;
  st.sock = std::move(sock);
  st.rt = std::move(rt);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  auto who = authenticate(req, *st.rt, now);
  if (auto err = std::get_if<std::string>(&who)) {
    counters().connect_refused.fetch_add(1, std::memory_order_relaxed);
    st.sock->refuse(*err);
    self->quit();
    return {};
  }
  st.who = std::move(std::get<identity>(who));
  st.sock->set_user(st.who.user_id);
  // The I/O side disconnects the socket when its token expires (it checks
  // at every heartbeat: no timer per connection).
  if (st.rt->cfg.auth.disconnect_on_expiry && st.who.expires_at > 0)
    st.sock->set_expiry(st.who.expires_at * 1000);
  // Every socket is in its namespace's room (for presence), and in profile:{id}
  // for each profile its token grants, before the client hears it is
  // connected. What it sends meanwhile waits. A room whose shard is being
  // restarted is joined again later.
  std::vector<std::string> initial{namespace_room(st.sock->nsp())};
  for (auto& p : st.who.profiles)
    initial.push_back("profile:" + p);
  st.busy = true;
  if (!req.pid.empty())
    try_recover(self, req, std::move(initial));
  else
    start_session(self, std::move(initial));
  // An exception in a handler ends this socket only: it is told, and
  // disconnected; rooms and presence forget it.
  self->set_exception_handler([self](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    auto what = exception_text(eptr);
    spdlog::error("socket {}: handler failed ({}), disconnecting it", self->state.sock->sid(), what);
    disconnect(self, "Internal server error");
    return caf::error{}; // disconnect() has ended the actor normally
  });
  return {
    [self](packet_atom, const packet_ptr& p) {
      auto& st = self->state;
      if (st.closing)
        return;
      if (st.busy) {
        enqueue(self, {p, {}});
        return;
      }
      handle_packet(self, p);
      st.sock->packet_done();
    },
    [self](rejoin_atom, const std::string& room, uint8_t attempt) {
      auto& st = self->state;
      if (st.closing)
        return;
      if (st.busy) {
        if (attempt == 0) {
          enqueue(self, {nullptr, room});
          return;
        }
        self->delayed_send(self, retry_delay(attempt), rejoin_atom::value, room, attempt);
        return;
      }
      rejoin(self, room, attempt);
    },
    [self](join_atom, std::vector<std::string>& rooms) { return backend(self, std::move(rooms), true); },
    [self](leave_atom, std::vector<std::string>& rooms) { return backend(self, std::move(rooms), false); },
    [self](disconnect_atom) {
      // The backend's disconnect (Socket.IO's disconnectSockets()): a
      // DISCONNECT, the client's reason is "io server disconnect"; the
      // session is not kept for recovery.
      auto& st = self->state;
      if (st.closing)
        return false;
      st.sock->disconnect();
      close_connection(self, "server disconnect");
      return true;
    },
    [self](room_moved_atom, const std::string& room, const caf::actor& moved) {
      // The room failed and runs again (same members) in a new actor.
      auto& rooms = self->state.rooms;
      if (auto it = rooms.find(room); it != rooms.end() && it->second)
        it->second = moved;
    },
    [self](closed_atom, const std::string& reason) {
      if (reason == sio::socket::token_expired) {
        spdlog::info("socket {} (user {}): token expired, disconnecting", self->state.sock->sid(),
                     self->state.who.user_id);
        disconnect(self, "Token expired");
        return;
      }
      close_connection(self, reason);
    },
  };
}

} // namespace parley
