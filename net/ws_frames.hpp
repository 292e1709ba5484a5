// The WebSocket framing (RFC 6455) of an established server-side connection:
// Beast answers the upgrade handshake, then the connection is a plain socket
// and these read the client's frames and build the server's. Doing it here
// keeps an idle connection free of per-connection buffers (Beast's stream
// carries about 4 KiB each) and lets every queued frame share one write.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley::ws {

enum opcode : uint8_t { op_continuation = 0, op_text = 1, op_binary = 2, op_close = 8, op_ping = 9, op_pong = 10 };

// Close codes the server sends.
constexpr uint16_t close_normal = 1000;
constexpr uint16_t close_going_away = 1001;
constexpr uint16_t close_protocol_error = 1002;
constexpr uint16_t close_invalid_payload = 1007;
constexpr uint16_t close_too_big = 1009;

// Writes the header of an unmasked, final server frame of `n` payload bytes;
// returns its length (2, 4 or 10 bytes; `out` must hold 10).
size_t encode_header(uint8_t* out, uint8_t op, uint64_t n);

// A whole close frame (header, code, reason of at most 123 bytes).
std::string close_frame(uint16_t code, std::string_view reason);

bool valid_utf8(std::string_view s);

// Whether a peer may send this close code (RFC 6455 §7.4, as Node's `ws` checks it).
bool valid_close_code(uint16_t code);

// Reads client frames incrementally: masked frames only, fragmented messages
// reassembled, control frames between fragments, a message's size checked
// against the limit before its bytes are buffered.
class reader {
public:
  struct event {
    enum kind_t : uint8_t { need_more, message, ping, pong, close, error } kind = need_more;
    bool binary = false;
    std::string data;       // message payload; ping payload; close reason / error text
    uint16_t code = 0;      // close: the peer's code (1005 when none); error: the code to close with
  };

  explicit reader(uint64_t max_message) : max_(max_message) {}

  // Takes the next event from in[pos...], advancing pos past what it used.
  event next(const std::string& in, size_t& pos);

private:
  uint64_t max_;
  std::string msg_;  // the message being reassembled
  bool in_message_ = false;
  bool binary_ = false;
};

} // namespace parley::ws
