// A shard of the room directory: room name → room actor. Rooms are hashed over
// the shards; a shard spawns a room on its first join and stops it once it is
// empty and no membership change is in flight towards it.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"

namespace parley {

struct room_members;

// What a shard knows. It outlives one incarnation of the shard's actor (the
// supervisor's spec holds it): a restarted shard takes over the rooms,
// which keep running meanwhile (they are monitored, not linked).
struct directory_memory {
  struct entry {
    caf::actor room;
    // Joins forwarded to the room: it is stopped as empty only when it has
    // seen them all (no join on its way to it).
    uint64_t ops = 0;
    std::shared_ptr<room_members> members; // to spawn the room again if it fails
  };
  std::unordered_map<std::string, entry> rooms;
};

struct directory_state {
  std::shared_ptr<directory_memory> memory;
  static inline const char* name = "directory";
};

// Messages:
//   (join_atom, room, conn, socket) -> (joined_atom, room actor)   [delegated to the room]
//   (leave_atom, room, conn)
//   (publish_atom, room, event, data_json, except_sid)
//   (publish_atom, room, event, data_json, except_sid, once)  see runtime::publish_to_rooms
//   (publish_atom, ack_atom, room, event, data_json, except_sid, collector)
//   (publish_atom, record, except_sid, once|null) -> uint64_t offset  a stored event,
//       through the room (its members are the fan-out) to the store
//   (publish_atom, record, except_sid, once|null, outcome)   the same, told through the outcome
//   (publish_atom, room, event, data_json, except_sid, audience, outcome|null)
//       an event for one audience of the room, not stored (see actors/room.hpp)
//   (empty_atom, room, ops)                                         [from the room]
//   (count_atom) -> uint64_t rooms
//   (top_atom, n) -> (names, members)   the n rooms with the most members (not
//       the "nsp:" rooms every socket is in), most first
//   (members_atom, room) -> (uint64_t sockets, std::vector<std::string> users)
//       [delegated to the room; (0, []) when it has no actor]
//   (kill_atom, room, reason)    fault injection: the room's actor fails
// A room that fails is spawned again with its members. On exit_reason::
// user_shutdown the shard stops its rooms; on any other failure they stay for
// the next incarnation, which adopts them.
caf::behavior directory(caf::stateful_actor<directory_state>* self, std::shared_ptr<directory_memory> memory);

// Which shard a room lives on.
size_t shard_of(const std::string& room, size_t shards);

// The registry key of shard i ("p_dir_<i>").
caf::atom_value directory_key(size_t i);

} // namespace parley
