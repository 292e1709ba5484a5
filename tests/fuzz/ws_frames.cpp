// ws_frames: the client-frame reader of an established WebSocket
// (net/ws_frames.hpp) as the I/O thread drives it, and ws::valid_utf8.
//
// Input: byte 0 chooses the message size limit (bits 0-2), the size of each
// read (bits 3-5) and whether consumed bytes are erased after each read, as
// the server does (bit 6); the rest is the byte stream from the client.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "net/ws_frames.hpp"

using namespace parley;

namespace {

constexpr uint64_t limits[8] = {0, 1, 125, 126, 65535, 65536, 1000000, uint64_t{1} << 62};
constexpr size_t reads[8] = {1, 2, 3, 7, 16, 125, 4096, 65536};

// Well-formed UTF-8 as the Unicode standard's table 3-7 lists it, byte ranges
// per position; independent of ws::valid_utf8's decoding.
bool reference_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c <= 0x7f) {
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c == 0xe0) {
      len = 3;
      lo = 0xa0;
    } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
      len = 3;
    } else if (c == 0xed) {
      len = 3;
      hi = 0x9f;
    } else if (c == 0xf0) {
      len = 4;
      lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) {
      len = 4;
    } else if (c == 0xf4) {
      len = 4;
      hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i < len)
      return false;
    auto c1 = static_cast<uint8_t>(s[i + 1]);
    if (c1 < lo || c1 > hi)
      return false;
    for (size_t k = 2; k < len; ++k) {
      auto ck = static_cast<uint8_t>(s[i + k]);
      if (ck < 0x80 || ck > 0xbf)
        return false;
    }
    i += len;
  }
  return true;
}

// A masked client frame (RFC 6455 §5.2), header in its shortest form.
void append_client_frame(std::string& out, uint8_t op, bool fin, std::string_view payload, uint32_t mask) {
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | op));
  uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  uint8_t m[4] = {uint8_t(mask >> 24), uint8_t(mask >> 16), uint8_t(mask >> 8), uint8_t(mask)};
  out.append(reinterpret_cast<const char*>(m), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(static_cast<uint8_t>(payload[i]) ^ m[i & 3]));
}

using ev = ws::reader::event;

bool one_of_our_codes(uint16_t code) {
  return code == ws::close_protocol_error || code == ws::close_invalid_payload || code == ws::close_too_big;
}

// A message read back from frames built here: fragmented in three with a ping
// between the fragments, it must come out exactly as it went in.
void round_trip(uint64_t max, const ev& m) {
  std::string wire;
  uint8_t op = m.binary ? ws::op_binary : ws::op_text;
  std::string_view data = m.data;
  size_t a = data.size() / 3, b = 2 * data.size() / 3;
  append_client_frame(wire, op, false, data.substr(0, a), 0x01020304);
  append_client_frame(wire, ws::op_ping, true, "p", 0xa5a5a5a5);
  append_client_frame(wire, ws::op_continuation, false, data.substr(a, b - a), 0);
  append_client_frame(wire, ws::op_continuation, true, data.substr(b), 0xffffffff);
  ws::reader r(max);
  size_t pos = 0;
  auto ping = r.next(wire, pos);
  FUZZ_CHECK(ping.kind == ev::ping && ping.data == "p");
  auto again = r.next(wire, pos);
  FUZZ_CHECK(again.kind == ev::message);
  FUZZ_CHECK(again.binary == m.binary);
  FUZZ_CHECK(again.data == m.data);
  FUZZ_CHECK(pos == wire.size());
  FUZZ_CHECK(r.next(wire, pos).kind == ev::need_more);
}

// encode_header's three forms, read back by hand.
void check_header(uint64_t n) {
  uint8_t h[10];
  size_t len = ws::encode_header(h, ws::op_binary, n);
  FUZZ_CHECK(h[0] == 0x82);
  uint64_t back;
  if (n < 126) {
    FUZZ_CHECK(len == 2);
    back = h[1];
  } else if (n <= 0xffff) {
    FUZZ_CHECK(len == 4 && h[1] == 126);
    back = (uint64_t{h[2]} << 8) | h[3];
  } else {
    FUZZ_CHECK(len == 10 && h[1] == 127);
    back = 0;
    for (int i = 2; i < 10; ++i)
      back = (back << 8) | h[i];
  }
  FUZZ_CHECK(back == n);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  uint64_t max = limits[data[0] & 7];
  size_t read = reads[(data[0] >> 3) & 7];
  bool compact = data[0] & 0x40;
  auto stream = fuzz::as_text(data + 1, size - 1);

  FUZZ_CHECK(ws::valid_utf8(stream) == reference_utf8(stream));
  if (stream.size() >= 8) {
    uint64_t n;
    std::memcpy(&n, stream.data(), 8);
    check_header(n >> (n & 63));
  }

  ws::reader r(max);
  std::string in;
  size_t pos = 0, off = 0;
  bool done = false;
  std::vector<ev> messages;
  while (!done && off < stream.size()) {
    size_t n = std::min(read, stream.size() - off);
    in.append(stream.substr(off, n));
    off += n;
    // Every event but need_more and error takes a whole frame, at least 6 bytes.
    for (size_t events = 0;; ++events) {
      FUZZ_CHECK(events <= in.size() / 6 + 1);
      size_t before = pos;
      auto e = r.next(in, pos);
      FUZZ_CHECK(pos >= before && pos <= in.size());
      if (e.kind == ev::need_more)
        break;
      // A frame in error is left where it is; any other event took a whole frame.
      FUZZ_CHECK(e.kind == ev::error || pos >= before + 6);
      switch (e.kind) {
        case ev::message:
          FUZZ_CHECK(e.data.size() <= max);
          FUZZ_CHECK(e.binary || ws::valid_utf8(e.data));
          messages.push_back(std::move(e));
          break;
        case ev::ping:
          FUZZ_CHECK(e.data.size() <= 125);
          break;
        case ev::pong:
          FUZZ_CHECK(e.data.empty());
          break;
        case ev::close:
          FUZZ_CHECK(e.data.size() <= 123);
          done = true;
          break;
        case ev::error:
          FUZZ_CHECK(one_of_our_codes(e.code));
          FUZZ_CHECK(!e.data.empty());
          done = true;
          break;
        default:
          FUZZ_CHECK(false);
      }
      if (done)
        break;
    }
    if (compact) {
      in.erase(0, pos);
      pos = 0;
    }
  }
  for (auto& m : messages)
    round_trip(max, m);
  return 0;
}
