#include "tools/loadgen/report.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iomanip>

namespace loadgen {

uint64_t process_cpu_us(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto paren = all.rfind(')');
  if (paren == std::string::npos)
    return 0;
  std::istringstream rest(all.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int k = 3; k <= 15 && rest >> field; ++k) {
    if (k == 14)
      utime = std::stoull(field);
    if (k == 15)
      stime = std::stoull(field);
  }
  static const long ticks = sysconf(_SC_CLK_TCK);
  return (utime + stime) * 1000000ull / static_cast<uint64_t>(ticks);
}

uint64_t process_rss_bytes(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoull(line.substr(6)) * 1024;
  return 0;
}

uint64_t own_cpu_us(bool with_children) {
  auto us = [](const rusage& r) {
    return static_cast<uint64_t>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000ull
           + static_cast<uint64_t>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  };
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  uint64_t total = us(self);
  if (with_children) {
    rusage kids{};
    getrusage(RUSAGE_CHILDREN, &kids);
    total += us(kids);
  }
  return total;
}

void json_out::key(std::string_view k) {
  if (!first_)
    body_ << ",";
  first_ = false;
  body_ << "\"" << k << "\":";
}

json_out& json_out::num(std::string_view k, double v) {
  key(k);
  if (!std::isfinite(v))
    body_ << "null";
  else
    body_ << std::setprecision(6) << v;
  return *this;
}

json_out& json_out::num(std::string_view k, uint64_t v) {
  key(k);
  body_ << v;
  return *this;
}

json_out& json_out::str(std::string_view k, std::string_view v) {
  key(k);
  body_ << "\"";
  for (char c : v) {
    if (c == '"' || c == '\\')
      body_ << '\\' << c;
    else if (static_cast<unsigned char>(c) < 0x20)
      body_ << ' ';
    else
      body_ << c;
  }
  body_ << "\"";
  return *this;
}

json_out& json_out::boolean(std::string_view k, bool v) {
  key(k);
  body_ << (v ? "true" : "false");
  return *this;
}

json_out& json_out::nums(std::string_view k, const std::vector<double>& v) {
  key(k);
  body_ << "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0)
      body_ << ",";
    if (std::isfinite(v[i]))
      body_ << std::setprecision(6) << v[i];
    else
      body_ << "null";
  }
  body_ << "]";
  return *this;
}

json_out& json_out::latency(std::string_view k, const histogram& h) {
  std::string base{k};
  num(base + "_count", h.count());
  num(base + "_p50_us", static_cast<double>(h.quantile(0.50)) / 1000.0);
  num(base + "_p90_us", static_cast<double>(h.quantile(0.90)) / 1000.0);
  num(base + "_p99_us", static_cast<double>(h.quantile(0.99)) / 1000.0);
  num(base + "_max_us", static_cast<double>(h.max()) / 1000.0);
  return *this;
}

} // namespace loadgen
