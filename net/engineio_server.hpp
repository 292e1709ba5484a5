// Engine.IO v4 server: handshakes, the sid registry, and one `session` per
// client with its transport (long-polling or WebSocket), the polling→WebSocket
// upgrade, the heartbeat, and a bounded outbound queue.
//
// Everything here runs on the single I/O thread. Actors reach a session only
// through `post_*`, which hop onto that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/engineio_packet.hpp"
#include "net/http_session.hpp"
#include "net/ws_frames.hpp"

namespace parley::eio {

using namespace parley::net;

struct options {
  std::chrono::milliseconds ping_interval{25000};
  std::chrono::milliseconds ping_timeout{20000};
  std::chrono::milliseconds upgrade_timeout{10000};
  uint64_t max_payload = 1000000;
  uint64_t max_write_queue = 4u << 20;
  uint64_t max_connections = 100000;
  uint64_t max_connections_per_ip = 0; // 0: no limit
  // Packets handed up and not yet consumed above which a session stops
  // reading its client (it reads again at half of it).
  uint32_t max_inbound_packets = 256;
  std::vector<std::string> cors_origins;
  // Plain WebSocket sessions (net/plainws.hpp) instead of Engine.IO: no open
  // packet and no Engine.IO framing (every message goes to the handler as
  // it came, every frame out is the whole payload), WebSocket only, and the
  // heartbeat is WebSocket ping/pong.
  bool plain = false;
};

// What the first request of a session carried that the layers above may need.
struct handshake {
  std::string authorization; // Authorization header
  std::string query;         // its query string without EIO, transport, sid and t
  std::string remote;        // peer address
};

class session;

// Inbound backpressure: the packets of a session handed to their consumer (a
// connection actor) and not yet finished with. The layer that hands a packet
// on calls add(), the consumer calls done() from any thread; the session
// stops reading its client while more than the limit are pending and reads
// again once the consumer is down to half of it.
class inbound_gauge {
public:
  inbound_gauge(session& s, uint32_t limit) : session_(s), limit_(limit) {}
  void add() { pending_.fetch_add(1, std::memory_order_relaxed); }
  void done(uint32_t n = 1);
  uint32_t pending() const { return pending_.load(std::memory_order_acquire); }
  bool over() const { return pending() > limit_; }
  bool caught_up() const { return pending() <= limit_ / 2; }

private:
  std::atomic<uint32_t> pending_{0};
  session& session_; // it holds the gauge; holders of the gauge hold it
  uint32_t limit_;
};

// A session's outbound frames: a vector consumed from the front. Unlike
// std::deque it allocates nothing until the first frame, and an idle
// connection keeps at most a few slots.
class frame_queue {
public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  const frame& operator[](size_t i) const { return items_[head_ + i]; }
  const frame& back() const { return items_.back(); }
  const frame* begin() const { return items_.data() + head_; }
  const frame* end() const { return items_.data() + items_.size(); }
  void push_back(const frame& f) { items_.push_back(f); }
  void pop_front(size_t n) {
    for (size_t i = 0; i < n; ++i)
      items_[head_ + i].bytes.reset();
    head_ += n;
    if (head_ == items_.size())
      clear();
  }
  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() > 64)
      std::vector<frame>().swap(items_);
  }

private:
  std::vector<frame> items_;
  size_t head_ = 0;
};

// The layer above Engine.IO (Socket.IO, or the conformance echo).
class session_handler {
public:
  virtual ~session_handler() = default;
  virtual void on_open(session&) {}
  // A heartbeat: the server has just sent a ping.
  virtual void on_ping(session&) {}
  virtual void on_message(session&, packet&& p) = 0;
  virtual void on_close(session&, std::string_view reason) = 0;
};

using handler_factory = std::function<std::unique_ptr<session_handler>(session&)>;

class server;

// An established WebSocket: Beast answered the handshake; from then on the
// socket is read and written here (see net/ws_frames.hpp).
struct ws_link {
  // Bound to the io_context's own executor type: 48 bytes less per
  // connection than tcp::socket's polymorphic one.
  using socket_type = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;
  ws_link(socket_type s, uint64_t max_message) : sock(std::move(s)), reader(max_message) {}
  socket_type sock;
  std::string in;          // received bytes not yet framed; empty (unallocated) while idle
  ws::reader reader;
  uint16_t close_code = 0; // what to answer with: the peer's close, or our protocol error
  std::unique_ptr<asio::steady_timer> linger; // after our close frame, until the peer's EOF
};

class session : public std::enable_shared_from_this<session> {
  friend class inbound_gauge;
public:
  session(server& srv, std::string sid, handshake hs);
  ~session();

  const std::string& sid() const { return sid_; }
  const handshake& info() const { return hs_; }
  bool closed() const { return closed_; }
  bool is_websocket() const { return ws_ != nullptr; }
  // Inbound backpressure (see inbound_gauge). The pointer keeps the session
  // (not its connection) alive.
  std::shared_ptr<inbound_gauge> inbound() { return {shared_from_this(), &inbound_}; }
  server& owner() { return srv_; }
  // What waits to be written (inspection, e.g. by tests).
  const frame_queue& queued() const { return out_; }

  // I/O thread only.
  void send(const frame& f);
  void close(std::string_view reason);
  // The same, the WebSocket closed with this code and reason (the handler
  // is told `reason`).
  void close(std::string_view reason, uint16_t code);

  // Any thread: hop onto the I/O thread first.
  void post_send(frame f);
  void post_send(std::vector<frame> fs);
  void post_close(std::string reason);

private:
  friend class server;

  void start(std::unique_ptr<session_handler> h);
  void on_packet(packet&& p);
  // I/O thread: the consumer caught up; reading (or a held POST) goes on.
  void resume_reading();
  void schedule_ping();

  // long-polling
  void on_poll(const std::shared_ptr<http_session>& hs, request&& req);
  void on_post(const std::shared_ptr<http_session>& hs, request&& req);
  // Hands up the packets of the POST being read until the consumer is
  // behind; answers the POST once every packet is handed up.
  void continue_post();
  void flush_poll();

  // WebSocket
  void attach_websocket(std::shared_ptr<ws_link> ws);
  void begin_upgrade(std::shared_ptr<ws_link> ws);
  void abandon_upgrade();
  // Waits until the socket is readable (no buffer while idle), then reads
  // and handles every complete frame.
  void ws_read(const std::shared_ptr<ws_link>& l);
  void on_ws_readable(const std::shared_ptr<ws_link>& l, beast::error_code ec);
  // Handles the complete frames buffered in l->in; false when the session
  // (or this link) is gone or reading is paused.
  bool ws_frames(const std::shared_ptr<ws_link>& l);
  void on_ws_message(std::string&& data, bool binary);
  void on_probe_message(std::string&& data, bool binary);
  void ws_write();
  void schedule_write();
  // The close frame, after every frame queued (and the write in flight).
  void send_close_frame(uint16_t code);
  // A buffer sequence over a list owned elsewhere (asio copies sequences).
  struct buffer_span {
    using value_type = asio::const_buffer;
    using const_iterator = const asio::const_buffer*;
    const asio::const_buffer* b;
    const asio::const_buffer* e;
    const_iterator begin() const { return b; }
    const_iterator end() const { return e; }
  };
  struct write_scratch {
    std::string flat;              // small frames, headers included, back to back
    std::vector<uint8_t> headers;  // headers of the large frames
    std::vector<asio::const_buffer> buffers;
  };
  // After a write of the first `frames` queued frames (at once or
  // asynchronously); true when more frames wait.
  bool ws_written(beast::error_code ec, size_t frames, std::shared_ptr<write_scratch> scratch);
  static constexpr size_t max_frames_per_write = 256;
  static constexpr size_t small_frame = 1024;       // copied into `flat` up to this size
  static constexpr size_t max_large_per_write = 20; // ≤ 3 iovecs each: one sendmsg (64 max)

  server& srv_;
  std::string sid_;
  handshake hs_;
  std::unique_ptr<session_handler> handler_;
  uint64_t heartbeat_gen_ = 0; // bumped per ping cycle and at close; see server::on_beats
  bool awaiting_pong_ = false;

  frame_queue out_;
  uint64_t out_bytes_ = 0;

  std::shared_ptr<http_session> poll_;   // the pending long-polling GET
  std::unique_ptr<request> poll_request_; // its headers, to answer it (polling sessions only)
  struct held_post {
    std::shared_ptr<http_session> hs;
    request req;   // with the payload still being handed up
    size_t pos = 0;
  };
  std::unique_ptr<held_post> post_; // a POST whose packets wait for the consumer

  inbound_gauge inbound_;
  bool read_paused_ = false;

  std::shared_ptr<ws_link> ws_;
  bool ws_writing_ = false;
  bool final_flush_ = false; // closed: what is queued, then the close frame, still goes out
  bool write_scheduled_ = false;

  std::shared_ptr<ws_link> probe_;       // WebSocket being upgraded to
  bool upgrading_ = false;
  std::unique_ptr<asio::steady_timer> upgrade_timer_; // only while upgrading

  bool closed_ = false;
  std::string close_text_; // the reason of our close frame (plain sessions)
};

class server {
public:
  server(asio::io_context& ioc, options opts, handler_factory make_handler);

  // A request under the server's path (/socket.io/ or /engine.io/).
  void handle(const std::shared_ptr<http_session>& hs, request&& req);

  // Plain servers: answers the WebSocket upgrade and starts a session on it
  // with `h`, or (the connection limit reached) answers it and closes it at
  // once with 1013 and a reason: then nullptr. Also nullptr when the upgrade
  // itself is refused (answered) or the client is gone.
  std::shared_ptr<session> open_plain(const std::shared_ptr<http_session>& hs, request&& req,
                                      std::unique_ptr<session_handler> h);
  // Answers the upgrade, then closes the WebSocket with `code` and `reason`.
  void accept_and_close(const std::shared_ptr<http_session>& hs, request&& req, uint16_t code, std::string reason);

  asio::io_context& context() { return ioc_; }
  const options& opts() const { return opts_; }
  size_t session_count() const { return sessions_.size(); }

  // Adds the CORS headers for an allowed Origin; true when the origin is allowed
  // (or there is none).
  bool apply_cors(const request& req, response& res) const;

  // Closes every session (shutdown); from then on new sessions are refused.
  void close_all();

private:
  friend class session;

  void error(const std::shared_ptr<http_session>& hs, const request& req, int code);
  void handshake_polling(const std::shared_ptr<http_session>& hs, request&& req);
  void handshake_websocket(const std::shared_ptr<http_session>& hs, request&& req);
  // Answers the upgrade and opens a session on it (the 101 queued, not yet
  // started); nullptr when the upgrade was refused (answered) or the client is gone.
  std::shared_ptr<session> open_websocket(const std::shared_ptr<http_session>& hs, const request& req,
                                          handshake info);
  // Checks a WebSocket upgrade and takes its socket out of the HTTP session;
  // `head` gets the 101 response, still to be written. nullptr after an error answer.
  std::shared_ptr<ws_link> upgrade(const std::shared_ptr<http_session>& hs, const request& req, std::string& head);
  void accept_websocket(const std::shared_ptr<http_session>& hs, request&& req,
                        std::function<void(std::shared_ptr<ws_link>)> then);
  handshake describe(const std::shared_ptr<http_session>& hs, const request& req);
  std::shared_ptr<session> open(handshake info);
  std::string open_packet(const std::string& sid, bool websocket) const;
  std::string new_sid();
  void forget(const std::string& sid);
  void flush_writes();
  // Header and buffer lists of WebSocket writes, reused across writes.
  std::shared_ptr<session::write_scratch> take_scratch();
  void give_back(std::shared_ptr<session::write_scratch> s);
  static constexpr size_t max_frames_kept = 16;
  std::vector<std::shared_ptr<session::write_scratch>> spare_scratch_;

  std::vector<std::shared_ptr<session>> dirty_; // sessions with a write scheduled

  asio::io_context& ioc_;
  options opts_;
  handler_factory make_handler_;
  std::unordered_map<std::string, std::shared_ptr<session>> sessions_;
  // Sessions per client address, kept only when max_connections_per_ip is set.
  std::unordered_map<std::string, uint32_t> per_ip_;
  // Refusals of new sessions are logged once per burst, not once each.
  uint64_t refused_quietly_ = 0;
  bool closing_ = false; // close_all() ran: no new sessions
  std::chrono::steady_clock::time_point refusal_logged_{};
  void log_refusal(const char* why);

  struct beat {
    std::chrono::steady_clock::time_point at;
    std::weak_ptr<session> s;
    uint64_t gen;
  };
  void add_beat(std::deque<beat>& q, std::chrono::milliseconds after, const std::shared_ptr<session>& s, uint64_t gen);
  void arm_beats(std::chrono::steady_clock::time_point at);
  void on_beats();
  std::deque<beat> ping_due_;  // sessions' next ping, in deadline order
  std::deque<beat> pong_due_;  // pings waiting for their pong, in deadline order
  asio::steady_timer beat_timer_;
  std::chrono::steady_clock::time_point beat_at_;
  bool beat_armed_ = false;
};

// A fresh unguessable id (sids): 15 URL-safe characters.
std::string random_id();

// Engine.IO error codes, as Node's server numbers them.
enum error_code : int {
  unknown_transport = 0,
  unknown_sid = 1,
  bad_handshake_method = 2,
  bad_request = 3,
  forbidden = 4,
  unsupported_protocol_version = 5,
};

std::string_view error_message(int code);

// The value of a query parameter (percent-decoded), or nullopt.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

} // namespace parley::eio
