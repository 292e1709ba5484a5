// Outbound HTTP and WebSocket clients (the RTM upstream, its login and profile
// API), on the I/O thread. http:// and ws:// over TCP, https:// and wss:// over
// TLS with the system's trusted roots and host-name verification.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace parley::net {

// An absolute http(s)/ws(s) URL, split for connecting.
struct endpoint_url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target; // path and query, at least "/"
};

// The URL, or an error text naming what is wrong.
std::variant<endpoint_url, std::string> parse_endpoint_url(std::string_view url);

struct http_result {
  int status = 0;                      // 0: no response (see error)
  std::string error;                   // transport failure, when status is 0
  std::string body;
  std::vector<std::string> set_cookies; // every Set-Cookie header, in order
};

struct http_call {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10000};
};

// Runs one request on `ioc`; `done` is called once on the I/O thread.
void http_fetch(boost::asio::io_context& ioc, http_call call, std::function<void(http_result)> done);

// Joins the name=value parts of Set-Cookie headers into one Cookie header,
// replacing same-named cookies of `jar` (attributes like Path are dropped).
std::string merge_cookies(const std::string& jar, const std::vector<std::string>& set_cookies);

// One outbound WebSocket. The callbacks run on the I/O thread; the methods may
// be called from any thread.
class ws_link {
public:
  struct callbacks {
    std::function<void()> on_open;
    std::function<void(std::string text)> on_text;
    // Once, at the end. `http_status` is the upgrade's answer when the server
    // refused it (401, 403, 503...), else 0; `reason` says what happened.
    std::function<void(int http_status, std::string reason)> on_close;
  };
  virtual ~ws_link() = default;
  virtual void send(std::string text) = 0;
  // Closes the connection (a close frame, then the socket); on_close follows.
  virtual void close() = 0;
};

std::shared_ptr<ws_link> ws_connect(boost::asio::io_context& ioc, const endpoint_url& url,
                                    std::vector<std::pair<std::string, std::string>> headers,
                                    std::chrono::milliseconds timeout, ws_link::callbacks cb);

} // namespace parley::net
