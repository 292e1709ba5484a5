// The load generator's wire pieces, kept apart from its event loop so the unit
// suite (tests/unit/loadgen.cpp) can check them: client-side WebSocket framing
// (masked frames out, an incremental reader for the server's unmasked frames),
// HTTP/1.1 requests to the publish API and an incremental reader for their
// answers, HS256 tokens, the payload that carries a message's id and send
// time, the few JSON fields the scenarios look at, a latency histogram and the
// per-receiver record of what arrived.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loadgen {

// -- WebSocket (RFC 6455), client side -------------------------------------------

// Appends one masked client frame (`op` 1 = text; final unless `fin` is false) to `out`.
void append_client_frame(std::string& out, std::string_view payload, uint8_t op = 1,
                         uint32_t mask = 0x5a3c96e1, bool fin = true);

// One server frame taken off the front of a buffer.
struct frame {
  enum status_t { need_more, ok, bad } status = need_more;
  uint8_t op = 0;
  bool fin = true;
  std::string_view payload;  // points into the buffer
  size_t size = 0;           // bytes the whole frame took
  std::string error;         // when bad
};

// Reads the frame at the start of `in`; server frames are never masked.
frame read_server_frame(std::string_view in);

// A WebSocket upgrade request for `target` (path and query as they go on the request line).
std::string websocket_upgrade(std::string_view host_port, std::string_view target);
// The upgrade request for Engine.IO v4 over WebSocket.
std::string upgrade_request(std::string_view host_port, std::string_view path = "/socket.io/");

// -- HTTP/1.1, the backend API ------------------------------------------------------

// A keep-alive `POST path` with `Authorization: apikey KEY` and a JSON body.
std::string api_request(std::string_view host_port, std::string_view path, std::string_view api_key,
                        std::string_view json_body);

// One HTTP/1.1 answer taken off the front of a buffer. Only Content-Length
// bodies are read (Parley and the peer send nothing else to the API client).
struct http_answer {
  enum status_t { need_more, ok, bad } status = need_more;
  int code = 0;
  bool close = false;        // `Connection: close`: the server ends the connection after it
  std::string_view body;     // points into the buffer
  size_t size = 0;           // bytes the whole answer took
  std::string error;         // when bad
};
http_answer read_http_answer(std::string_view in);

// -- tokens ---------------------------------------------------------------------

std::string base64url(std::string_view data);
// An HS256 JWT with the given claims JSON object.
std::string hs256_token(std::string_view claims_json, std::string_view secret);

// -- payloads -------------------------------------------------------------------

// The `message` text a sender puts in send_message: "<seq>:<send time ns>",
// padded with '.' to `pad_to` characters.
std::string stamp(uint64_t seq, uint64_t send_ns, size_t pad_to = 0);

struct stamped {
  uint64_t seq = 0;
  uint64_t send_ns = 0;
};
// Finds the stamp in a received JSON text: the value of its first `key`
// (a Socket.IO event's "message", a dialog message's "text").
std::optional<stamped> find_stamp(std::string_view json, std::string_view key = "message");

// The Socket.IO event name of a `42...` packet text ("" when it is not an event).
std::string_view event_name(std::string_view packet);

// The string value of the first `"key":"…"` in a JSON text (nullopt when there
// is none, or it has escapes: the values read here — ids, offsets, sids — have none).
std::optional<std::string_view> json_string(std::string_view json, std::string_view key);
// The unsigned integer value of the first `"key":N` in a JSON text.
std::optional<uint64_t> json_uint(std::string_view json, std::string_view key);
// A decimal offset: 1 to 19 digits, nothing else.
std::optional<uint64_t> decimal(std::string_view text);
// The last argument of an event packet `42[…,"x"]` when it is a string (an
// offset, under connection-state recovery); "" otherwise.
std::string_view last_string_arg(std::string_view packet);

// -- latency --------------------------------------------------------------------

// A log-linear histogram of nanosecond values: 64 sub-buckets per power of two
// (under 1.6 % error), mergeable across processes as a plain array.
class histogram {
public:
  static constexpr int sub_bits = 6;
  static constexpr int buckets = 64 * (64 - sub_bits + 1);

  void add(uint64_t v);
  void merge(const histogram& o);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // The value at quantile q (0..1), as the upper edge of its bucket (≤ max).
  uint64_t quantile(double q) const;

  static int index_of(uint64_t v);
  static uint64_t upper_edge(int index);

  std::vector<uint64_t> counts = std::vector<uint64_t>(buckets);

private:
  uint64_t count_ = 0;
  uint64_t max_ = 0;

public:
  // For merging after a transfer as raw numbers.
  void set_totals(uint64_t count, uint64_t max) { count_ = count, max_ = max; }
};

// -- what each receiver got -------------------------------------------------------

// One receiver's record of message ids: duplicates exactly (a bit per id),
// reorders as arrivals below the highest id seen so far.
class receipts {
public:
  // Returns false when this id had already arrived (a duplicate).
  bool add(uint64_t seq);
  uint64_t unique() const { return unique_; }
  uint64_t duplicates() const { return dups_; }
  uint64_t reordered() const { return reordered_; }
  bool has(uint64_t seq) const;

private:
  std::vector<uint64_t> bits_;
  uint64_t unique_ = 0, dups_ = 0, reordered_ = 0;
  uint64_t highest_ = 0;
  bool any_ = false;
};

} // namespace loadgen
