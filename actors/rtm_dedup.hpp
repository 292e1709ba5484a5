// Drops an RTM event whose message id (emails: email id) was seen within the
// TTL, per profile. Memory is bounded whatever the event rate: ids expire in
// arrival order, and past `max_ids` the oldest are forgotten first.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"

namespace parley {

// What the dedup remembers. It outlives one incarnation of the actor: the
// supervisor's spec holds it, so a restarted dedup still knows the ids seen
// before (one dedup runs at a time; it is never shared by two).
struct rtm_dedup_memory {
  using time_point = caf::actor_clock::time_point;
  std::unordered_map<std::string, time_point> seen; // key → when it expires
  std::deque<std::pair<time_point, std::string>> order; // arrival order
};

struct rtm_dedup_state {
  std::shared_ptr<rtm_dedup_memory> memory;
  uint64_t dropped = 0;
  // Events waiting while the translator is being restarted (bounded: the
  // oldest are dropped past held_max, and counted).
  std::deque<rtm::event_ptr> held;
  bool retry_scheduled = false;
  uint64_t held_dropped = 0;
  static constexpr size_t held_max = 10000;
  static inline const char* name = "rtm_dedup";
};

// Messages:
//   (rtm_event_atom, event)   forwarded to next() unless it is a duplicate
//   (count_atom) -> uint64_t  ids remembered now
//   (retry_atom)              [to itself] hands on what waited for the translator
caf::behavior rtm_dedup(caf::stateful_actor<rtm_dedup_state>* self, duration ttl, uint64_t max_ids,
                        std::function<caf::actor()> next,
                        std::shared_ptr<rtm_dedup_memory> memory = std::make_shared<rtm_dedup_memory>());

} // namespace parley
