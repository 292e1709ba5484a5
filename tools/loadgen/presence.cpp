// presence churn: `observers` connections stay; `churners` slots each connect a
// new user, and as soon as it is connected close it, then the next. Every
// observer should see user:online and user:offline for every churned user;
// each is timed from the moment the churner connected / closed.
#include <algorithm>
#include <cstdio>
#include <ctime>

#include "tools/loadgen/report.hpp"
#include "tools/loadgen/scenarios.hpp"

namespace loadgen {

namespace {

class presence_scenario : public scenario {
public:
  explicit presence_scenario(const options& o) : o_(o), max_cycles_(o.count) {
    exp_ = std::to_string(std::time(nullptr) + 3600);
    online_at_.assign(max_cycles_, 0);
    offline_at_.assign(max_cycles_, 0);
  }

  size_t connections() const { return o_.observers + max_cycles_; }

  std::string token(size_t i) override {
    auto user = i < o_.observers ? "o" + std::to_string(i) : "c" + std::to_string(i - o_.observers);
    return hs256_token("{\"sub\":\"" + user + "\",\"rooms\":[],\"exp\":" + exp_ + "}", o_.secret);
  }

  void on_connected(size_t i) override {
    if (i < o_.observers) {
      ++observers_up_;
      return;
    }
    auto k = i - o_.observers;
    eng->close(i);
    offline_at_[k] = now_ns();
    ++cycles_;
    next_churn();
  }

  void on_closed(size_t i, std::string_view why) override {
    if (i < o_.observers) {
      ++observers_lost_;
    } else {
      ++churn_failures_;
      next_churn();
    }
    if (++reported_ <= 3)
      std::fprintf(stderr, "loadgen: connection %zu closed: %.*s\n", i, static_cast<int>(why.size()), why.data());
  }

  void on_event(size_t i, std::string_view name, std::string_view packet) override {
    bool online = name == "user:online";
    if (i >= o_.observers || (!online && name != "user:offline"))
      return;  // churners may see each other before they close: not counted
    auto at = packet.find("\"userId\":\"c");
    if (at == std::string_view::npos)
      return;  // an observer's own presence while the observers connect
    uint64_t k = 0;
    for (size_t p = at + 11; p < packet.size() && packet[p] >= '0' && packet[p] <= '9'; ++p)
      k = k * 10 + static_cast<uint64_t>(packet[p] - '0');
    if (k >= max_cycles_)
      return;
    if (o_.verbose)
      std::fprintf(stderr, "observer %zu: %s c%llu\n", i, online ? "online" : "offline", static_cast<unsigned long long>(k));
    auto now = now_ns();
    auto from = online ? online_at_[k] : offline_at_[k];
    if (online) {
      ++online_seen_;
      if (from)
        online_lat_.add(now - from);
    } else {
      ++offline_seen_;
      if (from)
        offline_lat_.add(now > from ? now - from : 0);
    }
  }

  std::string run(engine& e) {
    auto deadline = now_ns() + static_cast<uint64_t>(o_.timeout * 1e9);
    e.ramp(0, o_.observers, o_.concurrency);
    while (observers_up_ + observers_lost_ < o_.observers && now_ns() < deadline)
      e.poll(50);
    if (observers_up_ < o_.observers) {
      json_out j;
      j.str("scenario", "presence").str("error", "observers did not all connect");
      return j.done();
    }
    auto settle = now_ns() + 500'000'000ull;
    while (now_ns() < settle)
      e.poll(10);
    auto cpu0 = process_cpu_us(o_.server_pid);
    auto own0 = own_cpu_us();
    auto t0 = now_ns();
    stop_at_ = t0 + static_cast<uint64_t>(o_.duration * 1e9);
    for (size_t s = 0; s < o_.churners; ++s)
      next_churn();
    while (now_ns() < stop_at_ && now_ns() < deadline)
      e.poll(10);
    stopped_ = true;
    while (e.handshaking() > 0 && now_ns() < deadline)
      e.poll(10);
    auto t1 = now_ns();
    auto cpu1 = process_cpu_us(o_.server_pid);
    auto own1 = own_cpu_us();
    // Drain the last announcements (bounded).
    auto want = [&] { return cycles_ * o_.observers; };
    auto drain = now_ns() + 3'000'000'000ull;
    while ((online_seen_ < want() || offline_seen_ < want()) && now_ns() < drain)
      e.poll(10);
    double secs = static_cast<double>(t1 - t0) / 1e9;
    json_out j;
    j.str("scenario", "presence")
        .num("observers", static_cast<uint64_t>(o_.observers))
        .num("churners", static_cast<uint64_t>(o_.churners))
        .num("cycles", cycles_)
        .num("cycles_per_s", static_cast<double>(cycles_) / secs)
        .num("churn_failures", churn_failures_)
        .num("observers_lost", observers_lost_)
        .num("online_expected", want())
        .num("online_seen", online_seen_)
        .num("offline_seen", offline_seen_)
        .num("presence_deliveries_per_s", static_cast<double>(online_seen_ + offline_seen_) / secs)
        .latency("online", online_lat_)
        .latency("offline", offline_lat_)
        .num("server_cpu_us", cpu1 - cpu0)
        .num("server_cpu_us_per_cycle", cycles_ ? static_cast<double>(cpu1 - cpu0) / static_cast<double>(cycles_) : 0.0)
        .num("generator_cpu_us", own1 - own0);
    return j.done();
  }

private:
  void next_churn() {
    if (stopped_ || now_ns() >= stop_at_ || next_ >= max_cycles_)
      return;
    online_at_[next_] = now_ns();  // user:online is timed from the connect's start
    eng->open(o_.observers + next_++);
  }

  const options& o_;
  uint64_t max_cycles_;
  std::string exp_;
  std::vector<uint64_t> online_at_, offline_at_;
  uint64_t observers_up_ = 0, observers_lost_ = 0, cycles_ = 0, churn_failures_ = 0, reported_ = 0;
  uint64_t online_seen_ = 0, offline_seen_ = 0, next_ = 0, stop_at_ = ~0ull;
  bool stopped_ = false;
  histogram online_lat_, offline_lat_;
};

} // namespace

std::string run_presence(const options& o) {
  presence_scenario s(o);
  engine e(o, s, s.connections());
  return s.run(e);
}

} // namespace loadgen
