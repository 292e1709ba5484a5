#include "tools/rtm-sim/options.hpp"

#include <charconv>
#include <string_view>

namespace parley::rtmsim {

const char* const usage_text =
  "usage: rtm-sim --port=N [--scenario=FILE] [--session-ttl=SECONDS] [--ping-interval=SECONDS]\n"
  "               [--api-latency-ms=N] [--api-failure-rate=F] [--profile=ID:PASSWORD ...]\n";

namespace {

// The whole of `text` as a number in [min, max], or nothing.
template <class T>
std::optional<T> parse_number(std::string_view text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max)
    return std::nullopt;
  return value;
}

} // namespace

std::variant<sim_options, usage_requested, std::string> parse_options(int argc, char** argv) {
  sim_options opts;
  bool have_port = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h")
      return usage_requested{};
    auto eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string_view::npos)
      return "unknown option " + std::string{arg} + " (options are written --name=VALUE)";
    auto name = arg.substr(0, eq);
    auto value = arg.substr(eq + 1);
    auto bad = [&](std::string_view expected) {
      return "invalid value for " + std::string{name} + ": " + std::string{value} + " ("
             + std::string{expected} + ")";
    };
    if (name == "--port") {
      auto v = parse_number<unsigned>(value, 0, 65535);
      if (!v)
        return bad("a port number from 0 to 65535");
      opts.port = static_cast<uint16_t>(*v);
      have_port = true;
    } else if (name == "--scenario") {
      if (value.empty())
        return bad("a file name");
      opts.scenario = std::string{value};
    } else if (name == "--session-ttl") {
      auto v = parse_number<long long>(value, 1, 10LL * 365 * 24 * 3600);
      if (!v)
        return bad("a whole number of seconds, at least 1");
      opts.session_ttl = std::chrono::seconds(*v);
    } else if (name == "--ping-interval") {
      auto v = parse_number<long long>(value, 0, 24 * 3600);
      if (!v)
        return bad("a whole number of seconds, 0 for none");
      opts.ping_interval = std::chrono::seconds(*v);
    } else if (name == "--api-latency-ms") {
      auto v = parse_number<long long>(value, 0, 600000);
      if (!v)
        return bad("a whole number of milliseconds from 0 to 600000");
      opts.api_latency = std::chrono::milliseconds(*v);
    } else if (name == "--api-failure-rate") {
      auto v = parse_number<double>(value, 0.0, 1.0);
      if (!v)
        return bad("a number from 0.0 to 1.0");
      opts.api_failure_rate = *v;
    } else if (name == "--profile") {
      auto colon = value.find(':');
      if (colon == std::string_view::npos || colon == 0)
        return bad("ID:PASSWORD");
      opts.profiles.emplace_back(std::string{value.substr(0, colon)},
                                 std::string{value.substr(colon + 1)});
    } else {
      return "unknown option " + std::string{name};
    }
  }
  if (!have_port)
    return std::string{"missing option --port (0 picks a free port)"};
  return opts;
}

} // namespace parley::rtmsim
