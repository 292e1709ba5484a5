#include "tools/loadgen/wire.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>

namespace loadgen {

void append_client_frame(std::string& out, std::string_view payload, uint8_t op, uint32_t mask, bool fin) {
  out += static_cast<char>((fin ? 0x80 : 0) | op);
  auto n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xffff) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i)
      out += static_cast<char>((uint64_t{n} >> (8 * i)) & 0xff);
  }
  char m[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
               static_cast<char>(mask >> 8), static_cast<char>(mask)};
  out.append(m, 4);
  auto at = out.size();
  out.append(payload);
  for (size_t i = 0; i < n; ++i)
    out[at + i] ^= m[i & 3];
}

frame read_server_frame(std::string_view in) {
  frame f;
  if (in.size() < 2)
    return f;
  auto b0 = static_cast<uint8_t>(in[0]);
  auto b1 = static_cast<uint8_t>(in[1]);
  f.fin = b0 & 0x80;
  f.op = b0 & 0x0f;
  if (b0 & 0x70) {
    f.status = frame::bad;
    f.error = "reserved bits set";
    return f;
  }
  if (b1 & 0x80) {
    f.status = frame::bad;
    f.error = "masked server frame";
    return f;
  }
  uint64_t n = b1 & 0x7f;
  size_t head = 2;
  if (n == 126) {
    if (in.size() < 4)
      return f;
    n = (uint64_t{static_cast<uint8_t>(in[2])} << 8) | static_cast<uint8_t>(in[3]);
    head = 4;
  } else if (n == 127) {
    if (in.size() < 10)
      return f;
    n = 0;
    for (int i = 2; i < 10; ++i)
      n = (n << 8) | static_cast<uint8_t>(in[i]);
    head = 10;
  }
  if (n > (uint64_t{1} << 30)) {
    f.status = frame::bad;
    f.error = "frame over 1 GiB";
    return f;
  }
  if (in.size() < head + n)
    return f;
  f.status = frame::ok;
  f.payload = in.substr(head, n);
  f.size = head + n;
  return f;
}

std::string upgrade_request(std::string_view host_port, std::string_view path) {
  std::string r = "GET ";
  r += path;
  r += "?EIO=4&transport=websocket HTTP/1.1\r\nHost: ";
  r += host_port;
  r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: cGFybGV5LWxvYWRnZW4hIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  return r;
}

std::string base64url(std::string_view data) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += abc[v >> 18];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += abc[v & 63];
  }
  if (data.size() - i == 1) {
    uint32_t v = byte(i) << 16;
    out += abc[v >> 18];
    out += abc[(v >> 12) & 63];
  } else if (data.size() - i == 2) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += abc[v >> 18];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
  }
  return out;
}

std::string hs256_token(std::string_view claims_json, std::string_view secret) {
  auto head = base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(claims_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(head.data()), head.size(), mac, &len);
  return head + "." + base64url({reinterpret_cast<const char*>(mac), len});
}

std::string stamp(uint64_t seq, uint64_t send_ns, size_t pad_to) {
  auto s = std::to_string(seq) + ":" + std::to_string(send_ns);
  if (s.size() < pad_to)
    s.append(pad_to - s.size(), '.');
  return s;
}

std::optional<stamped> find_stamp(std::string_view json) {
  constexpr std::string_view key = "\"message\":\"";
  auto at = json.find(key);
  if (at == std::string_view::npos)
    return std::nullopt;
  size_t i = at + key.size();
  stamped s;
  auto digits = [&](uint64_t& v) {
    size_t start = i;
    while (i < json.size() && json[i] >= '0' && json[i] <= '9')
      v = v * 10 + static_cast<uint64_t>(json[i++] - '0');
    return i > start && i - start <= 19;
  };
  if (!digits(s.seq) || i >= json.size() || json[i++] != ':' || !digits(s.send_ns))
    return std::nullopt;
  return s;
}

std::string_view event_name(std::string_view packet) {
  // 42["name",...] or 42<ack id>["name",...]; a namespace ("42/nsp,") is not used here.
  if (packet.size() < 5 || packet[0] != '4' || packet[1] != '2')
    return {};
  size_t i = 2;
  while (i < packet.size() && packet[i] >= '0' && packet[i] <= '9')
    ++i;
  if (packet.compare(i, 2, "[\"") != 0)
    return {};
  auto end = packet.find('"', i + 2);
  if (end == std::string_view::npos)
    return {};
  return packet.substr(i + 2, end - i - 2);
}

int histogram::index_of(uint64_t v) {
  constexpr uint64_t sub = uint64_t{1} << sub_bits;
  if (v < sub)
    return static_cast<int>(v);
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - sub_bits;
  return static_cast<int>((shift + 1) * sub + ((v >> shift) - sub));
}

uint64_t histogram::upper_edge(int index) {
  constexpr uint64_t sub = uint64_t{1} << sub_bits;
  if (index < static_cast<int>(sub))
    return static_cast<uint64_t>(index);
  int shift = index / static_cast<int>(sub) - 1;
  uint64_t base = (sub + static_cast<uint64_t>(index % sub)) << shift;
  return base + ((uint64_t{1} << shift) - 1);
}

void histogram::add(uint64_t v) {
  ++counts[static_cast<size_t>(index_of(v))];
  ++count_;
  max_ = std::max(max_, v);
}

void histogram::merge(const histogram& o) {
  for (size_t i = 0; i < counts.size(); ++i)
    counts[i] += o.counts[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
}

uint64_t histogram::quantile(double q) const {
  if (count_ == 0)
    return 0;
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank)
      return std::min(upper_edge(static_cast<int>(i)), max_);
  }
  return max_;
}

bool receipts::add(uint64_t seq) {
  auto word = seq / 64;
  if (word >= bits_.size())
    bits_.resize(std::max<size_t>(word + 1, bits_.size() * 2));
  auto bit = uint64_t{1} << (seq % 64);
  if (bits_[word] & bit) {
    ++dups_;
    return false;
  }
  bits_[word] |= bit;
  ++unique_;
  if (any_ && seq < highest_)
    ++reordered_;
  if (!any_ || seq > highest_)
    highest_ = seq;
  any_ = true;
  return true;
}

bool receipts::has(uint64_t seq) const {
  auto word = seq / 64;
  return word < bits_.size() && (bits_[word] >> (seq % 64)) & 1;
}

} // namespace loadgen
