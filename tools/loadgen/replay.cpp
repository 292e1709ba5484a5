// replay: connection-state recovery of one Socket.IO client that missed
// --count stored events (tools/loadgen/README.md). Each of --runs runs:
//
//   1. the client connects (token claiming bench:*), keeps the sid and pid of
//      the CONNECT answer, joins bench:replay:<run>, and receives one event
//      published through the API: its last argument is the offset to recover from;
//   2. its TCP connection is closed (a transport cut: no Socket.IO DISCONNECT);
//   3. --count events are published to the room through the API over
//      --connections keep-alive connections at once, each answered;
//   4. it connects again with CONNECT auth {token, pid, offset}; replay_ms runs
//      from writing that CONNECT to receiving the last missed event.
//
// Checked: the CONNECT answer carries the old sid (recovered), every missed
// event arrives exactly once, and in order. The publishes are concurrent, so
// their order is the server's: an event must not arrive before one that the
// same API connection published earlier (a connection has one publish
// outstanding at a time), and where the API answered offsets (Parley), each
// event's offset must be the one its publish was answered with, and they must
// grow.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>
#include <stdexcept>

#include "tools/loadgen/publisher.hpp"
#include "tools/loadgen/report.hpp"
#include "tools/loadgen/scenarios.hpp"

namespace loadgen {

namespace {

struct run_result {
  bool recovered = false, complete = false;
  double replay_ms = 0, answer_ms = 0, publish_s = 0;
  uint64_t received = 0, duplicates = 0, reordered = 0, offset_mismatches = 0, replayed_again = 0;
  uint64_t server_cpu_us = 0;
};

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

class replay_scenario : public scenario {
public:
  explicit replay_scenario(const options& o) : o_(o), count_(o.count) {
    if (o.api_key.empty())
      throw std::invalid_argument("replay needs --api-key");
    if (count_ == 0 || o.runs == 0 || o.runs > 100)
      throw std::invalid_argument("replay needs --count ≥ 1 and --runs 1…100");
    conns_ = o.connections ? o.connections : 64;
    if (conns_ > 10000)
      throw std::invalid_argument("at most 10000 API connections");
    token_ = hs256_token("{\"sub\":\"replay\",\"rooms\":[\"bench:*\"],\"exp\":" + std::to_string(std::time(nullptr) + 3600)
                             + "}",
                         o.secret);
  }

  std::string token(size_t) override { return token_; }

  std::string auth(size_t) override {
    if (!recovering_)
      return "{\"token\":\"" + token_ + "\"}";
    t_connect_ = now_ns();  // the CONNECT is written right after this returns
    return "{\"token\":\"" + token_ + "\",\"pid\":\"" + pid_ + "\",\"offset\":\"" + offset0_ + "\"}";
  }

  void on_connect_answer(size_t, std::string_view packet) override {
    auto sid = json_string(packet, "sid");
    auto pid = json_string(packet, "pid");
    if (!recovering_) {
      sid_ = sid ? std::string{*sid} : "";
      pid_ = pid ? std::string{*pid} : "";
      return;
    }
    t_answer_ = now_ns();
    answered_ = true;
    r_.recovered = sid && !sid_.empty() && *sid == sid_;
  }

  void on_connected(size_t i) override {
    if (recovering_)
      return;  // a recovered socket is in its rooms already
    if (pid_.empty())
      return fail("the CONNECT answer has no pid (is connection-state recovery on?)");
    eng->send_with_ack(i, "[\"join\",{\"room\":\"" + room_ + "\"}]");
  }

  void on_ack(size_t, uint32_t, std::string_view packet) override {
    if (packet.find("\"error\"") != std::string_view::npos)
      return fail("join refused: " + std::string{packet});
    publish(0);
  }

  void on_event(size_t, std::string_view name, std::string_view packet) override {
    auto seq = name == "bench" ? json_uint(packet, "seq") : std::nullopt;
    if (!seq || *seq > count_) {
      ++foreign_;
      return;
    }
    auto now = now_ns();
    if (!recovering_) {
      if (*seq == 0 && offset0_.empty()) {
        offset0_ = std::string{last_string_arg(packet)};
        if (offset0_.empty())
          fail("the event has no offset as its last argument: " + std::string{packet});
      } else {
        ++foreign_;
      }
      return;
    }
    last_activity_ = now;
    if (*seq == 0) {
      ++r_.replayed_again;  // it had this one before the cut
      return;
    }
    if (!got_.add(*seq)) {
      ++r_.duplicates;
      return;
    }
    bool reordered = false;
    auto conn = conn_of_[*seq];
    if (*seq < last_seq_of_conn_[conn])
      reordered = true;
    last_seq_of_conn_[conn] = std::max(last_seq_of_conn_[conn], *seq);
    if (auto want = offset_of_[*seq]; want != 0) {
      auto off = decimal(last_string_arg(packet));
      if (!off || *off != want)
        ++r_.offset_mismatches;
      if (off && *off <= last_offset_)
        reordered = true;
      if (off)
        last_offset_ = std::max(last_offset_, *off);
    }
    if (reordered)
      ++r_.reordered;
    if (got_.unique() == count_)
      t_last_ = now;
  }

  void on_closed(size_t, std::string_view why) override { fail("the Socket.IO connection closed: " + std::string{why}); }

  void on_fd(uint64_t) override { pub_->poll_ns(0); }

  std::string run(engine& e) {
    publisher p(o_, conns_, [this](const publisher::answer& a) { on_published(a); });
    pub_ = &p;
    e.watch(p.fd(), 0);
    deadline_ = now_ns() + static_cast<uint64_t>(o_.timeout * 1e9);
    if (auto why = p.await_connected(deadline_, [&e] { e.poll(10); }); !why.empty())
      return failure(why);
    std::vector<run_result> results;
    auto own0 = own_cpu_us();
    for (size_t k = 1; k <= o_.runs && error_.empty(); ++k) {
      one_run(e, p, k);
      results.push_back(r_);
      std::fprintf(stderr, "loadgen: replay run %zu: %s, %llu of %zu in %.1f ms\n", k,
                   r_.recovered ? "recovered" : "not recovered", static_cast<unsigned long long>(r_.received),
                   count_, r_.replay_ms);
    }
    auto own1 = own_cpu_us();

    std::vector<double> replay_ms, answer_ms, publish_s;
    run_result sum;
    size_t recovered = 0, complete = 0;
    for (auto& r : results) {
      recovered += r.recovered;
      complete += r.complete;
      if (r.complete)
        replay_ms.push_back(r.replay_ms);
      answer_ms.push_back(r.answer_ms);
      publish_s.push_back(r.publish_s);
      sum.received += r.received;
      sum.duplicates += r.duplicates;
      sum.reordered += r.reordered;
      sum.offset_mismatches += r.offset_mismatches;
      sum.replayed_again += r.replayed_again;
      sum.server_cpu_us += r.server_cpu_us;
    }
    auto med = median(replay_ms);
    auto expected = static_cast<uint64_t>(count_) * results.size();
    json_out j;
    j.str("scenario", "replay")
        .num("count", static_cast<uint64_t>(count_))
        .num("runs", static_cast<uint64_t>(results.size()))
        .num("api_connections", static_cast<uint64_t>(conns_))
        .boolean("recovered", !results.empty() && recovered == results.size())
        .num("runs_recovered", static_cast<uint64_t>(recovered))
        .num("runs_complete", static_cast<uint64_t>(complete))
        .num("replay_ms", med)
        .num("replay_ms_min", replay_ms.empty() ? 0.0 : *std::min_element(replay_ms.begin(), replay_ms.end()))
        .num("replay_ms_max", replay_ms.empty() ? 0.0 : *std::max_element(replay_ms.begin(), replay_ms.end()))
        .nums("replay_ms_runs", replay_ms)
        .num("events_per_s", med > 0 ? static_cast<double>(count_) / (med / 1000) : 0.0)
        .num("connect_answer_ms", median(answer_ms))
        .num("expected", expected)
        .num("received", sum.received)
        .num("missing", expected - std::min(expected, sum.received))
        .num("duplicates", sum.duplicates)
        .num("reordered", sum.reordered)
        .num("offset_mismatches", sum.offset_mismatches)
        .num("replayed_again", sum.replayed_again)
        .num("foreign_events", foreign_)
        .num("publish_s", median(publish_s))
        .num("publishes_per_s", median(publish_s) > 0 ? static_cast<double>(count_) / median(publish_s) : 0.0)
        .num("non_200", non200_)
        .num("server_cpu_us", sum.server_cpu_us)
        .num("server_cpu_us_per_event",
             sum.received ? static_cast<double>(sum.server_cpu_us) / static_cast<double>(sum.received) : 0.0)
        .num("generator_cpu_us", own1 - own0);
    if (!first_non200_.empty())
      j.str("first_non_200", first_non200_);
    auto error = error_;
    if (error.empty() && recovered < results.size())
      error = std::to_string(results.size() - recovered) + " of " + std::to_string(results.size())
              + " runs were not recovered (the CONNECT answer had another sid)";
    else if (error.empty() && sum.received < expected)
      error = std::to_string(expected - sum.received) + " missed events never arrived";
    else if (error.empty() && (sum.duplicates || sum.replayed_again))
      error = std::to_string(sum.duplicates + sum.replayed_again) + " events arrived twice";
    else if (error.empty() && (sum.reordered || sum.offset_mismatches))
      error = std::to_string(sum.reordered) + " events out of order, " + std::to_string(sum.offset_mismatches)
              + " with another offset than their publish was answered with";
    if (!error.empty())
      j.str("error", error);
    return j.done();
  }

private:
  void one_run(engine& e, publisher& p, size_t k) {
    r_ = run_result{};
    room_ = "bench:replay:" + std::to_string(k);
    recovering_ = answered_ = false;
    sid_.clear();
    pid_.clear();
    offset0_.clear();
    got_ = receipts{};
    conn_of_.assign(count_ + 1, 0);
    offset_of_.assign(count_ + 1, 0);
    last_seq_of_conn_.assign(conns_, 0);
    last_offset_ = 0;
    next_seq_ = 1;
    acked_ = 0;
    t_connect_ = t_answer_ = t_last_ = 0;

    // 1. Connected, joined, one event received with its offset.
    e.open(0);
    while (error_.empty() && (offset0_.empty() || acked_ < 1) && now_ns() < deadline_)
      e.poll(5);
    if (!error_.empty() || offset0_.empty() || acked_ < 1)
      return fail("the first event did not arrive");

    // 2. The cut, then a moment for the server to see it.
    e.close(0);
    auto settle = now_ns() + 20'000'000ull;
    while (now_ns() < settle)
      e.poll(5);

    // 3. Everything it will miss, published as fast as the API answers.
    auto t_pub = now_ns();
    while (error_.empty() && acked_ < count_ + 1 && now_ns() < deadline_) {
      while (p.has_free() && next_seq_ <= count_)
        publish(next_seq_++);
      e.poll(5);
    }
    r_.publish_s = static_cast<double>(now_ns() - t_pub) / 1e9;
    if (!error_.empty() || acked_ < count_ + 1)
      return fail("the publishes were not all answered");

    // 4. Back with {pid, offset}: timed until the last missed event.
    recovering_ = true;
    auto cpu0 = process_cpu_us(o_.server_pid);
    last_activity_ = now_ns();
    e.open(0);
    while (error_.empty() && !(answered_ && got_.unique() == count_) && now_ns() < deadline_
           && now_ns() < last_activity_ + 5'000'000'000ull)
      e.poll(5);
    // A moment more, for anything that would come twice.
    auto more = now_ns() + 50'000'000ull;
    while (error_.empty() && now_ns() < more)
      e.poll(5);
    r_.server_cpu_us = process_cpu_us(o_.server_pid) - cpu0;
    r_.received = got_.unique();
    r_.complete = got_.unique() == count_ && t_last_ != 0;
    if (r_.complete)
      r_.replay_ms = static_cast<double>(t_last_ - t_connect_) / 1e6;
    if (answered_)
      r_.answer_ms = static_cast<double>(t_answer_ - t_connect_) / 1e6;
    e.close(0);
  }

  void publish(uint64_t seq) {
    if (!pub_->has_free())
      return fail("no free API connection for the first publish");
    pub_->send("{\"room\":\"" + room_ + "\",\"event\":\"bench\",\"data\":{\"seq\":" + std::to_string(seq) + "}}", seq);
  }

  void on_published(const publisher::answer& a) {
    if (a.code != 200) {
      if (non200_++ == 0)
        first_non200_ = std::to_string(a.code) + " " + std::string{a.body};
      return fail("a publish was answered " + first_non200_);
    }
    ++acked_;
    if (a.tag > count_)
      return;
    conn_of_[a.tag] = a.conn;
    if (auto off = json_string(a.body, "offset"))
      offset_of_[a.tag] = decimal(*off).value_or(0);
  }

  void fail(const std::string& why) {
    if (error_.empty())
      error_ = why;
  }

  std::string failure(const std::string& why) {
    json_out j;
    j.str("scenario", "replay").str("error", why);
    return j.done();
  }

  const options& o_;
  size_t count_, conns_ = 0;
  std::string token_, room_, sid_, pid_, offset0_, error_, first_non200_;
  publisher* pub_ = nullptr;
  uint64_t deadline_ = 0, last_activity_ = 0;
  bool recovering_ = false, answered_ = false;
  uint64_t t_connect_ = 0, t_answer_ = 0, t_last_ = 0;
  receipts got_;
  std::vector<size_t> conn_of_;             // per seq: the API connection that published it
  std::vector<uint64_t> offset_of_;         // per seq: the offset its publish was answered with (0: none)
  std::vector<uint64_t> last_seq_of_conn_;  // per API connection: the highest seq received
  uint64_t last_offset_ = 0, next_seq_ = 1, acked_ = 0, non200_ = 0, foreign_ = 0;
  run_result r_;
};

} // namespace

std::string run_replay(const options& o) {
  replay_scenario s(o);
  engine e(o, s, 1);
  return s.run(e);
}

} // namespace loadgen
