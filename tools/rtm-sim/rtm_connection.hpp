// One client of the simulated RTM service: an accepted /rtm WebSocket speaking
// the Centrifugo JSON client protocol.
//
//   client → {"connect":{"name":"js","version":"1.0"},"id":1}
//   sim    → {"id":1,"connect":{"client":"<uuid>","version":"rtm-sim 1.0","ping":25,"pong":true}}
//   sim    → {}                      (ping; the client answers {} as its pong)
//   sim    → {"push":{"channel":"personal:<profile>","pub":{"data":{...}}}}
//
// A message may carry several frames separated by '\n'. Only after the connect
// reply is the connection subscribed to its profile's pushes. Outgoing messages
// queue up and are written in order; a close waits for what is queued before it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "net/http_session.hpp"

namespace parley::rtmsim {

namespace beast = net::beast;
namespace websocket = net::websocket;

class rtm_service;

using message_ptr = std::shared_ptr<const std::string>;

class rtm_connection : public std::enable_shared_from_this<rtm_connection> {
public:
  rtm_connection(rtm_service& service, std::shared_ptr<net::ws_stream> ws, std::string profile_id);

  void start();

  const std::string& profile_id() const { return profile_id_; }
  // Not yet told to close or gone.
  bool open() const { return !closing_; }
  // Open and past the connect handshake: receives pings and pushes.
  bool subscribed() const { return subscribed_ && !closing_; }

  // Queues one WebSocket text message.
  void send(message_ptr message);
  // Sends a close frame with this code and reason once the queue is written.
  void close(uint16_t code, std::string_view reason);
  // Closes the TCP socket at once, without a close frame.
  void abort();

private:
  void do_read();
  void on_read(beast::error_code ec, size_t bytes);
  // One '\n'-separated frame of a client message; false when the connection closes.
  bool on_frame(std::string_view frame);
  void do_write();
  void on_write(beast::error_code ec, size_t bytes);
  void do_close();
  // Called once, when the connection stops counting as open.
  void leave();
  // Called once, when the socket is done with.
  void finish();

  rtm_service& service_;
  std::shared_ptr<net::ws_stream> ws_;
  std::string profile_id_;
  beast::flat_buffer buffer_;
  std::deque<message_ptr> queue_;
  std::optional<websocket::close_reason> pending_close_;
  bool writing_ = false;
  bool subscribed_ = false;
  bool closing_ = false;
  bool left_ = false;
  bool finished_ = false;
};

} // namespace parley::rtmsim
