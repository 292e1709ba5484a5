#include "net/http_session.hpp"

#include <algorithm>
#include <chrono>

#include <boost/asio/dispatch.hpp>
#include <spdlog/spdlog.h>

#include "net/socketio_packet.hpp"

namespace parley::net {

namespace {
constexpr auto idle_timeout = std::chrono::seconds(60);
}

response make_response(const request& req, http::status status, std::string body,
                       std::string_view content_type) {
  response res{status, req.version()};
  res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response json_error(const request& req, http::status status, std::string_view code,
                    std::string_view message) {
  std::string body = "{\"error\":{\"code\":";
  sio::append_json_string(body, code);
  body += ",\"message\":";
  sio::append_json_string(body, message);
  body += "}}";
  return make_response(req, status, std::move(body), "application/json");
}

bool origin_allowed(const std::vector<std::string>& patterns, std::string_view origin) {
  for (auto& p : patterns) {
    if (p == "*" || p == origin)
      return true;
    if (p.size() > 2 && p.compare(p.size() - 2, 2, ":*") == 0) {
      std::string_view host{p.data(), p.size() - 2}; // "http://localhost"
      if (origin == host)
        return true;
      if (origin.size() > host.size() + 1 && origin.compare(0, host.size(), host) == 0 && origin[host.size()] == ':'
          && std::all_of(origin.begin() + static_cast<std::ptrdiff_t>(host.size()) + 1, origin.end(),
                         [](char c) { return c >= '0' && c <= '9'; }))
        return true;
    }
  }
  return false;
}

http_session::http_session(tcp::socket socket, std::shared_ptr<router> r, uint64_t body_limit)
  : stream_(std::move(socket)), buffer_(read_buffer_limit), router_(std::move(r)), body_limit_(body_limit) {
}

void http_session::run() {
  do_read();
}

tcp::endpoint http_session::remote() const {
  beast::error_code ec;
  return stream_.socket().remote_endpoint(ec);
}

void http_session::do_read() {
  if (reading_ || closed_ || upgraded_)
    return;
  reading_ = true;
  parser_.emplace();
  parser_->body_limit(body_limit_);
  parser_->header_limit(header_limit);
  if (awaiting_reply_)
    stream_.expires_never(); // only watching for the client going away
  else
    stream_.expires_after(idle_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

namespace {

// The answer to a request that could not be parsed, or null when the error is
// the connection's (closed, reset, timed out): then there is nobody to tell.
std::optional<response> refusal(beast::error_code ec) {
  if (ec.category() != http::make_error_code(http::error::end_of_stream).category()
      || ec == http::error::end_of_stream || ec == http::error::partial_message)
    return std::nullopt;
  request head;
  head.version(11);
  if (ec == http::error::body_limit) // as Node's engine.io answers it
    return make_response(head, http::status::payload_too_large, R"({"code":3,"message":"Bad request"})",
                         "application/json");
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return json_error(head, http::status::request_header_fields_too_large, "header_too_large",
                      "The request's header fields (or a chunked body's trailer fields) exceed "
                        + std::to_string(header_limit) + " bytes");
  return json_error(head, http::status::bad_request, "bad_request", "Malformed HTTP request: " + ec.message());
}

} // namespace

void http_session::on_read(beast::error_code ec, size_t) {
  reading_ = false;
  if (upgraded_)
    return;
  if (ec) {
    auto res = refusal(ec);
    if (!res || awaiting_reply_ || out_) {
      // Nothing to tell, or a response is still owed for an earlier request:
      // the connection just ends.
      fail();
      return;
    }
    spdlog::info("http {}: {}, answering {}", remote().address().to_string(), ec.message(),
                 static_cast<unsigned>(res->result_int()));
    res->keep_alive(false);
    backlog_.clear();
    out_.emplace(std::move(*res));
    do_write();
    return;
  }
  auto req = parser_->release();
  if (awaiting_reply_ || out_) {
    // Reading resumes only once this one is dispatched: at most one waits.
    backlog_.push_back(std::move(req));
    return;
  }
  dispatch(std::move(req));
}

void http_session::dispatch(request&& req) {
  awaiting_reply_ = true;
  bool upgrade = websocket::is_upgrade(req);
  router_->handle(shared_from_this(), std::move(req));
  // Keep reading while the answer is pending: that is how an aborted poll is seen.
  if (awaiting_reply_ && !upgraded_ && !upgrade && !out_)
    do_read();
}

void http_session::reply(response&& res) {
  if (closed_ || upgraded_)
    return;
  awaiting_reply_ = false;
  abort_handler_ = nullptr;
  out_.emplace(std::move(res));
  do_write();
}

void http_session::do_write() {
  bool keep_alive = out_->keep_alive();
  http::async_write(stream_, *out_,
                    beast::bind_front_handler(&http_session::on_write, shared_from_this(),
                                              keep_alive));
}

void http_session::on_write(bool keep_alive, beast::error_code ec, size_t) {
  out_.reset();
  if (ec) {
    fail();
    return;
  }
  if (!keep_alive) {
    closed_ = true;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (reading_) {
      stream_.close();
      return;
    }
    // What the client is still sending (the rest of a refused request) is
    // read and dropped until it closes, so that closing does not reset the
    // connection before the client has read the answer (RFC 9112 §9.6).
    linger();
    return;
  }
  if (!backlog_.empty()) {
    auto next = std::move(backlog_.front());
    backlog_.pop_front();
    dispatch(std::move(next));
    return;
  }
  do_read();
}

void http_session::linger() {
  stream_.expires_after(std::chrono::seconds(2));
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(buffer_.max_size()),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) {
                              self->stream_.close();
                              return;
                            }
                            self->linger();
                          });
}

void http_session::fail() {
  if (closed_)
    return;
  closed_ = true;
  if (awaiting_reply_ && abort_handler_) {
    auto f = std::move(abort_handler_);
    abort_handler_ = nullptr;
    f();
  }
  beast::error_code ec;
  stream_.socket().close(ec);
}

ws_stream http_session::take_websocket() {
  upgraded_ = true;
  awaiting_reply_ = false;
  stream_.expires_never();
  return ws_stream{std::move(stream_)};
}

tcp::socket http_session::take_socket() {
  upgraded_ = true;
  awaiting_reply_ = false;
  stream_.expires_never();
  return stream_.release_socket();
}

} // namespace parley::net
