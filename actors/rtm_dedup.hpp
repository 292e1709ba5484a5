// Drops an RTM event whose message id (emails: email id) was seen within the
// TTL, per profile. Memory is bounded whatever the event rate: ids expire in
// arrival order, and past `max_ids` the oldest are forgotten first.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"

namespace parley {

struct rtm_dedup_state {
  using time_point = caf::actor_clock::time_point;
  std::unordered_map<std::string, time_point> seen; // key → when it expires
  std::deque<std::pair<time_point, std::string>> order; // arrival order
  uint64_t dropped = 0;
  static inline const char* name = "rtm_dedup";
};

// Messages:
//   (rtm_event_atom, event)   forwarded to next() unless it is a duplicate
//   (count_atom) -> uint64_t  ids remembered now
caf::behavior rtm_dedup(caf::stateful_actor<rtm_dedup_state>* self, duration ttl, uint64_t max_ids,
                        std::function<caf::actor()> next);

} // namespace parley
