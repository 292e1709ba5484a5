#include "actors/presence.hpp"

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

} // namespace

caf::behavior presence(caf::stateful_actor<presence_state>* self, runtime_ptr rt,
                       std::shared_ptr<presence_memory> memory) {
  self->state.memory = std::move(memory);
  return {
    [self, rt](online_atom, const std::string& user, const std::string& sid) {
      if (++self->state.memory->live[user] == 1)
        announce(*rt, "user:online", user, sid);
    },
    [self, rt](offline_atom, const std::string& user, const std::string& sid) {
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
    [self](count_atom) { return static_cast<uint64_t>(self->state.memory->live.size()); },
  };
}

} // namespace parley
