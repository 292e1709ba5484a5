// The load generator's event loop: many client connections in one thread over
// epoll, each speaking WebSocket + Engine.IO v4 + Socket.IO v5 itself
// (upgrade, `0{...}` open, `40{auth}` connect, `40{"sid"}`, pings answered,
// events and acks handed to the scenario), or plain WebSocket where the
// scenario names a target for the upgrade (ready at the 101, text messages
// handed to the scenario as they are). Level-triggered; a connection's
// outgoing bytes are written at once and only queued when the socket is full.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/loadgen/wire.hpp"

namespace loadgen {

uint64_t now_ns();  // CLOCK_MONOTONIC, the same clock in every process

struct options {
  std::string scenario;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/socket.io/";
  std::string secret = "bench-secret";
  int server_pid = 0;
  // fanout / chat
  size_t rooms = 1;
  size_t members = 1000;   // receivers per room (fanout); members per room (chat)
  double rate = 0;         // messages per second, fixed-rate mode (0: fixed in-flight)
  size_t inflight = 16;    // messages outstanding in fixed in-flight mode
  size_t size = 0;         // pad the message text to this many characters
  bool typing = false;     // chat: typing:start before every message
  size_t stuck = 0;        // fanout: members that stop reading after joining
  size_t flood = 0;        // fanout: one more connection writes this many events at once when the window opens
  double warmup = 1;
  double duration = 5;
  // connect / idle / reconnect / presence
  size_t count = 1000;
  size_t concurrency = 256;
  size_t procs = 0;        // 0: as many as the open-file limit needs
  double settle = 3;
  size_t observers = 1000;
  size_t churners = 32;
  // publish / replay (the backend API)
  std::string api_key;
  size_t connections = 0;  // HTTP connections; 0: the scenario's default
  size_t runs = 1;         // replay: measured runs
  bool no_offsets = false; // publish: the server answers {"ok":true} only (the peer)
  // everything
  double timeout = 120;    // hard bound on a run, seconds
  int sources = 50;        // source addresses 127.0.0.2 …
  bool verbose = false;
};

// A non-blocking TCP socket to o.host:o.port, its connect under way, from the
// source address for connection i (127.0.0.2 … as --sources says); -1 and why if not.
int connect_socket(const options& o, size_t i, std::string& why);

// Writes what `out` holds beyond `sent` to a non-blocking socket, as much as
// it takes. Written output goes once all of it is, or once it is most of a
// large buffer (not a move of the whole rest per partial write). 0, or the
// errno of a failed send.
int write_pending(int fd, std::string& out, size_t& sent);

class scenario;
struct epoll_event_list;

struct conn {
  int fd = -1;
  enum state_t : uint8_t { closed, connecting, upgrading, opening, joining_nsp, ready } st = closed;
  bool reading = true;
  bool out_armed = false;
  bool plain = false;  // plain WebSocket: no Engine.IO / Socket.IO
  uint32_t next_ack = 1;
  uint64_t t0 = 0;  // when this connection attempt began
  std::string in;
  std::string out;
  size_t out_sent = 0; // bytes of `out` already written
  std::unique_ptr<receipts> rec;
};

class engine {
public:
  engine(const options& o, scenario& s, size_t n);
  ~engine();

  size_t size() const { return conns_.size(); }
  conn& at(size_t i) { return conns_[i]; }

  // Connects conns[i] now (returns false when the socket could not be made).
  bool open(size_t i);
  // Queues connections to open, at most `cap` in their handshakes at once.
  void ramp(size_t first, size_t last, size_t cap);
  size_t handshaking() const { return handshaking_; }
  size_t queued() const { return ramp_queue_.size(); }
  void close(size_t i);
  void stop_reading(size_t i);

  // Sends a Socket.IO packet text (e.g. `2["x",{}]`) as one Engine.IO message (`4…`) frame.
  void send(size_t i, std::string_view sio_packet);
  // Sends a text frame as it is (plain WebSocket connections).
  void send_text(size_t i, std::string_view text);
  // The same packet `count` times as client frames, framed ahead of time
  // (frames()), then written in one go (send_frames()): a burst the generator
  // itself does not slow down with framing or a write per frame.
  static std::string frames(std::string_view sio_packet, size_t count);
  void send_frames(size_t i, std::string&& framed);
  // Sends the event `2<id>[...]` with the next ack id; returns the id.
  uint32_t send_with_ack(size_t i, std::string_view event_array);

  // Watches another descriptor; `tag` comes back through scenario::on_fd.
  void watch(int fd, uint64_t tag);
  // One epoll round; waits at most timeout_ms.
  void poll(int timeout_ms);
  // The same with a nanosecond bound (epoll_pwait2), for fixed-rate sending.
  void poll_ns(uint64_t timeout_ns);

  uint64_t connect_failures = 0, protocol_errors = 0;

private:
  void dispatch(epoll_event_list& evs, int n);
  void on_ready_io(size_t i, uint32_t events);
  // Appends one client frame to the connection's output and writes it now
  // unless earlier output is still waiting for the socket.
  void queue(size_t i, std::string_view payload, uint8_t op = 1);
  void flush(size_t i);
  void consume(size_t i);
  bool handle_frame(size_t i, const frame& f);
  void handshake_over(size_t i);
  void fail(size_t i, const std::string& why);

  const options& o_;
  scenario& s_;
  int ep_ = -1;
  std::vector<conn> conns_;
  std::string host_port_;
  std::deque<size_t> ramp_queue_;
  size_t ramp_cap_ = 0;
  size_t handshaking_ = 0;
};

class scenario {
public:
  virtual ~scenario() = default;
  virtual std::string token(size_t i) = 0;
  // Plain WebSocket: the upgrade's request target (path and query) for
  // connection i; empty (the default): Engine.IO + Socket.IO at o.path.
  virtual std::string plain_target(size_t i) { return {}; }
  // A text message on a plain WebSocket connection.
  virtual void on_text(size_t i, std::string_view text) {}
  // The CONNECT auth object; called just before the CONNECT is written.
  virtual std::string auth(size_t i) { return "{\"token\":\"" + token(i) + "\"}"; }
  // The CONNECT answer (`0{"sid":…}`), just before on_connected.
  virtual void on_connect_answer(size_t i, std::string_view packet) {}
  // Socket.IO: the CONNECT was answered; plain WebSocket: the 101 came.
  virtual void on_connected(size_t i) {}
  virtual void on_connect_error(size_t i, std::string_view packet) {}
  virtual void on_event(size_t i, std::string_view name, std::string_view packet) {}
  virtual void on_ack(size_t i, uint32_t id, std::string_view packet) {}
  virtual void on_closed(size_t i, std::string_view why) {}
  virtual void on_fd(uint64_t tag) {}
  engine* eng = nullptr;
};

} // namespace loadgen
