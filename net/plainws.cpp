#include "net/plainws.hpp"

#include <algorithm>

#include <boost/beast/websocket/rfc6455.hpp>
#include <caf/send.hpp>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "net/http_client.hpp"
#include "net/json.hpp"
#include "net/listener.hpp"
#include "net/metrics.hpp"
#include "net/plain_wire.hpp"
#include "net/socketio_packet.hpp"
#include "net/socketio_server.hpp"
#include "store/record.hpp"

namespace parley::plainws {

namespace {

eio::options plain_options(const settings& s) {
  eio::options o;
  o.plain = true;
  o.ping_interval = s.plainws.ping_interval;
  o.ping_timeout = s.plainws.ping_timeout;
  o.max_payload = s.plainws.max_message;
  o.max_write_queue = s.limits.max_write_queue;
  o.max_connections = s.plainws.max_total;
  o.max_connections_per_ip = s.limits.max_connections_per_ip;
  o.max_inbound_packets = static_cast<uint32_t>(s.limits.max_inbound_packets);
  return o;
}

} // namespace

bool valid_dialog_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'
           || c == ':' || c == '-';
  });
}

namespace {

std::string_view flavour_of(plain_kind k) {
  switch (k) {
    case plain_kind::subscribe: return wire::envelope;
    case plain_kind::admin: return wire::dialog_admin;
    default: return wire::dialog_site;
  }
}

// The I/O half of one plain connection: the session's handler. It makes the
// connection's socket and actor when the session starts, hands the client's
// messages to the actor, and tells it and the front door when it closes.
class link : public eio::session_handler {
public:
  link(front& f, runtime_ptr rt, plain_request req) : front_(f), rt_(std::move(rt)), req_(std::move(req)) {
  }

  void on_open(eio::session& s) override {
    dialog_ = req_.kind == plain_kind::subscribe ? std::string{} : req_.dialog;
    if (!dialog_.empty())
      front_.opened(dialog_);
    sock_ = std::make_shared<sio::socket>(s.shared_from_this(), std::string{flavour_of(req_.kind)},
                                          sio::new_socket_id());
    sock_->set_user(req_.who.user_id);
    if (req_.who.expires_at > 0 && rt_->cfg.auth.disconnect_on_expiry)
      sock_->set_expiry(req_.who.expires_at * 1000);
    // Told only of a passed expiry while open (the session's close reaches on_close below).
    sock_->on_close = [weak = std::weak_ptr<eio::session>(s.shared_from_this())](std::string_view reason) {
      if (auto s = weak.lock(); s && reason == sio::socket::token_expired)
        s->close("token expired", 1008);
    };
    conn_ = rt_->sys.spawn(plain_connection, sock_, std::move(req_), rt_);
    sock_->check_expiry(s.owner().opts().ping_interval);
  }

  void on_ping(eio::session& s) override {
    sock_->check_expiry(s.owner().opts().ping_interval);
  }

  void on_message(eio::session&, eio::packet&& p) override {
    sock_->packet_in(); // done by the actor once handled (backpressure)
    if (p.binary)
      caf::anon_send(conn_, packet_atom::value);
    else
      caf::anon_send(conn_, packet_atom::value, std::move(p.data));
  }

  void on_close(eio::session&, std::string_view reason) override {
    if (!dialog_.empty())
      front_.closed(dialog_);
    sock_->mark_closed();
    caf::anon_send(conn_, closed_atom::value, std::string{reason});
  }

private:
  front& front_;
  runtime_ptr rt_;
  plain_request req_; // until the actor takes it
  std::string dialog_;
  std::shared_ptr<sio::socket> sock_;
  caf::actor conn_;
};

} // namespace

front::front(asio::io_context& ioc, runtime_ptr rt)
  : ioc_(ioc), rt_(std::move(rt)), server_(ioc, plain_options(rt_->cfg), [](eio::session&) {
      return std::unique_ptr<eio::session_handler>{}; // sessions start with their own link
    }) {
}

void front::opened(const std::string& dialog) {
  ++per_dialog_[dialog];
}

void front::closed(const std::string& dialog) {
  auto it = per_dialog_.find(dialog);
  if (it != per_dialog_.end() && --it->second == 0)
    per_dialog_.erase(it);
}

void front::refuse(const std::shared_ptr<http_session>& hs, const request& req, int status, std::string_view code,
                   std::string message) {
  spdlog::info("plain WebSocket {} from {} refused: {}", std::string_view{target_path(req.target())},
               hs->remote().address().to_string(), message);
  counters().plain_refused.fetch_add(1, std::memory_order_relaxed);
  auto res = json_error(req, static_cast<http::status>(status), code, message);
  res.keep_alive(false);
  hs->reply(std::move(res));
}

void front::handle(const std::shared_ptr<http_session>& hs, request&& req) {
  auto path = std::string{target_path(req.target())};
  plain_request pr;
  constexpr std::string_view admin = "/ws/dialogs/", site = "/ws/site/dialogs/", widget = "/ws/widget/dialogs/";
  auto under = [&](std::string_view prefix) { return path.compare(0, prefix.size(), prefix) == 0; };
  if (path == "/ws") {
    pr.kind = plain_kind::subscribe;
  } else if (under(admin)) {
    pr.kind = plain_kind::admin;
    pr.dialog = path.substr(admin.size());
  } else if (under(site)) {
    pr.kind = plain_kind::site;
    pr.dialog = path.substr(site.size());
  } else if (under(widget)) {
    pr.kind = plain_kind::widget;
    pr.dialog = path.substr(widget.size());
  } else {
    refuse(hs, req, 404, "not_found", "No route for " + path);
    return;
  }
  bool dialog = pr.kind != plain_kind::subscribe;
  if (!boost::beast::websocket::is_upgrade(req)) {
    refuse(hs, req, 426, "upgrade_required", "Connect with a WebSocket upgrade");
    return;
  }
  if (dialog && !valid_dialog_id(pr.dialog)) {
    refuse(hs, req, 400, "invalid_path", "Malformed dialog id");
    return;
  }
  auto target = req.target();
  if (auto after = eio::query_param(target, "after"); after && dialog) {
    pr.after = store::parse_offset(*after);
    if (!pr.after) {
      refuse(hs, req, 400, "invalid_query", "after must be an offset (a decimal number)");
      return;
    }
  }
  if (pr.kind == plain_kind::subscribe || pr.kind == plain_kind::admin) {
    connect_request cr;
    if (auto it = req.find(http::field::authorization); it != req.end())
      cr.authorization = std::string{it->value()};
    cr.query_token = eio::query_param(target, "token").value_or("");
    cr.query_user_id = eio::query_param(target, "userId").value_or("");
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count();
    auto who = authenticate(cr, *rt_, now);
    if (std::holds_alternative<std::string>(who)) {
      bool missing = cr.query_token.empty() && cr.authorization.rfind("Bearer ", 0) != 0;
      if (missing)
        refuse(hs, req, 401, "unauthorized", "Missing token");
      else
        refuse(hs, req, 403, "forbidden", "Invalid token");
      return;
    }
    pr.who = std::get<identity>(std::move(who));
    if (pr.kind == plain_kind::admin && !may_join(pr.who, dialog_room(pr.dialog))) {
      refuse(hs, req, 403, "forbidden", "Token does not allow " + dialog_room(pr.dialog));
      return;
    }
    admit(hs, std::move(req), std::move(pr));
    return;
  }
  std::string mode = pr.kind == plain_kind::site ? "site_token" : "assistant_id";
  auto credential = eio::query_param(target, mode).value_or("");
  if (credential.empty()) {
    refuse(hs, req, 401, "unauthorized", "Missing " + mode);
    return;
  }
  if (credential.size() > max_credential) { // not worth asking about (nor keeping)
    refuse(hs, req, 403, "forbidden", mode + " refused for dialog " + pr.dialog);
    return;
  }
  pr.who.user_id = (pr.kind == plain_kind::site ? "site:" : "widget:") + pr.dialog;
  auto held = std::make_shared<request>(std::move(req));
  auto dialog_id = pr.dialog;
  check_credential(mode, credential, dialog_id,
                   [this, hs, held, pr = std::move(pr), mode](bool allowed, const std::string& why) mutable {
                     if (!why.empty())
                       refuse(hs, *held, 403, "forbidden", mode + " could not be checked: " + why);
                     else if (!allowed)
                       refuse(hs, *held, 403, "forbidden", mode + " refused for dialog " + pr.dialog);
                     else
                       admit(hs, std::move(*held), std::move(pr));
                   });
}

void front::admit(const std::shared_ptr<http_session>& hs, request&& req, plain_request pr) {
  // (after close_all, open_plain closes what still comes: 1001)
  auto& cfg = rt_->cfg.plainws;
  if (pr.kind != plain_kind::subscribe) {
    auto it = per_dialog_.find(pr.dialog);
    if (it != per_dialog_.end() && it->second >= cfg.max_per_dialog) {
      spdlog::info("plain WebSocket from {}: closed, max-per-dialog {} reached for dialog {}",
                   hs->remote().address().to_string(), cfg.max_per_dialog, pr.dialog);
      counters().plain_refused.fetch_add(1, std::memory_order_relaxed);
      server_.accept_and_close(hs, std::move(req), 1013,
                               "too many connections to this dialog (max-per-dialog "
                                 + std::to_string(cfg.max_per_dialog) + ")");
      return;
    }
  }
  // (max-total is the plain server's connection limit: open_plain closes beyond it)
  server_.open_plain(hs, std::move(req), std::make_unique<link>(*this, rt_, std::move(pr)));
}

void front::check_credential(const std::string& mode, const std::string& credential, const std::string& dialog,
                             verdict done) {
  auto& cfg = rt_->cfg.plainws;
  auto& listed = mode == "site_token" ? cfg.site_tokens : cfg.assistants;
  if (std::find(listed.begin(), listed.end(), credential) != listed.end()) {
    done(true, {});
    return;
  }
  if (cfg.validate_url.empty()) {
    done(false, {});
    return;
  }
  std::string key = mode;
  key += '\0';
  key += credential;
  key += '\0';
  key += dialog;
  auto now = std::chrono::steady_clock::now();
  if (auto it = decided_.find(key); it != decided_.end()) {
    if (now < it->second.until) {
      done(it->second.allowed, {});
      return;
    }
    decided_.erase(it);
  }
  if (auto it = asking_.find(key); it != asking_.end()) {
    it->second.push_back(std::move(done)); // the same question is on its way
    return;
  }
  if (asking_.size() >= max_checks_in_flight) {
    done(false, "too many checks in flight");
    return;
  }
  asking_[key].push_back(std::move(done));
  // The answer within validate-timeout, however long each step takes (name
  // resolution included): then the waiting are told it did not come.
  auto deadline = std::make_shared<asio::steady_timer>(ioc_, cfg.validate_timeout + std::chrono::milliseconds(50));
  deadline->async_wait([this, key, deadline](boost::system::error_code ec) {
    if (!ec)
      answer(key, false,
             "no answer within " + std::to_string(rt_->cfg.plainws.validate_timeout.count()) + " ms");
  });
  std::string body = "{\"mode\":";
  sio::append_json_string(body, mode);
  body += ",\"credential\":";
  sio::append_json_string(body, credential);
  body += ",\"dialogId\":";
  sio::append_json_string(body, dialog);
  body += '}';
  net::http_call call;
  call.method = "POST";
  call.url = cfg.validate_url;
  call.headers = {{"Authorization", "apikey " + rt_->cfg.api.key}, {"Content-Type", "application/json"}};
  call.body = std::move(body);
  call.timeout = cfg.validate_timeout;
  net::http_fetch(ioc_, std::move(call), [this, key, mode, deadline](net::http_result r) {
    deadline->cancel();
    auto& cfg = rt_->cfg.plainws;
    std::string why;
    bool allowed = false;
    if (r.status == 0) {
      why = r.error.find("timeout") != std::string::npos
              ? "no answer within " + std::to_string(cfg.validate_timeout.count()) + " ms"
              : r.error;
      spdlog::warn("plainws: asking {} about a {} failed: {}", cfg.validate_url, mode, why);
    } else if (r.status >= 500 || r.status == 408 || r.status == 429) {
      // The backend failed or is busy: no decision (nothing cached), refused for now.
      why = "the backend answered " + std::to_string(r.status);
      spdlog::warn("plainws: asking {} about a {} failed: {}", cfg.validate_url, mode, why);
    } else if (r.status == 200) {
      rapidjson::Document doc;
      if (json::parse(doc, r.body) && doc.IsObject()) {
        auto a = doc.FindMember("allow");
        allowed = a != doc.MemberEnd() && a->value.IsBool() && a->value.GetBool();
      }
    }
    if (why.empty()) {
      // Decisions are kept; a failure to ask is not. The table is bounded:
      // when full, the expired entries go, and all of them if that frees
      // less than a tenth (so a full table costs one sweep per many inserts).
      if (decided_.size() >= max_decisions) {
        auto now = std::chrono::steady_clock::now();
        for (auto it = decided_.begin(); it != decided_.end();)
          it = it->second.until <= now ? decided_.erase(it) : std::next(it);
        if (decided_.size() >= max_decisions - max_decisions / 10)
          decided_.clear();
      }
      auto ttl = allowed ? cfg.validate_cache_ttl : cfg.validate_cache_ttl / 10;
      if (ttl.count() > 0)
        decided_[key] = decision{allowed, std::chrono::steady_clock::now() + ttl};
    }
    answer(key, allowed, why);
  });
}

void front::answer(const std::string& key, bool allowed, const std::string& why) {
  auto it = asking_.find(key);
  if (it == asking_.end())
    return; // told already (the deadline passed)
  auto waiting = std::move(it->second);
  asking_.erase(it);
  for (auto& w : waiting)
    w(allowed, why);
}

} // namespace parley::plainws
