// rtm-sim --port=N [--scenario=FILE] [--session-ttl=SECONDS] [--ping-interval=SECONDS]
//         [--api-latency-ms=N] [--api-failure-rate=F] [--profile=ID:PASSWORD ...]
//
// A stand-in for the external RTM service (TalkyTimes style, Centrifugo JSON
// protocol) that Parley's RTM upstream actors connect to: login, the /rtm
// WebSocket, the client profile API, and a control API on the same port that
// tests use to push events and break things on purpose. Binds 127.0.0.1 only;
// prints "rtm-sim listening on http://127.0.0.1:PORT" once it accepts
// connections; logs to stderr; exits 0 on SIGINT/SIGTERM, 2 on a bad option or
// scenario. See tools/rtm-sim/README.md.
#include <csignal>
#include <exception>
#include <cstdio>
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "net/listener.hpp"
#include "tools/rtm-sim/control.hpp"
#include "tools/rtm-sim/options.hpp"
#include "tools/rtm-sim/rtm_service.hpp"
#include "tools/rtm-sim/scenario.hpp"
#include "tools/rtm-sim/sim_state.hpp"

using namespace parley;
using namespace parley::rtmsim;

namespace {

constexpr const char* listen_address = "127.0.0.1";
constexpr uint64_t body_limit = 1 << 20;

int fail_usage(const std::string& msg) {
  std::cerr << "rtm-sim: " << msg << "\n" << usage_text;
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  auto parsed = parse_options(argc, argv);
  if (std::holds_alternative<usage_requested>(parsed)) {
    std::cout << usage_text;
    return 0;
  }
  if (auto err = std::get_if<std::string>(&parsed))
    return fail_usage(*err);
  auto opts = std::get<sim_options>(std::move(parsed));

  std::vector<scenario_step> steps;
  if (opts.scenario) {
    auto loaded = load_scenario(*opts.scenario);
    if (auto err = std::get_if<std::string>(&loaded)) {
      std::cerr << "rtm-sim: " << *err << "\n";
      return 2;
    }
    steps = std::get<std::vector<scenario_step>>(std::move(loaded));
  }

  // stdout carries only the listening line; the log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_st("rtm-sim"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e rtm-sim %^%l%$ %v");

  sim_state state{opts.session_ttl};
  state.api_latency = opts.api_latency;
  state.api_failure_rate = opts.api_failure_rate;
  for (auto& [id, password] : opts.profiles)
    state.add_account(id, password);

  boost::asio::io_context ioc{1};
  rtm_service service{ioc, state, opts.ping_interval};
  control_api control{service};
  scenario_player scenario{ioc, service, std::move(steps)};
  auto router = std::make_shared<net::path_router>();
  router->add("/control/", [&](auto& hs, net::request&& req) { control.handle(hs, std::move(req)); });
  router->add("/", [&](auto& hs, net::request&& req) { service.handle(hs, std::move(req)); });
  auto listener = std::make_shared<net::listener>(ioc, router, body_limit);
  auto bound = listener->start(listen_address, opts.port);
  if (auto err = std::get_if<std::string>(&bound)) {
    std::cerr << "rtm-sim: " << *err << "\n";
    return 1;
  }
  std::printf("rtm-sim listening on http://%s:%u\n", listen_address,
              static_cast<unsigned>(std::get<uint16_t>(bound)));
  std::fflush(stdout);
  spdlog::info("{} account(s), session ttl {} s, ping interval {} s, client api latency {} ms, "
               "failure rate {}",
               opts.profiles.size(), opts.session_ttl.count(), opts.ping_interval.count(),
               opts.api_latency.count(), opts.api_failure_rate);

  service.start();
  scenario.start();

  boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
  boost::asio::steady_timer grace{ioc};
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec)
      return;
    spdlog::info("signal {}: closing connections", sig);
    listener->stop();
    scenario.stop();
    service.shutdown();
    // Let the close frames go out, then stop.
    grace.expires_after(std::chrono::milliseconds(200));
    grace.async_wait([&](boost::system::error_code) { ioc.stop(); });
  });
  std::signal(SIGPIPE, SIG_IGN);
  try {
    ioc.run();
  } catch (const std::exception& e) {
    std::cerr << "rtm-sim: " << e.what() << "\n";
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
