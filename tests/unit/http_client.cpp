#define CAF_SUITE http_client
#include <caf/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "net/http_client.hpp"

using namespace parley;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Fetches GET / from a server on 127.0.0.1 that answers one request with the
// raw bytes of `response`, and returns what http_fetch made of it.
net::http_result fetch_raw(std::string response) {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint{asio::ip::address_v4::loopback(), 0}};
  auto port = acceptor.local_endpoint().port();
  auto peer = std::make_shared<tcp::socket>(ioc);
  auto request = std::make_shared<asio::streambuf>();
  acceptor.async_accept(*peer, [&, peer, request](boost::system::error_code ec) {
    CAF_REQUIRE(!ec);
    asio::async_read_until(*peer, *request, "\r\n\r\n", [&, peer, request](boost::system::error_code ec, size_t) {
      CAF_REQUIRE(!ec);
      asio::async_write(*peer, asio::buffer(response), [peer](boost::system::error_code, size_t) {
        boost::system::error_code ignored;
        peer->shutdown(tcp::socket::shutdown_send, ignored);
      });
    });
  });
  net::http_call call;
  call.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  call.timeout = std::chrono::milliseconds{5000};
  std::optional<net::http_result> got;
  net::http_fetch(ioc, std::move(call), [&](net::http_result r) {
    got = std::move(r);
    ioc.stop();
  });
  ioc.run_for(std::chrono::seconds{10});
  CAF_REQUIRE(got.has_value());
  return std::move(*got);
}

using strings = std::vector<std::string>;

} // namespace

CAF_TEST(every Set-Cookie header is kept in order when other headers come between) {
  auto r = fetch_raw("HTTP/1.1 200 OK\r\n"
                     "Set-Cookie: a=1\r\n"
                     "Content-Type: text/plain\r\n"
                     "Set-Cookie: b=2\r\n"
                     "Content-Length: 2\r\n"
                     "Connection: close\r\n"
                     "\r\n"
                     "ok");
  CAF_CHECK_EQUAL(r.error, "");
  CAF_CHECK_EQUAL(r.status, 200);
  CAF_CHECK_EQUAL(r.body, "ok");
  CAF_CHECK_EQUAL(r.set_cookies, (strings{"a=1", "b=2"}));
  CAF_CHECK_EQUAL(net::merge_cookies("b=0; c=3", r.set_cookies), "b=2; c=3; a=1");
}

CAF_TEST(set-cookie headers in any case among others) {
  auto r = fetch_raw("HTTP/1.1 200 OK\r\n"
                     "Cache-Control: no-store\r\n"
                     "set-cookie: tld-token=t1; Path=/; HttpOnly\r\n"
                     "X-One: 1\r\n"
                     "X-Two: 2\r\n"
                     "SET-COOKIE: tld-user=7; Path=/\r\n"
                     "Content-Length: 0\r\n"
                     "Set-Cookie: tld-token=t2\r\n"
                     "Connection: close\r\n"
                     "\r\n");
  CAF_CHECK_EQUAL(r.status, 200);
  CAF_CHECK_EQUAL(r.set_cookies, (strings{"tld-token=t1; Path=/; HttpOnly", "tld-user=7; Path=/", "tld-token=t2"}));
  CAF_CHECK_EQUAL(net::merge_cookies("", r.set_cookies), "tld-token=t2; tld-user=7");
}

CAF_TEST(no Set-Cookie header gives no cookies) {
  auto r = fetch_raw("HTTP/1.1 204 No Content\r\nX-One: 1\r\nConnection: close\r\n\r\n");
  CAF_CHECK_EQUAL(r.status, 204);
  CAF_CHECK_EQUAL(r.set_cookies, strings{});
}
