// The root supervisor: spawns the long-lived actors (room directory shards,
// presence), publishes each under its registry name, and restarts one that
// fails, after an exponentially growing delay with jitter. A child that stays
// up for a while has its failure count reset.
#pragma once

#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

namespace parley {

struct child_spec {
  caf::atom_value key;                                // registry name
  std::function<caf::actor(caf::actor_system&)> make; // spawns the child
};

struct supervisor_state {
  struct child {
    caf::actor handle;
    int failures = 0;
    std::chrono::steady_clock::time_point started;
  };
  std::vector<child_spec> specs;
  std::vector<child> children;
  bool shutting_down = false;
  std::minstd_rand rng{std::random_device{}()};
  static inline const char* name = "supervisor";
};

// Delay before the n-th restart (n counts from 0): min(cap, base * 2^n),
// "equal jitter" (half fixed, half random). Exposed for tests.
std::chrono::milliseconds restart_delay(int failures, std::minstd_rand& rng,
                                        std::chrono::milliseconds base = std::chrono::milliseconds(50),
                                        std::chrono::milliseconds cap = std::chrono::milliseconds(5000));

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, std::vector<child_spec> specs);

} // namespace parley
