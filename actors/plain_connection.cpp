#include "actors/plain_connection.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <caf/event_based_actor.hpp>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "actors/store.hpp"
#include "net/json.hpp"
#include "net/metrics.hpp"
#include "net/plain_wire.hpp"
#include "net/socketio_packet.hpp"

namespace parley {

std::string dialog_room(const std::string& id) {
  return "dialog:" + id;
}

std::string conversation_room(const std::string& id) {
  return "conversation:" + id;
}

namespace {

using self_ptr = caf::stateful_actor<plain_state>*;

bool is_dialog(const plain_state& st) {
  return st.req.kind != plain_kind::subscribe;
}

void send_text(self_ptr self, std::string text) {
  counters().packets_out.fetch_add(1, std::memory_order_relaxed);
  self->state.sock->send(eio::text_frame(std::move(text)));
}

// What the client did wrong, told to it and logged (once per message).
void send_error(self_ptr self, std::string_view message) {
  spdlog::info("plain socket {} (user {}): {}", self->state.sock->sid(), self->state.req.who.user_id, message);
  std::string out = "{\"type\":\"error\",\"message\":";
  sio::append_json_string(out, message);
  out += '}';
  send_text(self, std::move(out));
}

// {"type":"subscribed","conversationId":"c1"} and the like.
void send_answer(self_ptr self, std::string_view type, const std::string& conversation) {
  std::string out = "{\"type\":";
  sio::append_json_string(out, type);
  out += ",\"conversationId\":";
  sio::append_json_string(out, conversation);
  out += '}';
  send_text(self, std::move(out));
}

void drain(self_ptr self);

// Replays `room`'s stored events after `after` to the socket, which holds
// its fan-outs meanwhile (they go out after the replay, without what the
// replay sent), then `done`.
void replay(self_ptr self, const std::string& room, uint64_t after, std::function<void()> done) {
  auto& st = self->state;
  auto store = st.rt->store();
  auto give_up = [self, room, after, done](const std::string& why) {
    auto& st = self->state;
    send_error(self, "Cannot replay " + room + " after " + std::to_string(after) + ": " + why);
    st.sock->release(std::make_shared<const std::vector<uint64_t>>());
    done();
  };
  if (!store) {
    give_up("the store is restarting");
    return;
  }
  self->request(store, std::chrono::seconds(10), replay_atom::value, std::vector<std::string>{room}, after)
    .then(
      [self, done](std::vector<store::record>& records, uint64_t) {
        auto& st = self->state;
        if (st.closing)
          return;
        auto group = st.sock->nsp();
        std::vector<eio::frame> fs;
        auto sent = std::make_shared<std::vector<uint64_t>>();
        for (auto& r : records) {
          sent->push_back(r.offset);
          if (!wire::reaches(group, r.audience))
            continue;
          wire::plain_frames plain{r.room, r.event, r.data};
          fs.push_back(plain.get(group));
        }
        if (!fs.empty()) {
          counters().packets_out.fetch_add(fs.size(), std::memory_order_relaxed);
          st.sock->send(std::move(fs));
        }
        st.sock->release(std::move(sent));
        done();
      },
      [self, give_up](caf::error& err) {
        if (self->state.closing)
          return;
        give_up(error_text(self->system(), err));
      });
}

// Joins `room`, then `done(ok)` (which answers the client, if it asked), then
// replays from `after`. The connection is busy meanwhile. With `hold` (or a
// replay) its fan-outs are held from before the join until then, so that
// nothing of the room comes before the answer or the replay.
void join(self_ptr self, const std::string& room, std::optional<uint64_t> after, bool hold,
          std::function<void(bool)> done) {
  auto& st = self->state;
  auto dir = st.rt->directory_for(room);
  if (!dir) {
    done(false);
    return;
  }
  st.busy = true;
  hold = hold || after.has_value();
  if (hold)
    boost::asio::post(st.sock->context(), [sock = st.sock] { sock->hold(); });
  self->request(dir, caf::infinite, join_atom::value, room, caf::actor{self}, st.sock)
    .then(
      [self, room, after, hold, done](joined_atom, const caf::actor& r) {
        auto& st = self->state;
        if (st.closing)
          return;
        st.rooms[room] = r;
        if (!after) {
          st.busy = false;
          done(true);
          if (hold)
            st.sock->release(std::make_shared<const std::vector<uint64_t>>());
          drain(self);
          return;
        }
        done(true); // answered before the replay
        replay(self, room, *after, [self] {
          self->state.busy = false;
          drain(self);
        });
      },
      [self, room, hold, done](caf::error& err) {
        auto& st = self->state;
        if (st.closing)
          return;
        spdlog::warn("plain socket {}: joining {} failed: {}", st.sock->sid(), room, self->system().render(err));
        if (hold)
          st.sock->release(std::make_shared<const std::vector<uint64_t>>());
        st.busy = false;
        done(false);
        drain(self);
      });
}

// A decimal offset: a JSON string of digits, or a non-negative integer.
std::optional<uint64_t> offset_of(const rapidjson::Value& v) {
  if (v.IsUint64())
    return v.GetUint64();
  if (!v.IsString())
    return std::nullopt;
  return store::parse_offset({v.GetString(), v.GetStringLength()});
}

void on_subscription(self_ptr self, const rapidjson::Value& msg, bool subscribe) {
  auto& st = self->state;
  const char* verb = subscribe ? "subscribe" : "unsubscribe";
  auto it = msg.FindMember("conversationId");
  if (it == msg.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0
      || it->value.GetStringLength() > 128) {
    send_error(self, std::string{verb} + " needs a conversationId");
    return;
  }
  std::string id{it->value.GetString(), it->value.GetStringLength()};
  auto room = conversation_room(id);
  if (!subscribe) {
    if (auto r = st.rooms.find(room); r != st.rooms.end()) {
      self->send(r->second, leave_atom::value, room, caf::actor{self});
      st.rooms.erase(r);
    }
    send_answer(self, "unsubscribed", id);
    return;
  }
  std::optional<uint64_t> after;
  if (auto a = msg.FindMember("after"); a != msg.MemberEnd()) {
    after = offset_of(a->value);
    if (!after) {
      send_error(self, "after must be an offset (a decimal number)");
      return;
    }
  }
  if (!may_join(st.req.who, room)) {
    send_error(self, "Not allowed to subscribe to " + room);
    return;
  }
  if (st.rooms.count(room)) {
    send_answer(self, "subscribed", id); // already: live events came meanwhile, nothing to replay
    return;
  }
  auto max = st.rt->cfg.limits.max_rooms_per_socket;
  if (st.rooms.size() >= max) {
    send_error(self, "Too many subscriptions (max " + std::to_string(max) + ")");
    return;
  }
  join(self, room, after, true, [self, id, room](bool ok) {
    if (ok)
      send_answer(self, "subscribed", id);
    else
      send_error(self, "Cannot subscribe to " + room + " now, try again");
  });
}

// typing_start / typing_stop: to the dialog's other audience, not stored.
void on_typing(self_ptr self, const std::string& type) {
  auto& st = self->state;
  auto room = dialog_room(st.req.dialog);
  auto to = st.req.kind == plain_kind::admin ? wire::sites : wire::admins;
  auto data = "{\"type\":\"" + type + "\"}";
  auto it = st.rooms.find(room);
  if (it == st.rooms.end())
    return;
  self->send(it->second, publish_atom::value, type, data, st.sock->sid(), static_cast<uint8_t>(to), outcome_ptr{});
}

void handle(self_ptr self, const std::optional<std::string>& text) {
  auto& st = self->state;
  counters().packets_in.fetch_add(1, std::memory_order_relaxed);
  auto& lim = st.rt->cfg.limits;
  switch (st.rate.take(lim.events_per_second, lim.events_burst)) {
    case rate_bucket::pass:
      break;
    case rate_bucket::disconnect:
      spdlog::info("plain socket {} (user {}): over the message rate limit for more than {} messages, closing",
                   st.sock->sid(), st.req.who.user_id, lim.events_burst);
      st.sock->close_session("rate limit exceeded", 1008);
      return;
    case rate_bucket::refuse_and_tell:
      send_error(self, "Rate limit exceeded: at most " + std::to_string(lim.events_per_second)
                         + " messages per second");
      return;
    default:
      return; // told less than a second ago
  }
  if (!text) {
    send_error(self, "Binary messages are not supported");
    return;
  }
  rapidjson::Document doc;
  if (!json::parse(doc, *text)) {
    counters().invalid_payloads.fetch_add(1, std::memory_order_relaxed);
    send_error(self, "Malformed JSON");
    return;
  }
  auto type_it = doc.IsObject() ? doc.FindMember("type") : doc.MemberEnd();
  if (!doc.IsObject() || type_it == doc.MemberEnd() || !type_it->value.IsString()) {
    counters().invalid_payloads.fetch_add(1, std::memory_order_relaxed);
    send_error(self, "A message needs a string \"type\"");
    return;
  }
  std::string type{type_it->value.GetString(), type_it->value.GetStringLength()};
  if (type == "ping") {
    send_text(self, "{\"type\":\"pong\"}");
    return;
  }
  if (is_dialog(st) && (type == "typing_start" || type == "typing_stop")) {
    on_typing(self, type);
    return;
  }
  if (!is_dialog(st) && (type == "subscribe" || type == "unsubscribe")) {
    on_subscription(self, doc, type == "subscribe");
    return;
  }
  if (type.size() > 64)
    type = type.substr(0, 64) + "...";
  send_error(self, "Unknown message type: " + type);
}

void drain(self_ptr self) {
  auto& st = self->state;
  while (!st.busy && !st.closing && st.waiting && !st.waiting->empty()) {
    auto next = std::move(st.waiting->front());
    st.waiting->pop_front();
    handle(self, next);
    st.sock->packet_done();
  }
  if (st.waiting && st.waiting->empty() && !st.busy)
    st.waiting.reset();
}

void on_message(self_ptr self, std::optional<std::string> text) {
  auto& st = self->state;
  if (st.closing) {
    st.sock->packet_done();
    return;
  }
  if (st.busy || (st.waiting && !st.waiting->empty())) {
    if (!st.waiting)
      st.waiting = std::make_unique<std::deque<std::optional<std::string>>>();
    st.waiting->push_back(std::move(text));
    return;
  }
  handle(self, text);
  st.sock->packet_done();
}

void close_connection(self_ptr self, const std::string& reason) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.closing = true;
  for (auto& [name, actor] : st.rooms)
    if (actor)
      self->send(actor, leave_atom::value, name, caf::actor{self});
  st.rooms.clear();
  if (st.waiting)
    for (size_t i = 0; i < st.waiting->size(); ++i)
      st.sock->packet_done();
  st.waiting.reset();
  counters().plain_connections.fetch_sub(1, std::memory_order_relaxed);
  spdlog::debug("plain socket {} closed: {}", st.sock->sid(), reason);
  self->quit();
}

} // namespace

caf::behavior plain_connection(caf::stateful_actor<plain_state>* self, socket_ptr sock, plain_request req,
                               runtime_ptr rt) {
  auto& st = self->state;
  st.sock = std::move(sock);
  st.rt = std::move(rt);
  st.req = std::move(req);
  counters().plain_connections.fetch_add(1, std::memory_order_relaxed);
  if (is_dialog(st)) {
    auto room = dialog_room(st.req.dialog);
    join(self, room, st.req.after, false, [self, room](bool ok) {
      if (ok)
        return;
      spdlog::warn("plain socket {}: could not join {}, closing", self->state.sock->sid(), room);
      self->state.sock->close_session("rooms are restarting, try again", 1011);
    });
  }
  return {
    [self](packet_atom, std::string& text) { on_message(self, std::move(text)); },
    [self](packet_atom) { on_message(self, std::nullopt); },
    [self](closed_atom, const std::string& reason) { close_connection(self, reason); },
    [self](room_moved_atom, const std::string& room, const caf::actor& actor) {
      if (auto it = self->state.rooms.find(room); it != self->state.rooms.end())
        it->second = actor;
    },
  };
}

} // namespace parley
