#define CAF_SUITE loadgen
#include <caf/test/unit_test.hpp>

#include <string>

#include "net/jwt.hpp"
#include "tools/loadgen/wire.hpp"

using namespace loadgen;

namespace {

// A server frame as Parley writes it: unmasked, final.
std::string server_frame(uint8_t op, std::string_view payload) {
  std::string out;
  out += static_cast<char>(0x80 | op);
  auto n = payload.size();
  if (n < 126) {
    out += static_cast<char>(n);
  } else if (n <= 0xffff) {
    out += static_cast<char>(126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(127);
    for (int i = 7; i >= 0; --i)
      out += static_cast<char>((uint64_t{n} >> (8 * i)) & 0xff);
  }
  out += payload;
  return out;
}

} // namespace

CAF_TEST(client frames are masked and unmask to the payload) {
  for (size_t n : {0u, 5u, 125u, 126u, 65535u, 65536u}) {
    std::string payload(n, 'x');
    for (size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    std::string out;
    append_client_frame(out, payload, 1, 0x01020304);
    CAF_CHECK_EQUAL(static_cast<uint8_t>(out[0]), 0x81);
    CAF_CHECK(static_cast<uint8_t>(out[1]) & 0x80);
    size_t head = n < 126 ? 2 : n <= 0xffff ? 4 : 10;
    CAF_REQUIRE_EQUAL(out.size(), head + 4 + n);
    std::string back = out.substr(head + 4);
    for (size_t i = 0; i < n; ++i)
      back[i] ^= static_cast<char>(1 + i % 4);
    CAF_CHECK(back == payload);
  }
}

CAF_TEST(server frames are read whole and in pieces and several per buffer) {
  auto big = std::string(70000, 'b');
  auto in = server_frame(1, "42[\"message\",{}]") + server_frame(1, big) + server_frame(9, "hi");
  // Every prefix short of the first frame asks for more.
  for (size_t k = 0; k < 18; ++k)
    CAF_CHECK_EQUAL(read_server_frame(std::string_view{in}.substr(0, k)).status, frame::need_more);
  auto f1 = read_server_frame(in);
  CAF_REQUIRE_EQUAL(f1.status, frame::ok);
  CAF_CHECK_EQUAL(f1.payload, "42[\"message\",{}]");
  CAF_CHECK_EQUAL(f1.size, 18u);
  auto rest = std::string_view{in}.substr(f1.size);
  CAF_CHECK_EQUAL(read_server_frame(rest.substr(0, 70009)).status, frame::need_more);
  auto f2 = read_server_frame(rest);
  CAF_REQUIRE_EQUAL(f2.status, frame::ok);
  CAF_CHECK_EQUAL(f2.payload.size(), 70000u);
  CAF_CHECK_EQUAL(f2.size, 70010u);
  auto f3 = read_server_frame(rest.substr(f2.size));
  CAF_CHECK_EQUAL(f3.op, 9);
  CAF_CHECK_EQUAL(f3.payload, "hi");
}

CAF_TEST(masked or reserved server frames are errors) {
  std::string masked = "\x81\x82" "abcd" "xy";
  auto f = read_server_frame(masked);
  CAF_CHECK_EQUAL(f.status, frame::bad);
  CAF_CHECK_EQUAL(f.error, "masked server frame");
  auto r = read_server_frame(std::string_view{"\xc1\x00", 2});
  CAF_CHECK_EQUAL(r.status, frame::bad);
  CAF_CHECK_EQUAL(r.error, "reserved bits set");
}

CAF_TEST(upgrade requests for socket.io and for a plain websocket target) {
  CAF_CHECK_EQUAL(upgrade_request("127.0.0.1:9").substr(0, 71),
                  "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:9\r\n");
  auto plain = websocket_upgrade("127.0.0.1:9", "/ws/widget/dialogs/d?assistant_id=bench");
  CAF_CHECK_EQUAL(plain.substr(0, 73), "GET /ws/widget/dialogs/d?assistant_id=bench HTTP/1.1\r\nHost: 127.0.0.1:9\r\n");
  CAF_CHECK(plain.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
  CAF_CHECK(plain.find("EIO") == std::string::npos);
}

CAF_TEST(tokens verify with the verifier of Parley) {
  auto t = hs256_token(R"({"sub":"u7","rooms":["chat:*"],"exp":4102444800})", "s3cret");
  parley::jwt::key_config kc;
  kc.hs256_secret = "s3cret";
  auto made = parley::jwt::verifier::make(kc);
  auto v = std::get_if<parley::jwt::verifier>(&made);
  CAF_REQUIRE(v != nullptr);
  auto got = v->verify(t, 1700000000);
  auto c = std::get_if<parley::jwt::claims>(&got);
  CAF_REQUIRE(c != nullptr);
  CAF_CHECK_EQUAL(c->sub, "u7");
  CAF_CHECK_EQUAL(base64url("ab"), "YWI");
  CAF_CHECK_EQUAL(base64url("abc"), "YWJj");
  CAF_CHECK_EQUAL(base64url("\xff\xfe\xfd\xfc"), "__79_A");
}

CAF_TEST(stamps round trip through the event JSON) {
  auto s = stamp(42, 123456789012345, 40);
  CAF_CHECK_EQUAL(s.size(), 40u);
  auto packet = R"(2["message",{"id":"1-2","chatId":"0","message":")" + s + R"(","userId":"u0"}])";
  auto got = find_stamp(packet);
  CAF_REQUIRE(got.has_value());
  CAF_CHECK_EQUAL(got->seq, 42u);
  CAF_CHECK_EQUAL(got->send_ns, 123456789012345u);
  CAF_CHECK(!find_stamp(R"(2["message",{"message":"hello"}])").has_value());
  CAF_CHECK(!find_stamp(R"(2["message",{"message":"12:"}])").has_value());
  // A dialog message (plainfanout): the stamp is its "text"; "text" as a value or a longer key is passed over.
  auto dialog = find_stamp(R"({"id":7,"sender":"manager","context":"1:2","x":"text","text":")" + s + R"("})", "text");
  CAF_REQUIRE(dialog.has_value());
  CAF_CHECK_EQUAL(dialog->seq, 42u);
  CAF_CHECK(!find_stamp(R"({"subtext":"1:2"})", "text").has_value());
  CAF_CHECK_EQUAL(event_name(R"(42["user:online",{"userId":"a"}])"), "user:online");
  CAF_CHECK_EQUAL(event_name(R"(4217["ev",1])"), "ev");
  CAF_CHECK_EQUAL(event_name(R"(43["ev"])"), "");
}

CAF_TEST(histogram quantiles stay within a bucket of the truth) {
  histogram h;
  for (uint64_t v = 1; v <= 100000; ++v)
    h.add(v * 1000);  // 1 µs … 100 ms
  CAF_CHECK_EQUAL(h.count(), 100000u);
  CAF_CHECK_EQUAL(h.max(), 100000000u);
  auto near = [](uint64_t got, double want) { return got >= want && got <= want * 1.02; };
  CAF_CHECK(near(h.quantile(0.5), 50000000.0));
  CAF_CHECK(near(h.quantile(0.99), 99000000.0));
  CAF_CHECK_EQUAL(h.quantile(1.0), 100000000u);
  for (uint64_t v : {0ull, 1ull, 63ull, 64ull, 65ull, 1000ull, 123456789ull, 1ull << 40})
    CAF_CHECK(histogram::upper_edge(histogram::index_of(v)) >= v);
  histogram a, b;
  a.add(10);
  b.add(20);
  b.add(30);
  a.merge(b);
  CAF_CHECK_EQUAL(a.count(), 3u);
  CAF_CHECK_EQUAL(a.max(), 30u);
  CAF_CHECK_EQUAL(a.quantile(0.5), 20u);
}

CAF_TEST(receipts count duplicates and reorders exactly) {
  receipts r;
  CAF_CHECK(r.add(0));
  CAF_CHECK(r.add(1));
  CAF_CHECK(r.add(5));
  CAF_CHECK(r.add(3));      // below 5: reordered
  CAF_CHECK(!r.add(1));     // again: duplicate
  CAF_CHECK(r.add(1000));   // grows
  CAF_CHECK_EQUAL(r.unique(), 5u);
  CAF_CHECK_EQUAL(r.duplicates(), 1u);
  CAF_CHECK_EQUAL(r.reordered(), 1u);
  CAF_CHECK(r.has(3));
  CAF_CHECK(!r.has(4));
}

CAF_TEST(publish requests carry the api key and the body length) {
  auto r = api_request("127.0.0.1:3000", "/api/v1/publish", "k3y", R"({"room":"bench:0"})");
  CAF_CHECK_EQUAL(r, "POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nAuthorization: apikey k3y\r\n"
                     "Content-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"room\":\"bench:0\"}");
}

CAF_TEST(http answers are read whole and in pieces and several per buffer) {
  std::string one = "HTTP/1.1 200 OK\r\ncontent-length: 11\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}";
  std::string two = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
  auto in = one + two;
  for (size_t k = 0; k < one.size(); ++k)
    CAF_CHECK_EQUAL(read_http_answer(std::string_view{in}.substr(0, k)).status, http_answer::need_more);
  auto a = read_http_answer(in);
  CAF_REQUIRE_EQUAL(a.status, http_answer::ok);
  CAF_CHECK_EQUAL(a.code, 200);
  CAF_CHECK_EQUAL(a.body, "{\"ok\":true}");
  CAF_CHECK_EQUAL(a.size, one.size());
  CAF_CHECK(!a.close);
  auto b = read_http_answer(std::string_view{in}.substr(a.size));
  CAF_REQUIRE_EQUAL(b.status, http_answer::ok);
  CAF_CHECK_EQUAL(b.code, 503);
  CAF_CHECK(b.close);
  CAF_CHECK_EQUAL(b.body, "{}");
  auto old = read_http_answer("HTTP/1.0 204 No Content\r\n\r\n");
  CAF_REQUIRE_EQUAL(old.status, http_answer::ok);
  CAF_CHECK(old.close);
  CAF_CHECK_EQUAL(old.body, "");
}

CAF_TEST(http answers the client cannot read are errors) {
  CAF_CHECK_EQUAL(read_http_answer("SSH-2.0-x\r\n\r\n").status, http_answer::bad);
  CAF_CHECK_EQUAL(read_http_answer("HTTP/1.1 2x0 OK\r\n\r\n").error, "bad status code");
  CAF_CHECK_EQUAL(read_http_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").error,
                  "chunked answers are not read");
  CAF_CHECK_EQUAL(read_http_answer("HTTP/1.1 200 OK\r\n\r\n").error, "answer without Content-Length");
  CAF_CHECK_EQUAL(read_http_answer("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").error, "bad Content-Length");
  CAF_CHECK_EQUAL(read_http_answer(std::string(20000, 'x')).status, http_answer::bad);
}

CAF_TEST(the json fields the scenarios read) {
  std::string_view ack = R"({"ok":true,"id":"0123456789abcdef0123456789abcdef","offset":"17"})";
  CAF_CHECK_EQUAL(json_string(ack, "id").value_or(""), "0123456789abcdef0123456789abcdef");
  CAF_CHECK_EQUAL(json_string(ack, "offset").value_or(""), "17");
  CAF_CHECK(!json_string(ack, "ok").has_value());  // not a string
  CAF_CHECK(!json_string(ack, "sid").has_value());
  // A key's text as a value is not the key.
  CAF_CHECK_EQUAL(json_string(R"({"a":"sid","sid" : "x1"})", "sid").value_or(""), "x1");
  CAF_CHECK(!json_string(R"({"sid":"a\"b"})", "sid").has_value());
  CAF_CHECK_EQUAL(json_uint(R"(2["bench",{"seq":42},"9"])", "seq").value_or(0), 42u);
  CAF_CHECK(!json_uint(R"({"seq":"42"})", "seq").has_value());
  CAF_CHECK_EQUAL(decimal("18446744073709551").value_or(0), 18446744073709551u);
  CAF_CHECK(!decimal("").has_value());
  CAF_CHECK(!decimal("12a").has_value());
  CAF_CHECK(!decimal("12345678901234567890").has_value());
  CAF_CHECK_EQUAL(last_string_arg(R"(2["bench",{"seq":1},"170"])"), "170");
  CAF_CHECK_EQUAL(last_string_arg(R"(2["bench",{"seq":1},"MzXa.3"])"), "MzXa.3");
  CAF_CHECK_EQUAL(last_string_arg(R"(2["bench",{"seq":1}])"), "");
  CAF_CHECK_EQUAL(last_string_arg(R"(2["bench"])"), "");
}
