// One actor per room: its members (socket, connection actor) and the fan-out.
// Spawned by a directory shard on the first join, stopped by it once empty.
//
// A publish encodes the packet once per namespace among the members and hands
// that one immutable frame, with a shared snapshot of the receivers, to the
// I/O thread in a single hop.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"

namespace parley {

struct room_state {
  struct member {
    socket_ptr sock;
    caf::actor_id conn = 0;
  };
  std::string room_name;
  caf::actor directory;
  uint64_t ops = 0; // membership changes the directory forwarded
  std::unordered_map<std::string, member> by_sid;       // socket id → member
  std::unordered_map<caf::actor_id, std::string> sid_of; // connection actor → socket id
  // Receivers per namespace, rebuilt after membership changes (copy on write:
  // fan-outs in flight keep the snapshot they were given).
  std::map<std::string, std::shared_ptr<const sio::socket_list>, std::less<>> by_nsp;
  bool dirty = true;

  static inline const char* name = "room";
};

// Messages:
//   (join_atom, room, conn, socket) -> (joined_atom, room actor)   [from the directory]
//   (leave_atom, room, conn)                                        [from the directory]
//   (publish_atom, event, data_json, except_sid)
//   (publish_atom, event, data_json, except_sid, buffers)   a BINARY_EVENT
//   (publish_atom, event, data_json, except_sid, once)      one of a publish to several
//       rooms: a socket in more than one of them gets it once (sio::deliver)
//   (publish_atom, ack_atom, event, data_json, except_sid, collector)
//       an event that asks every receiver for an ack; the collector gets
//       (expect_atom, n receivers) and then (ack_atom, sid, user, args_json|none)
//   (count_atom) -> uint64_t members
//   (stop_atom)                                                     [from the directory]
caf::behavior room(caf::stateful_actor<room_state>* self, std::string name, caf::actor directory);

} // namespace parley
