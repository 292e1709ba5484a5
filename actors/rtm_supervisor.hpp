// The RTM supervisor: one upstream actor per configured profile, each
// monitored and restarted with backoff if it fails; profiles added, renewed or
// removed at run time (the backend API); and the status table behind
// GET /api/tt/rtm-status, fed by the upstreams' reports.
#pragma once

#include <map>
#include <random>
#include <string>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "actors/runtime.hpp"
#include "net/rtm_client.hpp"

namespace parley {

// The profiles the RTM upstreams run for: those of the config file, then as
// the backend API puts and deletes them. Like rtm_dedup_memory it outlives one
// incarnation of the supervisor, so a restarted one runs the same profiles.
struct rtm_profile_book {
  std::map<std::string, rtm_profile> profiles;
};

struct rtm_supervisor_state {
  std::shared_ptr<rtm_profile_book> book;
  struct entry {
    rtm_profile spec;
    caf::actor upstream;
    std::string status; // JSON of the last report
    bool connected = false;
    int failures = 0;   // crashes, for the restart delay
  };
  std::map<std::string, entry> profiles; // ordered: stable status output
  std::minstd_rand rng{std::random_device{}()};
  static inline const char* name = "rtm_supervisor";
};

// Messages:
//   (put_atom, rtm_profile) -> bool created      start, or renew the session of, a profile
//   (delete_atom, id) -> bool existed            stop a profile
//   (rtm_status_atom) -> std::string             {"status":..,"profiles":{..}}
//   (rtm_metrics_atom) -> std::string            per-profile Prometheus lines
//   (rtm_status_atom, id, entry JSON, connected) [from the upstreams]
// `book` starts with the profiles to run (see rtm_profile_book).
caf::behavior rtm_supervisor(caf::stateful_actor<rtm_supervisor_state>* self, runtime_ptr rt,
                             std::shared_ptr<net::rtm_client> client, std::shared_ptr<rtm_profile_book> book);

caf::atom_value rtm_supervisor_key();
caf::atom_value rtm_dedup_key();
caf::atom_value rtm_translator_key();

} // namespace parley
