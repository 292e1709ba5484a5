#include "net/console.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/event_based_actor.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/rtm_supervisor.hpp"
#include "net/engineio_server.hpp"
#include "net/listener.hpp"
#include "net/metrics.hpp"
#include "net/socketio_packet.hpp"

namespace parley::net {

namespace {

using clock = std::chrono::steady_clock;
constexpr auto period = std::chrono::seconds(1);
constexpr auto ask_timeout = std::chrono::milliseconds(900);

// Compares in constant time (SHA-256 of both sides, CRYPTO_memcmp).
bool same_secret(std::string_view given, std::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

std::string rate(uint64_t delta, double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", seconds > 0 ? static_cast<double>(delta) / seconds : 0.0);
  return buf;
}

struct stream {
  explicit stream(tcp::socket s) : sock(std::move(s)) {
  }
  tcp::socket sock;
  std::array<char, 256> discard{};
  bool writing = false;
  bool closed = false;
  std::shared_ptr<const std::string> next; // the newest snapshot, waiting for the write in progress
};

} // namespace

struct console::impl : std::enable_shared_from_this<console::impl> {
  impl(asio::io_context& ioc, runtime_ptr rt) : ioc(ioc), rt(std::move(rt)), timer(ioc) {
  }

  asio::io_context& ioc;
  runtime_ptr rt;
  asio::steady_timer timer;
  std::vector<std::shared_ptr<stream>> streams;
  bool ticking = false;
  bool gathering = false;
  bool stopped = false;
  // The previous sample, for the rates.
  bool sampled = false;
  clock::time_point last_at;
  uint64_t last_fanouts = 0;
  uint64_t last_deliveries = 0;

  const std::string& key() const {
    return rt->cfg.console.key.empty() ? rt->cfg.api.key : rt->cfg.console.key;
  }

  // Answers 401/403 and returns false unless the request carries the key.
  bool authorized(const std::shared_ptr<http_session>& hs, const request& req) {
    auto& k = key();
    if (k.empty()) {
      hs->reply(json_error(req, http::status::forbidden, "console_disabled",
                           "The console is disabled: set parley.console.key or parley.api.key"));
      return false;
    }
    bool given = false;
    bool ok = false;
    if (auto q = eio::query_param(req.target(), "key")) {
      given = true;
      ok = same_secret(*q, k);
    } else if (auto it = req.find(http::field::authorization); it != req.end()) {
      given = true;
      ok = same_secret(it->value(), "apikey " + k);
    }
    if (!ok) {
      hs->reply(json_error(req, http::status::unauthorized, "unauthorized",
                           given ? "Invalid console key" : "Missing console key"));
      return false;
    }
    return true;
  }

  void open_stream(const std::shared_ptr<http_session>& hs, const request& req) {
    if (stopped) {
      hs->reply(json_error(req, http::status::service_unavailable, "unavailable", "Parley is stopping"));
      return;
    }
    if (streams.size() >= max_streams) {
      hs->reply(json_error(req, http::status::service_unavailable, "too_many_streams",
                           "At most " + std::to_string(max_streams) + " console streams may be open"));
      return;
    }
    auto s = std::make_shared<stream>(hs->take_socket());
    streams.push_back(s);
    auto head = std::make_shared<const std::string>(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-store\r\n"
      "X-Accel-Buffering: no\r\n"
      "Connection: close\r\n"
      "\r\n"
      "retry: 3000\n\n");
    write(s, head);
    watch(s);
    if (!gathering)
      gather();
    if (!ticking) {
      ticking = true;
      arm();
    }
  }

  // Reads (and drops) whatever the client sends: its end is how a closed
  // console is noticed.
  void watch(const std::shared_ptr<stream>& s) {
    s->sock.async_read_some(asio::buffer(s->discard), [self = shared_from_this(), s](beast::error_code ec, size_t) {
      if (s->closed)
        return;
      if (ec) {
        self->drop(s);
        return;
      }
      self->watch(s);
    });
  }

  // One write at a time per stream; while one is in progress only the newest
  // snapshot waits (an older waiting one is replaced).
  void write(const std::shared_ptr<stream>& s, std::shared_ptr<const std::string> text) {
    if (s->writing) {
      s->next = std::move(text);
      return;
    }
    s->writing = true;
    asio::async_write(s->sock, asio::buffer(*text),
                      [self = shared_from_this(), s, text](beast::error_code ec, size_t) {
                        s->writing = false;
                        if (s->closed)
                          return;
                        if (ec) {
                          self->drop(s);
                          return;
                        }
                        if (s->next)
                          self->write(s, std::move(s->next));
                      });
  }

  void drop(const std::shared_ptr<stream>& s) {
    s->closed = true;
    beast::error_code ec;
    s->sock.close(ec);
    streams.erase(std::remove(streams.begin(), streams.end(), s), streams.end());
  }

  void arm() {
    timer.expires_after(period);
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->stopped)
        return;
      if (self->streams.empty()) {
        self->ticking = false;
        self->sampled = false;
        return;
      }
      if (!self->gathering)
        self->gather();
      self->arm();
    });
  }

  // The counters now (I/O thread), then an actor asks the others and posts
  // the snapshot back.
  void gather() {
    gathering = true;
    auto& c = counters();
    auto now = clock::now();
    auto fanouts = c.fanouts.load(std::memory_order_relaxed);
    auto deliveries = c.deliveries.load(std::memory_order_relaxed);
    double dt = sampled ? std::chrono::duration<double>(now - last_at).count() : 0;
    std::string head = "{\"t\":";
    head += std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count());
    head += ",\"connections\":" + std::to_string(c.sockets.load(std::memory_order_relaxed));
    head += ",\"sessions\":" + std::to_string(c.sessions.load(std::memory_order_relaxed));
    head += ",\"plainConnections\":" + std::to_string(c.plain_connections.load(std::memory_order_relaxed));
    head += ",\"publishesPerSec\":" + rate(sampled ? fanouts - last_fanouts : 0, dt);
    head += ",\"deliveriesPerSec\":" + rate(sampled ? deliveries - last_deliveries : 0, dt);
    head += ",\"publishesTotal\":" + std::to_string(fanouts);
    head += ",\"deliveriesTotal\":" + std::to_string(deliveries);
    head += ",\"slowClientsDropped\":" + std::to_string(c.slow_clients_dropped.load(std::memory_order_relaxed));
    head += ",\"plainRefused\":" + std::to_string(c.plain_refused.load(std::memory_order_relaxed));
    head += ",\"connectRefused\":" + std::to_string(c.connect_refused.load(std::memory_order_relaxed));
    head += ",\"storeAvailable\":";
    head += c.store_available.load(std::memory_order_relaxed) != 0 ? "true" : "false";
    sampled = true;
    last_at = now;
    last_fanouts = fanouts;
    last_deliveries = deliveries;

    auto& sys = rt->sys;
    auto presence = rt->presence();
    std::vector<caf::actor> shards;
    bool shards_complete = true;
    for (size_t i = 0; i < rt->cfg.rooms.directory_shards; ++i) {
      auto d = caf::actor_cast<caf::actor>(sys.registry().get(directory_key(i)));
      if (d)
        shards.push_back(std::move(d));
      else
        shards_complete = false;
    }
    bool rtm_on = !rt->cfg.rtm.url.empty();
    caf::actor rtm = rtm_on ? caf::actor_cast<caf::actor>(sys.registry().get(rtm_supervisor_key())) : caf::actor{};
    std::weak_ptr<impl> weak = shared_from_this();
    auto& io = ioc;
    auto post = [weak, &io](std::string json) {
      asio::post(io, [weak, json = std::move(json)]() mutable {
        if (auto self = weak.lock())
          self->deliver(std::move(json));
      });
    };
    sys.spawn([head = std::move(head), presence, shards, shards_complete, rtm_on, rtm,
               post](caf::event_based_actor* self) {
      struct acc {
        std::string head;
        std::optional<uint64_t> users;
        uint64_t rooms = 0;
        bool rooms_known = true;
        std::vector<std::pair<uint64_t, std::string>> top;
        bool rtm_on = false;
        std::string rtm; // the supervisor's status JSON, or "" when it did not answer
        size_t pending = 0;
      };
      auto st = std::make_shared<acc>();
      st->head = head;
      st->rooms_known = shards_complete;
      st->rtm_on = rtm_on;
      st->pending = (presence ? 1 : 0) + shards.size() * 2 + (rtm ? 1 : 0);
      auto finish = [st, post] {
        std::string j = std::move(st->head);
        j += ",\"users\":";
        j += st->users ? std::to_string(*st->users) : "null";
        j += ",\"rooms\":";
        j += st->rooms_known ? std::to_string(st->rooms) : "null";
        std::sort(st->top.begin(), st->top.end(),
                  [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
        if (st->top.size() > busiest_rooms)
          st->top.resize(busiest_rooms);
        j += ",\"busiestRooms\":[";
        for (size_t i = 0; i < st->top.size(); ++i) {
          if (i)
            j += ',';
          j += "{\"room\":";
          sio::append_json_string(j, st->top[i].second);
          j += ",\"members\":" + std::to_string(st->top[i].first) + "}";
        }
        j += "],\"rtm\":";
        if (!st->rtm_on)
          j += "null";
        else if (st->rtm.empty())
          j += R"({"status":"unknown","profiles":{}})";
        else
          j += st->rtm;
        j += ",\"cluster\":null}";
        post(std::move(j));
      };
      if (st->pending == 0) {
        st->rooms_known = false;
        finish();
        return;
      }
      auto done = [st, finish] {
        if (--st->pending == 0)
          finish();
      };
      if (presence)
        self->request(presence, ask_timeout, count_atom::value)
          .then([st, done](uint64_t n) { st->users = n; done(); }, [done](caf::error&) { done(); });
      for (auto& d : shards) {
        self->request(d, ask_timeout, count_atom::value)
          .then([st, done](uint64_t n) { st->rooms += n; done(); },
                [st, done](caf::error&) { st->rooms_known = false; done(); });
        self->request(d, ask_timeout, top_atom::value, uint64_t{busiest_rooms})
          .then(
            [st, done](std::vector<std::string>& names, std::vector<uint64_t>& members) {
              for (size_t i = 0; i < names.size() && i < members.size(); ++i)
                st->top.emplace_back(members[i], std::move(names[i]));
              done();
            },
            [done](caf::error&) { done(); });
      }
      if (rtm)
        self->request(rtm, ask_timeout, rtm_status_atom::value)
          .then([st, done](std::string& s) { st->rtm = std::move(s); done(); }, [done](caf::error&) { done(); });
    });
  }

  // On the I/O thread: the snapshot to every stream.
  void deliver(std::string json) {
    gathering = false;
    if (stopped)
      return;
    auto event = std::make_shared<std::string>();
    event->reserve(json.size() + 8);
    *event += "data: ";
    *event += json;
    *event += "\n\n";
    std::shared_ptr<const std::string> text = std::move(event);
    auto all = streams; // drop() edits the list
    for (auto& s : all)
      if (!s->closed)
        write(s, text);
  }

  void close_all() {
    stopped = true;
    timer.cancel();
    auto all = std::move(streams);
    streams.clear();
    for (auto& s : all) {
      s->closed = true;
      beast::error_code ec;
      s->sock.shutdown(tcp::socket::shutdown_both, ec);
      s->sock.close(ec);
    }
  }
};

console::console(asio::io_context& ioc, runtime_ptr rt) : impl_(std::make_shared<impl>(ioc, std::move(rt))) {
}

console::~console() {
  impl_->close_all();
}

void console::close_all() {
  impl_->close_all();
}

void console::handle(const std::shared_ptr<http_session>& hs, request&& req) {
  auto path = target_path(req.target());
  bool page = path == "/console" || path == "/console/";
  bool events = path == "/console/events";
  if (!page && !events) {
    hs->reply(json_error(req, http::status::not_found, "not_found", "No route for " + std::string{path}));
    return;
  }
  if (req.method() != http::verb::get) {
    auto res = json_error(req, http::status::method_not_allowed, "method_not_allowed",
                          "Use GET for " + std::string{path});
    res.set(http::field::allow, "GET");
    hs->reply(std::move(res));
    return;
  }
  if (!impl_->authorized(hs, req))
    return;
  if (events) {
    impl_->open_stream(hs, req);
    return;
  }
  auto res = make_response(req, http::status::ok, console_page, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
          "img-src data:; base-uri 'none'; form-action 'self'");
  hs->reply(std::move(res));
}

} // namespace parley::net
