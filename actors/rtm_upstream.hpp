// One actor per RTM profile: keeps that profile's upstream WebSocket open.
//
//   connecting ──connect reply──▶ connected ──drop──▶ backoff ──delay──▶ connecting
//        │ 401/403: log in again (credentials) ──▶ connecting
//        └ refused with no (working) credentials ──▶ auth_failed, retried slowly
//
// Frames are parsed here; each event goes on to the dedup actor. The network is
// behind net::rtm_client, so nothing here touches a socket and tests can stand
// in for the upstream.
#pragma once

#include <functional>
#include <memory>
#include <random>
#include <string>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "config/settings.hpp"
#include "net/rtm_client.hpp"

namespace parley {

// The reconnect delay after `failures` consecutive failures (0 = the first):
// base doubled per failure, at most cap, spread by ±jitter_pct percent using
// u ∈ [0,1), and never above cap.
duration backoff_delay(uint32_t failures, duration base, duration cap, uint64_t jitter_pct, double u);

enum class upstream_phase { connecting, connected, backoff, auth_failed };
const char* to_string(upstream_phase p);

struct rtm_upstream_state {
  rtm_profile profile;
  rtm_settings opts;
  std::shared_ptr<net::rtm_client> client;
  caf::actor supervisor;                   // gets status reports
  std::function<caf::actor()> next;        // where events go (the dedup)

  uint64_t gen = 0;                        // current attempt; stale callbacks are ignored
  std::shared_ptr<std::shared_ptr<net::ws_link>> link = std::make_shared<std::shared_ptr<net::ws_link>>();
  upstream_phase phase = upstream_phase::connecting;
  bool auth_failed = false;                // sticky until a connection succeeds
  bool need_login = false;                 // the next attempt logs in first
  bool tried_login = false;                // in this refusal cycle
  bool ever_connected = false;
  bool connected = false;
  std::shared_ptr<bool> gauge = std::make_shared<bool>(false); // counted in rtm_connected
  uint32_t failures = 0;                   // consecutive, for the backoff
  uint64_t reconnects = 0;                 // successful connections after the first
  int64_t last_event_ms = 0;               // wall clock, 0 = none yet
  int64_t next_attempt_ms = 0;             // wall clock, while waiting
  caf::actor_clock::time_point connected_since;
  caf::actor_clock::time_point last_frame;
  int64_t ping_seconds = 0;
  std::string last_error;
  std::minstd_rand rng{std::random_device{}()};

  static inline const char* name = "rtm_upstream";
};

// Messages:
//   (rtm_open_atom, gen) (rtm_frame_atom, gen, text) (rtm_closed_atom, gen, http_status, reason)
//   (rtm_login_atom, gen, http_status, cookies|error)           [from the network, via the client]
//   (retry_atom, gen) (watchdog_atom, gen)                       [to itself]
//   (put_atom, rtm_profile)  a new session or credentials: reconnect with them now
//   (stop_atom)
// Reports (rtm_status_atom, profile id, status entry JSON, connected) to the supervisor.
caf::behavior rtm_upstream(caf::stateful_actor<rtm_upstream_state>* self, rtm_profile profile,
                           rtm_settings opts, std::shared_ptr<net::rtm_client> client, caf::actor supervisor,
                           std::function<caf::actor()> next);

} // namespace parley
