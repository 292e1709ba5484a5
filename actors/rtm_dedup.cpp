#include "actors/rtm_dedup.hpp"

#include <spdlog/spdlog.h>

#include "net/metrics.hpp"

namespace parley {

caf::behavior rtm_dedup(caf::stateful_actor<rtm_dedup_state>* self, duration ttl, uint64_t max_ids,
                        std::function<caf::actor()> next, std::shared_ptr<rtm_dedup_memory> memory) {
  self->state.memory = std::move(memory);
  // Forgets what expired, and the oldest beyond the cap. An id seen again is
  // re-queued, so the queue may hold stale entries: those are skipped by
  // comparing with the map.
  auto expire = [self, max_ids](caf::actor_clock::time_point now) {
    auto& st = *self->state.memory;
    while (!st.order.empty() && (st.order.front().first <= now || st.seen.size() > max_ids
                                 || st.order.size() > 2 * max_ids)) {
      auto& [when, key] = st.order.front();
      auto it = st.seen.find(key);
      if (it != st.seen.end() && it->second == when)
        st.seen.erase(it);
      st.order.pop_front();
    }
  };
  // Hands events on in order; while the translator is away (restarting) they
  // wait here, and are retried every 50 ms.
  auto forward = [self, next](const rtm::event_ptr& e) {
    auto& st = self->state;
    if (e) {
      if (st.held.size() == rtm_dedup_state::held_max) {
        st.held.pop_front();
        if (st.held_dropped++ == 0)
          spdlog::warn("rtm: the translator is away and {} events wait: dropping the oldest", st.held.size());
      }
      st.held.push_back(e);
    }
    auto n = next();
    if (!n) {
      if (!st.held.empty() && !st.retry_scheduled) {
        st.retry_scheduled = true;
        self->delayed_send(self, std::chrono::milliseconds(50), retry_atom::value);
      }
      return;
    }
    if (st.held_dropped > 0) {
      spdlog::warn("rtm: {} events were dropped while the translator was away", st.held_dropped);
      st.held_dropped = 0;
    }
    while (!st.held.empty()) {
      self->send(n, rtm_event_atom::value, st.held.front());
      st.held.pop_front();
    }
  };
  return {
    [self, ttl, next, expire, forward](rtm_event_atom, const rtm::event_ptr& e) {
      auto& st = *self->state.memory;
      auto key = rtm::dedup_key(*e);
      if (!key.empty()) {
        auto now = self->clock().now();
        expire(now);
        auto it = st.seen.find(key);
        if (it != st.seen.end() && it->second > now) {
          ++self->state.dropped;
          counters().rtm_duplicates.fetch_add(1, std::memory_order_relaxed);
          spdlog::debug("rtm {}: duplicate {} {} dropped", e->profile, rtm::internal_name(e->kind), e->id);
          return;
        }
        auto until = now + ttl;
        st.seen[key] = until;
        st.order.emplace_back(until, std::move(key));
        expire(now);
      }
      forward(e);
    },
    [self, forward](retry_atom) {
      self->state.retry_scheduled = false;
      forward(nullptr);
    },
    [self](count_atom) { return static_cast<uint64_t>(self->state.memory->seen.size()); },
  };
}

} // namespace parley
