// fanout and chat: rooms of members, one sender per message, every delivery
// timed against the message's scheduled send time (tools/loadgen/README.md).
// plainfanout: the same fan-out to plain WebSocket members of one dialog
// (seed 003's widget sockets), each message published through the backend API.
#include "tools/loadgen/scenarios.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>

#include "tools/loadgen/publisher.hpp"
#include "tools/loadgen/report.hpp"

namespace loadgen {

namespace {

// plainfanout's dialog, the widget credential its members connect with, and
// where its messages are published.
constexpr const char* plain_dialog_target = "/ws/widget/dialogs/bench?assistant_id=bench";
constexpr const char* plain_dialog_messages = "/api/v1/dialogs/bench/messages";

// An ISO 8601 UTC time of the wall clock, to the millisecond.
std::string iso_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[40];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

class rooms_scenario : public scenario {
public:
  explicit rooms_scenario(const options& o)
    : o_(o), plain_(o.scenario == "plainfanout"), fanout_(o.scenario == "fanout" || plain_) {
    if (plain_) {
      rooms_ = 1;
      per_room_ = o.members;  // every connection receives; messages come through the API
      if (o.api_key.empty())
        throw std::invalid_argument("plainfanout needs --api-key");
      if (o.members == 0 || o.stuck >= o.members)
        throw std::invalid_argument("plainfanout needs --members ≥ 1 and --stuck below it");
      if (o.flood > 0 || o.typing)
        throw std::invalid_argument("plainfanout has no --flood or --typing");
      api_conns_ = o.connections ? o.connections : o.rate > 0 ? 64 : o.inflight;
      if (api_conns_ == 0 || api_conns_ > 10000)
        throw std::invalid_argument("between 1 and 10000 API connections");
    } else if (fanout_) {
      rooms_ = 1;
      per_room_ = o.members + 1;  // connection 0 sends, 1..members receive
      if (o.stuck >= o.members)
        throw std::invalid_argument("--stuck must be below --members");
      if (o.flood > 1000000)
        throw std::invalid_argument("--flood is at most 1000000");
    } else {
      rooms_ = o.rooms;
      per_room_ = o.members;
      if (per_room_ < 2)
        throw std::invalid_argument("chat needs --members of at least 2");
    }
    receivers_per_message_ = fanout_ ? o.members - o.stuck : per_room_ - 1;
    acks_per_conn_ = o.typing ? 2 : 1;
    exp_ = std::to_string(std::time(nullptr) + 3600);
  }

  // With --flood, one more connection (the last) floods; it joins a room of its own.
  size_t connections() const { return rooms_ * per_room_ + (o_.flood > 0 ? 1 : 0); }

  std::string plain_target(size_t) override { return plain_ ? plain_dialog_target : ""; }

  std::string token(size_t i) override {
    return hs256_token("{\"sub\":\"u" + std::to_string(i)
                           + "\",\"rooms\":[\"chat:*\",\"conversation:*\"],\"exp\":" + exp_ + "}",
                       o_.secret);
  }

  void on_connected(size_t i) override {
    if (plain_) {
      // Its pong says the server has it in the dialog: it counts as joined then.
      eng->send_text(i, R"({"type":"ping"})");
      pending_[i] = 1;
      return;
    }
    auto room = std::to_string(i / per_room_);
    eng->send_with_ack(i, "[\"join\",{\"room\":\"chat:" + room + "\"}]");
    if (o_.typing)
      eng->send_with_ack(i, "[\"conversation:join\",{\"conversationId\":\"" + room + "\"}]");
    pending_[i] = acks_per_conn_;
  }

  void on_ack(size_t i, uint32_t, std::string_view packet) override {
    if (packet.find("\"error\"") != std::string_view::npos) {
      ++join_errors_;
      if (join_errors_ == 1)
        std::fprintf(stderr, "loadgen: join refused: %.*s\n", static_cast<int>(packet.size()), packet.data());
      return;
    }
    joined_step(i);
  }

  void joined_step(size_t i) {
    if (pending_[i] > 0 && --pending_[i] == 0)
      ++joined_;
  }

  void on_closed(size_t i, std::string_view why) override {
    ++closed_;
    if (closed_ <= 3)
      std::fprintf(stderr, "loadgen: connection %zu closed: %.*s\n", i, static_cast<int>(why.size()), why.data());
  }

  // A message with its stamp under `key` reached connection i.
  void received(size_t i, std::string_view json, std::string_view key, uint64_t now) {
    auto s = find_stamp(json, key);
    if (!s || s->seq >= msgs_.size()) {
      ++foreign_;
      return;
    }
    auto& c = eng->at(i);
    if (!c.rec)
      c.rec = std::make_unique<receipts>();
    if (!c.rec->add(s->seq))
      return;  // a duplicate: counted by receipts
    auto& m = msgs_[s->seq];
    if (now >= w0_ && now < w1_)
      ++window_deliveries_;
    if (m.sched >= w0_ && m.sched < w1_)
      delivery_.add(now - m.sched);
    m.last = std::max(m.last, now);
    if (++m.got == receivers_per_message_) {
      if (m.sched >= w0_ && m.sched < w1_)
        last_.add(m.last - m.sched);
      ++completed_;
      --in_flight_;
      if (o_.rate <= 0 && sending_)
        send_one(now);
    }
  }

  void on_text(size_t i, std::string_view text) override {
    auto now = now_ns();
    last_event_ = now;
    if (json_string(text, "type") == std::optional<std::string_view>{"pong"})
      joined_step(i);
    else
      received(i, text, "text", now);
  }

  void on_event(size_t i, std::string_view name, std::string_view packet) override {
    auto now = now_ns();
    last_event_ = now;
    if (name == "message") {
      received(i, packet, "message", now);
    } else if (name == "typing:start") {
      if (now >= w0_ && now < w1_)
        ++window_typing_;
    } else {
      ++other_;
    }
  }

  void send_one(uint64_t sched) {
    auto seq = msgs_.size();
    if (plain_) {
      msgs_.push_back({sched, 0, 0});
      ++in_flight_;
      waiting_.push_back(seq);
      publish_waiting();
      return;
    }
    size_t room = fanout_ ? 0 : seq % rooms_;
    size_t from = fanout_ ? 0 : room * per_room_ + pick_(rng_) % per_room_;
    msgs_.push_back({sched, 0, 0});
    ++in_flight_;
    auto r = std::to_string(room);
    if (o_.typing)
      eng->send(from, "2[\"typing:start\",{\"conversationId\":\"" + r + "\"}]");
    eng->send(from, "2[\"send_message\",{\"chatId\":\"" + r + "\",\"message\":\""
                        + stamp(seq, sched, o_.size) + "\"}]");
  }

  // plainfanout: messages due go out on free API connections, in order; the
  // others wait for the next answer.
  void publish_waiting() {
    while (pub_->has_free() && !waiting_.empty()) {
      auto seq = waiting_.front();
      waiting_.pop_front();
      pub_->send("{\"id\":" + std::to_string(seq) + ",\"sender\":\"manager\",\"text\":\""
                     + stamp(seq, msgs_[seq].sched, o_.size) + "\",\"timestamp\":\"" + iso_now() + "\"}",
                 seq);
    }
  }

  void on_published(const publisher::answer& a) {
    if (faults_.ok(a) && json_uint(a.body, "site") != std::optional<uint64_t>{o_.members}
        && delivered_mismatches_++ == 0)
      first_mismatch_ = std::string{a.body};
    publish_waiting();
  }

  void on_fd(uint64_t) override { pub_->poll_ns(0); }

  // Nothing more to come: every message complete and, with plainfanout, every publish answered.
  bool settled() const { return in_flight_ == 0 && (!pub_ || (waiting_.empty() && pub_->outstanding() == 0)); }

  std::string run(engine& e) {
    auto n = connections();
    pending_.assign(n, 0);
    auto deadline = now_ns() + static_cast<uint64_t>(o_.timeout * 1e9);
    std::unique_ptr<publisher> pub;
    if (plain_) {
      pub = std::make_unique<publisher>(o_, api_conns_, [this](const publisher::answer& a) { on_published(a); },
                                        plain_dialog_messages);
      pub_ = pub.get();
      e.watch(pub_->fd(), 0);
      if (auto why = pub_->await_connected(deadline, [&e] { e.poll(10); }); !why.empty())
        return failure(why);
    }
    auto t_ramp = now_ns();
    e.ramp(0, n, o_.concurrency);
    while (joined_ + closed_ < n && join_errors_ == 0 && now_ns() < deadline)
      e.poll(50);
    auto ramp_s = static_cast<double>(now_ns() - t_ramp) / 1e9;
    if (joined_ < n)
      return failure("only " + std::to_string(joined_) + " of " + std::to_string(n) + " connections joined");
    std::fprintf(stderr, "loadgen: %zu connections joined in %.2f s\n", n, ramp_s);
    for (size_t k = 0; k < o_.stuck; ++k)
      e.stop_reading(rooms_ * per_room_ - 1 - k);
    // Let presence and join traffic settle before the clock starts: 300 ms at
    // least, then until nothing has arrived for 200 ms.
    auto settle_from = now_ns();
    while (now_ns() < deadline
           && (now_ns() < settle_from + 300'000'000ull || now_ns() < last_event_ + 200'000'000ull))
      e.poll(10);

    std::string flood;
    if (o_.flood > 0)
      flood = engine::frames("2[\"typing:stop\",{\"conversationId\":\"flood\"}]", o_.flood);
    auto t0 = now_ns();
    w0_ = t0 + static_cast<uint64_t>(o_.warmup * 1e9);
    w1_ = w0_ + static_cast<uint64_t>(o_.duration * 1e9);
    uint64_t cpu0 = 0, cpu1 = 0, own0 = 0, own1 = 0, rss0 = 0, rss1 = 0;
    bool in_window = false, window_done = false;
    sending_ = true;
    double interval = o_.rate > 0 ? 1e9 / o_.rate : 0;
    uint64_t sent_by_rate = 0;
    if (o_.rate <= 0)
      for (size_t k = 0; k < o_.inflight; ++k)
        send_one(now_ns());
    rss0 = process_rss_bytes(o_.server_pid);
    uint64_t rss_peak = rss0, rss_sampled = 0;
    while (true) {
      auto now = now_ns();
      if (!in_window && now >= w0_) {
        in_window = true;
        cpu0 = process_cpu_us(o_.server_pid);
        own0 = own_cpu_us();
        // The flood: every event written at once (what the socket does not take
        // waits in this connection's output), typing:stop to a room nobody is in.
        if (o_.flood > 0)
          e.send_frames(n - 1, std::move(flood));
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
        sending_ = false;
      }
      if (window_done && (settled() || now >= w1_ + 3'000'000'000ull || now >= deadline))
        break;
      if (now >= deadline)
        break;
      int timeout_ms = 10;
      if (sending_ && o_.rate > 0) {
        // Fixed rate: every message due by now goes out, stamped with its scheduled time.
        while (true) {
          auto due = t0 + static_cast<uint64_t>(static_cast<double>(sent_by_rate) * interval);
          if (due > now)
            break;
          send_one(due);
          ++sent_by_rate;
        }
        auto next = t0 + static_cast<uint64_t>(static_cast<double>(sent_by_rate) * interval);
        e.poll_ns(next > now ? std::min<uint64_t>(next - now, 10'000'000) : 0);
        continue;
      }
      e.poll(timeout_ms);
    }
    if (!window_done)
      return failure("the run passed its --timeout before the window closed");

    uint64_t lost = 0, dups = 0, reordered = 0, receipts_total = 0;
    for (auto& m : msgs_)
      lost += receivers_per_message_ - std::min<uint64_t>(m.got, receivers_per_message_);
    for (size_t i = 0; i < n; ++i)
      if (auto& r = e.at(i).rec) {
        dups += r->duplicates();
        receipts_total += r->unique();
        reordered += r->reordered();
      }
    double window_s = static_cast<double>(w1_ - w0_) / 1e9;
    auto deliveries = window_deliveries_ + window_typing_;
    json_out j;
    j.str("scenario", o_.scenario)
        .num("connections", static_cast<uint64_t>(n))
        .num("rooms", static_cast<uint64_t>(rooms_))
        .num("receivers_per_message", receivers_per_message_)
        .str("mode", o_.rate > 0 ? "fixed-rate" : "fixed-in-flight")
        .num("rate", o_.rate)
        .num("inflight", static_cast<uint64_t>(o_.rate > 0 ? 0 : o_.inflight))
        .num("stuck", static_cast<uint64_t>(o_.stuck))
        .num("flood", static_cast<uint64_t>(o_.flood))
        .num("ramp_s", ramp_s)
        .num("window_s", window_s)
        .num("messages_sent", static_cast<uint64_t>(msgs_.size()))
        .num("messages_completed", completed_)
        .num("message_deliveries", window_deliveries_)
        .num("typing_deliveries", window_typing_)
        .num("deliveries_per_s", static_cast<double>(deliveries) / window_s)
        .latency("delivery", delivery_)
        .latency("last_member", last_)
        .num("receipts", receipts_total)
        .num("lost", lost)
        .num("duplicates", dups)
        .num("reordered", reordered)
        .num("closed", closed_)
        .num("other_events", other_)
        .num("unstamped_messages", foreign_)
        .num("server_cpu_us", cpu1 - cpu0)
        .num("server_cpu_us_per_delivery",
             deliveries ? static_cast<double>(cpu1 - cpu0) / static_cast<double>(deliveries) : 0.0)
        .num("server_rss_start_bytes", rss0)
        .num("server_rss_end_bytes", rss1)
        .num("server_rss_peak_bytes", std::max(rss_peak, rss1))
        .num("generator_cpu_us", own1 - own0)
        .num("connect_failures", e.connect_failures)
        .num("protocol_errors", e.protocol_errors);
    if (plain_) {
      // The API side: answers not 200 or lost fail the run; each answer's
      // delivered.site must be --members.
      auto unanswered = static_cast<uint64_t>(pub_->outstanding() + waiting_.size());
      j.num("api_connections", static_cast<uint64_t>(api_conns_))
          .num("unanswered", unanswered)
          .num("delivered_mismatches", delivered_mismatches_);
      faults_.add_to(j);
      if (!first_mismatch_.empty())
        j.str("first_delivered_mismatch", first_mismatch_);
      auto error = faults_.error();
      if (error.empty() && unanswered > 0)
        error = std::to_string(unanswered) + " publishes were not answered within 3 s of the window's end";
      if (!error.empty())
        j.str("error", error);
    }
    return j.done();
  }

private:
  struct msg {
    uint64_t sched;
    uint64_t last;
    uint64_t got;
  };

  std::string failure(const std::string& why) {
    json_out j;
    j.str("scenario", o_.scenario).str("error", why).num("closed", closed_).num("joined", joined_);
    return j.done();
  }

  const options& o_;
  bool plain_, fanout_;
  size_t rooms_ = 1, per_room_ = 0;
  uint64_t receivers_per_message_ = 0;
  unsigned acks_per_conn_ = 1;
  std::string exp_;
  std::vector<uint8_t> pending_;
  uint64_t joined_ = 0, closed_ = 0, join_errors_ = 0;
  std::vector<msg> msgs_;
  uint64_t w0_ = ~0ull, w1_ = ~0ull;
  uint64_t window_deliveries_ = 0, window_typing_ = 0, other_ = 0, foreign_ = 0;
  uint64_t completed_ = 0, in_flight_ = 0, last_event_ = 0;
  bool sending_ = false;
  histogram delivery_, last_;
  std::mt19937_64 rng_{42};
  // plainfanout's publishes
  size_t api_conns_ = 0;
  publisher* pub_ = nullptr;
  std::deque<uint64_t> waiting_;
  answer_faults faults_;
  uint64_t delivered_mismatches_ = 0;
  std::string first_mismatch_;
  std::uniform_int_distribution<size_t> pick_{0, ~size_t{0}};
};

} // namespace

std::string run_rooms(const options& o) {
  rooms_scenario s(o);
  engine e(o, s, s.connections());
  return s.run(e);
}

} // namespace loadgen
