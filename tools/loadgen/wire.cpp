#include "tools/loadgen/wire.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
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

std::string websocket_upgrade(std::string_view host_port, std::string_view target) {
  std::string r = "GET ";
  r += target;
  r += " HTTP/1.1\r\nHost: ";
  r += host_port;
  r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: cGFybGV5LWxvYWRnZW4hIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  return r;
}

std::string upgrade_request(std::string_view host_port, std::string_view path) {
  return websocket_upgrade(host_port, std::string{path} + "?EIO=4&transport=websocket");
}

std::string api_request(std::string_view host_port, std::string_view path, std::string_view api_key,
                        std::string_view json_body) {
  std::string r;
  r.reserve(160 + host_port.size() + path.size() + api_key.size() + json_body.size());
  r += "POST ";
  r += path;
  r += " HTTP/1.1\r\nHost: ";
  r += host_port;
  r += "\r\nAuthorization: apikey ";
  r += api_key;
  r += "\r\nContent-Type: application/json\r\nContent-Length: ";
  r += std::to_string(json_body.size());
  r += "\r\n\r\n";
  r += json_body;
  return r;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

http_answer read_http_answer(std::string_view in) {
  http_answer a;
  auto bad = [&a](std::string why) {
    a.status = http_answer::bad;
    a.error = std::move(why);
    return a;
  };
  auto end = in.find("\r\n\r\n");
  if (end == std::string_view::npos)
    return in.size() > 16384 ? bad("answer head over 16 KiB") : a;
  auto head = in.substr(0, end);
  if (head.size() < 12 || (head.compare(0, 9, "HTTP/1.1 ") != 0 && head.compare(0, 9, "HTTP/1.0 ") != 0))
    return bad("not an HTTP/1.x answer: " + std::string{head.substr(0, std::min<size_t>(head.size(), 40))});
  for (size_t k = 9; k < 12; ++k) {
    if (head[k] < '0' || head[k] > '9')
      return bad("bad status code");
    a.code = a.code * 10 + (head[k] - '0');
  }
  a.close = head[7] == '0';  // HTTP/1.0 closes unless told otherwise
  std::optional<uint64_t> length;
  auto line_start = head.find("\r\n");
  while (line_start != std::string_view::npos) {
    line_start += 2;
    auto line_end = head.find("\r\n", line_start);
    auto line = head.substr(line_start, line_end == std::string_view::npos ? std::string_view::npos : line_end - line_start);
    line_start = line_end;
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return bad("header line without a colon");
    auto name = trim(line.substr(0, colon));
    auto value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      if (value.empty() || value.size() > 12 || value.find_first_not_of("0123456789") != std::string_view::npos)
        return bad("bad Content-Length");
      length = std::stoull(std::string{value});
    } else if (iequals(name, "transfer-encoding")) {
      return bad("chunked answers are not read");
    } else if (iequals(name, "connection")) {
      if (iequals(value, "close"))
        a.close = true;
      else if (iequals(value, "keep-alive"))
        a.close = false;
    }
  }
  if (!length) {
    if (a.code / 100 == 1 || a.code == 204 || a.code == 304)
      length = 0;
    else
      return bad("answer without Content-Length");
  }
  if (*length > (uint64_t{1} << 26))
    return bad("answer body over 64 MiB");
  auto body_at = end + 4;
  if (in.size() - body_at < *length)
    return a;
  a.status = http_answer::ok;
  a.body = in.substr(body_at, static_cast<size_t>(*length));
  a.size = body_at + static_cast<size_t>(*length);
  return a;
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

std::optional<stamped> find_stamp(std::string_view json, std::string_view key) {
  // The first `"key":"` (no allocation: this runs once per delivery).
  if (key.empty())
    return std::nullopt;
  auto at = json.find(key, 1);
  while (at != std::string_view::npos && (json[at - 1] != '"' || json.compare(at + key.size(), 3, "\":\"") != 0))
    at = json.find(key, at + 1);
  if (at == std::string_view::npos)
    return std::nullopt;
  size_t i = at + key.size() + 3;
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

namespace {

// Where the value of `"key":` begins (after the colon and any spaces), or npos.
size_t value_of(std::string_view json, std::string_view key) {
  std::string quoted;
  quoted.reserve(key.size() + 2);
  quoted += '"';
  quoted += key;
  quoted += '"';
  for (auto at = json.find(quoted); at != std::string_view::npos; at = json.find(quoted, at + 1)) {
    auto i = at + quoted.size();
    while (i < json.size() && json[i] == ' ')
      ++i;
    if (i >= json.size() || json[i] != ':')
      continue;  // the same text as a value, not a key
    ++i;
    while (i < json.size() && json[i] == ' ')
      ++i;
    return i;
  }
  return std::string_view::npos;
}

} // namespace

std::optional<std::string_view> json_string(std::string_view json, std::string_view key) {
  auto i = value_of(json, key);
  if (i == std::string_view::npos || i >= json.size() || json[i] != '"')
    return std::nullopt;
  auto end = json.find('"', i + 1);
  if (end == std::string_view::npos)
    return std::nullopt;
  auto v = json.substr(i + 1, end - i - 1);
  if (v.find('\\') != std::string_view::npos)
    return std::nullopt;
  return v;
}

std::optional<uint64_t> json_uint(std::string_view json, std::string_view key) {
  auto i = value_of(json, key);
  if (i == std::string_view::npos)
    return std::nullopt;
  auto end = i;
  while (end < json.size() && json[end] >= '0' && json[end] <= '9')
    ++end;
  return decimal(json.substr(i, end - i));
}

std::optional<uint64_t> decimal(std::string_view text) {
  if (text.empty() || text.size() > 19)
    return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string_view last_string_arg(std::string_view packet) {
  if (packet.size() < 4 || packet.back() != ']' || packet[packet.size() - 2] != '"')
    return {};
  auto close = packet.size() - 2;
  auto open = packet.rfind('"', close - 1);
  if (open == std::string_view::npos || open == 0 || packet[open - 1] != ',')
    return {};
  return packet.substr(open + 1, close - open - 1);
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
