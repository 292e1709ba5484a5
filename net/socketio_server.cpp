#include "net/socketio_server.hpp"

#include <algorithm>
#include <atomic>

#include <boost/asio/post.hpp>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

namespace parley::sio {

std::string new_socket_id() {
  return eio::random_id();
}

uint64_t next_ack_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// -- socket -------------------------------------------------------------------

bool socket::expect_ack(uint64_t id, ack_callback cb) {
  if (!open_ || !accepted_)
    return false;
  acks_.emplace_back(id, std::move(cb));
  return true;
}

bool socket::take_ack(packet& p) {
  if (!p.id)
    return false;
  auto it = std::find_if(acks_.begin(), acks_.end(), [&](auto& a) { return a.first == *p.id; });
  if (it == acks_.end())
    return false;
  auto cb = std::move(it->second);
  acks_.erase(it);
  cb(p.payload ? to_json(*p.payload) : std::string{"[]"});
  return true;
}

void socket::mark_closed() {
  open_ = false;
  held_.reset();
  expiry_timer_.reset();
  auto pending = std::move(acks_);
  acks_.clear();
  for (auto& a : pending)
    a.second(std::nullopt);
}

socket::socket(const std::shared_ptr<eio::session>& s, client& c, std::string nsp, std::string sid)
  : session_(s),
    raw_(s.get()),
    ctx_(s->owner().context()),
    client_(&c),
    nsp_(std::move(nsp)),
    sid_(std::move(sid)),
    handshake_(s->info()),
    inbound_(s->inbound()) {
}

socket::socket(const std::shared_ptr<eio::session>& s, std::string flavour, std::string sid)
  : session_(s),
    raw_(s.get()),
    ctx_(s->owner().context()),
    client_(nullptr),
    nsp_(std::move(flavour)),
    sid_(std::move(sid)),
    handshake_(s->info()),
    accepted_(true),
    inbound_(s->inbound()) {
}

socket::~socket() {
  if (auto n = pending_.load(std::memory_order_acquire); n > 0 && inbound_)
    inbound_->done(n);
}

void deliver(const std::shared_ptr<const socket_list>& targets, eio::frame f,
             std::shared_ptr<socket> except, delivered_ptr once, uint64_t offset) {
  if (!targets || targets->empty())
    return;
  auto& ctx = targets->front()->context();
  boost::asio::post(ctx, [targets, f = std::move(f), except = std::move(except), once = std::move(once), offset] {
    for (auto& t : *targets)
      if (t != except && (!once || once->insert(t.get()).second))
        t->deliver(f, offset);
  });
}

namespace {

// Runs f(session, client) on the I/O thread while the session is open.
template <class F>
void on_io(const std::weak_ptr<eio::session>& weak, F f) {
  auto s = weak.lock();
  if (!s)
    return;
  auto& ioc = s->owner().context();
  boost::asio::post(ioc, [s = std::move(s), f = std::move(f)]() mutable {
    if (!s->closed())
      f(*s);
  });
}

} // namespace

void deliver(const std::shared_ptr<const socket_list>& targets, std::vector<eio::frame> fs,
             std::shared_ptr<socket> except) {
  if (!targets || targets->empty())
    return;
  auto& ctx = targets->front()->context();
  boost::asio::post(ctx, [targets, fs = std::move(fs), except = std::move(except)] {
    for (auto& t : *targets)
      if (t != except)
        for (auto& f : fs)
          t->deliver(f);
  });
}

void socket::check_expiry(std::chrono::milliseconds horizon) {
  if (expires_ms_ == 0 || !open_)
    return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  auto left = expires_ms_ - now;
  if (left <= 0) {
    expires_ms_ = 0; // told once
    expiry_timer_.reset();
    if (on_close)
      on_close(token_expired);
    return;
  }
  if (left > horizon.count() || expiry_timer_)
    return;
  expiry_timer_ = std::make_unique<boost::asio::steady_timer>(ctx_);
  expiry_timer_->expires_after(std::chrono::milliseconds(left));
  expiry_timer_->async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (auto self = weak.lock(); self && !ec) {
      self->expiry_timer_.reset();
      self->check_expiry(std::chrono::milliseconds(0));
    }
  });
}

void socket::accept() {
  if (!client_)
    return; // plain: accepted from the start
  on_io(session_, [self = shared_from_this()](eio::session& s) {
    auto it = self->client_->sockets_.find(self->nsp_);
    if (it == self->client_->sockets_.end() || it->second != self)
      return;
    self->accepted_ = true;
    self->client_->ever_connected_ = true;
    self->client_->connect_timer_.reset();
    std::string payload = "{\"sid\":\"" + self->sid_ + "\"";
    if (!self->pid_.empty())
      payload += ",\"pid\":\"" + self->pid_ + "\"";
    payload += "}";
    std::string{}.swap(self->pid_); // needed only for this answer

    s.send(eio::text_frame(encode(packet_type::connect, self->nsp_, std::nullopt, payload)));
    self->check_expiry(s.owner().opts().ping_interval);
  });
}

void socket::hold_frame(const eio::frame& f, uint64_t offset) {
  held_bytes_ += f.size();
  if (held_bytes_ > raw_->owner().opts().max_write_queue) {
    spdlog::info("socket {}: more than the write queue held while recovering; dropping the client", sid_);
    held_.reset();
    open_ = false;
    raw_->post_close("slow client");
    return;
  }
  held_->emplace_back(f, offset);
}

void socket::release(uint64_t head) {
  boost::asio::post(ctx_, [self = shared_from_this(), head] {
    auto held = std::move(self->held_);
    if (!held || !self->open_)
      return;
    for (auto& [f, offset] : *held)
      if (offset == 0 || offset > head)
        self->deliver(f, offset);
  });
}

void socket::release(std::shared_ptr<const std::vector<uint64_t>> sent) {
  boost::asio::post(ctx_, [self = shared_from_this(), sent = std::move(sent)] {
    auto held = std::move(self->held_);
    if (!held || !self->open_)
      return;
    for (auto& [f, offset] : *held)
      if (offset == 0 || !std::binary_search(sent->begin(), sent->end(), offset))
        self->deliver(f, offset);
  });
}

void socket::refuse(std::string message) {
  on_io(session_, [self = shared_from_this(), message = std::move(message)](eio::session& s) {
    auto it = self->client_->sockets_.find(self->nsp_);
    if (it != self->client_->sockets_.end() && it->second == self)
      self->client_->sockets_.erase(it);
    self->mark_closed();
    std::string payload = "{\"message\":";
    append_json_string(payload, message);
    payload += "}";
    s.send(eio::text_frame(encode(packet_type::connect_error, self->nsp_, std::nullopt, payload)));
  });
}

void socket::send(eio::frame f) {
  if (auto s = session_.lock())
    s->post_send(std::move(f));
}

void socket::send(std::vector<eio::frame> fs) {
  if (auto s = session_.lock())
    s->post_send(std::move(fs));
}

void socket::disconnect() {
  on_io(session_, [self = shared_from_this()](eio::session& s) {
    auto it = self->client_->sockets_.find(self->nsp_);
    if (it == self->client_->sockets_.end() || it->second != self)
      return;
    self->client_->sockets_.erase(it);
    self->mark_closed();
    s.send(eio::text_frame(encode(packet_type::disconnect, self->nsp_, std::nullopt, {})));
  });
}

void socket::close_session(std::string reason) {
  if (auto s = session_.lock())
    s->post_close(std::move(reason));
}

void socket::close_session(std::string reason, uint16_t code) {
  if (auto s = session_.lock())
    boost::asio::post(ctx_, [s, reason = std::move(reason), code] { s->close(reason, code); });
}

// -- client -------------------------------------------------------------------

client::client(app& a, std::chrono::milliseconds connect_timeout)
  : app_(a), connect_timeout_(connect_timeout) {
}

client::~client() = default;

void client::on_open(eio::session& s) {
  connect_timer_ = std::make_unique<boost::asio::steady_timer>(s.owner().context());
  connect_timer_->expires_after(connect_timeout_);
  connect_timer_->async_wait([weak = std::weak_ptr<eio::session>(s.shared_from_this())](
                               boost::system::error_code ec) {
    if (ec)
      return;
    if (auto s = weak.lock(); s && !s->closed()) {
      spdlog::info("eio {}: no namespace joined within the connect timeout, closing", s->sid());
      s->close("forced close");
    }
  });
}

void client::on_ping(eio::session& s) {
  // Expiries within the next ping interval get a timer; passed ones are told.
  auto horizon = s.owner().opts().ping_interval;
  std::vector<std::shared_ptr<socket>> all;
  for (auto& kvp : sockets_)
    all.push_back(kvp.second);
  for (auto& sock : all)
    sock->check_expiry(horizon);
}

void client::fail(eio::session& s, std::string_view why) {
  spdlog::info("eio {}: {}, closing", s.sid(), why);
  s.close("parse error");
}

void client::on_message(eio::session& s, eio::packet&& p) {
  if (p.binary) {
    if (!pending_) {
      fail(s, "binary data without a binary packet");
      return;
    }
    pending_->buffers.push_back(std::make_shared<const std::string>(std::move(p.data)));
    if (pending_->buffers.size() == pending_->attachments) {
      auto done = std::move(pending_);
      dispatch(s, std::move(*done));
    }
    return;
  }
  if (pending_) {
    fail(s, "text packet while binary attachments were expected");
    return;
  }
  auto decoded = decode(p.data);
  if (auto err = std::get_if<std::string>(&decoded)) {
    fail(s, "invalid Socket.IO packet (" + *err + ")");
    return;
  }
  auto& pkt = std::get<packet>(decoded);
  if (pkt.is_binary() && pkt.attachments > 0) {
    if (pkt.attachments > 1000) {
      fail(s, "too many attachments");
      return;
    }
    pending_ = std::make_unique<packet>(std::move(pkt));
    return;
  }
  dispatch(s, std::move(pkt));
}

void client::dispatch(eio::session& s, packet&& p) {
  auto it = sockets_.find(p.nsp);
  switch (p.type) {
    case packet_type::connect: {
      if (it != sockets_.end()) {
        fail(s, "CONNECT for a namespace already connected");
        return;
      }
      if (!app_.has_namespace(p.nsp)) {
        std::string payload = R"({"message":"Invalid namespace"})";
        s.send(eio::text_frame(encode(packet_type::connect_error, p.nsp, std::nullopt, payload)));
        return;
      }
      auto sock = std::make_shared<socket>(s.shared_from_this(), *this, p.nsp, new_socket_id());
      sockets_.emplace(p.nsp, sock);
      app_.on_connect(sock, std::move(p));
      return;
    }
    case packet_type::disconnect: {
      if (it == sockets_.end())
        return;
      auto sock = it->second;
      sockets_.erase(it);
      sock->mark_closed();
      if (sock->on_close)
        sock->on_close("client namespace disconnect");
      return;
    }
    case packet_type::connect_error:
      fail(s, "CONNECT_ERROR from a client");
      return;
    default:
      if (it == sockets_.end()) {
        fail(s, "packet for a namespace not connected");
        return;
      }
      if ((p.type == packet_type::ack || p.type == packet_type::binary_ack) && it->second->take_ack(p))
        return;
      if (it->second->on_packet)
        it->second->on_packet(std::move(p));
  }
}

void client::on_close(eio::session&, std::string_view reason) {
  connect_timer_.reset();
  auto all = std::move(sockets_);
  sockets_.clear();
  for (auto& kvp : all)
    kvp.second->mark_closed();
  for (auto& kvp : all)
    if (kvp.second->on_close)
      kvp.second->on_close(reason);
}

} // namespace parley::sio
