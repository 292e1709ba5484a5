#include "actors/runtime.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/send.hpp>

#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/store.hpp"
#include "net/metrics.hpp"
#include "net/socketio_server.hpp"

#include <spdlog/spdlog.h>

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

caf::actor runtime::store() const {
  return caf::actor_cast<caf::actor>(sys.registry().get(store_key()));
}

std::string exception_text(const std::exception_ptr& eptr) {
  try {
    std::rethrow_exception(eptr);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown exception";
}

std::string error_text(caf::actor_system& sys, const caf::error& err) {
  if (auto& ctx = err.context(); ctx.match_elements<std::string>())
    return ctx.get_as<std::string>(0);
  return sys.render(err);
}

bool room_matches(const std::string& pattern, const std::string& room) {
  if (!pattern.empty() && pattern.back() == '*')
    return room.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == room;
}

bool runtime::stores(const std::string& room, const std::string& event) const {
  for (auto& v : cfg.store.volatile_events)
    if (v == event)
      return false;
  for (auto& p : cfg.store.rooms)
    if (room_matches(p, room))
      return true;
  return false;
}

namespace {

bool store_open() {
  return counters().store_available.load(std::memory_order_relaxed) != 0;
}

store::record make_record(const std::string& room, const std::string& event, const std::string& data_json,
                          const std::string& sender, const std::string& id, const std::string& except_sid = {}) {
  store::record r;
  r.id = id.empty() ? store::new_record_id() : id;
  r.room = room;
  r.event = event;
  r.data = data_json;
  r.sender = sender;
  r.origin = except_sid;
  return r;
}

} // namespace

namespace {

// Nobody waits for a fire-and-forget publish: when the store refuses it, it
// is delivered live all the same (without an offset), and that is logged.
outcome_ptr live_if_refused(const caf::actor& dir, const std::string& room, const std::string& event,
                            const std::string& data_json, const std::string& except_sid,
                            const sio::delivered_ptr& once) {
  return std::make_shared<publish_outcome>(
    [dir, room, event, data_json, except_sid, once](uint64_t, const std::string& refusal) {
      if (refusal.empty())
        return;
      spdlog::warn("{} to {} was not stored ({}): delivered live only", event, room, refusal);
      if (once)
        caf::anon_send(dir, publish_atom::value, room, event, data_json, except_sid, once);
      else
        caf::anon_send(dir, publish_atom::value, room, event, data_json, except_sid);
    });
}

} // namespace

bool runtime::publish(const std::string& room, const std::string& event,
                      const std::string& data_json, const std::string& except_sid,
                      const std::string& sender) const {
  auto dir = directory_for(room);
  if (!dir)
    return false;
  if (stores(room, event) && store_open())
    caf::anon_send(dir, publish_atom::value, make_record(room, event, data_json, sender, {}, except_sid), except_sid,
                   sio::delivered_ptr{}, live_if_refused(dir, room, event, data_json, except_sid, nullptr));
  else
    caf::anon_send(dir, publish_atom::value, room, event, data_json, except_sid);
  return true;
}

bool runtime::publish_to_rooms(const std::vector<std::string>& rooms, const std::string& event,
                               const std::string& data_json, const std::string& id,
                               const std::function<outcome_ptr(const std::string& room)>& outcome_of) const {
  if (rooms.size() == 1 && !outcome_of)
    return publish(rooms.front(), event, data_json);
  std::vector<caf::actor> dirs;
  for (auto& room : rooms) {
    dirs.push_back(directory_for(room));
    if (!dirs.back())
      return false;
  }
  auto once = std::make_shared<sio::delivered_set>();
  auto shared_id = id.empty() ? store::new_record_id() : id; // one id for every room's record
  for (size_t i = 0; i < rooms.size(); ++i) {
    // A publisher told the outcome hears a refusal; else, with the store
    // closed, it goes live at once.
    if (stores(rooms[i], event) && (outcome_of || store_open()))
      caf::anon_send(dirs[i], publish_atom::value, make_record(rooms[i], event, data_json, {}, shared_id), std::string{},
                     once,
                     outcome_of ? outcome_of(rooms[i])
                                : live_if_refused(dirs[i], rooms[i], event, data_json, {}, once));
    else
      caf::anon_send(dirs[i], publish_atom::value, rooms[i], event, data_json, std::string{}, once);
  }
  return true;
}

} // namespace parley
