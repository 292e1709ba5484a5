#define CAF_SUITE wsframes
#include <caf/test/unit_test.hpp>

#include <string>

#include "net/ws_frames.hpp"
#include "tools/loadgen/wire.hpp"

using namespace parley;

namespace {

// A masked client frame, as a browser sends it (the load generator's encoder).
std::string client_frame(uint8_t op, std::string_view payload, bool fin = true) {
  std::string out;
  loadgen::append_client_frame(out, payload, op, 0x11223344, fin);
  return out;
}

using ev = ws::reader::event;

} // namespace

CAF_TEST(server headers take the shortest length form) {
  uint8_t h[10];
  CAF_CHECK_EQUAL(ws::encode_header(h, ws::op_text, 125), 2u);
  CAF_CHECK_EQUAL(h[0], 0x81);
  CAF_CHECK_EQUAL(h[1], 125);
  CAF_CHECK_EQUAL(ws::encode_header(h, ws::op_binary, 126), 4u);
  CAF_CHECK_EQUAL(h[0], 0x82);
  CAF_CHECK_EQUAL(h[1], 126);
  CAF_CHECK_EQUAL(h[2], 0);
  CAF_CHECK_EQUAL(h[3], 126);
  CAF_CHECK_EQUAL(ws::encode_header(h, ws::op_text, 70000), 10u);
  CAF_CHECK_EQUAL(h[1], 127);
  CAF_CHECK_EQUAL((uint32_t{h[7]} << 16) | (uint32_t{h[8]} << 8) | h[9], 70000u);
  CAF_CHECK_EQUAL(ws::close_frame(1009, ""), std::string("\x88\x02\x03\xf1", 4));
}

CAF_TEST(frames arriving a byte at a time and several per read) {
  std::string wire = client_frame(ws::op_text, "42[\"a\"]") + client_frame(ws::op_binary, std::string(300, 'x'))
                     + client_frame(ws::op_text, std::string(70000, 'y'));
  ws::reader r{1 << 20};
  std::string in;
  size_t pos = 0;
  std::vector<ev> got;
  for (char c : wire) {
    in += c;
    for (;;) {
      auto e = r.next(in, pos);
      if (e.kind == ev::need_more)
        break;
      got.push_back(std::move(e));
    }
  }
  CAF_REQUIRE_EQUAL(got.size(), 3u);
  CAF_CHECK_EQUAL(got[0].kind, ev::message);
  CAF_CHECK_EQUAL(got[0].binary, false);
  CAF_CHECK_EQUAL(got[0].data, "42[\"a\"]");
  CAF_CHECK_EQUAL(got[1].binary, true);
  CAF_CHECK_EQUAL(got[1].data, std::string(300, 'x'));
  CAF_CHECK_EQUAL(got[2].data.size(), 70000u);
  CAF_CHECK_EQUAL(pos, wire.size());
}

CAF_TEST(fragments are joined and control frames may come between them) {
  std::string wire = client_frame(ws::op_text, "4hel", false) + client_frame(ws::op_ping, "p")
                     + client_frame(ws::op_continuation, "lo", false) + client_frame(ws::op_continuation, "!");
  ws::reader r{1000};
  size_t pos = 0;
  auto ping = r.next(wire, pos);
  CAF_CHECK_EQUAL(ping.kind, ev::ping);
  CAF_CHECK_EQUAL(ping.data, "p");
  auto msg = r.next(wire, pos);
  CAF_CHECK_EQUAL(msg.kind, ev::message);
  CAF_CHECK_EQUAL(msg.data, "4hello!");
  CAF_CHECK_EQUAL(r.next(wire, pos).kind, ev::need_more);
}

CAF_TEST(close frames carry the code of the peer) {
  ws::reader r{1000};
  size_t pos = 0;
  auto wire = client_frame(ws::op_close, std::string("\x03\xe8" "bye", 5));
  auto e = r.next(wire, pos);
  CAF_CHECK_EQUAL(e.kind, ev::close);
  CAF_CHECK_EQUAL(e.code, 1000);
  CAF_CHECK_EQUAL(e.data, "bye");
  pos = 0;
  auto empty = client_frame(ws::op_close, "");
  CAF_CHECK_EQUAL(ws::reader{1000}.next(empty, pos).code, 1005);
}

CAF_TEST(protocol errors name the close code) {
  auto error_of = [](const std::string& wire, uint64_t max = 1000) {
    ws::reader r{max};
    size_t pos = 0;
    for (;;) {
      auto e = r.next(wire, pos);
      if (e.kind == ev::error)
        return std::make_pair(e.code, e.data);
      if (e.kind == ev::need_more)
        return std::make_pair(uint16_t{0}, std::string{"need more"});
    }
  };
  std::string unmasked = "\x81\x02hi";
  CAF_CHECK_EQUAL(error_of(unmasked).first, ws::close_protocol_error);
  CAF_CHECK_EQUAL(error_of(unmasked).second, "unmasked client frame");
  // Too big is known from the header alone: the payload is never waited for.
  auto big = client_frame(ws::op_text, std::string(2000, 'a')).substr(0, 8);
  CAF_CHECK_EQUAL(error_of(big).first, ws::close_too_big);
  auto grown = client_frame(ws::op_text, std::string(600, 'a'), false) + client_frame(ws::op_continuation, std::string(600, 'a'));
  CAF_CHECK_EQUAL(error_of(grown).first, ws::close_too_big);
  CAF_CHECK_EQUAL(error_of(client_frame(ws::op_text, "\xff\xfe")).first, ws::close_invalid_payload);
  CAF_CHECK_EQUAL(error_of(client_frame(ws::op_continuation, "x")).second, "continuation without a message");
  CAF_CHECK_EQUAL(error_of(client_frame(ws::op_ping, std::string(126, 'p'))).second, "fragmented or long control frame");
  CAF_CHECK_EQUAL(error_of(client_frame(3, "x")).second, "unknown opcode");
  CAF_CHECK_EQUAL(error_of(std::string("\xc1\x80\0\0\0\0", 6)).second, "reserved bits set");
}

CAF_TEST(close frames with a code a peer may not send or a reason that is not UTF-8 are protocol errors) {
  auto close_of = [](uint16_t code, std::string reason = {}) {
    std::string body{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    body += reason;
    auto wire = client_frame(ws::op_close, body);
    ws::reader r{1000};
    size_t pos = 0;
    return r.next(wire, pos);
  };
  for (uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    auto e = close_of(bad);
    CAF_CHECK_EQUAL(e.kind, ev::error);
    CAF_CHECK_EQUAL(e.code, ws::close_protocol_error);
    CAF_CHECK_EQUAL(e.data, "invalid close code " + std::to_string(bad));
  }
  for (uint16_t good : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999}) {
    auto e = close_of(good, "ok");
    CAF_CHECK_EQUAL(e.kind, ev::close);
    CAF_CHECK_EQUAL(e.code, good);
  }
  auto e = close_of(1000, "\xff\xfe");
  CAF_CHECK_EQUAL(e.kind, ev::error);
  CAF_CHECK_EQUAL(e.code, ws::close_protocol_error);
  CAF_CHECK_EQUAL(e.data, "close reason is not UTF-8");
}

CAF_TEST(utf8 validation) {
  CAF_CHECK(ws::valid_utf8("héllo ☃ 😀"));
  CAF_CHECK(!ws::valid_utf8("\xc0\xaf"));         // overlong
  CAF_CHECK(!ws::valid_utf8("\xed\xa0\x80"));     // surrogate
  CAF_CHECK(!ws::valid_utf8("\xf4\x90\x80\x80")); // past U+10FFFF
  CAF_CHECK(!ws::valid_utf8("\xe2\x98"));         // cut short
}
