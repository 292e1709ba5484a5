// One actor per plain WebSocket connection (net/plainws.hpp): a /ws socket
// subscribing to conversations, or a dialog's admin, site or widget socket.
// Like a Socket.IO connection it is a member of room actors; its I/O half is
// an sio::socket whose "namespace" names its wire flavour (net/plain_wire.hpp),
// so rooms deliver to it directly. Client messages come up as
// (packet_atom, text) (or (packet_atom) for a binary one); it answers through
// the socket.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/connection.hpp"
#include "actors/messages.hpp"
#include "actors/rate_limit.hpp"
#include "actors/runtime.hpp"

namespace parley {

enum class plain_kind : uint8_t { subscribe, admin, site, widget };

// Who connected, where, as the front door admitted them.
struct plain_request {
  plain_kind kind = plain_kind::subscribe;
  std::string dialog;            // the dialog id (dialog sockets)
  identity who;                  // from the token (subscribe, admin); else who the credential names
  std::optional<uint64_t> after; // replay the dialog's stored events after this offset first
};

struct plain_state {
  socket_ptr sock;
  runtime_ptr rt;
  plain_request req;
  // Rooms joined: name → room actor.
  std::unordered_map<std::string, caf::actor> rooms;
  // Messages are handled in the order they came: while a join (and its
  // replay) is on its way, later ones wait.
  bool busy = false;
  std::unique_ptr<std::deque<std::optional<std::string>>> waiting; // nullopt: a binary message
  bool closing = false;
  rate_bucket rate;
  static inline const char* name = "plain_connection";
};

// Messages:
//   (packet_atom, text)   a text message of the client
//   (packet_atom)         a binary one
//   (closed_atom, reason) the connection is gone
//   (room_moved_atom, room, actor)   a room that failed runs again as `actor`
caf::behavior plain_connection(caf::stateful_actor<plain_state>* self, socket_ptr sock, plain_request req,
                               runtime_ptr rt);

// The room of a dialog ("dialog:{id}") and of a conversation ("conversation:{id}").
std::string dialog_room(const std::string& id);
std::string conversation_room(const std::string& id);

} // namespace parley
