// The HTTP API for backends (Authorization: apikey KEY), plus /health and
// /metrics, and the RTM profiles and status. Requests are parsed and validated here; the work is a message to
// the actors, and answers that need an actor's reply come back by message.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include <caf/actor.hpp>
#include <caf/message.hpp>

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
  // POST /api/v1/dialogs/{id}/messages (`message`) and /events.
  void dialog_publish(const std::shared_ptr<http_session>& hs, const request& req, const std::string& dialog,
                      bool message);
  void presence(const std::shared_ptr<http_session>& hs, const request& req, std::string user);
  // POST /api/v1/users/{userId}/join|leave|disconnect (`action`).
  void user_sockets(const std::shared_ptr<http_session>& hs, const request& req, std::string user,
                    std::string_view action);
  // GET /api/v1/rooms/{room}
  void room_members(const std::shared_ptr<http_session>& hs, const request& req, std::string room);
  void history(const std::shared_ptr<http_session>& hs, const request& req, std::string room);
  bool key_matches(std::string_view authorization) const;
  // The request's Origin when parley.cors.origins allows it, else "".
  std::string cors_origin(const request& req) const;
  void metrics(const std::shared_ptr<http_session>& hs, const request& req);
  void rtm_put(const std::shared_ptr<http_session>& hs, const request& req, std::string id);
  void rtm_delete(const std::shared_ptr<http_session>& hs, const request& req, std::string id);
  void rtm_status(const std::shared_ptr<http_session>& hs, const request& req);
  void kill(const std::shared_ptr<http_session>& hs, const request& req, const std::string& name);
  // Answers 409/503 and returns false unless RTM is on and its supervisor is up.
  bool rtm_ready(const std::shared_ptr<http_session>& hs, const request& req);
  caf::actor rtm_supervisor() const;
  // Sends `msg` to `to` and answers with make(request head, T& reply), or 503.
  template <class T, class Make>
  void ask(const std::shared_ptr<http_session>& hs, const request& req, caf::actor to, caf::message msg, Make make);

  asio::io_context& ioc_;
  runtime_ptr rt_;
};

} // namespace parley::net
