// publish: publishes through the backend API (POST /api/v1/publish, stored
// and acknowledged once committed on Parley) over HTTP/1.1 keep-alive
// connections, one request outstanding on each (tools/loadgen/README.md).
//
// Fixed rate (--rate): publish k is due at t0 + k/rate; it goes out on a free
// connection at once, or waits for one, and its ack latency counts from when
// it was due, so a server that falls behind shows it as latency instead of
// slowing the generator down. Fixed in-flight (--inflight): that many
// connections, each sending its next publish as soon as the last is answered.
#include <algorithm>
#include <cstdio>
#include <deque>
#include <stdexcept>

#include "tools/loadgen/publisher.hpp"
#include "tools/loadgen/report.hpp"
#include "tools/loadgen/scenarios.hpp"

namespace loadgen {

namespace {

bool is_record_id(std::string_view id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

class publish_run {
public:
  explicit publish_run(const options& o) : o_(o), fixed_rate_(o.rate > 0) {
    if (o.api_key.empty())
      throw std::invalid_argument("publish needs --api-key");
    if (o.rooms == 0 || o.rooms > 100000)
      throw std::invalid_argument("--rooms must be 1…100000");
    if (o.rate > 1000000)
      throw std::invalid_argument("--rate is at most 1000000 publishes/s");
    if (!fixed_rate_ && o.connections != 0)
      throw std::invalid_argument("--connections is for --rate; --inflight=N uses N connections");
    conns_ = fixed_rate_ ? (o.connections ? o.connections : 256) : o.inflight;
    if (conns_ == 0 || conns_ > 10000)
      throw std::invalid_argument("between 1 and 10000 API connections");
    last_offset_.assign(conns_, 0);
  }

  std::string run() {
    publisher p(o_, conns_, [this](const publisher::answer& a) { on_answer(a); });
    auto deadline = now_ns() + static_cast<uint64_t>(o_.timeout * 1e9);
    // Every connection is up before the clock starts.
    if (auto why = p.await_connected(deadline, [&p] { p.poll_ns(10'000'000); }); !why.empty())
      return failure(why);

    auto t0 = now_ns();
    w0_ = t0 + static_cast<uint64_t>(o_.warmup * 1e9);
    w1_ = w0_ + static_cast<uint64_t>(o_.duration * 1e9);
    double interval = fixed_rate_ ? 1e9 / o_.rate : 0;
    uint64_t scheduled = 0;
    sending_ = true;
    if (!fixed_rate_)
      for (size_t k = 0; k < conns_; ++k)
        due(t0);
    uint64_t cpu0 = 0, cpu1 = 0, own0 = 0, own1 = 0, rss0 = 0, rss1 = 0, rss_peak = 0, rss_sampled = 0;
    bool in_window = false, window_done = false;
    while (true) {
      auto now = now_ns();
      // Every publish due by now (and before the window's end) is queued,
      // also those due while this loop was held up.
      if (sending_ && fixed_rate_)
        while (true) {
          auto at = t0 + static_cast<uint64_t>(static_cast<double>(scheduled) * interval);
          if (at > now || at >= w1_)
            break;
          due(at);
          ++scheduled;
        }
      if (!in_window && now >= w0_) {
        in_window = true;
        cpu0 = process_cpu_us(o_.server_pid);
        own0 = own_cpu_us();
        rss0 = rss_peak = process_rss_bytes(o_.server_pid);
        rss_sampled = now;
      }
      if (in_window && !window_done && now >= rss_sampled + 100'000'000ull) {
        rss_sampled = now;
        rss_peak = std::max(rss_peak, process_rss_bytes(o_.server_pid));
      }
      if (in_window && !window_done && now >= w1_) {
        window_done = true;
        cpu1 = process_cpu_us(o_.server_pid);
        own1 = own_cpu_us();
        rss1 = process_rss_bytes(o_.server_pid);
        sending_ = false;  // what is already due is still sent
      }
      while (p.has_free() && !waiting_.empty()) {
        auto seq = waiting_.front();
        waiting_.pop_front();
        ++sent_;
        p.send(body(seq), seq);
      }
      max_waiting_ = std::max<uint64_t>(max_waiting_, waiting_.size());
      if (window_done && waiting_.empty() && p.outstanding() == 0)
        break;
      if ((window_done && now >= w1_ + 5'000'000'000ull) || now >= deadline)
        break;
      uint64_t wait = 10'000'000;
      if (sending_ && fixed_rate_) {
        auto next = t0 + static_cast<uint64_t>(static_cast<double>(scheduled) * interval);
        wait = next > now ? std::min<uint64_t>(next - now, wait) : 0;
      }
      p.poll_ns(wait);
    }
    if (!window_done)
      return failure("the run passed its --timeout before the window closed");

    double window_s = static_cast<double>(w1_ - w0_) / 1e9;
    uint64_t unanswered = p.outstanding() + waiting_.size();
    json_out j;
    j.str("scenario", "publish")
        .str("mode", fixed_rate_ ? "fixed-rate" : "fixed-in-flight")
        .num("rate", o_.rate)
        .num("inflight", static_cast<uint64_t>(fixed_rate_ ? 0 : o_.inflight))
        .num("connections", static_cast<uint64_t>(conns_))
        .num("rooms", static_cast<uint64_t>(o_.rooms))
        .num("window_s", window_s)
        .num("publishes_sent", sent_)
        .num("acked", acked_)
        .num("acked_in_window", acked_window_)
        .num("acked_per_s", static_cast<double>(acked_window_) / window_s)
        .latency("ack", lat_)
        .num("max_waiting_for_a_connection", max_waiting_)
        .num("answers_without_offset", without_offset_)
        .num("offset_order_violations", order_violations_)
        .num("unanswered", unanswered)
        .num("connections_reopened", p.reopened)
        .num("server_cpu_us", cpu1 - cpu0)
        .num("server_cpu_us_per_publish",
             acked_window_ ? static_cast<double>(cpu1 - cpu0) / static_cast<double>(acked_window_) : 0.0)
        .num("server_rss_start_bytes", rss0)
        .num("server_rss_end_bytes", rss1)
        .num("server_rss_peak_bytes", std::max(rss_peak, rss1))
        .num("server_rss_growth_bytes", static_cast<double>(rss1) - static_cast<double>(rss0))
        .num("generator_cpu_us", own1 - own0);
    faults_.add_to(j);
    // An answer that was not 200, or a lost connection, says it first.
    auto error = faults_.error();
    if (error.empty()) {
      if (unanswered > 0)
        error = std::to_string(unanswered) + " publishes were not answered within 5 s of the window's end";
      else if (!o_.no_offsets && without_offset_ > 0)
        error = std::to_string(without_offset_) + " answers had no id or offset";
      else if (!o_.no_offsets && order_violations_ > 0)
        error = std::to_string(order_violations_) + " offsets did not grow on their connection";
    }
    if (!error.empty())
      j.str("error", error);
    return j.done();
  }

private:
  void due(uint64_t at) {
    sched_.push_back(at);
    waiting_.push_back(sched_.size() - 1);
  }

  std::string body(uint64_t seq) const {
    return "{\"room\":\"bench:" + std::to_string(seq % o_.rooms) + "\",\"event\":\"bench\",\"data\":{\"seq\":"
           + std::to_string(seq) + ",\"text\":\"durable publish\"}}";
  }

  void on_answer(const publisher::answer& a) {
    auto now = now_ns();
    if (faults_.ok(a)) {
      if (!o_.no_offsets) {
        auto id = json_string(a.body, "id");
        auto offset = json_string(a.body, "offset");
        std::optional<uint64_t> n;
        if (offset)
          n = decimal(*offset);
        if (!id || !is_record_id(*id) || !n) {
          ++without_offset_;
        } else {
          // One request at a time per connection: each answer's offset must
          // be above the one before on the same connection.
          if (*n <= last_offset_[a.conn])
            ++order_violations_;
          last_offset_[a.conn] = *n;
        }
      }
      ++acked_;
      if (now >= w0_ && now < w1_)
        ++acked_window_;
      auto sched = sched_[a.tag];
      if (sched >= w0_ && sched < w1_)
        lat_.add(now - sched);
    }
    if (!fixed_rate_ && sending_)
      due(now);
  }

  std::string failure(const std::string& why) {
    json_out j;
    j.str("scenario", "publish").str("error", why);
    return j.done();
  }

  const options& o_;
  bool fixed_rate_;
  size_t conns_ = 0;
  bool sending_ = false;
  uint64_t w0_ = ~0ull, w1_ = ~0ull;
  std::vector<uint64_t> sched_;       // per publish: when it was due
  std::deque<uint64_t> waiting_;      // publishes due, waiting for a free connection
  std::vector<uint64_t> last_offset_; // per connection
  uint64_t sent_ = 0, acked_ = 0, acked_window_ = 0, max_waiting_ = 0;
  uint64_t without_offset_ = 0, order_violations_ = 0;
  answer_faults faults_;
  histogram lat_;
};

} // namespace

std::string run_publish(const options& o) {
  publish_run r(o);
  return r.run();
}

} // namespace loadgen
