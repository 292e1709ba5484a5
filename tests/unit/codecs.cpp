#define CAF_SUITE codecs
#include <caf/test/unit_test.hpp>

#include <string>
#include <vector>

#include "net/engineio_packet.hpp"
#include "net/json.hpp"
#include "net/metrics.hpp"
#include "net/socketio_packet.hpp"

using namespace parley;

namespace {

sio::packet decoded(std::string_view text) {
  auto r = sio::decode(text);
  if (auto err = std::get_if<std::string>(&r)) {
    CAF_FAIL("decode failed: " << *err);
  }
  return std::get<sio::packet>(std::move(r));
}

std::string decode_error(std::string_view text) {
  auto r = sio::decode(text);
  if (auto err = std::get_if<std::string>(&r))
    return *err;
  return "decoded";
}

} // namespace

CAF_TEST(engineio text packets) {
  auto p = eio::decode_text("4hello");
  CAF_REQUIRE(p);
  CAF_CHECK(p->type == eio::packet_type::message);
  CAF_CHECK_EQUAL(p->data, "hello");
  auto probe = eio::decode_text("2probe");
  CAF_REQUIRE(probe);
  CAF_CHECK(probe->type == eio::packet_type::ping);
  CAF_CHECK_EQUAL(probe->data, "probe");
  CAF_CHECK(!eio::decode_text(""));
  CAF_CHECK(!eio::decode_text("abc"));
  CAF_CHECK(!eio::decode_text("7"));
}

CAF_TEST(engineio payload with several packets and binary) {
  auto ps = eio::decode_payload("4hello\x1e" "bAQIDBA==\x1e" "3");
  CAF_REQUIRE(ps);
  CAF_REQUIRE_EQUAL(ps->size(), 3u);
  CAF_CHECK_EQUAL((*ps)[0].data, "hello");
  CAF_CHECK((*ps)[1].binary);
  CAF_CHECK_EQUAL((*ps)[1].data, std::string("\x01\x02\x03\x04", 4));
  CAF_CHECK((*ps)[2].type == eio::packet_type::pong);
  CAF_CHECK(!eio::decode_payload("4ok\x1e" "abc"));
  CAF_CHECK(!eio::decode_payload("bAQI*"));
  std::string body;
  eio::append_payload(body, eio::text_frame("4a"));
  eio::append_payload(body, eio::binary_frame(std::string("\x01\x02\x03\x04", 4)));
  eio::append_payload(body, eio::control_frame(eio::packet_type::ping));
  CAF_CHECK_EQUAL(body, "4a\x1e" "bAQIDBA==\x1e" "2");
}

CAF_TEST(base64 round trip) {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto enc = eio::base64_encode(s);
    auto dec = eio::base64_decode(enc);
    CAF_REQUIRE(dec);
    CAF_CHECK_EQUAL(*dec, s);
  }
  CAF_CHECK_EQUAL(eio::base64_encode("hello"), "aGVsbG8=");
  // The URL-safe form: '-' and '_' for '+' and '/', no padding.
  CAF_CHECK_EQUAL(eio::base64url_encode("\xfb\xff"), "-_8");
  CAF_CHECK_EQUAL(eio::base64url_encode("hello"), "aGVsbG8");
  CAF_CHECK_EQUAL(eio::base64url_encode(std::string(11, '\xff')), "______________8");  // 15 characters
  CAF_CHECK(!eio::base64_decode("abc"));
  CAF_CHECK(!eio::base64_decode("ab=c"));
}

CAF_TEST(socketio packets) {
  auto c = decoded("0");
  CAF_CHECK(c.type == sio::packet_type::connect);
  CAF_CHECK_EQUAL(c.nsp, "/");
  CAF_CHECK(!c.payload);
  auto ca = decoded("0/messages,{\"token\":\"x\"}");
  CAF_CHECK_EQUAL(ca.nsp, "/messages");
  CAF_REQUIRE(ca.payload);
  CAF_CHECK_EQUAL(sio::to_json(*ca.payload), "{\"token\":\"x\"}");
  auto e = decoded("2/messages,12[\"hi\",1]");
  CAF_CHECK(e.type == sio::packet_type::event);
  CAF_CHECK_EQUAL(e.nsp, "/messages");
  CAF_REQUIRE(e.id);
  CAF_CHECK_EQUAL(*e.id, 12u);
  CAF_CHECK_EQUAL(sio::to_json(*e.payload), "[\"hi\",1]");
  auto a = decoded("3456[1,\"2\"]");
  CAF_CHECK(a.type == sio::packet_type::ack);
  CAF_CHECK_EQUAL(*a.id, 456u);
  auto b = decoded("52-789[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
  CAF_CHECK(b.type == sio::packet_type::binary_event);
  CAF_CHECK_EQUAL(b.attachments, 2u);
  CAF_CHECK_EQUAL(*b.id, 789u);
  auto ns_only = decoded("1/random");
  CAF_CHECK_EQUAL(ns_only.nsp, "/random");
}

CAF_TEST(socketio decode errors) {
  CAF_CHECK_EQUAL(decode_error("abc"), "unknown packet type");
  CAF_CHECK_EQUAL(decode_error("2{}"), "invalid payload");
  CAF_CHECK_EQUAL(decode_error("2abc[\"x\"]"), "invalid payload");
  CAF_CHECK_EQUAL(decode_error("2[]"), "invalid payload");
  CAF_CHECK_EQUAL(decode_error("2[\"connect\"]"), "invalid payload");
  CAF_CHECK_EQUAL(decode_error("2"), "invalid payload");
  CAF_CHECK_EQUAL(decode_error("1{}"), "invalid payload");
  CAF_CHECK_EQUAL(decode_error("5x-[\"a\"]"), "illegal attachments");
  CAF_CHECK_EQUAL(decode_error("0[1]"), "invalid payload");
  CAF_CHECK_EQUAL(decode_error("2[\"a\"] trailing"), "invalid payload");
}

CAF_TEST(socketio encoding) {
  CAF_CHECK_EQUAL(sio::encode(sio::packet_type::event, "/", std::nullopt, sio::event_array("hello", "1")),
                  "42[\"hello\",1]");
  CAF_CHECK_EQUAL(sio::encode(sio::packet_type::ack, "/messages", 7, "[{}]"), "43/messages,7[{}]");
  CAF_CHECK_EQUAL(sio::encode(sio::packet_type::binary_ack, "/", 789, "[1]", 2), "462-789[1]");
  CAF_CHECK_EQUAL(sio::encode(sio::packet_type::connect_error, "/x", std::nullopt,
                              "{\"message\":\"Invalid namespace\"}"),
                  "44/x,{\"message\":\"Invalid namespace\"}");
  CAF_CHECK_EQUAL(sio::event_array("e", ""), "[\"e\"]");
  std::string s;
  sio::append_json_string(s, "a\"b\\c\n\x01");
  CAF_CHECK_EQUAL(s, "\"a\\\"b\\\\c\\n\\u0001\"");
}

// Found by tests/fuzz (json, socketio_packet): RapidJSON 1.1.0's number
// conversion wrote back a neighbouring double (234e45 became
// 2.3399999999999998e47), in full precision a wrong one (0e232 became
// 1.9e-34), and let 1.8e308 become infinity, which its writer stops at: a
// payload [1.8e308,1] was relayed to other clients as "[".
CAF_TEST(numbers are written back with the value the client sent) {
  auto rt = [](std::string_view text) {
    rapidjson::Document d;
    std::string why;
    if (!json::parse(d, text, &why))
      return "error: " + why;
    return sio::to_json(d);
  };
  CAF_CHECK_EQUAL(rt("234e45"), "2.34e47");
  CAF_CHECK_EQUAL(rt("123456789012345678901234567890"), "1.2345678901234568e29");
  CAF_CHECK_EQUAL(rt("[0.1,-0.0,1e-7,5e-324,1e-400,1.7976931348623157e308]"),
                  "[0.1,-0.0,1e-7,5e-324,0.0,1.7976931348623157e308]");
  CAF_CHECK_EQUAL(rt("[0e232,0.0e99,-0E-28]"), "[0.0,0.0,-0.0]");
  CAF_CHECK_EQUAL(rt("[1.8e308,1]"), "error: Number too big to be stored in double. at offset 1");
  CAF_CHECK_EQUAL(rt("1e309"), "error: Number too big to be stored in double. at offset 0");
  // Integers keep their types, past 64 bits they are doubles.
  CAF_CHECK_EQUAL(rt("[18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809,-0]"),
                  "[18446744073709551615,18446744073709553000.0,-9223372036854775808,-9223372036854776000.0,0]");
  rapidjson::Document d;
  CAF_REQUIRE(json::parse(d, "[5,-5,4294967296,-2147483649,1.5]"));
  CAF_CHECK(d[0].IsInt() && d[0].IsUint() && d[0].IsInt64() && d[0].IsUint64() && !d[0].IsDouble());
  CAF_CHECK(d[1].IsInt() && !d[1].IsUint() && d[1].IsInt64() && !d[1].IsUint64());
  CAF_CHECK(!d[2].IsInt() && !d[2].IsUint() && d[2].IsInt64() && d[2].IsUint64());
  CAF_CHECK(!d[3].IsInt() && d[3].IsInt64() && d[3].GetInt64() == -2147483649LL);
  CAF_CHECK(d[4].IsDouble() && d[4].GetDouble() == 1.5);
  auto e = decoded("2[\"n\",234e45,1111111111111111111111111111111111111111111111111111111111111]");
  CAF_CHECK_EQUAL(sio::to_json(*e.payload), "[\"n\",2.34e47,1.1111111111111112e60]");
  CAF_CHECK_EQUAL(decode_error("2[\"n\",1.8e308,1]"), "invalid payload");
}

CAF_TEST(prometheus label values escape backslash and quote and line feed only) {
  std::string out;
  parley::append_label_value(out, "a\\b\"c\nd\te/\xc3\xbc");
  CAF_CHECK_EQUAL(out, "\"a\\\\b\\\"c\\nd\te/\xc3\xbc\"");
}
