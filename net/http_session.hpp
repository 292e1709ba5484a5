// One accepted TCP connection speaking HTTP/1.1: reads requests, hands each to
// the router, writes the responses in order. A handler may answer later (a
// long-polling GET waits for data); while it waits the session keeps reading,
// so a client that goes away is noticed at once. A WebSocket upgrade takes the
// socket out of the session.
//
// Runs on Parley's single I/O thread; nothing here is thread-safe by itself.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;
using ws_stream = websocket::stream<beast::tcp_stream>;

class http_session;

// What one request may make the server hold besides its body: the request
// line and header fields, and likewise the trailer fields of a chunked body.
// More is answered 431.
constexpr uint32_t header_limit = 16 * 1024;
// The read buffer's cap: unparsed input never exceeds a header block and one
// read's worth (a body is moved out of it as it is parsed).
constexpr size_t read_buffer_limit = header_limit + 4096;

// What a request handler is given: the request, and the means to answer it.
class router {
public:
  virtual ~router() = default;
  virtual void handle(const std::shared_ptr<http_session>& session, request&& req) = 0;
};

// Builds a response with the usual headers.
response make_response(const request& req, http::status status, std::string body,
                       std::string_view content_type);
// {"error":{"code":"...","message":"..."}}
response json_error(const request& req, http::status status, std::string_view code,
                    std::string_view message);

// Whether a browser Origin is allowed by parley.cors.origins: "*", an exact
// origin, or "scheme://host:*" (that host on any port, or none).
bool origin_allowed(const std::vector<std::string>& patterns, std::string_view origin);

class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(tcp::socket socket, std::shared_ptr<router> r, uint64_t body_limit);

  void run();

  // Answers the request the router is holding. Call exactly once per request.
  void reply(response&& res);

  // Called if the client disconnects while a response is pending.
  void on_abort(std::function<void()> f) { abort_handler_ = std::move(f); }

  // Takes the socket for a WebSocket; the session then ends.
  tcp::socket take_socket();
  // The same, wrapped in Beast's WebSocket stream (which answers the upgrade).
  ws_stream take_websocket();

  tcp::endpoint remote() const;

private:
  void do_read();
  void on_read(beast::error_code ec, size_t bytes);
  void dispatch(request&& req);
  void do_write();
  void on_write(bool keep_alive, beast::error_code ec, size_t bytes);
  void fail();
  void linger();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<router> router_;
  uint64_t body_limit_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<request> backlog_;       // pipelined requests waiting for their turn
  std::optional<response> out_;       // the response being written
  std::function<void()> abort_handler_;
  bool awaiting_reply_ = false;
  bool reading_ = false;
  bool upgraded_ = false;
  bool closed_ = false;
};

} // namespace parley::net
