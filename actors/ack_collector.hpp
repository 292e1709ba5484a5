// Gathers the client acknowledgements of one event that asked every receiver
// for an ack (the backend API's publish with "ack": true, like Socket.IO's
// `io.to(room).timeout(ms).emitWithAck(...)`), then answers once: when every
// receiver answered or closed, or when the timeout passes.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"

namespace parley {

struct ack_collector_state {
  std::optional<uint64_t> expected; // receivers, once the room told
  std::string answers;              // JSON objects, comma-separated, in arrival order
  uint64_t answered = 0;
  uint64_t disconnected = 0;
  std::function<void(std::string)> done;
  static inline const char* name = "ack_collector";
};

// Messages:
//   (expect_atom, n)                      how many receivers were asked
//   (ack_atom, sid, user, args_json)      one receiver's answer
//   (ack_atom, sid, user)                 that receiver closed before answering
//   (timeout_atom)                        [to itself]
// `done` gets {"ok":true,"receivers":N,"acks":[{"sid","userId","response":[...]}],
//               "timedOut":T,"disconnected":D}.
caf::behavior ack_collector(caf::stateful_actor<ack_collector_state>* self,
                            std::chrono::milliseconds timeout,
                            std::function<void(std::string)> done);

} // namespace parley
