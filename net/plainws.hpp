// Plain WebSocket + JSON endpoints, on the same port as Socket.IO:
//
//   /ws?token=JWT                              a subscribe socket (seed 002):
//       {"type":"subscribe","conversationId":"c1"} → member of conversation:c1
//   /ws/dialogs/{id}?token=JWT                 a dialog's admin panel (seed 003)
//   /ws/site/dialogs/{id}?site_token=T         a site      } of room dialog:{id}
//   /ws/widget/dialogs/{id}?assistant_id=A     a widget    }
//
// The front door checks the request and its credential (a JWT as for
// Socket.IO; site tokens and assistant ids from static lists, or asked of the
// backend at parley.plainws.validate-url, answers cached), enforces the
// connection limits, then upgrades: the connection gets an eio::session in
// plain mode (WebSocket ping/pong heartbeat, no Engine.IO framing), an
// sio::socket whose namespace names its wire flavour (net/plain_wire.hpp) and
// a plain_connection actor (actors/plain_connection.hpp), which joins the
// rooms. Everything here runs on the I/O thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "actors/plain_connection.hpp"
#include "actors/runtime.hpp"
#include "net/engineio_server.hpp"
#include "net/http_session.hpp"

namespace parley::plainws {

using namespace parley::net;

// A dialog id: 1 to 128 characters of [A-Za-z0-9_.:-] (the endpoints' paths
// and the dialogs API share it).
bool valid_dialog_id(std::string_view id);

class front {
public:
  front(asio::io_context& ioc, runtime_ptr rt);

  // A request whose path is /ws or starts with /ws/.
  void handle(const std::shared_ptr<http_session>& hs, request&& req);

  // Closes every plain connection (shutdown): 1001.
  void close_all() { server_.close_all(); }

  // I/O thread: a dialog connection opened / closed.
  void opened(const std::string& dialog);
  void closed(const std::string& dialog);

private:
  // Site tokens and assistant ids: admitted by the static lists, else by
  // validate-url; `done(allowed, why-not-checked)` on the I/O thread (`why`
  // is empty for a decision, else why there is none).
  using verdict = std::function<void(bool allowed, const std::string& why)>;
  void check_credential(const std::string& mode, const std::string& credential, const std::string& dialog,
                        verdict done);
  void admit(const std::shared_ptr<http_session>& hs, request&& req, plain_request pr);
  void refuse(const std::shared_ptr<http_session>& hs, const request& req, int status, std::string_view code,
              std::string message);
  // Tells everyone waiting for the check of `key`, once.
  void answer(const std::string& key, bool allowed, const std::string& why);

  static constexpr size_t max_credential = 512;        // longer: refused without asking
  static constexpr size_t max_checks_in_flight = 256;  // more at once: "could not be checked"
  static constexpr size_t max_decisions = 20000;       // answers kept

  asio::io_context& ioc_;
  runtime_ptr rt_;
  eio::server server_;
  std::unordered_map<std::string, uint32_t> per_dialog_; // open connections per dialog
  struct decision {
    bool allowed;
    std::chrono::steady_clock::time_point until;
  };
  std::unordered_map<std::string, decision> decided_;       // (mode, credential, dialog) → answer
  std::unordered_map<std::string, std::vector<verdict>> asking_; // checks in flight, shared
};

} // namespace parley::plainws
