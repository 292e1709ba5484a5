#include "net/ws_frames.hpp"

namespace parley::ws {

size_t encode_header(uint8_t* out, uint8_t op, uint64_t n) {
  out[0] = static_cast<uint8_t>(0x80 | (op & 0x0f));
  if (n < 126) {
    out[1] = static_cast<uint8_t>(n);
    return 2;
  }
  if (n <= 0xffff) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(n >> 8);
    out[3] = static_cast<uint8_t>(n);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i)
    out[2 + i] = static_cast<uint8_t>(n >> (56 - 8 * i));
  return 10;
}

std::string close_frame(uint16_t code, std::string_view reason) {
  reason = reason.substr(0, 123);
  uint8_t head[10];
  size_t h = encode_header(head, op_close, 2 + reason.size());
  std::string out(reinterpret_cast<const char*>(head), h);
  out += static_cast<char>(code >> 8);
  out += static_cast<char>(code & 0xff);
  out += reason;
  return out;
}

bool valid_close_code(uint16_t code) {
  // 1004–1006 and 1015 are reserved (never on the wire); 1016–2999 are not
  // assigned; 3000–4999 belong to libraries and applications.
  return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006)
         || (code >= 3000 && code <= 4999);
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  auto n = s.size();
  while (i < n) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n)
      return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
    i += len;
  }
  return true;
}

namespace {

reader::event failure(uint16_t code, std::string text) {
  reader::event e;
  e.kind = reader::event::error;
  e.code = code;
  e.data = std::move(text);
  return e;
}

} // namespace

reader::event reader::next(const std::string& in, size_t& pos) {
  for (;;) {
    size_t avail = in.size() - pos;
    if (avail < 2)
      return {};
    auto b = reinterpret_cast<const uint8_t*>(in.data() + pos);
    bool fin = b[0] & 0x80;
    uint8_t op = b[0] & 0x0f;
    if (b[0] & 0x70)
      return failure(close_protocol_error, "reserved bits set");
    if (!(b[1] & 0x80))
      return failure(close_protocol_error, "unmasked client frame");
    uint64_t len = b[1] & 0x7f;
    size_t head = 2;
    if (len == 126) {
      if (avail < 4)
        return {};
      len = (uint64_t{b[2]} << 8) | b[3];
      head = 4;
    } else if (len == 127) {
      if (avail < 10)
        return {};
      len = 0;
      for (int i = 0; i < 8; ++i)
        len = (len << 8) | b[2 + i];
      if (len >> 63)
        return failure(close_protocol_error, "frame length out of range");
      head = 10;
    }
    bool control = op >= 8;
    if (control) {
      if (!fin || len > 125)
        return failure(close_protocol_error, "fragmented or long control frame");
      if (op != op_close && op != op_ping && op != op_pong)
        return failure(close_protocol_error, "unknown opcode");
    } else {
      if (op != op_continuation && op != op_text && op != op_binary)
        return failure(close_protocol_error, "unknown opcode");
      if (op == op_continuation && !in_message_)
        return failure(close_protocol_error, "continuation without a message");
      if (op != op_continuation && in_message_)
        return failure(close_protocol_error, "new message inside a fragmented one");
      // Checked before the bytes are waited for, so a huge frame is refused at once.
      if ((in_message_ ? msg_.size() : 0) + len > max_)
        return failure(close_too_big, "message too big");
    }
    if (avail < head + 4 + len)
      return {};
    const uint8_t* mask = b + head;
    const uint8_t* payload = mask + 4;
    pos += head + 4 + len;
    auto unmask_into = [&](std::string& out) {
      size_t base = out.size();
      out.resize(base + len);
      for (uint64_t i = 0; i < len; ++i)
        out[base + i] = static_cast<char>(payload[i] ^ mask[i & 3]);
    };
    if (control) {
      event e;
      std::string body;
      unmask_into(body);
      if (op == op_ping) {
        e.kind = event::ping;
        e.data = std::move(body);
      } else if (op == op_pong) {
        e.kind = event::pong;
      } else {
        e.kind = event::close;
        if (body.size() == 1)
          return failure(close_protocol_error, "close frame with a one-byte body");
        e.code = body.size() >= 2 ? static_cast<uint16_t>((uint8_t(body[0]) << 8) | uint8_t(body[1])) : 1005;
        e.data = body.size() > 2 ? body.substr(2) : std::string{};
        // RFC 6455 §7.4: a code an endpoint may not send, or a reason that
        // is not UTF-8, is a protocol error, answered 1002 rather than echoed.
        if (body.size() >= 2 && !valid_close_code(e.code))
          return failure(close_protocol_error, "invalid close code " + std::to_string(e.code));
        if (!valid_utf8(e.data))
          return failure(close_protocol_error, "close reason is not UTF-8");
      }
      return e;
    }
    if (!in_message_) {
      in_message_ = true;
      binary_ = op == op_binary;
      msg_.clear();
    }
    unmask_into(msg_);
    if (!fin)
      continue;
    in_message_ = false;
    if (!binary_ && !valid_utf8(msg_)) {
      msg_.clear();
      return failure(close_invalid_payload, "invalid UTF-8 in a text message");
    }
    event e;
    e.kind = event::message;
    e.binary = binary_;
    e.data = std::move(msg_);
    msg_ = std::string{};
    return e;
  }
}

} // namespace parley::ws
