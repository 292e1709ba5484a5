// One actor per room: its members (socket, connection actor) and the fan-out.
// Spawned by a directory shard on the first join, stopped by it once empty.
//
// A publish encodes the packet once per namespace among the members (and once
// per plain WebSocket flavour, net/plain_wire.hpp) and hands that one
// immutable frame, with a shared snapshot of the receivers, to the I/O thread
// in a single hop.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "actors/store.hpp"

namespace parley {

// A room's members. They outlive one incarnation of the room's actor: the
// directory shard keeps them, and a room that failed is spawned again with
// them, so its members stay members (one actor holds them at a time).
struct room_members {
  struct member {
    socket_ptr sock;
    caf::actor conn;
  };
  std::string room_name;
  uint64_t ops = 0; // joins the directory forwarded (leaves come straight from members)
  std::unordered_map<std::string, member> by_sid;       // socket id → member
  std::unordered_map<caf::actor_id, std::string> sid_of; // connection actor → socket id
  // Receivers per namespace, rebuilt after membership changes (copy on write:
  // fan-outs in flight keep the snapshot they were given).
  std::map<std::string, std::shared_ptr<const sio::socket_list>, std::less<>> by_nsp;
  bool dirty = true;
  // by_sid.size(), readable by the directory shard (the console's busiest rooms).
  std::atomic<uint64_t> size{0};
};

struct room_state {
  std::shared_ptr<room_members> members;
  caf::actor directory;
  static inline const char* name = "room";
};

// Messages:
//   (join_atom, room, conn, socket) -> (joined_atom, room actor)   [from the directory]
//   (leave_atom, room, conn)                     [from the member itself, or the directory]
//   (publish_atom, event, data_json, except_sid)
//   (publish_atom, event, data_json, except_sid, buffers)   a BINARY_EVENT
//   (publish_atom, event, data_json, except_sid, once)      one of a publish to several
//       rooms: a socket in more than one of them gets it once (sio::deliver)
//   (publish_atom, ack_atom, event, data_json, except_sid, collector)
//       an event that asks every receiver for an ack; the collector gets
//       (expect_atom, n receivers) and then (ack_atom, sid, user, args_json|none)
//   (publish_atom, record, except_sid, once|null) -> uint64_t offset   a stored
//       event: on to the store with the members as its fan-out (see actors/store.hpp)
//   (publish_atom, record, except_sid, once|null, outcome)   the same, told through the outcome
//       (the outcome also learns how many members of each audience it reached)
//   (publish_atom, event, data_json, except_sid, audience, outcome|null)   an event
//       for one audience of the room (net/plain_wire.hpp), not stored; the
//       outcome learns how many it reached and is told at once
//   (count_atom) -> uint64_t members
//   (members_atom) -> (uint64_t members, std::vector<std::string> users)   the
//       distinct user ids of the members (those that have one), sorted
//   (stop_atom)                                                     [from the directory]
//   (adopt_atom, directory)   a restarted shard took the room over; the room
//       reports (empty_atom, room, ops) to it if it has no members
// A room spawned with members (after a failure) watches them again and tells
// each connection (room_moved_atom, room, new room actor).
caf::behavior room(caf::stateful_actor<room_state>* self, std::shared_ptr<room_members> members,
                   caf::actor directory);

// Hands a record and its fan-out to the store; the answer (offset or error)
// goes to whoever asked `self`.
caf::result<uint64_t> forward_to_store(caf::local_actor* self, store::record& rec, fanout_ptr to);
// The same, the answer told through `outcome`.
void forward_to_store(caf::local_actor* self, store::record& rec, fanout_ptr to, const outcome_ptr& outcome);

} // namespace parley
