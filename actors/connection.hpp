// One actor per Socket.IO socket: who it is (from its token), which rooms it is
// in, and the handlers of the events clients send. Its I/O half is the
// sio::socket: packets come up as (packet_atom, packet) messages, frames go
// down through the socket, rooms deliver straight to it.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "actors/rate_limit.hpp"
#include "actors/runtime.hpp"

namespace parley {

// What the CONNECT carried that authentication needs (copied on the I/O thread).
struct connect_request {
  std::string auth_token;    // auth.token of the CONNECT payload
  std::string authorization; // Authorization header of the handshake
  std::string query_token;   // ?token=
  std::string query_user_id; // ?userId= (development only)
  // Connection-state recovery: auth.pid and auth.offset of the CONNECT.
  std::string pid;
  std::string offset;
  bool has_offset = false;
};

// Who a socket is, once authenticated.
struct identity {
  std::string user_id;
  std::string email;
  std::string role;
  std::vector<std::string> rooms;    // granted room names / "prefix:*" patterns
  std::vector<std::string> profiles; // granted profiles
  bool anonymous = false;            // ?userId= in development mode: every room allowed
  int64_t expires_at = 0;            // the token's exp (unix seconds); 0 = none
};

// The token by priority (auth.token, then Bearer header, then ?token=), checked;
// the error text is exactly what the client is told in CONNECT_ERROR.
std::variant<identity, std::string> authenticate(const connect_request& req, const runtime& rt,
                                                 int64_t now_unix);

// Whether the identity may join a room.
bool may_join(const identity& who, const std::string& room);

// A join or leave the backend API asked for (through presence): taken in
// order with the socket's own requests; answered true once done when the
// socket is then in (or out of) every room.
struct backend_request {
  std::vector<std::string> rooms;
  bool join = true;
  bool all = true; // every room done (a join over max-rooms-per-socket is not)
  caf::response_promise rp;
};

struct connection_state {
  socket_ptr sock;
  runtime_ptr rt;
  identity who;
  bool connected = false;
  bool closing = false;
  std::string pid; // the session's private id (connection-state recovery); empty: none
  uint64_t session_base = 0; // the log's committed offset when the session began
  bool recovering = false;   // a session given back by the store, until its replay is sent
  // A socket's requests take effect in the order it sent them: while a join
  // is on its way (`busy`), later packets, and re-joins, wait here.
  bool busy = false;
  struct pending {
    packet_ptr packet;  // a client packet, or
    std::string rejoin; // a room to join again (its actor failed), or
    std::shared_ptr<backend_request> backend;
  };
  std::unique_ptr<std::deque<pending>> waiting; // allocated on first use
  // Joined: name → room actor. A null actor: the join at connect could not
  // reach the room's shard (being restarted) and is tried again.
  std::unordered_map<std::string, caf::actor> rooms;
  // Event rate limit: a token bucket, and refusals since the last accepted event.
  rate_bucket rate;
  buffers attachments; // of the event being handled (binary events only)
  static inline const char* name = "connection";
};

caf::behavior connection(caf::stateful_actor<connection_state>* self, socket_ptr sock,
                         connect_request req, runtime_ptr rt);

// ISO 8601 UTC with milliseconds, as JavaScript's toISOString().
std::string iso_now();

} // namespace parley
