#include "net/plain_wire.hpp"

#include "net/socketio_packet.hpp"

namespace parley::wire {

std::optional<audience> parse_audience(std::string_view text) {
  if (text == "all")
    return everyone;
  if (text == "admin")
    return admins;
  if (text == "site")
    return sites;
  return std::nullopt;
}

std::string envelope_text(std::string_view room, std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(32 + room.size() + event.size() + data.size());
  out += "{\"type\":";
  sio::append_json_string(out, event);
  out += ",\"room\":";
  sio::append_json_string(out, room);
  out += ",\"data\":";
  out += data;
  out += '}';
  return out;
}

const eio::frame& plain_frames::get(std::string_view group) {
  if (group == envelope) {
    if (!envelope_)
      envelope_ = eio::text_frame(envelope_text(room_, event_, data_));
    return *envelope_;
  }
  if (!raw_)
    raw_ = eio::text_frame(std::string{data_});
  return *raw_;
}

} // namespace parley::wire
