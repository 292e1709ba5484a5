#include "actors/directory.hpp"

#include <algorithm>
#include <functional>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include "actors/room.hpp"

#include <spdlog/spdlog.h>

namespace parley {

size_t shard_of(const std::string& room, size_t shards) {
  return std::hash<std::string>{}(room) % shards;
}

caf::atom_value directory_key(size_t i) {
  return caf::atom_from_string("p_dir_" + std::to_string(i));
}

caf::behavior directory(caf::stateful_actor<directory_state>* self, std::shared_ptr<directory_memory> memory) {
  self->state.memory = std::move(memory);
  auto& rooms = self->state.memory->rooms;
  // Rooms of a previous incarnation: watched again, told who owns them now
  // (and asked to report if empty). One that died meanwhile shows up as a
  // down message at once and is spawned again.
  for (auto& [name, e] : rooms) {
    self->monitor(e.room);
    self->send(e.room, adopt_atom::value, caf::actor{self});
  }
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& rooms = self->state.memory->rooms;
    for (auto it = rooms.begin(); it != rooms.end(); ++it) {
      auto& e = it->second;
      if (e.room.address() != dm.source)
        continue;
      if (dm.reason == caf::exit_reason::normal || !e.members) {
        rooms.erase(it);
        return;
      }
      // The room failed: the same members in a new room actor.
      spdlog::error("room {} failed ({}); spawning it again with its {} members", it->first,
                    self->system().render(dm.reason), e.members->by_sid.size());
      e.room = self->spawn<caf::monitored>(room, e.members, caf::actor{self});
      return;
    }
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    if (em.reason == caf::exit_reason::user_shutdown) {
      for (auto& [name, e] : self->state.memory->rooms)
        self->send_exit(e.room, em.reason);
      self->state.memory->rooms.clear();
    }
    self->quit(em.reason);
  });
  return {
    [self](join_atom, const std::string& name, const caf::actor& conn, const socket_ptr& sock) {
      auto& e = self->state.memory->rooms[name];
      if (!e.room) {
        e.members = std::make_shared<room_members>();
        e.members->room_name = name;
        e.room = self->spawn<caf::monitored>(room, e.members, caf::actor{self});
      }
      ++e.ops;
      return self->delegate(e.room, join_atom::value, name, conn, sock);
    },
    [self](leave_atom, const std::string& name, const caf::actor& conn) {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end())
        return;
      self->send(it->second.room, leave_atom::value, name, conn);
    },
    [self](publish_atom, const std::string& name, const std::string& event, const std::string& data,
           const std::string& except_sid) {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end())
        return;
      self->send(it->second.room, publish_atom::value, event, data, except_sid);
    },
    [self](publish_atom, const std::string& name, const std::string& event, const std::string& data,
           const std::string& except_sid, const sio::delivered_ptr& once) {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end())
        return;
      self->send(it->second.room, publish_atom::value, event, data, except_sid, once);
    },
    [self](publish_atom, const std::string& name, const std::string& event, const std::string& data,
           const std::string& except_sid, const buffers& attachments) {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end())
        return;
      self->send(it->second.room, publish_atom::value, event, data, except_sid, attachments);
    },
    [self](publish_atom, ack_atom, const std::string& name, const std::string& event,
           const std::string& data, const std::string& except_sid, const caf::actor& collector) {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end()) {
        self->send(collector, expect_atom::value, uint64_t{0});
        return;
      }
      self->send(it->second.room, publish_atom::value, ack_atom::value, event, data, except_sid,
                 collector);
    },
    [self](publish_atom, store::record& rec, const std::string& except_sid,
           const sio::delivered_ptr& once) -> caf::result<uint64_t> {
      // A room with members adds them as the fan-out; without, the record is
      // stored all the same.
      auto it = self->state.memory->rooms.find(rec.room);
      if (it == self->state.memory->rooms.end())
        return forward_to_store(self, rec, nullptr);
      auto rp = self->make_response_promise();
      rp.delegate(it->second.room, publish_atom::value, std::move(rec), except_sid, once);
      return rp;
    },
    [self](publish_atom, store::record& rec, const std::string& except_sid, const sio::delivered_ptr& once,
           const outcome_ptr& outcome) {
      auto it = self->state.memory->rooms.find(rec.room);
      if (it == self->state.memory->rooms.end())
        forward_to_store(self, rec, nullptr, outcome);
      else
        self->send(it->second.room, publish_atom::value, std::move(rec), except_sid, once, outcome);
    },
    [self](publish_atom, const std::string& name, const std::string& event, const std::string& data,
           const std::string& except_sid, uint8_t to, const outcome_ptr& outcome) {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end()) {
        if (outcome)
          outcome->tell(0, {}); // nobody to reach
        return;
      }
      self->send(it->second.room, publish_atom::value, event, data, except_sid, to, outcome);
    },
    [self](empty_atom, const std::string& name, uint64_t ops) {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end() || it->second.ops != ops
          || caf::actor_cast<caf::strong_actor_ptr>(it->second.room) != self->current_sender())
        return; // a join is on its way to that room (or it is gone already): keep it
      self->send(it->second.room, stop_atom::value);
      self->state.memory->rooms.erase(it);
    },
    [self](count_atom) { return static_cast<uint64_t>(self->state.memory->rooms.size()); },
    [self](top_atom, uint64_t n) {
      std::vector<std::pair<uint64_t, const std::string*>> all;
      for (auto& [name, e] : self->state.memory->rooms)
        if (e.members && name.compare(0, 4, "nsp:") != 0)
          all.emplace_back(e.members->size.load(std::memory_order_relaxed), &name);
      auto k = std::min<size_t>(n, all.size());
      auto more = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && *a.second < *b.second); };
      std::partial_sort(all.begin(), all.begin() + k, all.end(), more);
      std::vector<std::string> names;
      std::vector<uint64_t> members;
      for (size_t i = 0; i < k; ++i) {
        names.push_back(*all[i].second);
        members.push_back(all[i].first);
      }
      return std::make_tuple(std::move(names), std::move(members));
    },
    [self](members_atom, const std::string& name) -> caf::result<uint64_t, std::vector<std::string>> {
      auto it = self->state.memory->rooms.find(name);
      if (it == self->state.memory->rooms.end())
        return caf::result<uint64_t, std::vector<std::string>>(uint64_t{0}, std::vector<std::string>{});
      auto rp = self->make_response_promise();
      rp.delegate(it->second.room, members_atom::value);
      return rp;
    },
    [self](kill_atom, const std::string& name, const caf::error& reason) {
      // Fault injection (the debug API): the room fails as a crash would. An
      // exit sent by this shard would unlink the room from it (CAF unlinks
      // from an exit's sender): the exit comes from nobody.
      if (auto it = self->state.memory->rooms.find(name); it != self->state.memory->rooms.end())
        caf::anon_send(it->second.room, caf::exit_msg{caf::actor_addr{}, reason});
    },
  };
}

} // namespace parley
