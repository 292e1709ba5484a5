#include "actors/runtime.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/send.hpp>

#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "net/socketio_server.hpp"

namespace parley {

caf::atom_value presence_key() {
  return caf::atom("p_presence");
}

caf::actor runtime::directory_for(const std::string& room) const {
  auto key = directory_key(shard_of(room, cfg.rooms.directory_shards));
  return caf::actor_cast<caf::actor>(sys.registry().get(key));
}

caf::actor runtime::presence() const {
  return caf::actor_cast<caf::actor>(sys.registry().get(presence_key()));
}

void runtime::publish(const std::string& room, const std::string& event,
                      const std::string& data_json, const std::string& except_sid) const {
  if (auto dir = directory_for(room))
    caf::anon_send(dir, publish_atom::value, room, event, data_json, except_sid);
}

void runtime::publish_to_rooms(const std::vector<std::string>& rooms, const std::string& event,
                               const std::string& data_json) const {
  if (rooms.size() == 1) {
    publish(rooms.front(), event, data_json);
    return;
  }
  auto once = std::make_shared<sio::delivered_set>();
  for (auto& room : rooms)
    if (auto dir = directory_for(room))
      caf::anon_send(dir, publish_atom::value, room, event, data_json, std::string{}, once);
}

} // namespace parley
