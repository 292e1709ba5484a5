// Presence: user → number of live sockets. The first socket of a user makes it
// `user:online`, the last one leaving makes it `user:offline`; both go to every
// socket of every namespace except the one that caused it. A second tab is
// silent, and so is closing one of two.
#pragma once

#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/runtime.hpp"

namespace parley {

struct presence_state {
  std::unordered_map<std::string, uint64_t> live; // user id → sockets
  static inline const char* name = "presence";
};

// Messages:
//   (online_atom, user, socket_id, announce)  announce=false: counted again after a restart
//   (offline_atom, user, socket_id)
//   (presence_atom, user) -> (bool online, uint64_t sockets)
//   (count_atom) -> uint64_t users online
caf::behavior presence(caf::stateful_actor<presence_state>* self, runtime_ptr rt);

} // namespace parley
