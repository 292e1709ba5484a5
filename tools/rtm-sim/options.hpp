// rtm-sim's command line:
//
//   rtm-sim --port=N [--scenario=FILE] [--session-ttl=SECONDS] [--ping-interval=SECONDS]
//           [--api-latency-ms=N] [--api-failure-rate=F] [--profile=ID:PASSWORD ...]
//
// Every option and its default is documented in tools/rtm-sim/README.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace parley::rtmsim {

struct sim_options {
  uint16_t port = 0;
  std::optional<std::string> scenario;              // JSON-lines file played after start
  std::chrono::seconds session_ttl{3600};           // a session cookie's lifetime
  std::chrono::seconds ping_interval{25};           // 0: the sim never pings
  std::chrono::milliseconds api_latency{0};         // delay of GET /clients/{id}
  double api_failure_rate = 0.0;                    // share of GET /clients/{id} answered 500
  std::vector<std::pair<std::string, std::string>> profiles; // login accounts (id, password)
};

// What the command line asked for: options, a request for the usage text, or an
// error that names the offending option.
struct usage_requested {};
std::variant<sim_options, usage_requested, std::string> parse_options(int argc, char** argv);

extern const char* const usage_text;

} // namespace parley::rtmsim
