// Socket.IO v5 packets, carried inside Engine.IO message packets.
//
//   <type>[<#attachments>-][<namespace>,][<ack id>][<JSON payload>]
//
// e.g. `2["hello",1]`, `2/messages,12["hi"]`, `51-["up",{"_placeholder":true,"num":0}]`.
// Binary packets are followed by their attachments, one Engine.IO binary packet
// each; the payload refers to them with {"_placeholder":true,"num":N}.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <rapidjson/document.h>

#include "net/engineio_packet.hpp"

namespace parley::sio {

enum class packet_type : char {
  connect = '0',
  disconnect = '1',
  event = '2',
  ack = '3',
  connect_error = '4',
  binary_event = '5',
  binary_ack = '6',
};

struct packet {
  packet_type type = packet_type::event;
  std::string nsp = "/";
  std::optional<uint64_t> id;
  size_t attachments = 0;
  // Parsed payload; null when the packet had none (CONNECT without auth, DISCONNECT).
  std::shared_ptr<rapidjson::Document> payload;
  std::vector<std::shared_ptr<const std::string>> buffers;  // binary attachments

  bool is_binary() const {
    return type == packet_type::binary_event || type == packet_type::binary_ack;
  }
};

// Decodes the text of an Engine.IO message packet (without its '4'). The error
// text says what is wrong; the Engine.IO session closes on it, as Node's does.
std::variant<packet, std::string> decode(std::string_view text);

// Encodes a packet as the text of one Engine.IO message ("4" + Socket.IO text).
// `payload_json` is already-serialized JSON (or empty for none).
std::string encode(packet_type type, std::string_view nsp, std::optional<uint64_t> id,
                   std::string_view payload_json, size_t attachments = 0);

// ["event", args...] as JSON text, from an event name and the JSON of its args
// (without brackets), e.g. event_array("message", "1,\"x\"").
std::string event_array(std::string_view event, std::string_view args_json);

// Serializes a RapidJSON value compactly.
std::string to_json(const rapidjson::Value& v);
// Writes `s` as a JSON string literal (with quotes) onto out.
void append_json_string(std::string& out, std::string_view s);

} // namespace parley::sio
