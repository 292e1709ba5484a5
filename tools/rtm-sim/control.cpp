#include "tools/rtm-sim/control.hpp"

#include <algorithm>
#include <vector>

#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include "net/listener.hpp"
#include "net/socketio_packet.hpp"
#include "tools/rtm-sim/replies.hpp"
#include "tools/rtm-sim/rtm_service.hpp"

namespace parley::rtmsim {

namespace {

constexpr std::string_view default_malformed_frame = R"({"push":{"channel":)";

// Reads the fields of one action; keeps the first problem.
class field_reader {
public:
  explicit field_reader(const rapidjson::Value& obj) : obj_(obj) {}

  const std::string& error() const { return error_; }

  std::optional<std::string> text(const char* name, bool required, bool allow_empty = false) {
    auto v = find(name);
    if (!v) {
      if (required)
        fail(std::string{"\""} + name + "\" is required");
      return std::nullopt;
    }
    if (!v->IsString() || (!allow_empty && v->GetStringLength() == 0)) {
      fail(std::string{"\""} + name + "\" must be a " + (allow_empty ? "" : "non-empty ") + "string");
      return std::nullopt;
    }
    return std::string{v->GetString(), v->GetStringLength()};
  }

  bool flag(const char* name, bool fallback) {
    auto v = find(name);
    if (!v)
      return fallback;
    if (!v->IsBool()) {
      fail(std::string{"\""} + name + "\" must be true or false");
      return fallback;
    }
    return v->GetBool();
  }

  std::optional<int64_t> integer(const char* name, int64_t min, int64_t max) {
    auto v = find(name);
    if (!v)
      return std::nullopt;
    if (!v->IsInt64() || v->GetInt64() < min || v->GetInt64() > max) {
      fail(std::string{"\""} + name + "\" must be a whole number from " + std::to_string(min)
           + " to " + std::to_string(max));
      return std::nullopt;
    }
    return v->GetInt64();
  }

  std::optional<double> number(const char* name, double min, double max, bool required = false) {
    auto v = find(name);
    if (!v) {
      if (required)
        fail(std::string{"\""} + name + "\" is required");
      return std::nullopt;
    }
    if (!v->IsNumber() || v->GetDouble() < min || v->GetDouble() > max) {
      fail(std::string{"\""} + name + "\" must be a number from " + trimmed(min) + " to "
           + trimmed(max));
      return std::nullopt;
    }
    return v->GetDouble();
  }

  // A JSON object, as compact JSON text.
  std::optional<std::string> object(const char* name) {
    auto v = find(name);
    if (!v) {
      fail(std::string{"\""} + name + "\" is required");
      return std::nullopt;
    }
    if (!v->IsObject()) {
      fail(std::string{"\""} + name + "\" must be a JSON object");
      return std::nullopt;
    }
    return sio::to_json(*v);
  }

private:
  const rapidjson::Value* find(const char* name) const {
    auto it = obj_.FindMember(name);
    return it == obj_.MemberEnd() ? nullptr : &it->value;
  }
  void fail(std::string msg) {
    if (error_.empty())
      error_ = std::move(msg);
  }
  static std::string trimmed(double d) {
    auto s = std::to_string(d);
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.')
      s.pop_back();
    return s;
  }

  const rapidjson::Value& obj_;
  std::string error_;
};

std::optional<control_action> read(std::string_view name, field_reader& r) {
  if (name == "profiles")
    return action::profiles{r.text("id", true).value_or(""), r.text("password", true, true).value_or("")};
  if (name == "sessions")
    return action::sessions{r.text("profileId", true).value_or("")};
  if (name == "emit") {
    action::emit a;
    a.profile_id = r.text("profileId", true).value_or("");
    a.event_json = r.object("event").value_or("");
    a.times = static_cast<int>(r.integer("times", 1, 10000).value_or(1));
    a.batch = r.flag("batch", false);
    return a;
  }
  if (name == "drop")
    return action::drop{r.text("profileId", false), r.flag("abrupt", false)};
  if (name == "refuse") {
    auto seconds = r.number("seconds", 0, 24 * 3600, true);
    return action::refuse{std::chrono::milliseconds(static_cast<int64_t>(seconds.value_or(0) * 1000)),
                          r.flag("drop", false)};
  }
  if (name == "expire-sessions")
    return action::expire_sessions{r.flag("drop", true)};
  if (name == "malformed")
    return action::malformed{r.text("profileId", true).value_or(""),
                             r.text("frame", false, true).value_or(std::string{default_malformed_frame})};
  if (name == "stop")
    return action::stop{};
  if (name == "start")
    return action::start{};
  if (name == "ping")
    return action::ping{r.text("profileId", false)};
  if (name == "api") {
    action::api a;
    if (auto ms = r.integer("latencyMs", 0, 600000))
      a.latency = std::chrono::milliseconds(*ms);
    a.failure_rate = r.number("failureRate", 0, 1);
    return a;
  }
  if (name == "release")
    return action::release{};
  if (name == "clients")
    return action::clients{r.text("id", true).value_or(""), r.text("name", false, true),
                           r.text("avatar", false, true)};
  return std::nullopt;
}

std::string json_count(const char* key, int n) {
  return std::string{"{\""} + key + "\":" + std::to_string(n) + "}";
}

// One overload per action: what it does, and what the control API answers.
struct performer {
  rtm_service& service;
  sim_state& state = service.state();

  std::string operator()(const action::profiles& a) {
    state.add_account(a.id, a.password);
    spdlog::info("control: account {} set", a.id);
    return R"({"ok":true})";
  }
  std::string operator()(const action::sessions& a) {
    auto token = state.issue_session(a.profile_id);
    spdlog::info("control: session {} issued for {}", token, a.profile_id);
    std::string cookies = "tld-token=" + token + "; tld-user=" + a.profile_id;
    std::string out = "{\"cookies\":";
    sio::append_json_string(out, cookies);
    out += ",\"token\":\"" + token + "\"}";
    return out;
  }
  std::string operator()(const action::emit& a) {
    int n = service.push(a.profile_id, a.event_json, a.times, a.batch);
    spdlog::info("control: emit to {}, {} time(s){}: {} connection(s)", a.profile_id, a.times,
                 a.batch ? " (one batch)" : "", n);
    return json_count("delivered", n);
  }
  std::string operator()(const action::drop& a) {
    int n = service.drop(a.profile_id, websocket::close_code::service_restart, "dropped by rtm-sim",
                         a.abrupt);
    spdlog::info("control: dropped {} connection(s) of {}{}", n, a.profile_id.value_or("every profile"),
                 a.abrupt ? " abruptly" : "");
    return json_count("dropped", n);
  }
  std::string operator()(const action::refuse& a) {
    state.refuse_until = sim_clock::now() + a.duration;
    int n = a.drop ? service.drop(std::nullopt, websocket::close_code::service_restart,
                                  "dropped by rtm-sim")
                   : 0;
    spdlog::info("control: refusing upgrades for {} ms{}", a.duration.count(),
                 a.drop ? ", dropped " + std::to_string(n) + " connection(s)" : std::string{});
    return R"({"ok":true})";
  }
  std::string operator()(const action::expire_sessions& a) {
    int expired = state.expire_sessions();
    int dropped = a.drop ? service.drop(std::nullopt, websocket::close_code::policy_error,
                                        "session expired")
                         : 0;
    spdlog::info("control: expired {} session(s), dropped {} connection(s)", expired, dropped);
    return "{\"expired\":" + std::to_string(expired) + ",\"dropped\":" + std::to_string(dropped) + "}";
  }
  std::string operator()(const action::malformed& a) {
    int n = service.send_raw(a.profile_id, a.frame);
    spdlog::info("control: raw frame to {}: {} connection(s)", a.profile_id, n);
    return json_count("delivered", n);
  }
  std::string operator()(const action::stop&) {
    state.stopped = true;
    int n = service.drop(std::nullopt, websocket::close_code::going_away, "rtm-sim stopped");
    spdlog::info("control: stopped, closed {} connection(s); upgrades refused until start", n);
    return "{\"ok\":true,\"dropped\":" + std::to_string(n) + "}";
  }
  std::string operator()(const action::start&) {
    state.stopped = false;
    spdlog::info("control: started");
    return R"({"ok":true})";
  }
  std::string operator()(const action::ping& a) {
    int n = service.ping(a.profile_id);
    spdlog::info("control: ping to {}: {} connection(s)", a.profile_id.value_or("every profile"), n);
    return json_count("delivered", n);
  }
  std::string operator()(const action::api& a) {
    if (a.latency)
      state.api_latency = *a.latency;
    if (a.failure_rate)
      state.api_failure_rate = *a.failure_rate;
    spdlog::info("control: client api latency {} ms, failure rate {}", state.api_latency.count(),
                 state.api_failure_rate);
    return "{\"ok\":true,\"latencyMs\":" + std::to_string(state.api_latency.count())
           + ",\"failureRate\":" + sio::to_json(rapidjson::Value(state.api_failure_rate)) + "}";
  }
  std::string operator()(const action::clients& a) {
    state.set_client(a.id, a.name, a.avatar);
    auto data = state.client(a.id);
    spdlog::info("control: client {} is now {} / {}", a.id, data.name, data.avatar);
    return R"({"ok":true})";
  }
  std::string operator()(const action::release&) {
    int n = service.release_held();
    spdlog::info("control: released {} held client api request(s)", n);
    return json_count("released", n);
  }
};

} // namespace

std::variant<control_action, std::string> parse_action(std::string_view name,
                                                       const rapidjson::Value& body) {
  if (!body.IsObject())
    return std::string{"must be a JSON object"};
  field_reader r{body};
  auto a = read(name, r);
  if (!a)
    return "unknown action \"" + std::string{name} + "\"";
  if (!r.error().empty())
    return r.error();
  return std::move(*a);
}

std::string perform(rtm_service& service, const control_action& a) {
  return std::visit(performer{service}, a);
}

void control_api::handle(const std::shared_ptr<net::http_session>& hs, net::request&& req) {
  constexpr std::string_view prefix = "/control/";
  auto path = net::target_path(req.target());
  std::string name{path.substr(prefix.size())};
  std::optional<std::string> client_id;
  if (name.rfind("clients/", 0) == 0) {
    client_id = name.substr(8);
    name = "clients";
    if (client_id->empty() || client_id->find('/') != std::string::npos)
      return hs->reply(error_reply(req, http::status::not_found, "no such endpoint: " + std::string{path}));
  }
  auto method = req.method();
  if (name == "state") {
    if (method != http::verb::get)
      return hs->reply(error_reply(req, http::status::method_not_allowed, "GET /control/state"));
    return hs->reply(json_reply(req, http::status::ok, service_.state().to_json()));
  }
  static const std::vector<std::string_view> posted = {
    "profiles", "sessions", "emit", "drop", "refuse", "expire-sessions",
    "malformed", "stop", "start", "ping", "api", "release"};
  bool known_post = std::find(posted.begin(), posted.end(), name) != posted.end();
  if (!known_post && !client_id)
    return hs->reply(error_reply(req, http::status::not_found, "no such endpoint: " + std::string{path}));
  auto wanted = client_id ? http::verb::put : http::verb::post;
  if (method != wanted)
    return hs->reply(error_reply(req, http::status::method_not_allowed,
                                 std::string{http::to_string(wanted)} + " " + std::string{path}));
  auto parsed = parse_object(req.body());
  if (auto err = std::get_if<std::string>(&parsed)) {
    spdlog::info("control {}: bad request: {}", name, *err);
    return hs->reply(error_reply(req, http::status::bad_request, *err));
  }
  auto& body = std::get<rapidjson::Document>(parsed);
  if (client_id) {
    body.RemoveMember("id");
    body.AddMember("id", rapidjson::Value(client_id->c_str(), body.GetAllocator()), body.GetAllocator());
  }
  auto a = parse_action(name, body);
  if (auto err = std::get_if<std::string>(&a)) {
    spdlog::info("control {}: bad request: {}", name, *err);
    return hs->reply(error_reply(req, http::status::bad_request, *err));
  }
  hs->reply(json_reply(req, http::status::ok, perform(service_, std::get<control_action>(a))));
}

} // namespace parley::rtmsim
