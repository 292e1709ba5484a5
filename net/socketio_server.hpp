// Socket.IO v5 on top of an Engine.IO session: decodes packets, reassembles
// binary attachments, multiplexes namespaces, enforces the connect timeout,
// and hands each namespace socket to the application (Parley's gateway, or the
// conformance fixture).
#pragma once

#include <functional>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include <boost/asio/steady_timer.hpp>

#include "net/engineio_server.hpp"
#include "net/socketio_packet.hpp"

namespace parley::sio {

class socket;
class client;

// The application above Socket.IO.
class app {
public:
  virtual ~app() = default;
  virtual bool has_namespace(std::string_view nsp) const = 0;
  // A CONNECT to a known namespace. The app answers with s->accept() or
  // s->refuse(message), now or later, from any thread.
  virtual void on_connect(const std::shared_ptr<socket>& s, packet&& connect) = 0;
};

// One namespace socket. The app sets the two callbacks (they run on the I/O
// thread); every other member may be called from any thread.
class socket : public std::enable_shared_from_this<socket> {
public:
  socket(const std::shared_ptr<eio::session>& s, client& c, std::string nsp, std::string sid);
  // A plain WebSocket connection as a room member (net/plainws.hpp): no
  // Socket.IO client; `flavour` (in place of a namespace) names the form of
  // what it is sent. Accepted from the start (there is no CONNECT).
  socket(const std::shared_ptr<eio::session>& s, std::string flavour, std::string sid);
  ~socket();

  const std::string& nsp() const { return nsp_; }
  const std::string& sid() const { return sid_; }
  // The Engine.IO handshake; stable for the socket's life.
  const eio::handshake& handshake() const { return handshake_; }

  std::function<void(packet&&)> on_packet;
  // The socket closed. Also called with `token_expired` while it is still
  // open, when the expiry set by set_expiry() passes: the app then says why
  // and disconnects it.
  std::function<void(std::string_view reason)> on_close;
  static constexpr std::string_view token_expired = "token expired";

  void accept();
  void refuse(std::string message);
  void send(eio::frame f);
  void send(std::vector<eio::frame> fs);
  // Server-side disconnect of this namespace (DISCONNECT packet).
  void disconnect();
  // Closes the whole Engine.IO session (e.g. a fatal protocol error).
  void close_session(std::string reason);
  // A plain WebSocket: closes it with this close code and reason.
  void close_session(std::string reason, uint16_t code);

  // I/O thread only: queues a frame if the socket is connected.
  // Nothing before the CONNECT answer: a socket joins rooms (its namespace's,
  // its profiles') before it is accepted, and as with Node's socket.io it
  // hears of them only once it is connected. While held (recovery), frames
  // are kept with their offsets (0: not a stored event) until release().
  void deliver(const eio::frame& f, uint64_t offset = 0) {
    if (!open_)
      return;
    if (held_)
      hold_frame(f, offset);
    else if (accepted_)
      raw_->send(f);
  }

  // Connection-state recovery. I/O thread only: from now on, fan-outs to the
  // socket are held instead of dropped or sent.
  void hold() {
    if (!held_) {
      held_ = std::make_unique<std::vector<std::pair<eio::frame, uint64_t>>>();
      held_bytes_ = 0;
    }
  }
  // Any thread (after what it sent before, e.g. the replayed events): sends
  // the held frames with an offset above `head` (what the replay already
  // covered) or without one, in order, and delivers directly again.
  void release(uint64_t head);
  // The same after a replay of some rooms only: the held frames whose
  // offsets the replay sent (`sent`, ascending) are dropped, every other one
  // goes out.
  void release(std::shared_ptr<const std::vector<uint64_t>> sent);
  // The socket's old id and its private session id, for a recovered session
  // (the CONNECT answer is {sid, pid}). Set before accept() and before the
  // socket joins any room, then fixed.
  void set_sid(std::string sid) { sid_ = std::move(sid); }
  void set_pid(std::string pid) { pid_ = std::move(pid); }
  // Inbound backpressure (eio::inbound_gauge): whoever hands a packet from
  // on_packet to a consumer calls packet_in() (I/O thread), the consumer
  // packet_done() once finished with it (any thread). Packets never finished
  // (the consumer stopped) are given back when the socket is destroyed.
  void packet_in() {
    if (inbound_) {
      pending_.fetch_add(1, std::memory_order_relaxed);
      inbound_->add();
    }
  }
  void packet_done() {
    if (inbound_) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      inbound_->done();
    }
  }

  // When the socket's credentials expire (unix ms; set before accept(), then
  // fixed). Checked on the I/O thread at every heartbeat; within a ping
  // interval of it a timer fires on time.
  void set_expiry(int64_t unix_ms) { expires_ms_ = unix_ms; }
  // I/O thread only: arms the timer when the expiry is within `horizon`,
  // tells the app (on_close(token_expired)) when it has passed.
  void check_expiry(std::chrono::milliseconds horizon);

  // The user the application authenticated (set before accept(), then fixed).
  void set_user(std::string user) { user_ = std::move(user); }
  const std::string& user() const { return user_; }

  // Server→client acknowledgements. I/O thread only: registers what to call
  // when the client answers the event sent with `id`; false (and nothing
  // registered) when the socket is closed or not yet
  // accepted (its CONNECT answer not yet sent). The callback gets the ACK's
  // arguments as a JSON array, or nothing when the socket closes first.
  using ack_callback = std::function<void(std::optional<std::string> args_json)>;
  bool expect_ack(uint64_t id, ack_callback cb);

  boost::asio::io_context& context() const { return ctx_; }

private:
  friend class client;
  std::weak_ptr<eio::session> session_;
  eio::session* raw_;         // valid while open_
  boost::asio::io_context& ctx_;
  client* client_;   // valid while the session is open
  bool open_ = true; // I/O thread only
  std::string nsp_;
  std::string sid_;
  std::string pid_; // for the CONNECT answer ({sid} only when empty), then freed
  std::string user_;
  std::unique_ptr<std::vector<std::pair<eio::frame, uint64_t>>> held_; // I/O thread only
  uint64_t held_bytes_ = 0;
  const eio::handshake& handshake_;
  bool accepted_ = false;
  std::vector<std::pair<uint64_t, ack_callback>> acks_; // I/O thread only
  int64_t expires_ms_ = 0;                 // 0: never
  std::unique_ptr<boost::asio::steady_timer> expiry_timer_; // only within a ping interval of it
  std::atomic<uint32_t> pending_{0};       // packets handed up, not yet done
  std::shared_ptr<eio::inbound_gauge> inbound_;

  // I/O thread only: keeps a frame while held; past the write-queue limit the
  // client is dropped as too slow (what it would have been sent no longer fits).
  void hold_frame(const eio::frame& f, uint64_t offset);
  // I/O thread only: true when the ACK answered an event of ours.
  bool take_ack(packet& p);

public:
  // I/O thread only: the socket is gone; pending acks learn it.
  void mark_closed();
};

// The Engine.IO session handler that speaks Socket.IO.
class client : public eio::session_handler {
public:
  client(app& a, std::chrono::milliseconds connect_timeout);
  ~client() override;

  void on_open(eio::session& s) override;
  void on_ping(eio::session& s) override;
  void on_message(eio::session& s, eio::packet&& p) override;
  void on_close(eio::session& s, std::string_view reason) override;

private:
  friend class socket;
  void dispatch(eio::session& s, packet&& p);
  void fail(eio::session& s, std::string_view why);

  app& app_;
  std::chrono::milliseconds connect_timeout_;
  std::map<std::string, std::shared_ptr<socket>, std::less<>> sockets_;
  std::unique_ptr<packet> pending_;  // a binary packet waiting for its attachments
  std::unique_ptr<boost::asio::steady_timer> connect_timer_;
  bool ever_connected_ = false;
};

std::string new_socket_id();

// Ids of server→client events that ask for an ack. One process-wide sequence
// (as Node's namespace-wide one), so one encoded frame can carry the same id
// to every receiver of a fan-out.
uint64_t next_ack_id();

// Fan-out: one hop onto the I/O thread for a whole list of receivers, which
// all get the same frame; `except` (may be null) is skipped.
using socket_list = std::vector<std::shared_ptr<socket>>;

// The sockets one publish to several rooms has reached (Socket.IO's
// `to([a, b])`): every room's fan-out of it carries the same set, so a socket
// in several of the rooms gets it once. Touched on the I/O thread only; it
// goes away with the last fan-out that refers to it.
using delivered_set = std::unordered_set<const socket*>;
using delivered_ptr = std::shared_ptr<delivered_set>;

// `once` (may be null): the publish's delivered set when it goes to several rooms.
// `offset`: the record's, for a stored event (sockets being recovered hold it).
void deliver(const std::shared_ptr<const socket_list>& targets, eio::frame f,
             std::shared_ptr<socket> except, delivered_ptr once = nullptr, uint64_t offset = 0);
// The same for a packet with binary attachments (text frame first).
void deliver(const std::shared_ptr<const socket_list>& targets, std::vector<eio::frame> fs,
             std::shared_ptr<socket> except);

} // namespace parley::sio
