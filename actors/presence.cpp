#include "actors/presence.hpp"

#include <chrono>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "actors/messages.hpp"
#include "net/socketio_packet.hpp"

namespace parley {

namespace {

void announce(const runtime& rt, const char* event, const std::string& user,
              const std::string& except_sid) {
  if (!rt.cfg.presence.broadcast)
    return;
  std::string data = "{\"userId\":";
  sio::append_json_string(data, user);
  data += "}";
  for (auto& nsp : rt.cfg.socketio.namespaces)
    rt.publish(namespace_room(nsp), event, data, except_sid);
}

// Asks each of the user's connections `msg` (each answers a bool once done)
// and answers how many answered true; a connection that is gone or does not
// answer within 4 s is not counted.
caf::result<uint64_t> ask_sockets(caf::stateful_actor<presence_state>* self, const std::string& user,
                                  const caf::message& msg) {
  auto& all = self->state.memory->sockets;
  auto it = all.find(user);
  if (it == all.end() || it->second.empty())
    return uint64_t{0};
  struct tally {
    caf::response_promise rp;
    size_t waiting;
    uint64_t done = 0;
    void count(bool ok) {
      if (ok)
        ++done;
      if (--waiting == 0)
        rp.deliver(done);
    }
  };
  auto t = std::make_shared<tally>(tally{self->make_response_promise(), it->second.size()});
  for (auto& [sid, conn] : it->second)
    self->request(conn, std::chrono::seconds(4), msg)
      .then([t](bool ok) { t->count(ok); }, [t](caf::error&) { t->count(false); });
  return t->rp;
}

} // namespace

caf::behavior presence(caf::stateful_actor<presence_state>* self, runtime_ptr rt,
                       std::shared_ptr<presence_memory> memory) {
  self->state.memory = std::move(memory);
  return {
    [self, rt](online_atom, const std::string& user, const std::string& sid) {
      if (++self->state.memory->live[user] == 1)
        announce(*rt, "user:online", user, sid);
    },
    [self, rt](online_atom, const std::string& user, const std::string& sid, const caf::actor& conn) {
      self->state.memory->sockets[user][sid] = conn;
      if (++self->state.memory->live[user] == 1)
        announce(*rt, "user:online", user, sid);
    },
    [self, rt](offline_atom, const std::string& user, const std::string& sid) {
      auto& sockets = self->state.memory->sockets;
      if (auto s = sockets.find(user); s != sockets.end()) {
        s->second.erase(sid);
        if (s->second.empty())
          sockets.erase(s);
      }
      auto it = self->state.memory->live.find(user);
      if (it == self->state.memory->live.end())
        return;
      if (--it->second == 0) {
        self->state.memory->live.erase(it);
        announce(*rt, "user:offline", user, sid);
      }
    },
    [self](presence_atom, const std::string& user) {
      auto it = self->state.memory->live.find(user);
      uint64_t n = it == self->state.memory->live.end() ? 0 : it->second;
      return caf::make_message(n > 0, n);
    },
    [self](join_atom, const std::string& user, const std::vector<std::string>& rooms) {
      return ask_sockets(self, user, caf::make_message(join_atom::value, rooms));
    },
    [self](leave_atom, const std::string& user, const std::vector<std::string>& rooms) {
      return ask_sockets(self, user, caf::make_message(leave_atom::value, rooms));
    },
    [self](disconnect_atom, const std::string& user) {
      return ask_sockets(self, user, caf::make_message(disconnect_atom::value));
    },
    [self](count_atom) { return static_cast<uint64_t>(self->state.memory->live.size()); },
  };
}

} // namespace parley
