// The message record: what a publish is once Parley has accepted it. Every
// stored publish (API, broadcast, send_message, RTM) becomes one record per
// room; its offset is its position in this node's log. It is a serialisable
// CAF type (no local-only payloads) so it can later cross a node boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace parley::store {

struct record {
  std::string id;     // unique, server-made; the same for every room of one broadcast
  std::string room;
  std::string event;
  std::string data;   // JSON text
  uint64_t offset = 0; // 0 until the store assigns it
  int64_t ts_ms = 0;  // unix milliseconds (ISO-8601 on the wire)
  std::string sender; // user id; empty when published through the API
  // The socket that sent it (it was not delivered to that socket, which is
  // not given it again when its session is recovered); empty for the API.
  // Not part of the history API.
  std::string origin;
  // Who of a room's members receives it (see net/plainws.hpp): every member,
  // or only one audience of a dialog (a "user" message goes to admins only).
  // Replays keep to it too.
  uint8_t audience = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, record& x) {
  return f(caf::meta::type_name("parley::store::record"), x.id, x.room, x.event, x.data, x.offset,
           x.ts_ms, x.sender, x.origin, x.audience);
}

// A Socket.IO session that connection-state recovery can restore: who it
// was, where, and which rooms it was in.
struct session_row {
  std::string pid;   // the private id the client sends back
  std::string sid;   // the socket id it gets back
  std::string nsp;
  std::string user;
  std::vector<std::string> rooms; // rooms it joined itself (not its namespace's)
  // Those of `rooms` the backend joined it to beyond what its token allows
  // (POST /api/v1/users/{id}/join), sorted: recovery keeps them.
  std::vector<std::string> granted;
  uint64_t base = 0;              // the log's last offset when the session began
  int64_t disconnected_ms = 0;    // unix ms when it went away; 0 while connected
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_row& x) {
  return f(caf::meta::type_name("parley::store::session_row"), x.pid, x.sid, x.nsp, x.user, x.rooms, x.granted, x.base,
           x.disconnected_ms);
}

// A new record id: 128 bits, hex.
std::string new_record_id();

// An offset as clients and the API write it: 1 to 19 decimal digits.
std::optional<uint64_t> parse_offset(std::string_view text);

} // namespace parley::store
