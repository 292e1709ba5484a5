// The control API tests use to steer the simulated service, on the same port:
//
//   POST /control/<action>        profiles, sessions, emit, drop, refuse,
//                                 expire-sessions, malformed, stop, start, ping, api, release
//   PUT  /control/clients/{id}    a client's name and avatar
//   GET  /control/state           counters (sim_state::to_json)
//
// A scenario line names the same actions with the same fields, so both read an
// action with parse_action and carry it out with perform.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <rapidjson/document.h>

#include "net/http_session.hpp"

namespace parley::rtmsim {

class rtm_service;

namespace action {

struct profiles { std::string id; std::string password; };
struct sessions { std::string profile_id; };
struct emit { std::string profile_id; std::string event_json; int times = 1; bool batch = false; };
struct drop { std::optional<std::string> profile_id; bool abrupt = false; };
struct refuse { std::chrono::milliseconds duration{0}; bool drop = false; };
struct expire_sessions { bool drop = true; };
struct malformed { std::string profile_id; std::string frame; };
struct stop {};
struct start {};
struct ping { std::optional<std::string> profile_id; };
struct api { std::optional<std::chrono::milliseconds> latency; std::optional<double> failure_rate; };
struct clients { std::string id; std::optional<std::string> name; std::optional<std::string> avatar; };
struct release {};

} // namespace action

using control_action =
  std::variant<action::profiles, action::sessions, action::emit, action::drop, action::refuse,
               action::expire_sessions, action::malformed, action::stop, action::start,
               action::ping, action::api, action::clients, action::release>;

// Reads the action called `name` from the fields of `body`; the error names the
// field that is wrong, or says that no action has that name.
std::variant<control_action, std::string> parse_action(std::string_view name,
                                                       const rapidjson::Value& body);

// Carries the action out; returns the JSON the control API answers with.
std::string perform(rtm_service& service, const control_action& a);

class control_api {
public:
  explicit control_api(rtm_service& service) : service_(service) {}

  // A request whose path starts with /control/.
  void handle(const std::shared_ptr<net::http_session>& hs, net::request&& req);

private:
  rtm_service& service_;
};

} // namespace parley::rtmsim
