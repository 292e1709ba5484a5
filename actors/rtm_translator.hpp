// Turns de-duplicated RTM events into the Socket.IO events seed 000's frontend
// expects (message_toast, message, message_read, dialog_limit_changed, typing)
// and publishes them to profile:{id} and dialog:{id} rooms. Toasts carry the
// client's name and avatar from the profile API, cached with a TTL (failures
// cached briefly too). An uncached client's events wait at most `client-wait`
// for the API, in arrival order per client, then go out with what is known.
#pragma once

#include <deque>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "actors/runtime.hpp"
#include "net/rtm_client.hpp"

namespace parley {

struct rtm_translator_state {
  using time_point = caf::actor_clock::time_point;
  struct cached {
    rtm::client_info info;
    time_point until;
  };
  struct waiting {
    std::deque<rtm::event_ptr> events;
    uint64_t fetch = 0; // the fetch they wait for
  };
  std::unordered_map<std::string, cached> clients; // client id → info
  std::unordered_map<std::string, waiting> pending; // client id → events held back
  uint64_t next_fetch = 0;
  static inline const char* name = "rtm_translator";
};

// Messages:
//   (rtm_event_atom, event)
//   (rtm_client_atom, client id, fetch, http_status, body)   [the profile API's answer]
//   (deadline_atom, client id, fetch)                         [to itself]
//   (count_atom) -> uint64_t cached clients
caf::behavior rtm_translator(caf::stateful_actor<rtm_translator_state>* self, runtime_ptr rt,
                             std::shared_ptr<net::rtm_client> client);

} // namespace parley
