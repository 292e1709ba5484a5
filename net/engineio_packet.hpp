// Engine.IO v4 packets and the HTTP long-polling payload format.
//
// A text packet is one type digit followed by its data ("4hello", "2", "2probe").
// Binary packets travel as raw WebSocket binary frames, or on long-polling as
// "b" + base64 inside a payload. A payload joins packets with the record
// separator 0x1e.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::eio {

enum class packet_type : char {
  open = '0',
  close = '1',
  ping = '2',
  pong = '3',
  message = '4',
  upgrade = '5',
  noop = '6',
};

// An inbound packet. For a binary message, `data` holds the raw bytes.
struct packet {
  packet_type type = packet_type::message;
  bool binary = false;
  std::string data;
};

// An outbound packet, shared by every receiver of a fan-out. For text, `bytes`
// is the whole Engine.IO packet ("4..." including the type digit); for binary
// it is the raw attachment.
struct frame {
  std::shared_ptr<const std::string> bytes;
  bool binary = false;
  bool raw = false; // WebSocket only: bytes are a whole frame, header included (pong, close)
  size_t size() const { return bytes ? bytes->size() : 0; }
};

frame text_frame(std::string packet_text);
frame binary_frame(std::string raw);
// A text frame holding only the type digit (and optional data), e.g. ping "2".
frame control_frame(packet_type t, std::string_view data = {});

constexpr char record_separator = '\x1e';

// One text packet as received on a WebSocket text frame.
std::optional<packet> decode_text(std::string_view text);

// The packet of a long-polling payload starting at `pos`, which moves past it
// and its separator (to npos after the last); nullopt when it is malformed.
std::optional<packet> next_in_payload(std::string_view body, size_t& pos);

// A long-polling payload (POST body). Fails on any malformed packet.
std::optional<std::vector<packet>> decode_payload(std::string_view body);

// Appends frames to a long-polling payload (GET response body).
void append_payload(std::string& body, const frame& f);

std::string base64_encode(std::string_view raw);
// The URL-safe alphabet (RFC 4648 §5), without padding.
std::string base64url_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

} // namespace parley::eio
