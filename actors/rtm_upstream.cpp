#include "actors/rtm_upstream.hpp"

#include <chrono>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "net/metrics.hpp"
#include "net/socketio_packet.hpp"

namespace parley {

duration backoff_delay(uint32_t failures, duration base, duration cap, uint64_t jitter_pct, double u) {
  double d = static_cast<double>(base.count());
  for (uint32_t i = 0; i < failures && d < cap.count(); ++i)
    d *= 2;
  if (d > cap.count())
    d = static_cast<double>(cap.count());
  d *= 1.0 + (static_cast<double>(jitter_pct) / 100.0) * (2.0 * u - 1.0);
  if (d > cap.count())
    d = static_cast<double>(cap.count());
  return duration{static_cast<int64_t>(d < 1 ? 1 : d)};
}

const char* to_string(upstream_phase p) {
  switch (p) {
    case upstream_phase::connecting: return "connecting";
    case upstream_phase::connected: return "connected";
    case upstream_phase::backoff: return "backoff";
    case upstream_phase::auth_failed: return "auth_failed";
  }
  return "connecting";
}

namespace {

using self_ptr = caf::stateful_actor<rtm_upstream_state>*;

std::string iso_or_null(int64_t ms) {
  return ms ? "\"" + format_iso8601_ms(ms) + "\"" : std::string{"null"};
}

void report(self_ptr self) {
  auto& st = self->state;
  std::string entry = "{\"state\":\"" + std::string{to_string(st.phase)} + "\",\"reconnects\":"
                      + std::to_string(st.reconnects) + ",\"lastEventAt\":" + iso_or_null(st.last_event_ms)
                      + ",\"nextAttemptAt\":"
                      + iso_or_null(st.phase == upstream_phase::backoff || st.phase == upstream_phase::auth_failed
                                      ? st.next_attempt_ms
                                      : 0);
  if (!st.last_error.empty()) {
    entry += ",\"lastError\":";
    sio::append_json_string(entry, st.last_error);
  }
  entry += "}";
  if (st.supervisor)
    self->send(st.supervisor, rtm_status_atom::value, st.profile.id, entry,
               st.phase == upstream_phase::connected);
}

void set_phase(self_ptr self, upstream_phase p) {
  auto& st = self->state;
  bool was_connected = st.connected;
  st.connected = p == upstream_phase::connected;
  if (was_connected != st.connected) {
    counters().rtm_connected.fetch_add(st.connected ? 1 : -1, std::memory_order_relaxed);
    *st.gauge = st.connected;
  }
  st.phase = p;
  report(self);
}

void drop_link(self_ptr self) {
  auto& st = self->state;
  if (auto l = std::move(*st.link)) {
    *st.link = nullptr;
    l->close();
  }
}

// Callbacks from the I/O thread reach the actor as messages tagged with the
// attempt's generation; the link holds only a weak reference to the actor.
net::ws_link::callbacks link_callbacks(self_ptr self, uint64_t gen) {
  auto weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
  auto to = [weak] { return caf::actor_cast<caf::actor>(weak.lock()); };
  net::ws_link::callbacks cb;
  cb.on_open = [to, gen] {
    if (auto a = to())
      caf::anon_send(a, rtm_open_atom::value, gen);
  };
  cb.on_text = [to, gen](std::string text) {
    if (auto a = to())
      caf::anon_send(a, rtm_frame_atom::value, gen, std::move(text));
  };
  cb.on_close = [to, gen](int status, std::string reason) {
    if (auto a = to())
      caf::anon_send(a, rtm_closed_atom::value, gen, status, std::move(reason));
  };
  return cb;
}

void connect(self_ptr self);

void schedule_retry(self_ptr self, bool slow) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (st.connected_since != caf::actor_clock::time_point{} && now - st.connected_since >= st.opts.backoff_max)
    st.failures = 0; // the last connection was stable: start the schedule over
  st.connected_since = {};
  std::uniform_real_distribution<double> dist{0.0, 1.0};
  auto u = dist(st.rng);
  auto delay = slow ? backoff_delay(30, st.opts.backoff_base, st.opts.backoff_max, st.opts.backoff_jitter, u)
                    : backoff_delay(st.failures, st.opts.backoff_base, st.opts.backoff_max, st.opts.backoff_jitter, u);
  ++st.failures;
  st.next_attempt_ms = unix_ms() + delay.count();
  set_phase(self, st.auth_failed ? upstream_phase::auth_failed : upstream_phase::backoff);
  spdlog::info("rtm {}: next attempt in {} ms", st.profile.id, delay.count());
  self->delayed_send(self, delay, retry_atom::value, st.gen);
}

void auth_failure(self_ptr self, const std::string& why) {
  auto& st = self->state;
  st.auth_failed = true;
  st.last_error = why;
  counters().rtm_auth_failures.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("rtm {}: {}", st.profile.id, why);
  // Without credentials only a new session (PUT .../rtm/profiles/{id}) helps: retry slowly.
  schedule_retry(self, st.profile.password.empty());
}

void login(self_ptr self) {
  auto& st = self->state;
  ++st.gen;
  st.tried_login = true;
  st.need_login = false;
  if (!st.auth_failed)
    set_phase(self, upstream_phase::connecting);
  auto weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
  auto gen = st.gen;
  st.client->login(st.profile.id, st.profile.password, [weak, gen](net::http_result r) {
    auto a = caf::actor_cast<caf::actor>(weak.lock());
    if (!a)
      return;
    if (r.status >= 200 && r.status < 300)
      caf::anon_send(a, rtm_login_atom::value, gen, r.status, net::merge_cookies("", r.set_cookies));
    else
      caf::anon_send(a, rtm_login_atom::value, gen, r.status,
                     r.status ? "login refused with HTTP " + std::to_string(r.status) : "login failed: " + r.error);
  });
}

void connect(self_ptr self) {
  auto& st = self->state;
  drop_link(self);
  auto now_s = unix_ms() / 1000;
  bool expired = st.profile.expires_at != 0 && st.profile.expires_at <= now_s;
  if (!st.profile.password.empty() && (st.need_login || st.profile.cookies.empty() || expired)) {
    login(self);
    return;
  }
  if (st.profile.cookies.empty() || expired) {
    ++st.gen;
    auth_failure(self, expired ? "the session expired and no password is configured"
                               : "no session cookies and no password configured");
    return;
  }
  ++st.gen;
  if (!st.auth_failed)
    set_phase(self, upstream_phase::connecting);
  *st.link = st.client->open(st.profile.cookies, link_callbacks(self, st.gen));
}

void on_connected(self_ptr self, int64_t ping_seconds) {
  auto& st = self->state;
  if (st.ever_connected) {
    ++st.reconnects;
    counters().rtm_reconnects.fetch_add(1, std::memory_order_relaxed);
  }
  st.ever_connected = true;
  st.auth_failed = false;
  st.tried_login = false;
  st.last_error.clear();
  st.connected_since = self->clock().now();
  st.ping_seconds = ping_seconds;
  spdlog::info("rtm {}: connected", st.profile.id);
  set_phase(self, upstream_phase::connected);
  if (ping_seconds > 0)
    self->delayed_send(self, std::chrono::seconds(ping_seconds), watchdog_atom::value, st.gen);
}

void on_frame(self_ptr self, const std::string& text) {
  auto& st = self->state;
  st.last_frame = self->clock().now();
  // The Centrifugo JSON protocol may put several replies in one frame, one per line.
  size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find('\n', pos);
    auto line = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? text.size() + 1 : end + 1;
    if (line.find_first_not_of(" \r\t") == std::string::npos)
      continue;
    auto parsed = rtm::parse_frame(line);
    if (auto err = std::get_if<std::string>(&parsed)) {
      counters().rtm_malformed.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("rtm {}: skipped a malformed frame ({}): {:.200}", st.profile.id, *err, line);
      continue;
    }
    auto& f = std::get<rtm::frame>(parsed);
    switch (f.kind) {
      case rtm::frame_kind::ping:
        if (*st.link)
          (*st.link)->send("{}");
        break;
      case rtm::frame_kind::connect_reply:
        if (!st.connected)
          on_connected(self, f.ping_seconds);
        break;
      case rtm::frame_kind::error_reply:
        spdlog::warn("rtm {}: upstream error {}", st.profile.id, f.error);
        break;
      case rtm::frame_kind::other_reply:
        break;
      case rtm::frame_kind::push: {
        auto ev = rtm::parse_event(*f.data, st.profile.id);
        if (auto err = std::get_if<std::string>(&ev)) {
          counters().rtm_malformed.fetch_add(1, std::memory_order_relaxed);
          spdlog::warn("rtm {}: skipped an event ({}): {:.200}", st.profile.id, *err, line);
          break;
        }
        auto e = std::make_shared<rtm::event>(std::get<rtm::event>(std::move(ev)));
        e->cookies = st.profile.cookies;
        st.last_event_ms = unix_ms();
        counters().rtm_events.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("rtm {}: {} {}", st.profile.id, rtm::internal_name(e->kind), e->id);
        if (auto n = st.next ? st.next() : caf::actor{})
          self->send(n, rtm_event_atom::value, rtm::event_ptr{std::move(e)});
        report(self);
        break;
      }
    }
  }
}

void on_closed(self_ptr self, int status, const std::string& reason) {
  auto& st = self->state;
  *st.link = nullptr;
  bool was_connected = st.connected;
  spdlog::info("rtm {}: {}{}", st.profile.id, was_connected ? "connection lost: " : "could not connect: ", reason);
  if (status == 401 || status == 403) {
    if (!st.profile.password.empty() && !st.tried_login) {
      login(self);
      return;
    }
    auth_failure(self, "the upstream refused the session (HTTP " + std::to_string(status) + ")");
    st.need_login = !st.profile.password.empty();
    return;
  }
  st.last_error = reason;
  schedule_retry(self, false);
}

} // namespace

caf::behavior rtm_upstream(caf::stateful_actor<rtm_upstream_state>* self, rtm_profile profile,
                           rtm_settings opts, std::shared_ptr<net::rtm_client> client, caf::actor supervisor,
                           std::function<caf::actor()> next) {
  auto& st = self->state;
  st.profile = std::move(profile);
  st.opts = std::move(opts);
  st.client = std::move(client);
  st.supervisor = std::move(supervisor);
  st.next = std::move(next);
  // However the actor ends, its connection goes with it.
  self->attach_functor([link = st.link, gauge = st.gauge] {
    if (auto l = std::move(*link))
      l->close();
    if (*gauge)
      counters().rtm_connected.fetch_sub(1, std::memory_order_relaxed);
  });
  connect(self);
  return {
    [self](rtm_open_atom, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.gen || !*st.link)
        return;
      st.last_frame = self->clock().now();
      (*st.link)->send(R"({"connect":{"name":"js","version":"1.0"},"id":1})");
    },
    [self](rtm_frame_atom, uint64_t gen, const std::string& text) {
      if (gen == self->state.gen)
        on_frame(self, text);
    },
    [self](rtm_closed_atom, uint64_t gen, int status, const std::string& reason) {
      if (gen == self->state.gen)
        on_closed(self, status, reason);
    },
    [self](rtm_login_atom, uint64_t gen, int status, const std::string& result) {
      auto& st = self->state;
      if (gen != st.gen)
        return;
      if (status >= 200 && status < 300 && !result.empty()) {
        spdlog::info("rtm {}: logged in", st.profile.id);
        st.profile.cookies = result;
        st.profile.expires_at = 0;
        connect(self);
        return;
      }
      st.need_login = true;
      auth_failure(self, status >= 200 && status < 300 ? "login answered without a session cookie" : result);
    },
    [self](retry_atom, uint64_t gen) {
      if (gen == self->state.gen)
        connect(self);
    },
    [self](watchdog_atom, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.gen || !st.connected)
        return;
      // The server pings every ping_seconds; silence well past that means a dead link.
      auto limit = std::chrono::seconds(st.ping_seconds) + std::chrono::seconds(10);
      if (self->clock().now() - st.last_frame > limit) {
        spdlog::warn("rtm {}: no frame for {} s, reconnecting", st.profile.id,
                     std::chrono::duration_cast<std::chrono::seconds>(limit).count());
        drop_link(self);
        on_closed(self, 0, "no ping from the upstream");
        return;
      }
      self->delayed_send(self, std::chrono::seconds(st.ping_seconds), watchdog_atom::value, gen);
    },
    [self](put_atom, const rtm_profile& p) {
      auto& st = self->state;
      st.profile.cookies = p.cookies;
      st.profile.password = p.password;
      st.profile.expires_at = p.expires_at;
      st.failures = 0;
      st.need_login = false;
      st.tried_login = false;
      st.auth_failed = false;
      st.last_error.clear();
      if (st.connected)
        set_phase(self, upstream_phase::connecting);
      connect(self);
    },
    [self](stop_atom) {
      drop_link(self);
      self->quit();
    },
  };
}

} // namespace parley
