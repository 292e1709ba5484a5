// engineio_packet: Engine.IO v4 text packets, long-polling payloads and the
// base64 codecs (net/engineio_packet.hpp). The whole input is tried as each.
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "net/engineio_packet.hpp"

using namespace parley;

namespace {

constexpr std::string_view b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool is_type_digit(char c) {
  return c >= '0' && c <= '6';
}

// What base64_decode should take: groups of four alphabet characters, the
// last group ending in at most two '='.
bool valid_base64(std::string_view s) {
  if (s.size() % 4 != 0)
    return false;
  size_t pad = 0;
  if (!s.empty() && s.back() == '=')
    pad = s.size() >= 2 && s[s.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < s.size() - pad; ++i)
    if (b64.find(s[i]) == std::string_view::npos)
      return false;
  return true;
}

void check_text(std::string_view in) {
  auto p = eio::decode_text(in);
  FUZZ_CHECK(p.has_value() == (!in.empty() && is_type_digit(in[0])));
  if (p) {
    FUZZ_CHECK(static_cast<char>(p->type) == in[0]);
    FUZZ_CHECK(!p->binary);
    FUZZ_CHECK(p->data == in.substr(1));
  }
}

bool same(const std::vector<eio::packet>& a, const std::vector<eio::packet>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].type != b[i].type || a[i].binary != b[i].binary || a[i].data != b[i].data)
      return false;
  return true;
}

void check_payload(std::string_view in) {
  auto parts = fuzz::split(in, eio::record_separator);
  bool all_valid = true, any_binary = false;
  for (auto part : parts) {
    if (!part.empty() && part[0] == 'b') {
      any_binary = true;
      all_valid = all_valid && valid_base64(part.substr(1));
    } else {
      all_valid = all_valid && !part.empty() && is_type_digit(part[0]);
    }
  }
  auto ps = eio::decode_payload(in);
  FUZZ_CHECK(ps.has_value() == all_valid);
  if (!ps)
    return;
  FUZZ_CHECK(ps->size() == parts.size());
  // Written back as the server writes a GET response, then read again.
  std::string body;
  for (auto& p : *ps) {
    FUZZ_CHECK(p.data.find(eio::record_separator) == std::string::npos || p.binary);
    if (p.binary) {
      FUZZ_CHECK(p.type == eio::packet_type::message);
      eio::append_payload(body, eio::binary_frame(p.data));
    } else {
      eio::append_payload(body, eio::control_frame(p.type, p.data));
    }
  }
  // Text comes back byte for byte; base64 only up to its unused low bits.
  if (!any_binary)
    FUZZ_CHECK(body == in);
  auto again = eio::decode_payload(body);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(same(*ps, *again));
}

void check_base64(std::string_view in) {
  auto enc = eio::base64_encode(in);
  FUZZ_CHECK(enc.size() == (in.size() + 2) / 3 * 4);
  FUZZ_CHECK(valid_base64(enc));
  auto dec = eio::base64_decode(enc);
  FUZZ_CHECK(dec && *dec == in);

  // The URL-safe form is the same with two letters swapped and no padding.
  auto url = eio::base64url_encode(in);
  FUZZ_CHECK(url.size() == (in.size() * 4 + 2) / 3);
  std::string translated = url;
  for (auto& c : translated) {
    FUZZ_CHECK(b64url.find(c) != std::string_view::npos);
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  while (translated.size() % 4)
    translated.push_back('=');
  FUZZ_CHECK(translated == enc);

  auto raw = eio::base64_decode(in);
  FUZZ_CHECK(raw.has_value() == valid_base64(in));
  if (raw) {
    size_t pad = in.empty() ? 0 : in.back() != '=' ? 0 : in[in.size() - 2] == '=' ? 2 : 1;
    FUZZ_CHECK(raw->size() == in.size() / 4 * 3 - pad);
    auto back = eio::base64_decode(eio::base64_encode(*raw));
    FUZZ_CHECK(back && *back == *raw);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = fuzz::as_text(data, size);
  check_text(in);
  check_payload(in);
  check_base64(in);
  return 0;
}
