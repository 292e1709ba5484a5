#include "net/listener.hpp"

#include <variant>

#include <spdlog/spdlog.h>

namespace parley::net {

void path_router::add(std::string prefix, handler h) {
  routes_.emplace_back(std::move(prefix), std::move(h));
}

std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find('?'));
}

void path_router::handle(const std::shared_ptr<http_session>& session, request&& req) {
  if (req.method() == http::verb::unknown) {
    // RFC 9110 §15.6.2: a method the server does not know.
    spdlog::info("http {}: unknown method {}", session->remote().address().to_string(),
                 std::string_view{req.method_string()}.substr(0, 32));
    std::string method{req.method_string().substr(0, 32)};
    session->reply(json_error(req, http::status::not_implemented, "not_implemented",
                              "Method " + method + " is not implemented"));
    return;
  }
  auto path = target_path(req.target());
  for (auto& [prefix, h] : routes_) {
    if (path.compare(0, prefix.size(), prefix) == 0) {
      h(session, std::move(req));
      return;
    }
  }
  auto res = json_error(req, http::status::not_found, "not_found",
                        "No route for " + std::string{path});
  session->reply(std::move(res));
}

void run_guarded(asio::io_context& ioc) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      // The handler that threw is gone, and with it what only it held (for
      // a connection being read, its socket); every other one goes on.
      spdlog::error("an I/O handler failed: {}", e.what());
    }
  }
}

listener::listener(asio::io_context& ioc, std::shared_ptr<router> r, uint64_t body_limit)
  : ioc_(ioc), acceptor_(ioc), router_(std::move(r)), body_limit_(body_limit), pause_(ioc) {
}

std::variant<uint16_t, std::string> listener::start(const std::string& address, uint16_t port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec)
    return "invalid listen address " + address + ": " + ec.message();
  tcp::endpoint ep{addr, port};
  acceptor_.open(ep.protocol(), ec);
  if (!ec)
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor_.bind(ep, ec);
  if (!ec)
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message();
  do_accept();
  return acceptor_.local_endpoint().port();
}

void listener::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
  pause_.cancel();
}

void listener::do_accept() {
  acceptor_.async_accept(ioc_, [self = shared_from_this()](beast::error_code ec, tcp::socket sock) {
    if (ec == asio::error::operation_aborted || !self->acceptor_.is_open())
      return;
    if (ec) {
      if (self->failed_in_a_row_++ == 0)
        spdlog::warn("accept failed: {} (pausing accepts for 50 ms at a time until it works)", ec.message());
      self->pause_.expires_after(std::chrono::milliseconds(50));
      self->pause_.async_wait([self](beast::error_code wec) {
        if (!wec && self->acceptor_.is_open())
          self->do_accept();
      });
      return;
    }
    if (self->failed_in_a_row_ > 0) {
      spdlog::info("accepting again after {} failed accepts", self->failed_in_a_row_);
      self->failed_in_a_row_ = 0;
    }
    sock.set_option(tcp::no_delay(true), ec);
    std::make_shared<http_session>(std::move(sock), self->router_, self->body_limit_)->run();
    self->do_accept();
  });
}

} // namespace parley::net
