// What plain WebSocket members of a room are sent (net/plainws.hpp), beside
// Socket.IO sockets. A room groups its members by sio::socket::nsp(): a
// Socket.IO namespace ("/", "/messages") or one of the plain flavours below
// (they start with '~', which no namespace does). A publish is encoded once
// per group, so every member of a flavour shares one frame.
//
// Audiences (seed 003's dialogs): the site audience is the site and widget
// sockets of a dialog; the admin audience every other member (admin-panel
// sockets, Socket.IO sockets, /ws sockets). A publish goes to both, or to one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/engineio_packet.hpp"

namespace parley::wire {

// /ws sockets: {"type":"<event>","room":"<room>","data":<data>}
inline constexpr std::string_view envelope = "~json";
// Dialog sockets: the data, byte for byte.
inline constexpr std::string_view dialog_admin = "~admin";
inline constexpr std::string_view dialog_site = "~site";

enum audience : uint8_t { everyone = 0, admins = 1, sites = 2 };

// "admin" | "site" | "all"
std::optional<audience> parse_audience(std::string_view text);

inline bool is_plain(std::string_view group) {
  return !group.empty() && group.front() == '~';
}

inline bool in_site_audience(std::string_view group) {
  return group == dialog_site;
}

// Whether a group's members receive a publish meant for `to`.
inline bool reaches(std::string_view group, uint8_t to) {
  if (to == everyone)
    return true;
  return (to == sites) == in_site_audience(group);
}

// The frames of one publish for the plain groups, each encoded on first use.
class plain_frames {
public:
  plain_frames(std::string_view room, std::string_view event, std::string_view data)
    : room_(room), event_(event), data_(data) {
  }
  const eio::frame& get(std::string_view group);

private:
  std::string_view room_, event_, data_;
  std::optional<eio::frame> envelope_, raw_;
};

// {"type":"<event>","room":"<room>","data":<data>}
std::string envelope_text(std::string_view room, std::string_view event, std::string_view data);

} // namespace parley::wire
