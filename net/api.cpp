#include "net/api.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/url/decode_view.hpp>
#include <boost/url/pct_string_view.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "actors/ack_collector.hpp"
#include "actors/connection.hpp"
#include "actors/plain_connection.hpp"
#include "actors/store.hpp"
#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/rtm_supervisor.hpp"
#include "net/engineio_server.hpp"
#include "net/json.hpp"
#include "net/listener.hpp"
#include "net/metrics.hpp"
#include "net/plain_wire.hpp"
#include "net/plainws.hpp"
#include "net/ws_frames.hpp"
#include "net/socketio_packet.hpp"
#include "schema/events.hpp"

namespace parley::net {

namespace {

constexpr std::string_view ok_body = "{\"ok\":true}";

response ok_json(const request& req, std::string body) {
  return make_response(req, http::status::ok, std::move(body), "application/json");
}

// Parses and validates a JSON body; on failure answers 400 and returns false.
bool parse_body(const std::shared_ptr<http_session>& hs, const request& req, std::string_view schema_name,
                rapidjson::Document& doc) {
  std::string why;
  if (!json::parse(doc, req.body(), &why)) {
    auto msg = "Malformed JSON: " + why;
    spdlog::info("api {}: {}", req.target(), msg);
    hs->reply(json_error(req, http::status::bad_request, "invalid_json", msg));
    return false;
  }
  if (auto err = schema::catalogue::instance().validate(schema_name, doc)) {
    spdlog::info("api {}: {}", req.target(), *err);
    hs->reply(json_error(req, http::status::bad_request, "invalid_payload", *err));
    return false;
  }
  return true;
}

// A percent-decoded path segment, or nothing when malformed.
std::optional<std::string> decode_segment(std::string_view raw) {
  auto pct = boost::urls::make_pct_string_view(raw);
  if (!pct)
    return std::nullopt;
  auto dv = **pct;
  return std::string(dv.begin(), dv.end());
}

// A reply head that outlives the request (answers come back later).
std::shared_ptr<request> head_of(const request& req) {
  auto head = std::make_shared<request>();
  head->version(req.version());
  head->keep_alive(req.keep_alive());
  return head;
}

// Replies to `hs` from any thread: the answer is posted to the I/O thread.
template <class Session>
auto answer_on(asio::io_context& ioc, std::shared_ptr<Session> hs) {
  return [hs = std::move(hs), &ioc](response res) {
    asio::post(ioc, [hs, res = std::move(res)]() mutable { hs->reply(std::move(res)); });
  };
}

// A failed publish through the store: 503 store_unavailable with the store's
// reason, or 503 unavailable when the room's actors did not answer.
response publish_failed(const request& head, const std::string& why) {
  constexpr std::string_view prefix = "store_unavailable: ";
  if (why.compare(0, prefix.size(), prefix) == 0) {
    auto reason = why.substr(prefix.size());
    return json_error(head, http::status::service_unavailable, "store_unavailable",
                      "The message store is unavailable" + (reason.empty() ? std::string{} : ": " + reason));
  }
  return json_error(head, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again");
}

void add_cors(response& res, const std::string& origin) {
  if (origin.empty())
    return;
  res.set(http::field::access_control_allow_origin, origin);
  res.set(http::field::access_control_allow_credentials, "true");
  res.set(http::field::vary, "Origin");
}


void append_record(std::string& out, const store::record& r) {
  out += "{\"id\":";
  sio::append_json_string(out, r.id);
  out += ",\"offset\":\"";
  out += std::to_string(r.offset);
  out += "\",\"room\":";
  sio::append_json_string(out, r.room);
  out += ",\"event\":";
  sio::append_json_string(out, r.event);
  out += ",\"data\":";
  out += r.data;
  out += ",\"ts\":\"";
  out += format_iso8601_ms(r.ts_ms);
  out += "\"";
  if (!r.sender.empty()) {
    out += ",\"sender\":";
    sio::append_json_string(out, r.sender);
  }
  out += "}";
}

} // namespace

api::api(asio::io_context& ioc, runtime_ptr rt) : ioc_(ioc), rt_(std::move(rt)) {
}

void api::handle(const std::shared_ptr<http_session>& hs, request&& req) {
  counters().api_requests.fetch_add(1, std::memory_order_relaxed);
  auto path = std::string{target_path(req.target())};
  auto method_not_allowed = [&](const char* allowed) {
    spdlog::info("api {}: method {} not allowed", path, std::string_view{req.method_string()});
    auto res = json_error(req, http::status::method_not_allowed, "method_not_allowed",
                          std::string{"Use "} + allowed + " for " + path);
    res.set(http::field::allow, allowed);
    hs->reply(std::move(res));
  };
  if (path == "/health") {
    if (req.method() != http::verb::get)
      return method_not_allowed("GET");
    hs->reply(ok_json(req, "{\"status\":\"ok\"}"));
    return;
  }
  if (path == "/metrics") {
    if (req.method() != http::verb::get)
      return method_not_allowed("GET");
    metrics(hs, req);
    return;
  }
  constexpr std::string_view rooms_prefix = "/api/v1/rooms/";
  constexpr std::string_view messages_suffix = "/messages";
  if (path.size() > rooms_prefix.size() + messages_suffix.size()
      && path.compare(0, rooms_prefix.size(), rooms_prefix) == 0
      && path.compare(path.size() - messages_suffix.size(), messages_suffix.size(), messages_suffix) == 0) {
    if (req.method() == http::verb::options) {
      // A browser's preflight (the Authorization header): allowed origins only.
      auto res = make_response(req, http::status::no_content, "", "text/plain");
      res.body().clear();
      if (auto origin = cors_origin(req); !origin.empty()) {
        add_cors(res, origin);
        res.set(http::field::access_control_allow_methods, "GET");
        if (auto h = req.find(http::field::access_control_request_headers); h != req.end())
          res.set(http::field::access_control_allow_headers, h->value());
        res.set(http::field::access_control_max_age, "600");
      }
      res.prepare_payload();
      hs->reply(std::move(res));
      return;
    }
    if (req.method() != http::verb::get)
      return method_not_allowed("GET");
    auto room = decode_segment(
      path.substr(rooms_prefix.size(), path.size() - rooms_prefix.size() - messages_suffix.size()));
    if (!room || room->empty()) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_path", "Malformed room name"));
      return;
    }
    history(hs, req, std::move(*room));
    return;
  }
  auto& key = rt_->cfg.api.key;
  if (key.empty()) {
    hs->reply(json_error(req, http::status::forbidden, "api_disabled",
                         "The backend API is disabled: set parley.api.key"));
    return;
  }
  auto auth = req.find(http::field::authorization);
  if (auth == req.end() || !key_matches(auth->value())) {
    spdlog::info("api {}: missing or wrong API key", path);
    hs->reply(json_error(req, http::status::unauthorized, "unauthorized",
                         auth == req.end() ? "Missing API key" : "Invalid API key"));
    return;
  }
  if (path == "/api/v1/publish") {
    if (req.method() != http::verb::post)
      return method_not_allowed("POST");
    publish(hs, req);
    return;
  }
  if (path == "/api/v1/broadcast") {
    if (req.method() != http::verb::post)
      return method_not_allowed("POST");
    broadcast(hs, req);
    return;
  }
  constexpr std::string_view dialogs_prefix = "/api/v1/dialogs/";
  if (path.compare(0, dialogs_prefix.size(), dialogs_prefix) == 0) {
    auto rest = std::string_view{path}.substr(dialogs_prefix.size());
    auto slash = rest.find('/');
    auto what = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (what == "/messages" || what == "/events") {
      if (req.method() != http::verb::post)
        return method_not_allowed("POST");
      auto id = std::string{rest.substr(0, slash)};
      if (!plainws::valid_dialog_id(id)) {
        hs->reply(json_error(req, http::status::bad_request, "invalid_path", "Malformed dialog id"));
        return;
      }
      dialog_publish(hs, req, id, what == "/messages");
      return;
    }
  }
  constexpr std::string_view presence_prefix = "/api/v1/presence/";
  if (path.compare(0, presence_prefix.size(), presence_prefix) == 0
      && path.size() > presence_prefix.size()) {
    if (req.method() != http::verb::get)
      return method_not_allowed("GET");
    auto user = decode_segment(path.substr(presence_prefix.size()));
    if (!user) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_path", "Malformed user id"));
      return;
    }
    presence(hs, req, std::move(*user));
    return;
  }
  constexpr std::string_view users_prefix = "/api/v1/users/";
  if (path.compare(0, users_prefix.size(), users_prefix) == 0) {
    auto rest = std::string_view{path}.substr(users_prefix.size());
    auto slash = rest.rfind('/');
    auto action = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (slash != std::string_view::npos && (action == "join" || action == "leave" || action == "disconnect")) {
      if (req.method() != http::verb::post)
        return method_not_allowed("POST");
      auto user = decode_segment(rest.substr(0, slash));
      if (!user || user->empty()) {
        hs->reply(json_error(req, http::status::bad_request, "invalid_path", "Malformed user id"));
        return;
      }
      user_sockets(hs, req, std::move(*user), action);
      return;
    }
  }
  if (path.compare(0, rooms_prefix.size(), rooms_prefix) == 0 && path.size() > rooms_prefix.size()) {
    if (req.method() != http::verb::get)
      return method_not_allowed("GET");
    auto room = decode_segment(path.substr(rooms_prefix.size()));
    if (!room || room->empty()) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_path", "Malformed room name"));
      return;
    }
    room_members(hs, req, std::move(*room));
    return;
  }
  constexpr std::string_view rtm_prefix = "/api/v1/rtm/profiles/";
  if (path.compare(0, rtm_prefix.size(), rtm_prefix) == 0 && path.size() > rtm_prefix.size()) {
    auto id = decode_segment(path.substr(rtm_prefix.size()));
    if (!id || id->empty() || id->find('/') != std::string::npos) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_path", "Malformed profile id"));
      return;
    }
    if (req.method() == http::verb::put)
      return rtm_put(hs, req, std::move(*id));
    if (req.method() == http::verb::delete_)
      return rtm_delete(hs, req, std::move(*id));
    return method_not_allowed("PUT, DELETE");
  }
  constexpr std::string_view kill_prefix = "/api/v1/debug/kill/";
  if (rt_->cfg.debug.fault_injection && path.compare(0, kill_prefix.size(), kill_prefix) == 0) {
    if (req.method() != http::verb::post)
      return method_not_allowed("POST");
    auto name = decode_segment(path.substr(kill_prefix.size()));
    if (!name) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_path", "Malformed actor name"));
      return;
    }
    return kill(hs, req, *name);
  }
  if (path == "/api/tt/rtm-status") {
    if (req.method() != http::verb::get)
      return method_not_allowed("GET");
    return rtm_status(hs, req);
  }
  hs->reply(json_error(req, http::status::not_found, "not_found", "No route for " + path));
}

// SHA-256 of both sides compared with CRYPTO_memcmp: the time taken depends
// neither on the key's length nor on where a wrong key first differs.
bool api::key_matches(std::string_view given) const {
  auto& key = rt_->cfg.api.key;
  if (key.empty())
    return false;
  auto expected = "apikey " + key;
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

// Answers a request from an actor's reply (of type T), on the I/O thread.
template <class T, class Make>
void api::ask(const std::shared_ptr<http_session>& hs, const request& req, caf::actor to, caf::message msg,
              Make make) {
  auto head = head_of(req);
  auto answer = answer_on(ioc_, hs);
  rt_->sys.spawn([to, msg, head, answer, make](caf::event_based_actor* self) {
    self->request(to, std::chrono::seconds(5), msg)
      .then([head, answer, make](T& reply) { answer(make(*head, reply)); },
            [head, answer](caf::error&) {
              answer(json_error(*head, http::status::service_unavailable, "unavailable",
                                "The RTM supervisor did not answer"));
            });
  });
}

caf::actor api::rtm_supervisor() const {
  return caf::actor_cast<caf::actor>(rt_->sys.registry().get(rtm_supervisor_key()));
}

bool api::rtm_ready(const std::shared_ptr<http_session>& hs, const request& req) {
  if (rt_->cfg.rtm.url.empty()) {
    hs->reply(json_error(req, http::status::conflict, "rtm_disabled", "RTM is off: set parley.rtm.url"));
    return false;
  }
  if (!rtm_supervisor()) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "The RTM supervisor is restarting"));
    return false;
  }
  return true;
}

void api::rtm_put(const std::shared_ptr<http_session>& hs, const request& req, std::string id) {
  rapidjson::Document doc;
  if (!parse_body(hs, req, "api.rtm.profile", doc))
    return;
  rtm_profile p;
  p.id = std::move(id);
  if (doc.HasMember("cookies"))
    p.cookies = doc["cookies"].GetString();
  if (doc.HasMember("password"))
    p.password = doc["password"].GetString();
  if (doc.HasMember("expiresAt")) {
    auto t = parse_iso8601(doc["expiresAt"].GetString());
    if (!t) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_payload",
                           "Invalid payload for api.rtm.profile: expiresAt must be an ISO 8601 time"));
      return;
    }
    p.expires_at = *t;
  }
  if (!p.password.empty() && rt_->cfg.rtm.login_url.empty()) {
    hs->reply(json_error(req, http::status::bad_request, "invalid_payload",
                         "Invalid payload for api.rtm.profile: password needs parley.rtm.login-url"));
    return;
  }
  if (!rtm_ready(hs, req))
    return;
  ask<bool>(hs, req, rtm_supervisor(), caf::make_message(put_atom::value, p), [](const request& head, bool created) {
    return make_response(head, http::status::ok,
                         std::string{"{\"ok\":true,\"created\":"} + (created ? "true" : "false") + "}",
                         "application/json");
  });
}

void api::rtm_delete(const std::shared_ptr<http_session>& hs, const request& req, std::string id) {
  if (!rtm_ready(hs, req))
    return;
  ask<bool>(hs, req, rtm_supervisor(), caf::make_message(delete_atom::value, id),
      [id](const request& head, bool found) {
        if (found)
          return make_response(head, http::status::ok, std::string{ok_body}, "application/json");
        return json_error(head, http::status::not_found, "not_found", "No RTM profile " + id);
      });
}

void api::rtm_status(const std::shared_ptr<http_session>& hs, const request& req) {
  if (rt_->cfg.rtm.url.empty()) {
    hs->reply(ok_json(req, R"({"status":"disconnected","profiles":{}})"));
    return;
  }
  auto sup = rtm_supervisor();
  if (!sup) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "The RTM supervisor is restarting"));
    return;
  }
  ask<std::string>(hs, req, sup, caf::make_message(rtm_status_atom::value), [](const request& head, std::string& body) {
    return make_response(head, http::status::ok, std::move(body), "application/json");
  });
}

// Fault injection (parley.debug.fault-injection): makes a long-lived actor
// fail as a crash would, so tests can check that supervision repairs what it
// held. Names: presence, directory/<i>, room/<room>, rtm-supervisor,
// rtm-dedup, rtm-translator.
void api::kill(const std::shared_ptr<http_session>& hs, const request& req, const std::string& name) {
  auto reason = caf::make_error(caf::sec::runtime_error, "killed through POST /api/v1/debug/kill/" + name);
  auto registered = [&](caf::atom_value key) {
    return caf::actor_cast<caf::actor>(rt_->sys.registry().get(key));
  };
  caf::actor target;
  constexpr std::string_view room_prefix = "room/";
  constexpr std::string_view dir_prefix = "directory/";
  if (name == "presence") {
    target = rt_->presence();
  } else if (name == "rtm-supervisor") {
    target = registered(rtm_supervisor_key());
  } else if (name == "rtm-dedup") {
    target = registered(rtm_dedup_key());
  } else if (name == "rtm-translator") {
    target = registered(rtm_translator_key());
  } else if (name.compare(0, dir_prefix.size(), dir_prefix) == 0) {
    auto i = name.substr(dir_prefix.size());
    if (!i.empty() && i.size() < 4 && std::all_of(i.begin(), i.end(), ::isdigit)
        && std::stoul(i) < rt_->cfg.rooms.directory_shards)
      target = registered(directory_key(std::stoul(i)));
  } else if (name.compare(0, room_prefix.size(), room_prefix) == 0) {
    auto room = name.substr(room_prefix.size());
    if (auto dir = rt_->directory_for(room)) {
      // The shard owns its rooms: it makes the room fail (if it exists).
      caf::anon_send(dir, kill_atom::value, room, reason);
      spdlog::warn("api: making room {} fail (fault injection)", room);
      hs->reply(ok_json(req, "{\"ok\":true}"));
      return;
    }
  }
  if (!target) {
    hs->reply(json_error(req, http::status::not_found, "not_found", "No running actor " + name));
    return;
  }
  spdlog::warn("api: making {} fail (fault injection)", name);
  caf::anon_send(target, caf::exit_msg{caf::actor_addr{}, std::move(reason)});
  hs->reply(ok_json(req, "{\"ok\":true}"));
}

void api::metrics(const std::shared_ptr<http_session>& hs, const request& req) {
  auto sup = rt_->cfg.rtm.url.empty() ? caf::actor{} : rtm_supervisor();
  if (!sup) {
    hs->reply(make_response(req, http::status::ok, counters().render(), "text/plain; version=0.0.4"));
    return;
  }
  ask<std::string>(hs, req, sup, caf::make_message(rtm_metrics_atom::value), [](const request& head, std::string& lines) {
    auto text = counters().render();
    text += lines;
    return make_response(head, http::status::ok, std::move(text), "text/plain; version=0.0.4");
  });
}

void api::publish(const std::shared_ptr<http_session>& hs, const request& req) {
  rapidjson::Document doc;
  if (!parse_body(hs, req, "api.publish", doc))
    return;
  std::string room = doc["room"].GetString();
  std::string event = doc["event"].GetString();
  std::string data = doc.HasMember("data") ? sio::to_json(doc["data"]) : "null";
  std::string except = doc.HasMember("except") ? doc["except"].GetString() : "";
  if (doc.HasMember("ack") && doc["ack"].GetBool()) {
    // Emit with ack: the reply waits for every receiver's answer (or the timeout).
    auto dir = rt_->directory_for(room);
    if (!dir) {
      hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again"));
      return;
    }
    std::chrono::milliseconds timeout{doc.HasMember("timeoutMs") ? doc["timeoutMs"].GetInt() : 5000};
    auto head = head_of(req);
    auto answer = [head, reply = answer_on(ioc_, hs)](std::string body) {
      reply(make_response(*head, http::status::ok, std::move(body), "application/json"));
    };
    auto collector = rt_->sys.spawn(ack_collector, timeout, std::move(answer));
    caf::anon_send(dir, publish_atom::value, ack_atom::value, room, event, data, except, collector);
    return;
  }
  if (rt_->stores(room, event)) {
    // Answered once the record is committed, with its id and offset.
    auto dir = rt_->directory_for(room);
    if (!dir) {
      hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again"));
      return;
    }
    store::record rec;
    rec.id = store::new_record_id();
    rec.room = std::move(room);
    rec.event = std::move(event);
    rec.data = std::move(data);
    rec.origin = except;
    auto head = head_of(req);
    auto& ioc = ioc_;
    // Told on the store's thread once committed (or refused); answered on the I/O thread.
    auto outcome = std::make_shared<publish_outcome>(
      [hs, head, &ioc, id = rec.id](uint64_t offset, const std::string& refusal) {
        asio::post(ioc, [hs, head, id, offset, refusal] {
          if (!refusal.empty()) {
            hs->reply(publish_failed(*head, refusal));
            return;
          }
          std::string body = "{\"ok\":true,\"id\":\"" + id + "\",\"offset\":\"" + std::to_string(offset) + "\"}";
          hs->reply(make_response(*head, http::status::ok, std::move(body), "application/json"));
        });
      });
    caf::anon_send(dir, publish_atom::value, std::move(rec), except, sio::delivered_ptr{}, outcome);
    return;
  }
  if (!rt_->publish(room, event, data, except)) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again"));
    return;
  }
  hs->reply(ok_json(req, std::string{ok_body}));
}

void api::broadcast(const std::shared_ptr<http_session>& hs, const request& req) {
  rapidjson::Document doc;
  if (!parse_body(hs, req, "api.broadcast", doc))
    return;
  std::string event = doc["event"].GetString();
  std::string data = doc.HasMember("data") ? sio::to_json(doc["data"]) : "null";
  // Like Socket.IO's io.to([a, b]).emit(): a socket in several of the rooms gets it once.
  std::vector<std::string> rooms;
  for (auto& r : doc["rooms"].GetArray())
    if (std::find(rooms.begin(), rooms.end(), std::string_view{r.GetString(), r.GetStringLength()}) == rooms.end())
      rooms.emplace_back(r.GetString(), r.GetStringLength());
  // One id for the publish; every stored room gets a record (its own offset)
  // and the answer waits for all of them, gathered on the I/O thread (or goes
  // at the first refusal). Rooms not stored get it live.
  struct progress {
    std::vector<std::pair<std::string, uint64_t>> offsets;
    size_t waiting = 0;
    bool failed = false;
  };
  auto p = std::make_shared<progress>();
  auto head = head_of(req);
  auto id = store::new_record_id();
  auto& ioc = ioc_;
  auto outcome_of = [&](const std::string& room) {
    ++p->waiting; // the outcomes are posted to this thread: none is gathered before all are counted
    return std::make_shared<publish_outcome>([hs, head, &ioc, p, id, room](uint64_t offset, const std::string& refusal) {
      asio::post(ioc, [hs, head, p, id, room, offset, refusal] {
        --p->waiting;
        if (p->failed)
          return;
        if (!refusal.empty()) {
          p->failed = true;
          hs->reply(publish_failed(*head, refusal));
          return;
        }
        p->offsets.emplace_back(room, offset);
        if (p->waiting > 0)
          return;
        std::string body = "{\"ok\":true,\"id\":\"" + id + "\",\"offsets\":{";
        for (size_t i = 0; i < p->offsets.size(); ++i) {
          if (i > 0)
            body += ',';
          sio::append_json_string(body, p->offsets[i].first);
          body += ":\"" + std::to_string(p->offsets[i].second) + "\"";
        }
        body += "}}";
        hs->reply(make_response(*head, http::status::ok, std::move(body), "application/json"));
      });
    });
  };
  if (!rt_->publish_to_rooms(rooms, event, data, id, outcome_of)) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again"));
    return;
  }
  if (p->waiting == 0)
    hs->reply(ok_json(req, "{\"ok\":true,\"id\":\"" + id + "\",\"offsets\":{}}"));
}

// Seed 003's backend pushes: the body (a JSON object) goes to the dialog's
// room byte for byte, to both audiences or one (net/plain_wire.hpp); a
// message from the user ("sender":"user") to the admins only. Answered, once
// committed when the room's events are stored, with how many members of each
// audience it was handed to.
void api::dialog_publish(const std::shared_ptr<http_session>& hs, const request& req, const std::string& dialog,
                         bool message) {
  rapidjson::Document doc;
  std::string why;
  if (!json::parse(doc, req.body(), &why) || !ws::valid_utf8(req.body())) {
    auto msg = "Malformed JSON: " + (why.empty() ? std::string{"invalid UTF-8"} : why);
    spdlog::info("api {}: {}", std::string_view{req.target()}, msg);
    hs->reply(json_error(req, http::status::bad_request, "invalid_json", msg));
    return;
  }
  if (!doc.IsObject()) {
    spdlog::info("api {}: the body is not a JSON object", std::string_view{req.target()});
    hs->reply(json_error(req, http::status::bad_request, "invalid_payload", "The body must be a JSON object"));
    return;
  }
  auto to = wire::everyone;
  std::string event;
  if (message) {
    event = "message";
    const rapidjson::Value* m = &doc;
    if (auto w = doc.FindMember("message");
        !doc.HasMember("sender") && w != doc.MemberEnd() && w->value.IsObject())
      m = &w->value; // the legacy wrapped form
    auto sender = m->FindMember("sender");
    if (sender != m->MemberEnd() && sender->value.IsString() && std::string_view{sender->value.GetString()} == "user")
      to = wire::admins; // the widget showed it already
  } else {
    if (auto a = eio::query_param(req.target(), "audience")) {
      auto parsed = wire::parse_audience(*a);
      if (!parsed) {
        hs->reply(json_error(req, http::status::bad_request, "invalid_query", "audience must be admin, site or all"));
        return;
      }
      to = *parsed;
    }
    auto type = doc.FindMember("type");
    event = type != doc.MemberEnd() && type->value.IsString()
              ? std::string{type->value.GetString(), type->value.GetStringLength()}
              : std::string{"event"};
  }
  auto room = dialog_room(dialog);
  auto dir = rt_->directory_for(room);
  if (!dir) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again"));
    return;
  }
  auto head = head_of(req);
  auto& ioc = ioc_;
  auto outcome = std::make_shared<publish_outcome>(publish_outcome::reach_callback{
    [hs, head, &ioc](uint64_t, const std::string& refusal, uint32_t admins, uint32_t sites) {
      asio::post(ioc, [hs, head, refusal, admins, sites] {
        if (!refusal.empty()) {
          hs->reply(publish_failed(*head, refusal));
          return;
        }
        hs->reply(make_response(*head, http::status::ok,
                                "{\"ok\":true,\"delivered\":{\"admin\":" + std::to_string(admins)
                                  + ",\"site\":" + std::to_string(sites) + "}}",
                                "application/json"));
      });
    }});
  if (rt_->stores(room, event)) {
    store::record rec;
    rec.id = store::new_record_id();
    rec.room = std::move(room);
    rec.event = std::move(event);
    rec.data = req.body(); // byte for byte
    rec.audience = to;
    caf::anon_send(dir, publish_atom::value, std::move(rec), std::string{}, sio::delivered_ptr{}, outcome);
  } else {
    caf::anon_send(dir, publish_atom::value, room, event, req.body(), std::string{}, static_cast<uint8_t>(to),
                   outcome);
  }
}

// GET /api/v1/rooms/{room}/messages?after=&before=&limit= : a room's stored
// messages, oldest first. Allowed with the API key, or with a user's token
// (Authorization: Bearer) whose claims allow the room.
std::string api::cors_origin(const request& req) const {
  auto it = req.find(http::field::origin);
  if (it == req.end())
    return {};
  if (origin_allowed(rt_->cfg.cors.origins, it->value()))
    return std::string{it->value()};
  return {};
}

void api::history(const std::shared_ptr<http_session>& reply_to, const request& req, std::string room) {
  // A browser may read it from another origin (parley.cors.origins), as it
  // reaches Socket.IO.
  struct cors_session {
    std::shared_ptr<http_session> hs;
    std::string origin;
    void reply(response res) const {
      add_cors(res, origin);
      hs->reply(std::move(res));
    }
  };
  auto hs = std::make_shared<cors_session>(cors_session{reply_to, cors_origin(req)});
  auto auth = req.find(http::field::authorization);
  if (auth == req.end()) {
    spdlog::info("api {}: no credentials", std::string_view{req.target()});
    hs->reply(json_error(req, http::status::unauthorized, "unauthorized", "Missing API key or token"));
    return;
  }
  auto value = std::string_view{auth->value()};
  if (value.rfind("Bearer ", 0) == 0) {
    connect_request cr;
    cr.authorization = std::string{value};
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count();
    auto who = authenticate(cr, *rt_, now);
    if (std::holds_alternative<std::string>(who)) {
      hs->reply(json_error(req, http::status::unauthorized, "unauthorized", "Invalid token"));
      return;
    }
    if (!may_join(std::get<identity>(who), room)) {
      spdlog::info("api {}: user {} may not read room {}", std::string_view{req.target()},
                   std::get<identity>(who).user_id, room);
      hs->reply(json_error(req, http::status::forbidden, "forbidden", "Not allowed to read " + room));
      return;
    }
  } else if (!key_matches(value)) {
    spdlog::info("api {}: wrong API key", std::string_view{req.target()});
    hs->reply(json_error(req, http::status::unauthorized, "unauthorized", "Invalid API key"));
    return;
  }
  auto target = std::string_view{req.target()};
  uint64_t after = 0, before = 0, limit = 100;
  for (auto [name, out] : {std::pair<const char*, uint64_t*>{"after", &after}, {"before", &before}}) {
    if (auto v = eio::query_param(target, name)) {
      auto n = store::parse_offset(*v);
      if (!n) {
        hs->reply(json_error(req, http::status::bad_request, "invalid_query",
                             std::string{name} + " must be an offset (a decimal number)"));
        return;
      }
      *out = *n;
    }
  }
  if (auto v = eio::query_param(target, "limit")) {
    auto n = store::parse_offset(*v);
    if (!n || *n < 1 || *n > 1000) {
      hs->reply(json_error(req, http::status::bad_request, "invalid_query", "limit must be within 1..1000"));
      return;
    }
    limit = *n;
  }
  bool backwards = eio::query_param(target, "before").has_value() && !eio::query_param(target, "after").has_value();
  auto store = rt_->store();
  if (!store) {
    hs->reply(json_error(req, http::status::service_unavailable, "store_unavailable",
                         "The message store is unavailable: the store is restarting"));
    return;
  }
  auto head = head_of(req);
  auto answer = answer_on(ioc_, hs);
  rt_->sys.spawn([store, room, after, before, limit, backwards, head, answer](caf::event_based_actor* self) {
    // One more than asked: whether there is a next page.
    self->request(store, std::chrono::seconds(10), store_history_atom::value, room, after, before, limit + 1, backwards)
      .then(
        [limit, backwards, head, answer](std::vector<store::record>& recs) {
          bool more = recs.size() > limit;
          if (more) {
            if (backwards)
              recs.erase(recs.begin());
            else
              recs.pop_back();
          }
          std::string body = "{\"messages\":[";
          for (size_t i = 0; i < recs.size(); ++i) {
            if (i > 0)
              body += ',';
            append_record(body, recs[i]);
          }
          body += "],\"next\":";
          if (more && !recs.empty())
            body += "\"" + std::to_string(backwards ? recs.front().offset : recs.back().offset) + "\"";
          else
            body += "null";
          body += "}";
          answer(make_response(*head, http::status::ok, std::move(body), "application/json"));
        },
        [self, head, answer](caf::error& err) { answer(publish_failed(*head, error_text(self->system(), err))); });
  });
}

void api::presence(const std::shared_ptr<http_session>& hs, const request& req, std::string user) {
  auto p = rt_->presence();
  auto head = head_of(req);
  auto answer = answer_on(ioc_, hs);
  if (!p) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Presence is restarting"));
    return;
  }
  rt_->sys.spawn([p, user, head, answer](caf::event_based_actor* self) {
    self->request(p, std::chrono::seconds(5), presence_atom::value, user)
      .then(
        [user, head, answer](bool online, uint64_t n) {
          std::string body = "{\"userId\":";
          sio::append_json_string(body, user);
          body += ",\"online\":";
          body += online ? "true" : "false";
          body += ",\"connections\":" + std::to_string(n) + "}";
          answer(make_response(*head, http::status::ok, std::move(body), "application/json"));
        },
        [head, answer](caf::error&) {
          answer(json_error(*head, http::status::service_unavailable, "unavailable",
                            "Presence did not answer"));
        });
  });
}

// The user's live Socket.IO sockets join or leave rooms (Socket.IO's
// socketsJoin / socketsLeave), or are disconnected (disconnectSockets):
// presence knows them and asks each; answered once each has done it, with how
// many did ({"ok":true,"sockets":N}).
void api::user_sockets(const std::shared_ptr<http_session>& hs, const request& req, std::string user,
                       std::string_view action) {
  caf::message msg;
  if (action == "disconnect") {
    msg = caf::make_message(disconnect_atom::value, std::move(user));
  } else {
    rapidjson::Document doc;
    if (!parse_body(hs, req, "api.users.rooms", doc))
      return;
    std::vector<std::string> rooms;
    for (auto& r : doc["rooms"].GetArray())
      if (std::find(rooms.begin(), rooms.end(), std::string_view{r.GetString(), r.GetStringLength()}) == rooms.end())
        rooms.emplace_back(r.GetString(), r.GetStringLength());
    if (action == "join")
      msg = caf::make_message(join_atom::value, std::move(user), std::move(rooms));
    else
      msg = caf::make_message(leave_atom::value, std::move(user), std::move(rooms));
  }
  auto p = rt_->presence();
  if (!p) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Presence is restarting"));
    return;
  }
  auto head = head_of(req);
  auto answer = answer_on(ioc_, hs);
  rt_->sys.spawn([p, msg, head, answer](caf::event_based_actor* self) {
    self->request(p, std::chrono::seconds(5), msg)
      .then(
        [head, answer](uint64_t n) {
          rapidjson::StringBuffer buf;
          rapidjson::Writer<rapidjson::StringBuffer> w(buf);
          w.StartObject();
          w.Key("ok");
          w.Bool(true);
          w.Key("sockets");
          w.Uint64(n);
          w.EndObject();
          answer(make_response(*head, http::status::ok, std::string{buf.GetString(), buf.GetSize()},
                               "application/json"));
        },
        [head, answer](caf::error&) {
          answer(json_error(*head, http::status::service_unavailable, "unavailable", "Presence did not answer"));
        });
  });
}

// A room's members (Socket.IO's fetchSockets): how many sockets (Socket.IO
// and plain WebSocket) and the distinct users among them, sorted.
void api::room_members(const std::shared_ptr<http_session>& hs, const request& req, std::string room) {
  auto dir = rt_->directory_for(room);
  if (!dir) {
    hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again"));
    return;
  }
  auto head = head_of(req);
  auto answer = answer_on(ioc_, hs);
  rt_->sys.spawn([dir, room, head, answer](caf::event_based_actor* self) {
    self->request(dir, std::chrono::seconds(5), members_atom::value, room)
      .then(
        [room, head, answer](uint64_t sockets, std::vector<std::string>& users) {
          rapidjson::StringBuffer buf;
          rapidjson::Writer<rapidjson::StringBuffer> w(buf);
          w.StartObject();
          w.Key("room");
          w.String(room.data(), static_cast<rapidjson::SizeType>(room.size()));
          w.Key("sockets");
          w.Uint64(sockets);
          w.Key("users");
          w.StartArray();
          for (auto& u : users)
            w.String(u.data(), static_cast<rapidjson::SizeType>(u.size()));
          w.EndArray();
          w.EndObject();
          answer(make_response(*head, http::status::ok, std::string{buf.GetString(), buf.GetSize()},
                               "application/json"));
        },
        [head, answer](caf::error&) {
          answer(json_error(*head, http::status::service_unavailable, "unavailable", "Rooms are restarting, try again"));
        });
  });
}

} // namespace parley::net
