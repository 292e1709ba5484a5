// What every Parley actor may read: the settings, the token verifier, and how
// to reach the long-lived actors (through the registry, so a restarted one is
// found under the same name). Built once at start, then immutable.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "config/settings.hpp"
#include "net/jwt.hpp"

namespace parley {

class publish_outcome; // actors/store.hpp
using outcome_ptr = std::shared_ptr<publish_outcome>;

struct runtime {
  runtime(caf::actor_system& sys, settings cfg, std::optional<jwt::verifier> v)
    : sys(sys), cfg(std::move(cfg)), verifier(std::move(v)) {
  }

  caf::actor_system& sys;
  settings cfg;
  std::optional<jwt::verifier> verifier;

  // The directory shard that owns a room.
  caf::actor directory_for(const std::string& room) const;
  caf::actor presence() const;

  caf::actor store() const;

  // Whether an event to a room goes into the message log
  // (parley.store.rooms minus parley.store.volatile-events).
  bool stores(const std::string& room, const std::string& event) const;

  // Fire-and-forget publish to a room through its directory shard; false when
  // that shard is being restarted (nothing was sent). A stored event becomes
  // a record (`sender`: the user who sent it, empty for the system) and is
  // delivered once committed; while the store is unavailable it is delivered
  // live only (the store has logged why).
  bool publish(const std::string& room, const std::string& event, const std::string& data_json,
               const std::string& except_sid = {}, const std::string& sender = {}) const;
  // One event to several rooms; a socket in more than one of them gets it
  // once, and the records of the stored rooms share one id (`id`, or a new
  // one). With `outcome_of`, each stored room's record is told through the
  // outcome it gives for that room, refusals included; without, a record the
  // store refuses is delivered live. False when a room's shard is being
  // restarted (nothing was sent).
  bool publish_to_rooms(const std::vector<std::string>& rooms, const std::string& event,
                        const std::string& data_json, const std::string& id = {},
                        const std::function<outcome_ptr(const std::string& room)>& outcome_of = {}) const;
};

using runtime_ptr = std::shared_ptr<const runtime>;

caf::atom_value presence_key();

// What an exception caught by an actor's exception handler says.
std::string exception_text(const std::exception_ptr& eptr);

// What a failed request says: the reason text it carries (Parley's refusals
// carry one), else CAF's rendering of the error.
std::string error_text(caf::actor_system& sys, const caf::error& err);

// Whether a room name matches a pattern of parley.store.rooms: "*", "prefix*" or the name.
bool room_matches(const std::string& pattern, const std::string& room);

} // namespace parley
