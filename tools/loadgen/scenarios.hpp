// The scenarios; each returns its result as one JSON object (tools/loadgen/README.md).
#pragma once

#include <string>

#include "tools/loadgen/engine.hpp"

namespace loadgen {

std::string run_rooms(const options& o);     // fanout, chat, plainfanout
std::string run_hold(const options& o);      // connect, idle, reconnect
std::string run_presence(const options& o);  // presence
std::string run_publish(const options& o);   // publish (the backend API)
std::string run_replay(const options& o);    // replay (connection-state recovery)

} // namespace loadgen
