#include "net/engineio_packet.hpp"

#include <array>

namespace parley::eio {

frame text_frame(std::string packet_text) {
  return frame{std::make_shared<const std::string>(std::move(packet_text)), false};
}

frame binary_frame(std::string raw) {
  return frame{std::make_shared<const std::string>(std::move(raw)), true};
}

frame control_frame(packet_type t, std::string_view data) {
  std::string s;
  s.reserve(1 + data.size());
  s.push_back(static_cast<char>(t));
  s.append(data);
  return text_frame(std::move(s));
}

std::optional<packet> decode_text(std::string_view text) {
  if (text.empty() || text[0] < '0' || text[0] > '6')
    return std::nullopt;
  packet p;
  p.type = static_cast<packet_type>(text[0]);
  p.data.assign(text.substr(1));
  return p;
}

std::optional<packet> next_in_payload(std::string_view body, size_t& pos) {
  auto end = body.find(record_separator, pos);
  auto part = body.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
  std::optional<packet> p;
  if (!part.empty() && part[0] == 'b') {
    if (auto raw = base64_decode(part.substr(1)))
      p = packet{packet_type::message, true, std::move(*raw)};
  } else {
    p = decode_text(part);
  }
  if (p)
    pos = end == std::string_view::npos ? std::string_view::npos : end + 1;
  return p;
}

std::optional<std::vector<packet>> decode_payload(std::string_view body) {
  std::vector<packet> out;
  size_t pos = 0;
  while (pos != std::string_view::npos) {
    auto p = next_in_payload(body, pos);
    if (!p)
      return std::nullopt;
    out.push_back(std::move(*p));
  }
  return out;
}

void append_payload(std::string& body, const frame& f) {
  if (!body.empty())
    body.push_back(record_separator);
  if (f.binary) {
    body.push_back('b');
    body += base64_encode(*f.bytes);
  } else {
    body += *f.bytes;
  }
}

namespace {

constexpr char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char b64url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode64(std::string_view raw, const char* abc, bool pad) {
  std::string out;
  // Exactly the length (unpadded: 11 bytes make 15 characters, which a
  // std::string holds inline).
  out.reserve(pad ? (raw.size() + 2) / 3 * 4 : (raw.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(raw[k]); };
  for (; i + 2 < raw.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(abc[(n >> 18) & 63]);
    out.push_back(abc[(n >> 12) & 63]);
    out.push_back(abc[(n >> 6) & 63]);
    out.push_back(abc[n & 63]);
  }
  if (i + 1 == raw.size()) {
    uint32_t n = byte(i) << 16;
    out.push_back(abc[(n >> 18) & 63]);
    out.push_back(abc[(n >> 12) & 63]);
    if (pad)
      out += "==";
  } else if (i + 2 == raw.size()) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(abc[(n >> 18) & 63]);
    out.push_back(abc[(n >> 12) & 63]);
    out.push_back(abc[(n >> 6) & 63]);
    if (pad)
      out.push_back('=');
  }
  return out;
}

} // namespace

std::string base64_encode(std::string_view raw) {
  return encode64(raw, b64_chars, true);
}

std::string base64url_encode(std::string_view raw) {
  return encode64(raw, b64url_chars, false);
}

std::optional<std::string> base64_decode(std::string_view text) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i)
      t[static_cast<unsigned char>(b64_chars[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0)
        return std::nullopt;
      v[k] = table[static_cast<unsigned char>(c)];
      if (v[k] < 0)
        return std::nullopt;
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    if (pad < 2)
      out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1)
      out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

} // namespace parley::eio
