#include "tools/rtm-sim/rtm_service.hpp"

#include <algorithm>
#include <map>

#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "net/listener.hpp"
#include "net/socketio_packet.hpp"
#include "tools/rtm-sim/replies.hpp"

namespace parley::rtmsim {

namespace {

// Every cookie of a request's Cookie headers ("a=b; c=d"), by name.
std::map<std::string, std::string> parse_cookies(const net::request& req) {
  std::map<std::string, std::string> cookies;
  auto trim = [](std::string_view s) {
    auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos)
      return std::string_view{};
    auto e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
  };
  for (auto [it, end] = req.equal_range(http::field::cookie); it != end; ++it) {
    std::string_view rest{it->value().data(), it->value().size()};
    while (!rest.empty()) {
      auto semi = rest.find(';');
      auto pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      auto eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0)
        continue;
      auto name = trim(pair.substr(0, eq));
      auto value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      cookies.emplace(std::string{name}, std::string{value}); // the first one wins
    }
  }
  return cookies;
}

// All Cookie headers as they came, joined as one.
std::optional<std::string> cookie_header(const net::request& req) {
  std::optional<std::string> out;
  for (auto [it, end] = req.equal_range(http::field::cookie); it != end; ++it) {
    if (out)
      *out += "; ";
    else
      out.emplace();
    *out += std::string_view{it->value().data(), it->value().size()};
  }
  return out;
}

std::optional<std::string> header(const net::request& req, http::field f) {
  auto it = req.find(f);
  if (it == req.end())
    return std::nullopt;
  return std::string{it->value()};
}

int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace

std::string push_frame(const std::string& profile_id, std::string_view event_json) {
  std::string out = "{\"push\":{\"channel\":";
  sio::append_json_string(out, "personal:" + profile_id);
  out += ",\"pub\":{\"data\":";
  out += event_json;
  out += "}}}";
  return out;
}

rtm_service::rtm_service(asio::io_context& ioc, sim_state& state, std::chrono::seconds ping_interval)
  : ioc_(ioc), state_(state), ping_interval_(ping_interval), ping_timer_(ioc) {
}

void rtm_service::start() {
  schedule_ping();
}

void rtm_service::shutdown() {
  shut_down_ = true;
  ping_timer_.cancel();
  for (auto& h : held_)
    h->timer.cancel();
  held_.clear();
  state_.api_held = 0;
  drop(std::nullopt, websocket::close_code::going_away, "rtm-sim shutting down");
}

// -- routing -------------------------------------------------------------------

void rtm_service::handle(const std::shared_ptr<net::http_session>& hs, net::request&& req) {
  auto path = net::target_path(req.target());
  auto method_not_allowed = [&] {
    auto res = error_reply(req, http::status::method_not_allowed, "method not allowed");
    if (websocket::is_upgrade(req))
      res.keep_alive(false);
    hs->reply(std::move(res));
  };
  if (path == "/auth/login") {
    if (req.method() != http::verb::post)
      return method_not_allowed();
    return login(hs, std::move(req));
  }
  if (path == "/rtm") {
    if (req.method() != http::verb::get)
      return method_not_allowed();
    return upgrade(hs, std::move(req));
  }
  constexpr std::string_view clients = "/clients/";
  if (path.substr(0, clients.size()) == clients) {
    auto id = path.substr(clients.size());
    if (!id.empty() && id.find('/') == std::string_view::npos) {
      if (req.method() != http::verb::get)
        return method_not_allowed();
      return client_profile(hs, std::move(req), std::string{id});
    }
  }
  auto res = error_reply(req, http::status::not_found, "no such endpoint: " + std::string{path});
  if (websocket::is_upgrade(req))
    res.keep_alive(false);
  hs->reply(std::move(res));
}

// -- POST /auth/login ----------------------------------------------------------

void rtm_service::login(const std::shared_ptr<net::http_session>& hs, net::request&& req) {
  auto parsed = parse_object(req.body());
  if (auto err = std::get_if<std::string>(&parsed)) {
    spdlog::info("login: bad request: {}", *err);
    return hs->reply(error_reply(req, http::status::bad_request, *err));
  }
  auto& body = std::get<rapidjson::Document>(parsed);
  for (auto field : {"profileId", "password"}) {
    auto it = body.FindMember(field);
    if (it == body.MemberEnd() || !it->value.IsString()) {
      auto err = std::string{"\""} + field + "\" must be a string";
      spdlog::info("login: bad request: {}", err);
      return hs->reply(error_reply(req, http::status::bad_request, err));
    }
  }
  std::string profile_id = body["profileId"].GetString();
  std::string password = body["password"].GetString();
  auto& stats = state_.stats(profile_id);
  if (!state_.check_password(profile_id, password)) {
    ++stats.failed_logins;
    spdlog::info("login {}: invalid credentials", profile_id);
    return hs->reply(error_reply(req, http::status::unauthorized, "invalid credentials"));
  }
  ++stats.logins;
  auto token = state_.issue_session(profile_id);
  std::string reply = "{\"ok\":true,\"profileId\":";
  sio::append_json_string(reply, profile_id);
  reply += "}";
  auto res = json_reply(req, http::status::ok, std::move(reply));
  res.insert(http::field::set_cookie, "tld-token=" + token + "; Path=/; HttpOnly");
  res.insert(http::field::set_cookie, "tld-user=" + profile_id + "; Path=/");
  spdlog::info("login {}: ok, session {}", profile_id, token);
  hs->reply(std::move(res));
}

// -- GET /rtm ------------------------------------------------------------------

void rtm_service::upgrade(const std::shared_ptr<net::http_session>& hs, net::request&& req) {
  if (!websocket::is_upgrade(req)) {
    auto res = error_reply(req, http::status::upgrade_required, "upgrade required");
    res.set(http::field::upgrade, "websocket");
    return hs->reply(std::move(res));
  }
  auto cookies = parse_cookies(req);
  const rtm_session* session = nullptr;
  if (auto it = cookies.find("tld-token"); it != cookies.end())
    session = state_.find_session(it->second);
  // Whose attempt this is: the session's profile, else what tld-user claims.
  std::optional<std::string> who;
  if (session)
    who = session->profile_id;
  else if (auto it = cookies.find("tld-user"); it != cookies.end())
    who = it->second;
  profile_stats* stats = who ? &state_.stats(*who) : nullptr;
  if (stats) {
    stats->last_origin = header(req, http::field::origin);
    stats->last_cookie = cookie_header(req);
  }
  auto refuse = [&](http::status status, std::string_view message) {
    if (stats)
      ++stats->refused_upgrades;
    spdlog::info("rtm upgrade{}{}: refused with {} ({})", who ? " for " : "", who.value_or(""),
                 static_cast<unsigned>(status), message);
    auto res = error_reply(req, status, message);
    res.keep_alive(false);
    hs->reply(std::move(res));
  };
  if (state_.refusing())
    return refuse(http::status::service_unavailable, "unavailable");
  if (!session || !session->valid(sim_clock::now()))
    return refuse(http::status::unauthorized, "session expired");
  accept(hs, std::move(req), session->profile_id);
}

void rtm_service::accept(const std::shared_ptr<net::http_session>& hs, net::request&& req,
                         std::string profile_id) {
  auto ws = std::make_shared<net::ws_stream>(hs->take_websocket());
  websocket::stream_base::timeout t;
  t.handshake_timeout = std::chrono::seconds(5); // also bounds the close handshake
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws->set_option(t);
  ws->read_message_max(1 << 20);
  ws->set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::server, "rtm-sim");
  }));
  auto req_ptr = std::make_shared<net::request>(std::move(req));
  ws->async_accept(*req_ptr, [this, ws, req_ptr, profile_id](beast::error_code ec) {
    if (ec) {
      spdlog::info("rtm {}: WebSocket handshake failed: {}", profile_id, ec.message());
      return;
    }
    if (shut_down_) {
      ws->async_close(websocket::close_code::going_away, [ws](beast::error_code) {});
      return;
    }
    auto& stats = state_.stats(profile_id);
    ++stats.connections;
    stats.connect_times.push_back(epoch_ms());
    auto c = std::make_shared<rtm_connection>(*this, ws, profile_id);
    connections_.push_back(c);
    spdlog::info("rtm {}: WebSocket open ({} open for this profile)", profile_id, stats.connections);
    c->start();
  });
}

// -- GET /clients/{id} ---------------------------------------------------------

void rtm_service::client_profile(const std::shared_ptr<net::http_session>& hs, net::request&& req,
                                 std::string client_id) {
  auto cookies = parse_cookies(req);
  auto token = cookies.find("tld-token");
  auto session = token == cookies.end() ? nullptr : state_.find_session(token->second);
  if (!session || !session->valid(sim_clock::now())) {
    spdlog::info("client api {}: refused, session expired", client_id);
    return hs->reply(error_reply(req, http::status::unauthorized, "session expired"));
  }
  ++state_.api_requests[client_id];
  if (state_.api_latency.count() == 0)
    return answer_client_profile(hs, req, client_id);
  // The delay is a timer: other traffic goes on meanwhile.
  auto h = std::make_shared<held_request>(ioc_, state_.api_latency, hs, std::move(req), client_id);
  held_.push_back(h);
  ++state_.api_held;
  h->timer.async_wait([this, h](beast::error_code ec) {
    if (!ec)
      answer_held(h);
  });
}

void rtm_service::answer_held(const std::shared_ptr<held_request>& h) {
  auto it = std::find(held_.begin(), held_.end(), h);
  if (it == held_.end())
    return; // released already (its timer had expired, the handler was still queued)
  held_.erase(it);
  --state_.api_held;
  answer_client_profile(h->hs, h->req, h->client_id);
}

int rtm_service::release_held() {
  auto all = held_; // answer_held takes each out of held_
  for (auto& h : all) {
    h->timer.cancel();
    answer_held(h);
  }
  return static_cast<int>(all.size());
}

void rtm_service::answer_client_profile(const std::shared_ptr<net::http_session>& hs,
                                        const net::request& req, const std::string& client_id) {
  if (std::uniform_real_distribution<double>{0.0, 1.0}(rng_) < state_.api_failure_rate) {
    ++state_.api_failures;
    ++state_.api_answered[client_id];
    spdlog::info("client api {}: simulated failure", client_id);
    return hs->reply(error_reply(req, http::status::internal_server_error, "simulated failure"));
  }
  auto data = state_.client(client_id);
  std::string body = "{\"id\":";
  sio::append_json_string(body, client_id);
  body += ",\"name\":";
  sio::append_json_string(body, data.name);
  body += ",\"avatar\":";
  sio::append_json_string(body, data.avatar);
  body += "}";
  ++state_.api_answered[client_id];
  spdlog::info("client api {}: answered", client_id);
  hs->reply(json_reply(req, http::status::ok, std::move(body)));
}

// -- fan-out -------------------------------------------------------------------

std::vector<std::shared_ptr<rtm_connection>>
rtm_service::select(const std::optional<std::string>& profile_id, bool subscribed_only) const {
  std::vector<std::shared_ptr<rtm_connection>> out;
  for (auto& c : connections_) {
    if (profile_id && c->profile_id() != *profile_id)
      continue;
    if (subscribed_only ? c->subscribed() : c->open())
      out.push_back(c);
  }
  return out;
}

int rtm_service::push(const std::string& profile_id, std::string_view event_json, int times,
                      bool batch) {
  auto frame = push_frame(profile_id, event_json);
  std::vector<message_ptr> messages;
  if (batch) {
    std::string joined;
    for (int i = 0; i < times; ++i) {
      if (i)
        joined += '\n';
      joined += frame;
    }
    messages.push_back(std::make_shared<const std::string>(std::move(joined)));
  } else {
    // One buffer, sent `times` times.
    messages.assign(times, std::make_shared<const std::string>(std::move(frame)));
  }
  auto targets = select(profile_id, true);
  for (auto& c : targets)
    for (auto& m : messages)
      c->send(m);
  return static_cast<int>(targets.size());
}

int rtm_service::send_raw(const std::string& profile_id, std::string text) {
  auto message = std::make_shared<const std::string>(std::move(text));
  auto targets = select(profile_id, true);
  for (auto& c : targets)
    c->send(message);
  return static_cast<int>(targets.size());
}

int rtm_service::ping(const std::optional<std::string>& profile_id) {
  static const auto ping_message = std::make_shared<const std::string>("{}");
  auto targets = select(profile_id, true);
  for (auto& c : targets)
    c->send(ping_message);
  return static_cast<int>(targets.size());
}

int rtm_service::drop(const std::optional<std::string>& profile_id, uint16_t code,
                      std::string_view reason, bool abrupt) {
  auto targets = select(profile_id, false);
  for (auto& c : targets) {
    if (abrupt)
      c->abort();
    else
      c->close(code, reason);
  }
  return static_cast<int>(targets.size());
}

void rtm_service::forget(const rtm_connection& c) {
  connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                    [&](const auto& p) { return p.get() == &c; }),
                     connections_.end());
}

void rtm_service::schedule_ping() {
  if (ping_interval_.count() == 0 || shut_down_)
    return;
  ping_timer_.expires_after(ping_interval_);
  ping_timer_.async_wait([this](beast::error_code ec) {
    if (ec || shut_down_)
      return;
    ping(std::nullopt);
    schedule_ping();
  });
}

} // namespace parley::rtmsim
