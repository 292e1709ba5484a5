#include "net/engineio_server.hpp"

#include "net/metrics.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

namespace parley::eio {

namespace {

void linger_and_close(const std::shared_ptr<ws_link>& l);

const frame& ping_frame() {
  static const frame f = control_frame(packet_type::ping);
  return f;
}

// A WebSocket ping (plain sessions): header only, no payload.
const frame& ws_ping_frame() {
  static const frame f{std::make_shared<const std::string>(std::string{"\x89\x00", 2}), false, true};
  return f;
}

} // namespace

std::string_view error_message(int code) {
  switch (code) {
    case unknown_transport: return "Transport unknown";
    case unknown_sid: return "Session ID unknown";
    case bad_handshake_method: return "Bad handshake method";
    case bad_request: return "Bad request";
    case forbidden: return "Forbidden";
    case unsupported_protocol_version: return "Unsupported protocol version";
  }
  return "Bad request";
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
  auto r = boost::urls::parse_origin_form(target);
  if (!r)
    return std::nullopt;
  auto ps = r->params();
  auto it = ps.find(name);
  if (it == ps.end())
    return std::nullopt;
  auto p = *it;
  if (!p.has_value)
    return std::string{};
  return std::string{p.value};
}

// -- session ------------------------------------------------------------------

session::session(server& srv, std::string sid, handshake hs)
  : srv_(srv), sid_(std::move(sid)), hs_(std::move(hs)), inbound_(*this, srv.opts().max_inbound_packets) {
}

session::~session() = default;

void inbound_gauge::done(uint32_t n) {
  // Only a drop to half the limit can resume a paused session; the I/O
  // thread checks again there, so a resume is never lost nor early.
  auto before = pending_.fetch_sub(n, std::memory_order_acq_rel);
  auto half = limit_ / 2;
  if (before > half && before - n <= half)
    asio::post(session_.owner().context(), [s = session_.shared_from_this()] { s->resume_reading(); });
}

void session::start(std::unique_ptr<session_handler> h) {
  handler_ = std::move(h);
  schedule_ping();
  handler_->on_open(*this);
}

void session::schedule_ping() {
  awaiting_pong_ = false;
  srv_.add_beat(srv_.ping_due_, srv_.opts().ping_interval, shared_from_this(), ++heartbeat_gen_);
}

void session::on_packet(packet&& p) {
  switch (p.type) {
    case packet_type::message:
      if (handler_)
        handler_->on_message(*this, std::move(p));
      break;
    case packet_type::pong:
      // Only the answer to our ping counts (each would queue a heartbeat).
      if (awaiting_pong_)
        schedule_ping();
      break;
    case packet_type::close:
      close("transport close");
      break;
    case packet_type::ping:
      // In v4 only the server pings.
      spdlog::info("eio {}: ping from client, closing", sid_);
      close("transport error");
      break;
    default:
      break; // open/upgrade/noop outside an upgrade carry nothing
  }
}

void session::send(const frame& f) {
  if (closed_)
    return;
  out_.push_back(f);
  out_bytes_ += f.size();
  if (out_bytes_ > srv_.opts().max_write_queue) {
    spdlog::warn("eio {}: write queue passed {} bytes, dropping the slow client", sid_,
                 srv_.opts().max_write_queue);
    counters().slow_clients_dropped.fetch_add(1, std::memory_order_relaxed);
    close("slow client");
    return;
  }
  if (ws_)
    schedule_write();
  else if (poll_ && !upgrading_)
    flush_poll();
}

// The write starts from a handler posted behind everything already queued on
// the I/O thread, so the frames of every fan-out waiting there go out together.
void session::schedule_write() {
  if (write_scheduled_ || ws_writing_)
    return;
  write_scheduled_ = true;
  srv_.dirty_.push_back(shared_from_this());
  if (srv_.dirty_.size() == 1)
    asio::post(srv_.context(), [srv = &srv_] { srv->flush_writes(); });
}

void session::post_send(frame f) {
  asio::post(srv_.context(), [self = shared_from_this(), f = std::move(f)] { self->send(f); });
}

void session::post_send(std::vector<frame> fs) {
  asio::post(srv_.context(), [self = shared_from_this(), fs = std::move(fs)] {
    for (auto& f : fs)
      self->send(f);
  });
}

void session::post_close(std::string reason) {
  asio::post(srv_.context(),
             [self = shared_from_this(), reason = std::move(reason)] { self->close(reason); });
}

void session::close(std::string_view reason, uint16_t code) {
  if (closed_)
    return;
  if (ws_) {
    ws_->close_code = code;
    close_text_ = std::string{reason.substr(0, 123)};
  }
  close(reason);
}

void session::close(std::string_view reason) {
  if (closed_)
    return;
  auto self = shared_from_this();
  closed_ = true;
  ++heartbeat_gen_; // its heartbeat entries are stale now
  upgrade_timer_.reset();
  srv_.forget(sid_);
  if (!srv_.opts().plain)
    counters().sessions.fetch_sub(1, std::memory_order_relaxed);
  if (poll_) {
    // A client that said goodbye gets a no-op; everybody else learns of the close.
    auto hs = std::move(poll_);
    auto res = make_response(*poll_request_, http::status::ok, reason == "transport close" ? "6" : "1",
                             "text/plain; charset=UTF-8");
    srv_.apply_cors(*poll_request_, res);
    hs->reply(std::move(res));
  }
  if (post_) {
    auto held = std::move(post_);
    auto res = make_response(held->req, http::status::ok, "ok", "text/html");
    srv_.apply_cors(held->req, res);
    held->hs->reply(std::move(res));
  }
  if (ws_) {
    // A close frame answers the peer's, names our protocol error, or ends a
    // close of ours; a broken or stuck connection is just closed.
    bool broken = reason == "transport error" || reason == "transport close" || reason == "slow client";
    uint16_t code = ws_->close_code ? ws_->close_code : broken ? 0 : ws::close_normal;
    if (code) {
      send_close_frame(code);
    } else {
      beast::error_code ec;
      ws_->sock.close(ec);
      out_.clear();
      out_bytes_ = 0;
    }
  }
  if (probe_) {
    beast::error_code ec;
    probe_->sock.close(ec);
  }
  if (!ws_) { // a WebSocket's frames still go out, before its close frame
    out_.clear();
    out_bytes_ = 0;
  }
  if (auto h = std::move(handler_))
    h->on_close(*this, reason);
}

// -- long-polling ---------------------------------------------------------------

void session::on_poll(const std::shared_ptr<http_session>& hs, request&& req) {
  if (poll_) {
    spdlog::info("eio {}: overlapping poll requests, closing", sid_);
    auto res = make_response(req, http::status::bad_request,
                             R"({"code":3,"message":"Bad request"})", "application/json");
    srv_.apply_cors(req, res);
    hs->reply(std::move(res));
    close("transport error");
    return;
  }
  poll_ = hs;
  poll_request_ = std::make_unique<request>(std::move(req));
  poll_request_->body().clear();
  hs->on_abort([weak = std::weak_ptr<session>(shared_from_this())] {
    if (auto self = weak.lock()) {
      self->poll_.reset();
      self->close("transport error");
    }
  });
  if (upgrading_) {
    auto h = std::move(poll_);
    auto res = make_response(*poll_request_, http::status::ok, "6", "text/plain; charset=UTF-8");
    srv_.apply_cors(*poll_request_, res);
    h->reply(std::move(res));
    return;
  }
  flush_poll();
}

void session::flush_poll() {
  if (!poll_ || out_.empty())
    return;
  std::string body;
  for (auto& f : out_)
    append_payload(body, f);
  out_.clear();
  out_bytes_ = 0;
  auto hs = std::move(poll_);
  auto res = make_response(*poll_request_, http::status::ok, std::move(body),
                           "text/plain; charset=UTF-8");
  srv_.apply_cors(*poll_request_, res);
  hs->reply(std::move(res));
}

void session::on_post(const std::shared_ptr<http_session>& hs, request&& req) {
  if (post_) {
    // As Node's engine.io: one data request at a time.
    spdlog::info("eio {}: overlapping POST requests, closing", sid_);
    auto res = make_response(req, http::status::bad_request,
                             R"({"code":3,"message":"Bad request"})", "application/json");
    srv_.apply_cors(req, res);
    hs->reply(std::move(res));
    close("transport error");
    return;
  }
  post_ = std::make_unique<held_post>(held_post{hs, std::move(req), 0});
  hs->on_abort([weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->post_.reset();
      self->close("transport error");
    }
  });
  continue_post();
}

void session::continue_post() {
  auto self = shared_from_this();
  auto& p = *post_;
  std::string_view body = p.req.body();
  while (p.pos != std::string_view::npos && !closed_) {
    if (inbound_.over())
      return; // answered once the consumer catches up (resume_reading)
    auto packet = next_in_payload(body, p.pos);
    if (!packet) {
      spdlog::info("eio {}: malformed polling payload, closing", sid_);
      auto held = std::move(post_);
      auto res = make_response(held->req, http::status::bad_request,
                               R"({"code":3,"message":"Bad request"})", "application/json");
      srv_.apply_cors(held->req, res);
      held->hs->reply(std::move(res));
      close("parse error");
      return;
    }
    on_packet(std::move(*packet));
    if (!post_)
      return; // closed and answered meanwhile
  }
  auto held = std::move(post_);
  if (!held)
    return;
  auto res = make_response(held->req, http::status::ok, "ok", "text/html");
  srv_.apply_cors(held->req, res);
  held->hs->reply(std::move(res));
}

void session::resume_reading() {
  if (closed_ || !inbound_.caught_up())
    return;
  if (post_) {
    continue_post();
    return;
  }
  if (read_paused_ && ws_) {
    read_paused_ = false;
    auto l = ws_;
    if (ws_frames(l))
      ws_read(l);
  }
}

// -- WebSocket ------------------------------------------------------------------

void session::attach_websocket(std::shared_ptr<ws_link> ws) {
  ws_ = std::move(ws);
  ws_read(ws_);
}

namespace {

// An allocator that is not std::allocator, so that Asio allocates an operation
// at its own size. With std::allocator Asio recycles a cached block of the
// thread's recently freed operations, which for a connection's first read wait
// is the block of the HTTP read of its upgrade request (Beast's composed read,
// ~470 bytes), then held for the connection's whole life. An idle connection's
// one pending operation is its read wait: this makes it ~120 bytes.
template <typename T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() noexcept = default;
  template <typename U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p); }
  template <typename U>
  bool operator==(const exact_allocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const exact_allocator<U>&) const noexcept { return false; }
};

} // namespace

void session::ws_read(const std::shared_ptr<ws_link>& l) {
  l->sock.async_wait(tcp::socket::wait_read,
                     asio::bind_allocator(exact_allocator<void>{},
                                          [self = shared_from_this(), l](beast::error_code ec) {
                                            self->on_ws_readable(l, ec);
                                          }));
}

void session::on_ws_readable(const std::shared_ptr<ws_link>& l, beast::error_code ec) {
  if (closed_ || (l != ws_ && l != probe_))
    return;
  auto lost = [&](const char* reason) {
    if (l == ws_)
      close(reason);
    else
      abandon_upgrade();
  };
  if (ec) {
    lost("transport error");
    return;
  }
  // One read buffer for every connection of this thread: bytes are copied to
  // the connection only while a frame is incomplete.
  // One read per wake-up: what is buffered per connection stays bounded by
  // one frame (checked against max-payload from its header) plus one read.
  static thread_local char buf[64 * 1024];
  size_t n = l->sock.read_some(asio::buffer(buf), ec);
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
    if (ec != asio::error::eof && ec != asio::error::connection_reset)
      spdlog::info("eio {}: WebSocket read failed: {}", sid_, ec.message());
    lost(ec == asio::error::eof ? "transport close" : "transport error");
    return;
  }
  l->in.append(buf, ec ? 0 : n);
  if (ws_frames(l))
    ws_read(l);
}

bool session::ws_frames(const std::shared_ptr<ws_link>& l) {
  auto lost = [&](const char* reason) {
    if (l == ws_)
      close(reason);
    else
      abandon_upgrade();
  };
  size_t pos = 0;
  bool paused = false;
  for (;;) {
    bool main = l == ws_;
    if (main && inbound_.over()) {
      // The consumer is behind: what is buffered stays (at most one read),
      // and the socket is not read until it catches up (resume_reading).
      paused = true;
      break;
    }
    auto e = l->reader.next(l->in, pos);
    using ev = ws::reader::event;
    if (e.kind == ev::need_more)
      break;
    switch (e.kind) {
      case ev::message:
        if (main)
          on_ws_message(std::move(e.data), e.binary);
        else
          on_probe_message(std::move(e.data), e.binary);
        break;
      case ev::ping:
        if (main) {
          uint8_t head[10];
          auto h = ws::encode_header(head, ws::op_pong, e.data.size());
          auto bytes = std::make_shared<std::string>(reinterpret_cast<const char*>(head), h);
          *bytes += e.data;
          send(frame{std::move(bytes), false, true});
        }
        break;
      case ev::pong:
        if (main && awaiting_pong_ && srv_.opts().plain)
          schedule_ping();
        break;
      case ev::close:
        l->close_code = e.code == 1005 ? ws::close_normal : e.code;
        lost("transport close");
        return false;
      case ev::error:
        spdlog::info("eio {}: WebSocket {}, closing with {}", sid_, e.data, e.code);
        l->close_code = e.code;
        lost("transport error");
        return false;
      default:
        break;
    }
    if (closed_ || (l != ws_ && l != probe_))
      return false;
  }
  l->in.erase(0, pos);
  if (l->in.empty())
    std::string{}.swap(l->in);
  if (paused) {
    read_paused_ = true;
    return false;
  }
  return true;
}

void session::on_ws_message(std::string&& data, bool binary) {
  if (srv_.opts().plain) {
    if (handler_)
      handler_->on_message(*this, packet{packet_type::message, binary, std::move(data)});
    return;
  }
  if (binary) {
    on_packet(packet{packet_type::message, true, std::move(data)});
  } else if (auto p = decode_text(data)) {
    on_packet(std::move(*p));
  } else {
    spdlog::info("eio {}: invalid packet on WebSocket, closing", sid_);
    close("parse error");
  }
}

// Everything queued goes out in one gathered write: each frame's WebSocket
// header (server frames are unmasked) followed by the shared payload, so n
// deliveries to one client cost one system call, not n.
void session::ws_write() {
again:
  if (ws_writing_ || out_.empty() || (closed_ && !final_flush_) || !ws_)
    return;
  ws_writing_ = true;
  // Small frames (the usual chat event) are copied, headers and all, into one
  // contiguous block; large ones are referred to in place. A write then needs
  // few iovecs, and the kernel sees one sendmsg instead of one per 32 frames.
  size_t n = 0;
  size_t flat_bytes = 0;
  size_t large = 0;
  for (size_t avail = std::min(out_.size(), max_frames_per_write); n < avail; ++n) {
    auto sz = out_[n].size();
    if (sz <= small_frame) {
      flat_bytes += sz + 10;
    } else {
      if (large == max_large_per_write)
        break;
      ++large;
    }
  }
  std::shared_ptr<write_scratch> scratch = srv_.take_scratch();
  auto& flat = scratch->flat;
  flat.clear();
  flat.reserve(flat_bytes); // no reallocation below: buffers point into it
  scratch->headers.resize(large * 10);
  scratch->buffers.clear();
  uint8_t* h = scratch->headers.data();
  size_t seg = 0; // start of the block not yet in the buffer list
  auto close_segment = [&] {
    if (flat.size() > seg)
      scratch->buffers.emplace_back(flat.data() + seg, flat.size() - seg);
    seg = flat.size();
  };
  for (size_t i = 0; i < n; ++i) {
    auto& f = out_[i];
    uint8_t op = f.binary ? ws::op_binary : ws::op_text;
    if (f.size() <= small_frame) {
      if (!f.raw) {
        uint8_t head[10];
        flat.append(reinterpret_cast<const char*>(head), ws::encode_header(head, op, f.size()));
      }
      if (f.size() > 0)
        flat.append(*f.bytes);
      continue;
    }
    close_segment();
    if (!f.raw) {
      size_t len = ws::encode_header(h, op, f.size());
      scratch->buffers.emplace_back(h, len);
      h += len;
    }
    scratch->buffers.emplace_back(f.bytes->data(), f.bytes->size());
  }
  close_segment();
  // First try the write at once: the socket is non-blocking, and one with room
  // in its send buffer (nearly always) takes everything, so no operation is
  // queued and no completion is scheduled. Only what it did not take is left
  // to an asynchronous write. The payloads stay alive in out_ until then.
  beast::error_code ec;
  buffer_span all{scratch->buffers.data(), scratch->buffers.data() + scratch->buffers.size()};
  size_t total = asio::buffer_size(all);
  size_t done = ws_->sock.write_some(all, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    done = 0;
  }
  if (ec || done == total) {
    if (ws_written(ec, n, std::move(scratch)))
      goto again;  // more was queued meanwhile (by a close frame) or did not fit in this write
    return;
  }
  // Drop the bytes already written from the front of the buffer list.
  auto& bl = scratch->buffers;
  size_t skip = done, first = 0;
  while (skip >= bl[first].size()) {
    skip -= bl[first].size();
    ++first;
  }
  bl[first] += skip;
  buffer_span bufs{bl.data() + first, bl.data() + bl.size()};
  asio::async_write(ws_->sock, bufs,
                    [self = shared_from_this(), scratch = std::move(scratch), n](beast::error_code ec,
                                                                                  size_t) mutable {
                      if (self->ws_written(ec, n, std::move(scratch)))
                        self->ws_write();
                    });
}

bool session::ws_written(beast::error_code ec, size_t n, std::shared_ptr<write_scratch> scratch) {
  ws_writing_ = false;
  srv_.give_back(std::move(scratch));
  if (ec) {
    if (!closed_) {
      close("transport error");
      return false;
    }
    beast::error_code ignored;
    ws_->sock.close(ignored);
    out_.clear();
    out_bytes_ = 0;
    return false;
  }
  for (size_t i = 0; i < n; ++i)
    out_bytes_ -= out_[i].size();
  out_.pop_front(n);
  counters().ws_writes.fetch_add(1, std::memory_order_relaxed);
  if (closed_ && out_.empty()) {
    // The close frame was the last: wait for the peer's EOF.
    linger_and_close(ws_);
    return false;
  }
  return !out_.empty();
}

namespace {

// After our close frame: no more writes; wait (briefly) for the peer's EOF so
// that closing does not reset a connection whose last bytes are still unread.
void linger_and_close(const std::shared_ptr<ws_link>& l) {
  beast::error_code ec;
  l->sock.shutdown(tcp::socket::shutdown_send, ec);
  l->linger = std::make_unique<asio::steady_timer>(l->sock.get_executor());
  l->linger->expires_after(std::chrono::seconds(2));
  l->linger->async_wait([l](beast::error_code) {
    beast::error_code ignored;
    l->sock.close(ignored);
  });
  auto drain = std::make_shared<std::function<void()>>();
  *drain = [l, drain] {
    l->sock.async_wait(tcp::socket::wait_read, [l, drain](beast::error_code ec) {
      static thread_local char sink[4096];
      size_t n = ec ? 0 : l->sock.read_some(asio::buffer(sink), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again || (!ec && n > 0)) {
        (*drain)();
        return;
      }
      l->linger->cancel();
      *drain = nullptr; // breaks the cycle
    });
  };
  (*drain)();
}

// Sends a close frame on a connection nothing else writes to, then lingers.
void close_link(const std::shared_ptr<ws_link>& l, uint16_t code, std::string_view reason = {}) {
  auto bytes = std::make_shared<const std::string>(ws::close_frame(code, reason));
  asio::async_write(l->sock, asio::buffer(*bytes), [l, bytes](beast::error_code ec, size_t) {
    if (ec) {
      beast::error_code ignored;
      l->sock.close(ignored);
      return;
    }
    linger_and_close(l);
  });
}

} // namespace

void session::send_close_frame(uint16_t code) {
  // After every frame already queued (what the socket was told last, e.g. why
  // it is disconnected), bounded by a deadline for a peer that does not read.
  out_.push_back(frame{std::make_shared<const std::string>(ws::close_frame(code, close_text_)), false, true});
  final_flush_ = true;
  auto l = ws_;
  l->linger = std::make_unique<asio::steady_timer>(l->sock.get_executor());
  l->linger->expires_after(std::chrono::seconds(2));
  l->linger->async_wait([l](beast::error_code ec) {
    if (ec)
      return; // replaced by linger_and_close's own timer
    beast::error_code ignored;
    l->sock.close(ignored);
  });
  ws_write();
}

void session::begin_upgrade(std::shared_ptr<ws_link> ws) {
  probe_ = std::move(ws);
  upgrading_ = true;
  // A probe that never sends "5" must not leave the session half-upgraded.
  upgrade_timer_ = std::make_unique<asio::steady_timer>(srv_.context());
  upgrade_timer_->expires_after(srv_.opts().upgrade_timeout);
  upgrade_timer_->async_wait([self = shared_from_this(), probe = probe_.get()](beast::error_code ec) {
    if (ec || self->closed_ || self->probe_.get() != probe)
      return;
    spdlog::info("eio {}: upgrade not completed within the upgrade timeout, staying on polling",
                 self->sid_);
    self->abandon_upgrade();
  });
  ws_read(probe_);
}

void session::abandon_upgrade() {
  beast::error_code ignored;
  probe_->sock.close(ignored);
  probe_.reset();
  upgrading_ = false;
  upgrade_timer_.reset();
  flush_poll();
}

void session::on_probe_message(std::string&& text, bool binary) {
  if (binary) {
    abandon_upgrade();
    return;
  }
  if (text == "2probe") {
    if (poll_) {
      auto hs = std::move(poll_);
      auto res = make_response(*poll_request_, http::status::ok, "6", "text/plain; charset=UTF-8");
      srv_.apply_cors(*poll_request_, res);
      hs->reply(std::move(res));
    }
    static const std::string pong_probe = [] {
      uint8_t head[10];
      auto h = ws::encode_header(head, ws::op_text, 6);
      return std::string(reinterpret_cast<const char*>(head), h) + "3probe";
    }();
    ws_writing_ = true;
    asio::async_write(probe_->sock, asio::buffer(pong_probe), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->ws_writing_ = false;
      if (ec || self->closed_)
        return;
      self->ws_write(); // in case the upgrade completed meanwhile
    });
    return;
  }
  if (text == "5") {
    ws_ = std::move(probe_);
    upgrading_ = false;
    upgrade_timer_.reset();
    if (poll_) {
      auto hs = std::move(poll_);
      auto res = make_response(*poll_request_, http::status::ok, "6", "text/plain; charset=UTF-8");
      srv_.apply_cors(*poll_request_, res);
      hs->reply(std::move(res));
    }
    ws_write();
    return;
  }
  abandon_upgrade();
}

// -- server -------------------------------------------------------------------

server::server(asio::io_context& ioc, options opts, handler_factory make_handler)
  : ioc_(ioc), opts_(std::move(opts)), make_handler_(std::move(make_handler)), beat_timer_(ioc) {
}

// Heartbeats: every session's next ping and pong deadline sit in one of two
// queues that stay in deadline order by themselves (each adds now + a fixed
// interval), under one timer armed for the earliest. A session keeps no timer.
void server::add_beat(std::deque<beat>& q, std::chrono::milliseconds after, const std::shared_ptr<session>& s,
                      uint64_t gen) {
  auto at = std::chrono::steady_clock::now() + after;
  q.push_back(beat{at, s, gen});
  if (!beat_armed_ || at < beat_at_)
    arm_beats(at);
}

void server::arm_beats(std::chrono::steady_clock::time_point at) {
  beat_armed_ = true;
  beat_at_ = at;
  beat_timer_.expires_at(at);
  beat_timer_.async_wait([this](beast::error_code ec) {
    if (ec)
      return;
    beat_armed_ = false;
    on_beats();
  });
}

void server::on_beats() {
  auto now = std::chrono::steady_clock::now();
  while (!ping_due_.empty() && ping_due_.front().at <= now) {
    auto b = std::move(ping_due_.front());
    ping_due_.pop_front();
    auto s = b.s.lock();
    if (!s || s->closed_ || s->heartbeat_gen_ != b.gen || s->awaiting_pong_)
      continue;
    s->send(opts_.plain ? ws_ping_frame() : ping_frame());
    s->awaiting_pong_ = true;
    add_beat(pong_due_, opts_.ping_timeout, s, b.gen);
    if (s->handler_)
      s->handler_->on_ping(*s);
  }
  while (!pong_due_.empty() && pong_due_.front().at <= now) {
    auto b = std::move(pong_due_.front());
    pong_due_.pop_front();
    auto s = b.s.lock();
    if (s && !s->closed_ && s->heartbeat_gen_ == b.gen && s->awaiting_pong_) {
      if (opts_.plain)
        s->close("ping timeout", ws::close_going_away);
      else
        s->close("ping timeout");
    }
  }
  std::optional<std::chrono::steady_clock::time_point> next;
  if (!ping_due_.empty())
    next = ping_due_.front().at;
  if (!pong_due_.empty() && (!next || pong_due_.front().at < *next))
    next = pong_due_.front().at;
  if (next && (!beat_armed_ || *next < beat_at_))
    arm_beats(*next);
}

bool server::apply_cors(const request& req, response& res) const {
  auto it = req.find(http::field::origin);
  if (it == req.end())
    return true;
  auto origin = it->value();
  if (!origin_allowed(opts_.cors_origins, origin))
    return false;
  res.set(http::field::access_control_allow_origin, origin);
  res.set(http::field::access_control_allow_credentials, "true");
  res.set(http::field::vary, "Origin");
  return true;
}

void server::error(const std::shared_ptr<http_session>& hs, const request& req, int code) {
  std::string body = "{\"code\":" + std::to_string(code) + ",\"message\":\"";
  body += error_message(code);
  body += "\"}";
  auto res = make_response(req, code == forbidden ? http::status::forbidden : http::status::bad_request,
                           std::move(body), "application/json");
  if (websocket::is_upgrade(req))
    res.keep_alive(false);
  apply_cors(req, res);
  hs->reply(std::move(res));
}

void server::handle(const std::shared_ptr<http_session>& hs, request&& req) {
  if (req.method() == http::verb::options) {
    auto res = make_response(req, http::status::no_content, "", "text/plain");
    res.body().clear();
    if (apply_cors(req, res)) {
      res.set(http::field::access_control_allow_methods, "GET,HEAD,PUT,PATCH,POST,DELETE");
      if (auto h = req.find(http::field::access_control_request_headers); h != req.end())
        res.set(http::field::access_control_allow_headers, h->value());
    }
    res.prepare_payload();
    hs->reply(std::move(res));
    return;
  }
  auto target = req.target();
  auto transport = query_param(target, "transport");
  bool upgrade = websocket::is_upgrade(req);
  if (!transport || (*transport != "polling" && *transport != "websocket")) {
    error(hs, req, unknown_transport);
    return;
  }
  if (auto sid = query_param(target, "sid")) {
    auto it = sessions_.find(*sid);
    if (it == sessions_.end()) {
      error(hs, req, unknown_sid);
      return;
    }
    auto s = it->second;
    if (upgrade) {
      if (*transport != "websocket" || s->ws_) {
        if (*transport == "websocket") {
          // Accept, then close: the client sees a plain close, as with Node.
          accept_websocket(hs, std::move(req), [](std::shared_ptr<ws_link> ws) {
            close_link(ws, ws::close_normal);
          });
          return;
        }
        error(hs, req, bad_request);
        return;
      }
      if (s->upgrading_) {
        accept_websocket(hs, std::move(req), [](std::shared_ptr<ws_link> ws) {
          close_link(ws, ws::close_normal);
        });
        return;
      }
      accept_websocket(hs, std::move(req), [weak = std::weak_ptr<session>(s)](std::shared_ptr<ws_link> ws) {
        auto s = weak.lock();
        if (!s || s->closed_ || s->ws_ || s->upgrading_) {
          close_link(ws, ws::close_normal);
          return;
        }
        s->begin_upgrade(std::move(ws));
      });
      return;
    }
    if (*transport != "polling" || s->ws_) {
      error(hs, req, bad_request);
      return;
    }
    if (req.method() == http::verb::get)
      s->on_poll(hs, std::move(req));
    else if (req.method() == http::verb::post)
      s->on_post(hs, std::move(req));
    else
      error(hs, req, bad_request);
    return;
  }
  // A new session.
  if (req.method() != http::verb::get) {
    error(hs, req, bad_handshake_method);
    return;
  }
  if (*transport == "websocket" && !upgrade) {
    error(hs, req, bad_request);
    return;
  }
  auto eio = query_param(target, "EIO");
  if (!eio || *eio != "4") {
    error(hs, req, unsupported_protocol_version);
    return;
  }
  if (closing_ || sessions_.size() >= opts_.max_connections) {
    if (!closing_)
      log_refusal("the node's limit of sessions (parley.limits.max-connections) is reached");
    auto res = make_response(req, http::status::service_unavailable,
                             closing_ ? R"({"code":3,"message":"Server shutting down"})"
                                      : R"({"code":3,"message":"Too many connections"})",
                             "application/json");
    if (upgrade)
      res.keep_alive(false);
    apply_cors(req, res);
    hs->reply(std::move(res));
    return;
  }
  if (opts_.max_connections_per_ip > 0) {
    auto it = per_ip_.find(hs->remote().address().to_string());
    if (it != per_ip_.end() && it->second >= opts_.max_connections_per_ip) {
      log_refusal("an address reached its limit of sessions (parley.limits.max-connections-per-ip)");
      auto res = make_response(req, http::status::too_many_requests,
                               R"({"code":3,"message":"Too many connections from this address"})",
                               "application/json");
      if (upgrade)
        res.keep_alive(false);
      apply_cors(req, res);
      hs->reply(std::move(res));
      return;
    }
  }
  if (*transport == "polling")
    handshake_polling(hs, std::move(req));
  else
    handshake_websocket(hs, std::move(req));
}

handshake server::describe(const std::shared_ptr<http_session>& hs, const request& req) {
  handshake info;
  if (auto it = req.find(http::field::authorization); it != req.end())
    info.authorization = std::string{it->value()};
  auto target = req.target();
  // The query minus Engine.IO's own parameters (usually nothing is left, and
  // nothing is stored per connection).
  if (auto q = target.find('?'); q != std::string_view::npos) {
    auto rest = target.substr(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      auto param = rest.substr(0, amp);
      auto name = param.substr(0, param.find('='));
      if (name != "EIO" && name != "transport" && name != "sid" && name != "t" && !param.empty()) {
        if (!info.query.empty())
          info.query += '&';
        info.query.append(param.data(), param.size());
      }
      if (amp == std::string_view::npos)
        break;
      rest.remove_prefix(amp + 1);
    }
  }
  info.remote = hs->remote().address().to_string();
  return info;
}

void server::log_refusal(const char* why) {
  auto now = std::chrono::steady_clock::now();
  if (now - refusal_logged_ < std::chrono::seconds(10)) {
    ++refused_quietly_;
    return;
  }
  if (refused_quietly_ > 0)
    spdlog::warn("refused a new session: {} ({} more refused since the last such line)", why, refused_quietly_);
  else
    spdlog::warn("refused a new session: {}", why);
  refused_quietly_ = 0;
  refusal_logged_ = now;
}

std::shared_ptr<session> server::open(handshake info) {
  auto s = std::make_shared<session>(*this, new_sid(), std::move(info));
  if (opts_.max_connections_per_ip > 0)
    ++per_ip_[s->info().remote];
  sessions_.emplace(s->sid(), s);
  if (!opts_.plain)
    counters().sessions.fetch_add(1, std::memory_order_relaxed);
  return s;
}

std::string server::open_packet(const std::string& sid, bool websocket) const {
  std::string out = "0{\"sid\":\"" + sid + "\",\"upgrades\":";
  out += websocket ? "[]" : "[\"websocket\"]";
  out += ",\"pingInterval\":" + std::to_string(opts_.ping_interval.count());
  out += ",\"pingTimeout\":" + std::to_string(opts_.ping_timeout.count());
  out += ",\"maxPayload\":" + std::to_string(opts_.max_payload) + "}";
  return out;
}

void server::handshake_polling(const std::shared_ptr<http_session>& hs, request&& req) {
  auto s = open(describe(hs, req));
  auto res = make_response(req, http::status::ok, open_packet(s->sid(), false),
                           "text/plain; charset=UTF-8");
  apply_cors(req, res);
  hs->reply(std::move(res));
  s->start(make_handler_(*s));
}

std::shared_ptr<session> server::open_websocket(const std::shared_ptr<http_session>& hs, const request& req,
                                                handshake info) {
  // The session exists only once the upgrade is accepted; its 101 response
  // leaves in one write with what is queued next.
  std::string head;
  auto ws = upgrade(hs, req, head);
  if (!ws)
    return nullptr;
  auto s = open(std::move(info));
  s->attach_websocket(std::move(ws));
  frame switching;
  switching.bytes = std::make_shared<const std::string>(std::move(head));
  switching.raw = true;
  s->send(switching);
  return s;
}

void server::handshake_websocket(const std::shared_ptr<http_session>& hs, request&& req) {
  auto s = open_websocket(hs, req, describe(hs, req));
  if (!s)
    return;
  s->send(text_frame(open_packet(s->sid(), true)));
  s->start(make_handler_(*s));
}

namespace {

// Sec-WebSocket-Accept: base64(SHA-1(key + the RFC 6455 GUID)).
std::string websocket_accept(std::string_view key) {
  std::string in{key};
  in += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), digest, &len, EVP_sha1(), nullptr);
  return base64_encode({reinterpret_cast<const char*>(digest), len});
}

// A key is the base64 of 16 bytes: 22 characters and "==".
bool valid_websocket_key(std::string_view k) {
  if (k.size() != 24 || k.substr(22) != "==")
    return false;
  return std::all_of(k.begin(), k.begin() + 22, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

} // namespace

std::shared_ptr<ws_link> server::upgrade(const std::shared_ptr<http_session>& hs, const request& req,
                                         std::string& head) {
  // RFC 6455 §4.2.1 (is_upgrade has checked GET, Connection and Upgrade); the
  // refusals are those of Node's `ws`, which a socket.io server answers with.
  auto refuse = [&](std::string_view text) {
    spdlog::info("refused a WebSocket upgrade: {}", text);
    auto res = make_response(req, http::status::bad_request, std::string{text}, "text/plain");
    res.set("Sec-WebSocket-Version", "13");
    res.keep_alive(false);
    hs->reply(std::move(res));
    return nullptr;
  };
  if (req.version() < 11)
    return refuse("Bad request: WebSocket needs HTTP/1.1");
  auto key = req[http::field::sec_websocket_key];
  if (!valid_websocket_key(key))
    return refuse("Missing or invalid Sec-WebSocket-Key header");
  if (req[http::field::sec_websocket_version] != "13")
    return refuse("Missing or invalid Sec-WebSocket-Version header");
  head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: ";
  head += websocket_accept(key);
  head += "\r\n\r\n";
  // From here on the socket is ours (net/ws_frames.hpp): out of Beast's stream,
  // onto the io_context's own executor type.
  beast::error_code err;
  auto taken = hs->take_socket();
  auto protocol = taken.local_endpoint(err).protocol();
  if (err)
    return nullptr;
  ws_link::socket_type sock{ioc_, protocol, taken.release(err)};
  if (err)
    return nullptr;
  sock.non_blocking(true, err);
  return std::make_shared<ws_link>(std::move(sock), opts_.max_payload);
}

void server::accept_websocket(const std::shared_ptr<http_session>& hs, request&& req,
                              std::function<void(std::shared_ptr<ws_link>)> then) {
  auto head = std::make_shared<std::string>();
  auto ws = upgrade(hs, req, *head);
  if (!ws)
    return;
  asio::async_write(ws->sock, asio::buffer(*head), [ws, head, then = std::move(then)](beast::error_code ec, size_t) {
    if (ec) {
      beast::error_code ignored;
      ws->sock.close(ignored);
      return;
    }
    then(ws);
  });
}

std::shared_ptr<session> server::open_plain(const std::shared_ptr<http_session>& hs, request&& req,
                                            std::unique_ptr<session_handler> h) {
  if (closing_) {
    accept_and_close(hs, std::move(req), ws::close_going_away, "server shutting down");
    return nullptr;
  }
  if (sessions_.size() >= opts_.max_connections) {
    log_refusal("the limit of plain WebSocket connections (parley.plainws.max-total) is reached");
    counters().plain_refused.fetch_add(1, std::memory_order_relaxed);
    accept_and_close(hs, std::move(req), 1013,
                     "too many plain WebSocket connections (max-total " + std::to_string(opts_.max_connections) + ")");
    return nullptr;
  }
  if (opts_.max_connections_per_ip > 0) {
    auto it = per_ip_.find(hs->remote().address().to_string());
    if (it != per_ip_.end() && it->second >= opts_.max_connections_per_ip) {
      log_refusal("an address reached its limit of plain WebSocket connections (parley.limits.max-connections-per-ip)");
      counters().plain_refused.fetch_add(1, std::memory_order_relaxed);
      accept_and_close(hs, std::move(req), 1013,
                       "too many connections from this address (max-connections-per-ip "
                         + std::to_string(opts_.max_connections_per_ip) + ")");
      return nullptr;
    }
  }
  // The credentials were checked before: only the address is kept.
  handshake info;
  info.remote = hs->remote().address().to_string();
  auto s = open_websocket(hs, req, std::move(info));
  if (s)
    s->start(std::move(h));
  return s;
}

void server::accept_and_close(const std::shared_ptr<http_session>& hs, request&& req, uint16_t code,
                              std::string reason) {
  accept_websocket(hs, std::move(req), [code, reason = std::move(reason)](std::shared_ptr<ws_link> ws) {
    close_link(ws, code, reason);
  });
}

std::shared_ptr<session::write_scratch> server::take_scratch() {
  if (spare_scratch_.empty())
    return std::make_shared<session::write_scratch>();
  auto s = std::move(spare_scratch_.back());
  spare_scratch_.pop_back();
  return s;
}

void server::give_back(std::shared_ptr<session::write_scratch> s) {
  // Keep a few, and none that grew large (a burst to one client).
  if (spare_scratch_.size() < 1024 && s.use_count() == 1 && s->buffers.capacity() <= 2 * max_frames_kept
      && s->flat.capacity() <= 16 * 1024)
    spare_scratch_.push_back(std::move(s));
}

void server::flush_writes() {
  auto dirty = std::move(dirty_);
  dirty_.clear();
  for (auto& s : dirty) {
    s->write_scheduled_ = false;
    s->ws_write();
  }
}

std::string random_id() {
  // 88 random bits in 15 URL-safe characters: short enough to be stored
  // inline in a std::string, so the ids held per connection allocate nothing.
  // Random bytes are drawn 4 KiB at a time (one RAND_bytes call, with its
  // locking and fork check, per 372 ids instead of per id).
  thread_local unsigned char pool[4092];
  thread_local size_t used = sizeof(pool);
  if (used + 11 > sizeof(pool)) {
    // Without fresh random bytes an id would be guessable: the session (or
    // socket) is refused rather than made (the caller's handler fails, and
    // the I/O loop closes that connection).
    if (RAND_bytes(pool, sizeof(pool)) != 1)
      throw std::runtime_error("RAND_bytes failed: no random bytes for a session id");
    used = 0;
  }
  auto id = base64url_encode({reinterpret_cast<const char*>(pool + used), 11});
  std::fill(pool + used, pool + used + 11, 0);  // drawn bytes are not kept around
  used += 11;
  return id;
}

std::string server::new_sid() {
  for (;;) {
    auto sid = random_id();
    if (!sessions_.count(sid))
      return sid;
  }
}

void server::forget(const std::string& sid) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end())
    return;
  if (opts_.max_connections_per_ip > 0) {
    auto ip = per_ip_.find(it->second->info().remote);
    if (ip != per_ip_.end() && --ip->second == 0)
      per_ip_.erase(ip);
  }
  sessions_.erase(it);
}

void server::close_all() {
  closing_ = true;
  std::vector<std::shared_ptr<session>> all;
  for (auto& kvp : sessions_)
    all.push_back(kvp.second);
  for (auto& s : all) {
    if (opts_.plain)
      s->close("server shutting down", ws::close_going_away);
    else
      s->close("server shutting down");
  }
}

} // namespace parley::eio
