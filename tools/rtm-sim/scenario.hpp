// A scenario: a JSON-lines file of control actions played in order once the sim
// listens, each `delayMs` after the one before it.
//
//   # comment lines and blank lines are skipped
//   {"delayMs":500,"action":"emit","profileId":"7","event":{"type":"rtm.message.new"}}
//   {"delayMs":1000,"action":"drop","profileId":"7"}
//
// The whole file is read and checked before the sim starts listening.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "tools/rtm-sim/control.hpp"

namespace parley::rtmsim {

struct scenario_step {
  int line = 0;
  std::chrono::milliseconds delay{0};
  std::string name;  // the action's name, for the log
  control_action action;
};

// The steps of a scenario file, or an error naming the file and line.
std::variant<std::vector<scenario_step>, std::string> load_scenario(const std::string& path);

// Plays steps one after another on the I/O thread.
class scenario_player {
public:
  scenario_player(boost::asio::io_context& ioc, rtm_service& service, std::vector<scenario_step> steps);

  void start();
  void stop();

private:
  void schedule(size_t next);

  boost::asio::steady_timer timer_;
  rtm_service& service_;
  std::vector<scenario_step> steps_;
};

} // namespace parley::rtmsim
