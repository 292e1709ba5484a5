// Accepts TCP connections and gives each to an http_session; routes requests
// by path prefix.
#pragma once

#include <functional>

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "net/http_session.hpp"

namespace parley::net {

class path_router : public router {
public:
  using handler = std::function<void(const std::shared_ptr<http_session>&, request&&)>;

  // Requests whose path starts with `prefix` go to `h`; first match wins.
  void add(std::string prefix, handler h);
  void handle(const std::shared_ptr<http_session>& session, request&& req) override;

private:
  std::vector<std::pair<std::string, handler>> routes_;
};

// Runs the io_context until it stops. An exception escaping a handler (it
// should not happen: e.g. out of memory) is logged and the loop goes on, so
// that one connection's failure does not end the process.
void run_guarded(asio::io_context& ioc);

// The path of a request target, without the query.
std::string_view target_path(std::string_view target);

class listener : public std::enable_shared_from_this<listener> {
public:
  listener(asio::io_context& ioc, std::shared_ptr<router> r, uint64_t body_limit);

  // Binds and starts accepting; returns the bound port, or an error text.
  std::variant<uint16_t, std::string> start(const std::string& address, uint16_t port);
  void stop();

private:
  void do_accept();

  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  std::shared_ptr<router> router_;
  uint64_t body_limit_;
  // After a failed accept (e.g. out of descriptors) accepting pauses a little
  // instead of spinning; the failure is logged once per run of them.
  asio::steady_timer pause_;
  uint64_t failed_in_a_row_ = 0;
};

} // namespace parley::net
