// connect, idle and reconnect: many connections split over worker processes
// (each under the open-file limit), driven in phases by the parent, which
// measures the server from outside.
//
// parent → worker: 'G' connect your share, 'D' drop every connection and
//                  reconnect it, 'Q' close everything and report.
// worker → parent: 'R' all my connections are up (or failed), then at 'Q'
//                  the result block.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "tools/loadgen/report.hpp"
#include "tools/loadgen/scenarios.hpp"

namespace loadgen {

namespace {

struct result_head {
  uint64_t connected, failures, protocol_errors, hist_count, hist_max, closed_after;
};

class hold_scenario : public scenario {
public:
  hold_scenario(const options& o, size_t first, size_t n, int ctl_in, int ctl_out)
    : o_(o), first_(first), n_(n), in_(ctl_in), out_(ctl_out) {
    exp_ = std::to_string(std::time(nullptr) + 3600);
    join_ = o.scenario == "reconnect";
  }

  std::string token(size_t i) override {
    return hs256_token("{\"sub\":\"u" + std::to_string(first_ + i) + "\",\"rooms\":[\"chat:*\"],\"exp\":" + exp_
                           + "}",
                       o_.secret);
  }

  void on_connected(size_t i) override {
    if (join_)
      eng->send_with_ack(i, "[\"join\",{\"room\":\"chat:r" + std::to_string((first_ + i) % 100) + "\"}]");
    else
      up(i);
  }

  void on_ack(size_t i, uint32_t, std::string_view packet) override {
    if (packet.find("\"error\"") != std::string_view::npos)
      ++errors_;
    up(i);
  }

  void on_closed(size_t i, std::string_view why) override {
    if (phase_up_) {
      ++closed_after_;
    } else {
      ++failed_;
      check_done();
    }
    if (++reported_ <= 3)
      std::fprintf(stderr, "loadgen: connection %zu closed: %.*s\n", first_ + i, static_cast<int>(why.size()),
                   why.data());
  }

  void on_fd(uint64_t) override {
    char cmd = 0;
    if (::read(in_, &cmd, 1) != 1) {
      quit_ = true;
      return;
    }
    if (cmd == 'G') {
      start_ = now_ns();
      eng->ramp(0, n_, std::max<size_t>(1, o_.concurrency));
    } else if (cmd == 'D') {
      phase_up_ = false;
      up_ = 0;
      failed_ = 0;
      hist_ = histogram{};
      for (size_t i = 0; i < n_; ++i)
        eng->close(i);
      start_ = now_ns();
      eng->ramp(0, n_, std::max<size_t>(1, o_.concurrency));
    } else {
      quit_ = true;
    }
  }

  void run(engine& e) {
    e.watch(in_, 0);
    auto deadline = now_ns() + static_cast<uint64_t>(o_.timeout * 1e9);
    while (!quit_ && now_ns() < deadline)
      e.poll(100);
    result_head h{up_, failed_ + (quit_ ? 0 : 1), e.protocol_errors + errors_, hist_.count(), hist_.max(),
                  closed_after_};
    for (size_t i = 0; i < n_; ++i)
      e.close(i);
    write_all(&h, sizeof h);
    write_all(hist_.counts.data(), hist_.counts.size() * sizeof(uint64_t));
  }

private:
  void up(size_t i) {
    hist_.add(now_ns() - (join_ ? std::min(start_, eng->at(i).t0) : eng->at(i).t0));
    ++up_;
    check_done();
  }

  void check_done() {
    if (!phase_up_ && up_ + failed_ == n_) {
      phase_up_ = true;
      write_all("R", 1);
    }
  }

  void write_all(const void* p, size_t n) {
    auto b = static_cast<const char*>(p);
    while (n > 0) {
      auto w = ::write(out_, b, n);
      if (w <= 0)
        return;
      b += w;
      n -= static_cast<size_t>(w);
    }
  }

  const options& o_;
  size_t first_, n_;
  int in_, out_;
  std::string exp_;
  bool join_ = false, quit_ = false, phase_up_ = false;
  uint64_t up_ = 0, failed_ = 0, errors_ = 0, closed_after_ = 0, reported_ = 0;
  uint64_t start_ = 0;
  histogram hist_;
};

bool read_all(int fd, void* p, size_t n) {
  auto b = static_cast<char*>(p);
  while (n > 0) {
    auto r = ::read(fd, b, n);
    if (r <= 0)
      return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

struct worker {
  pid_t pid;
  int to, from;
};

} // namespace

std::string run_hold(const options& o) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  size_t per_proc_max = lim.rlim_cur > 200 ? lim.rlim_cur - 100 : 100;
  size_t procs = o.procs ? o.procs : (o.count + per_proc_max - 1) / per_proc_max;
  procs = std::max<size_t>(1, std::min(procs, o.count));
  if ((o.count + procs - 1) / procs > per_proc_max)
    throw std::invalid_argument("--procs too small for the open-file limit of " + std::to_string(lim.rlim_cur));

  auto rss_before = process_rss_bytes(o.server_pid);
  std::vector<worker> ws;
  for (size_t p = 0; p < procs; ++p) {
    size_t first = o.count * p / procs, last = o.count * (p + 1) / procs;
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0)
      throw std::runtime_error("pipe failed");
    fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      ::close(down[1]);
      ::close(up[0]);
      for (auto& w : ws) {
        ::close(w.to);
        ::close(w.from);
      }
      options mine = o;
      mine.concurrency = std::max<size_t>(1, o.concurrency / procs);
      hold_scenario s(mine, first, last - first, down[0], up[1]);
      engine e(mine, s, last - first);
      s.run(e);
      _exit(0);
    }
    ::close(down[0]);
    ::close(up[1]);
    ws.push_back({pid, down[1], up[0]});
  }
  auto deadline = now_ns() + static_cast<uint64_t>(o.timeout * 1e9);
  auto all_ready = [&]() {
    for (auto& w : ws) {
      char c;
      if (!read_all(w.from, &c, 1) || c != 'R')
        return false;
    }
    return true;
  };
  auto command = [&](char c) {
    for (auto& w : ws)
      if (::write(w.to, &c, 1) != 1)
        return false;
    return true;
  };

  auto t_go = now_ns();
  auto cpu0 = process_cpu_us(o.server_pid);
  command('G');
  bool ok = all_ready();
  auto t_up = now_ns();
  auto cpu_up = process_cpu_us(o.server_pid);
  double connect_s = static_cast<double>(t_up - t_go) / 1e9;
  uint64_t rss_held = 0;
  double reconnect_s = 0;
  uint64_t cpu_reconnect = 0;
  if (ok && o.scenario == "idle") {
    auto until = now_ns() + static_cast<uint64_t>(o.settle * 1e9);
    while (now_ns() < until && now_ns() < deadline)
      usleep(50'000);
    rss_held = process_rss_bytes(o.server_pid);
  }
  if (ok && o.scenario == "reconnect") {
    usleep(static_cast<useconds_t>(o.settle * 1e6));
    auto c0 = process_cpu_us(o.server_pid);
    auto t_drop = now_ns();
    command('D');
    ok = all_ready();
    reconnect_s = static_cast<double>(now_ns() - t_drop) / 1e9;
    cpu_reconnect = process_cpu_us(o.server_pid) - c0;
  }
  command('Q');
  result_head total{};
  histogram h;
  for (auto& w : ws) {
    result_head r{};
    histogram part;
    if (read_all(w.from, &r, sizeof r) && read_all(w.from, part.counts.data(), part.counts.size() * sizeof(uint64_t))) {
      part.set_totals(r.hist_count, r.hist_max);
      h.merge(part);
      total.connected += r.connected;
      total.failures += r.failures;
      total.protocol_errors += r.protocol_errors;
      total.closed_after += r.closed_after;
    } else {
      ++total.failures;
    }
    int status = 0;
    waitpid(w.pid, &status, 0);
    ::close(w.to);
    ::close(w.from);
  }
  json_out j;
  j.str("scenario", o.scenario)
      .num("connections", static_cast<uint64_t>(o.count))
      .num("processes", static_cast<uint64_t>(procs))
      .num("concurrency", static_cast<uint64_t>(o.concurrency))
      .num("up", total.connected)
      .num("failures", total.failures)
      .num("protocol_errors", total.protocol_errors)
      .num("closed_while_held", total.closed_after);
  if (o.scenario == "reconnect") {
    j.num("reconnect_s", reconnect_s)
        .num("reconnects_per_s", reconnect_s > 0 ? static_cast<double>(total.connected) / reconnect_s : 0.0)
        .latency("reconnect", h)
        .num("server_cpu_us", cpu_reconnect)
        .num("server_cpu_us_per_connection",
             total.connected ? static_cast<double>(cpu_reconnect) / static_cast<double>(total.connected) : 0.0);
  } else {
    j.num("connect_s", connect_s)
        .num("connections_per_s", connect_s > 0 ? static_cast<double>(total.connected) / connect_s : 0.0)
        .latency("connect", h)
        .num("server_cpu_us", cpu_up - cpu0)
        .num("server_cpu_us_per_connection",
             total.connected ? static_cast<double>(cpu_up - cpu0) / static_cast<double>(total.connected) : 0.0);
  }
  if (o.scenario == "idle")
    j.num("server_rss_before_bytes", rss_before)
        .num("server_rss_held_bytes", rss_held)
        .num("rss_per_connection_bytes",
             total.connected ? static_cast<double>(rss_held - std::min(rss_held, rss_before))
                                   / static_cast<double>(o.count)
                             : 0.0);
  j.num("generator_cpu_us", own_cpu_us(true));
  return j.done();
}

} // namespace loadgen
