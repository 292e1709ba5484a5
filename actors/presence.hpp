// Presence: user → number of live sockets. The first socket of a user makes it
// `user:online`, the last one leaving makes it `user:offline`; both go to every
// socket of every namespace except the one that caused it. A second tab is
// silent, and so is closing one of two.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/runtime.hpp"

namespace parley {

// The counts outlive one incarnation of the actor (the supervisor's spec
// holds them): a restarted presence goes on counting where it stopped, and
// nobody is announced twice.
struct presence_memory {
  std::unordered_map<std::string, uint64_t> live; // user id → sockets
  // user id → socket id → its connection actor: the Socket.IO sockets the
  // backend API reaches through a user (join, leave, disconnect).
  std::unordered_map<std::string, std::unordered_map<std::string, caf::actor>> sockets;
};

struct presence_state {
  std::shared_ptr<presence_memory> memory;
  static inline const char* name = "presence";
};

// Messages:
//   (online_atom, user, socket_id)
//   (online_atom, user, socket_id, connection)   the same, and the backend API
//       reaches the socket through its user
//   (offline_atom, user, socket_id)
//   (join_atom, user, rooms) -> uint64_t      each of the user's connections is
//       asked (join_atom, rooms) -> bool; the answer: how many answered true
//       (in every room) within 4 s
//   (leave_atom, user, rooms) -> uint64_t     likewise (leave_atom, rooms)
//   (disconnect_atom, user) -> uint64_t       likewise (disconnect_atom)
//   (presence_atom, user) -> (bool online, uint64_t sockets)
//   (count_atom) -> uint64_t users online
caf::behavior presence(caf::stateful_actor<presence_state>* self, runtime_ptr rt,
                       std::shared_ptr<presence_memory> memory);

} // namespace parley
