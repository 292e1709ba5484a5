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

bool runtime::publish(const std::string& room, const std::string& event,
                      const std::string& data_json, const std::string& except_sid) const {
  auto dir = directory_for(room);
  if (!dir)
    return false;
  caf::anon_send(dir, publish_atom::value, room, event, data_json, except_sid);
  return true;
}

bool runtime::publish_to_rooms(const std::vector<std::string>& rooms, const std::string& event,
                               const std::string& data_json) const {
  if (rooms.size() == 1)
    return publish(rooms.front(), event, data_json);
  std::vector<caf::actor> dirs;
  for (auto& room : rooms) {
    dirs.push_back(directory_for(room));
    if (!dirs.back())
      return false;
  }
  auto once = std::make_shared<sio::delivered_set>();
  for (size_t i = 0; i < rooms.size(); ++i)
    caf::anon_send(dirs[i], publish_atom::value, rooms[i], event, data_json, std::string{}, once);
  return true;
}

} // namespace parley
