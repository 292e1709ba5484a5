// The HTTP API for backends (Authorization: apikey KEY), plus /health and
// /metrics. Requests are parsed and validated here; the work is a message to
// the actors, and answers that need an actor's reply come back by message.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "actors/runtime.hpp"
#include "net/http_session.hpp"

namespace parley::net {

class api {
public:
  api(asio::io_context& ioc, runtime_ptr rt);

  void handle(const std::shared_ptr<http_session>& hs, request&& req);

private:
  void publish(const std::shared_ptr<http_session>& hs, const request& req);
  void broadcast(const std::shared_ptr<http_session>& hs, const request& req);
  void presence(const std::shared_ptr<http_session>& hs, const request& req, std::string user);

  asio::io_context& ioc_;
  runtime_ptr rt_;
};

} // namespace parley::net
