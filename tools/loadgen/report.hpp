// Measuring the server from outside (/proc) and printing results as one JSON object.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tools/loadgen/wire.hpp"

namespace loadgen {

// utime + stime of a process in microseconds (0 when it cannot be read).
uint64_t process_cpu_us(int pid);
// Resident set size in bytes (VmRSS; 0 when it cannot be read).
uint64_t process_rss_bytes(int pid);
// This process's own CPU (with its waited-for children) in microseconds.
uint64_t own_cpu_us(bool with_children = false);

// A flat JSON object built field by field.
class json_out {
public:
  json_out& num(std::string_view key, double v);
  json_out& num(std::string_view key, uint64_t v);
  json_out& str(std::string_view key, std::string_view v);
  json_out& boolean(std::string_view key, bool v);
  // An array of numbers.
  json_out& nums(std::string_view key, const std::vector<double>& v);
  // p50/p90/p99/max in microseconds as key_p50_us …
  json_out& latency(std::string_view key, const histogram& h);
  std::string done() const { return "{" + body_.str() + "}"; }

private:
  void key(std::string_view k);
  std::ostringstream body_;
  bool first_ = true;
};

} // namespace loadgen
