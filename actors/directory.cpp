#include "actors/directory.hpp"

#include <functional>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include "actors/room.hpp"

namespace parley {

size_t shard_of(const std::string& room, size_t shards) {
  return std::hash<std::string>{}(room) % shards;
}

caf::atom_value directory_key(size_t i) {
  return caf::atom_from_string("p_dir_" + std::to_string(i));
}

caf::behavior directory(caf::stateful_actor<directory_state>* self) {
  // Rooms are linked to their shard: they die with it, and a room that fails
  // is forgotten here (its members notice through their own monitors).
  self->set_exit_handler([self](caf::exit_msg& em) {
    auto& rooms = self->state.rooms;
    for (auto it = rooms.begin(); it != rooms.end(); ++it) {
      if (it->second.room.address() == em.source) {
        rooms.erase(it);
        return;
      }
    }
    // Not one of our rooms: the supervisor (or a linked peer) tells us to stop.
    if (em.reason != caf::exit_reason::normal)
      self->quit(em.reason);
  });
  return {
    [self](join_atom, const std::string& name, const caf::actor& conn, const socket_ptr& sock) {
      auto& e = self->state.rooms[name];
      if (!e.room)
        e.room = self->spawn<caf::linked>(room, name, caf::actor{self});
      ++e.ops;
      return self->delegate(e.room, join_atom::value, name, conn, sock);
    },
    [self](leave_atom, const std::string& name, const caf::actor& conn) {
      auto it = self->state.rooms.find(name);
      if (it == self->state.rooms.end())
        return;
      ++it->second.ops;
      self->send(it->second.room, leave_atom::value, name, conn);
    },
    [self](publish_atom, const std::string& name, const std::string& event, const std::string& data,
           const std::string& except_sid) {
      auto it = self->state.rooms.find(name);
      if (it == self->state.rooms.end())
        return;
      self->send(it->second.room, publish_atom::value, event, data, except_sid);
    },
    [self](publish_atom, const std::string& name, const std::string& event, const std::string& data,
           const std::string& except_sid, const sio::delivered_ptr& once) {
      auto it = self->state.rooms.find(name);
      if (it == self->state.rooms.end())
        return;
      self->send(it->second.room, publish_atom::value, event, data, except_sid, once);
    },
    [self](publish_atom, const std::string& name, const std::string& event, const std::string& data,
           const std::string& except_sid, const buffers& attachments) {
      auto it = self->state.rooms.find(name);
      if (it == self->state.rooms.end())
        return;
      self->send(it->second.room, publish_atom::value, event, data, except_sid, attachments);
    },
    [self](publish_atom, ack_atom, const std::string& name, const std::string& event,
           const std::string& data, const std::string& except_sid, const caf::actor& collector) {
      auto it = self->state.rooms.find(name);
      if (it == self->state.rooms.end()) {
        self->send(collector, expect_atom::value, uint64_t{0});
        return;
      }
      self->send(it->second.room, publish_atom::value, ack_atom::value, event, data, except_sid,
                 collector);
    },
    [self](empty_atom, const std::string& name, uint64_t ops) {
      auto it = self->state.rooms.find(name);
      if (it == self->state.rooms.end() || it->second.ops != ops
          || caf::actor_cast<caf::strong_actor_ptr>(it->second.room) != self->current_sender())
        return; // a join is on its way to that room (or it is gone already): keep it
      self->send(it->second.room, stop_atom::value);
      self->state.rooms.erase(it);
    },
    [self](count_atom) { return static_cast<uint64_t>(self->state.rooms.size()); },
    [self](kill_atom, const std::string& name, const caf::error& reason) {
      // Fault injection (the debug API): the room fails as a crash would. An
      // exit sent by this shard would unlink the room from it (CAF unlinks
      // from an exit's sender): the exit comes from nobody.
      if (auto it = self->state.rooms.find(name); it != self->state.rooms.end())
        caf::anon_send(it->second.room, caf::exit_msg{caf::actor_addr{}, reason});
    },
  };
}

} // namespace parley
