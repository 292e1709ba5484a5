#include "tools/loadgen/engine.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace loadgen {

namespace {
constexpr uint64_t fd_tag_bit = uint64_t{1} << 40;
thread_local char read_buf[256 * 1024];
} // namespace

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

engine::engine(const options& o, scenario& s, size_t n) : o_(o), s_(s), conns_(n) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0)
    throw std::runtime_error(std::string{"epoll_create1: "} + strerror(errno));
  host_port_ = o.host + ":" + std::to_string(o.port);
  s.eng = this;
}

engine::~engine() {
  for (auto& c : conns_)
    if (c.fd >= 0)
      ::close(c.fd);
  ::close(ep_);
}

int connect_socket(const options& o, size_t i, std::string& why) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::string{"socket: "} + strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Spread connections over source addresses so ephemeral ports never run out.
  if (o.sources > 0) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (2u + static_cast<uint32_t>(i % static_cast<size_t>(o.sources))));
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      why = std::string{"bind: "} + strerror(errno);
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &dst.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) {
    why = std::string{"connect: "} + strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

bool engine::open(size_t i) {
  auto& c = conns_[i];
  if (c.fd >= 0)
    close(i);
  c = conn{};
  c.t0 = now_ns();
  std::string why;
  int fd = connect_socket(o_, i, why);
  if (fd < 0) {
    ++connect_failures;
    s_.on_closed(i, why);
    return false;
  }
  c.fd = fd;
  c.st = conn::connecting;
  auto target = s_.plain_target(i);
  c.plain = !target.empty();
  c.out = c.plain ? websocket_upgrade(host_port_, target) : upgrade_request(host_port_, o_.path);
  c.out_sent = 0;
  c.out_armed = true;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = i;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  ++handshaking_;
  return true;
}

void engine::ramp(size_t first, size_t last, size_t cap) {
  ramp_cap_ = cap;
  for (size_t i = first; i < last; ++i)
    ramp_queue_.push_back(i);
  while (!ramp_queue_.empty() && handshaking_ < ramp_cap_) {
    auto i = ramp_queue_.front();
    ramp_queue_.pop_front();
    open(i);
  }
}

void engine::handshake_over(size_t i) {
  --handshaking_;
  while (!ramp_queue_.empty() && handshaking_ < ramp_cap_) {
    auto next = ramp_queue_.front();
    ramp_queue_.pop_front();
    open(next);
  }
}

void engine::close(size_t i) {
  auto& c = conns_[i];
  if (c.fd < 0)
    return;
  bool in_handshake = c.st != conn::ready;
  ::close(c.fd);  // also leaves the epoll set
  c.fd = -1;
  c.st = conn::closed;
  c.in.clear();
  c.in.shrink_to_fit();
  c.out.clear();
  c.out.shrink_to_fit();
  c.out_sent = 0;
  if (in_handshake)
    handshake_over(i);
}

void engine::fail(size_t i, const std::string& why) {
  auto& c = conns_[i];
  if (c.st != conn::ready)
    ++connect_failures;
  close(i);
  s_.on_closed(i, why);
}

void engine::stop_reading(size_t i) {
  auto& c = conns_[i];
  c.reading = false;
  epoll_event ev{};
  ev.events = c.out_armed ? uint32_t{EPOLLOUT} : 0u;
  ev.data.u64 = i;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
}

namespace {
// Engine.IO message packet '4' + the Socket.IO packet.
std::string eio_message(std::string_view sio_packet) {
  std::string eio;
  eio.reserve(sio_packet.size() + 1);
  eio += '4';
  eio += sio_packet;
  return eio;
}
} // namespace

void engine::send(size_t i, std::string_view sio_packet) {
  auto& c = conns_[i];
  if (c.fd < 0)
    return;
  queue(i, eio_message(sio_packet));
}

std::string engine::frames(std::string_view sio_packet, size_t count) {
  auto eio = eio_message(sio_packet);
  std::string out;
  out.reserve(count * (eio.size() + 14));
  for (size_t k = 0; k < count; ++k)
    append_client_frame(out, eio, 0x1);
  return out;
}

void engine::send_text(size_t i, std::string_view text) {
  if (conns_[i].fd >= 0)
    queue(i, text);
}

void engine::send_frames(size_t i, std::string&& framed) {
  auto& c = conns_[i];
  if (c.fd < 0)
    return;
  if (c.out_sent == c.out.size()) {
    c.out = std::move(framed);
    c.out_sent = 0;
  } else {
    c.out += framed;
  }
  if (!c.out_armed)
    flush(i);
}

void engine::queue(size_t i, std::string_view payload, uint8_t op) {
  auto& c = conns_[i];
  append_client_frame(c.out, payload, op);
  if (!c.out_armed)
    flush(i);
}

uint32_t engine::send_with_ack(size_t i, std::string_view event_array) {
  auto id = conns_[i].next_ack++;
  send(i, "2" + std::to_string(id) + std::string{event_array});
  return id;
}

int write_pending(int fd, std::string& out, size_t& sent) {
  while (sent < out.size()) {
    auto n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return errno;
    }
    sent += static_cast<size_t>(n);
  }
  if (sent == out.size()) {
    out.clear();
    sent = 0;
  } else if (sent >= 65536 && sent * 2 >= out.size()) {
    out.erase(0, sent);
    sent = 0;
  }
  return 0;
}

void engine::flush(size_t i) {
  auto& c = conns_[i];
  if (int err = write_pending(c.fd, c.out, c.out_sent)) {
    fail(i, std::string{"send: "} + strerror(err));
    return;
  }
  bool want = c.out_sent < c.out.size();
  if (want != c.out_armed) {
    c.out_armed = want;
    epoll_event ev{};
    ev.events = (c.reading ? uint32_t{EPOLLIN} : 0u) | (want ? uint32_t{EPOLLOUT} : 0u);
    ev.data.u64 = i;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }
}

void engine::watch(int fd, uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = fd_tag_bit | tag;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
}

struct epoll_event_list {
  epoll_event ev[512];
};

void engine::poll(int timeout_ms) {
  epoll_event_list evs;
  dispatch(evs, epoll_wait(ep_, evs.ev, 512, timeout_ms));
}

void engine::poll_ns(uint64_t timeout_ns) {
  epoll_event_list evs;
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000ull), static_cast<long>(timeout_ns % 1000000000ull)};
  int n = epoll_pwait2(ep_, evs.ev, 512, &ts, nullptr);
  if (n < 0 && errno == ENOSYS)  // kernels before 5.11
    n = epoll_wait(ep_, evs.ev, 512, static_cast<int>(timeout_ns / 1000000));
  dispatch(evs, n);
}

void engine::dispatch(epoll_event_list& evs, int n) {
  for (int k = 0; k < n; ++k) {
    auto tag = evs.ev[k].data.u64;
    if (tag & fd_tag_bit)
      s_.on_fd(tag & ~fd_tag_bit);
    else
      on_ready_io(static_cast<size_t>(tag), evs.ev[k].events);
  }
}

void engine::on_ready_io(size_t i, uint32_t events) {
  auto& c = conns_[i];
  if (c.fd < 0)
    return;
  if (c.st == conn::connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(i, std::string{"connect: "} + strerror(err));
      return;
    }
    c.st = conn::upgrading;
  }
  if ((events & EPOLLOUT) && c.fd >= 0)
    flush(i);
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c.fd < 0 || !c.reading)
    return;
  for (int rounds = 0; rounds < 4; ++rounds) {
    auto n = ::recv(c.fd, read_buf, sizeof read_buf, 0);
    if (n == 0) {
      fail(i, "closed by the server");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      fail(i, std::string{"recv: "} + strerror(errno));
      return;
    }
    c.in.append(read_buf, static_cast<size_t>(n));
    consume(i);
    if (conns_[i].fd < 0 || static_cast<size_t>(n) < sizeof read_buf)
      break;
  }
}

void engine::consume(size_t i) {
  auto& c = conns_[i];
  size_t pos = 0;
  if (c.st == conn::upgrading || c.st == conn::connecting) {
    auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > 16384)
        fail(i, "upgrade response too long");
      return;
    }
    if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) {
      ++protocol_errors;
      fail(i, "upgrade refused: " + c.in.substr(0, c.in.find("\r\n")));
      return;
    }
    pos = end + 4;
    c.st = conn::opening;
    if (c.plain) {
      c.st = conn::ready;
      handshake_over(i);
      s_.on_connected(i);
      if (c.fd < 0)
        return;  // closed: c.in is gone
    }
  }
  while (pos < c.in.size()) {
    auto f = read_server_frame(std::string_view{c.in}.substr(pos));
    if (f.status == frame::need_more)
      break;
    if (f.status == frame::bad) {
      ++protocol_errors;
      fail(i, "bad frame: " + f.error);
      return;
    }
    pos += f.size;
    if (!handle_frame(i, f))
      return;  // closed: c.in is gone
  }
  if (pos == c.in.size())
    c.in.clear();
  else if (pos > 0)
    c.in.erase(0, pos);
}

bool engine::handle_frame(size_t i, const frame& f) {
  auto& c = conns_[i];
  if (f.op == 8) {  // close
    std::string why = "close frame";
    if (f.payload.size() >= 2)
      why += " " + std::to_string((static_cast<uint8_t>(f.payload[0]) << 8) | static_cast<uint8_t>(f.payload[1]))
             + " " + std::string{f.payload.substr(2)};
    fail(i, why);
    return false;
  }
  if (f.op == 9) {  // ping → pong
    queue(i, f.payload, 10);
    return c.fd >= 0;
  }
  if (f.op != 1 || !f.fin)  // binary attachments and fragments are not used here
    return true;
  if (c.plain) {
    s_.on_text(i, f.payload);
    return conns_[i].fd >= 0;
  }
  auto p = f.payload;
  if (p.empty())
    return true;
  switch (p[0]) {
    case '0':  // Engine.IO open → Socket.IO connect with the token
      if (c.st == conn::opening) {
        c.st = conn::joining_nsp;
        send(i, "0" + s_.auth(i));
      }
      return c.fd >= 0;
    case '2':  // ping → pong
      queue(i, "3");
      return c.fd >= 0;
    case '1':
      fail(i, "engine.io close");
      return false;
    case '4':
      break;
    default:
      return true;
  }
  auto sio = p.substr(1);
  if (sio.empty())
    return true;
  if (sio[0] == '0' && c.st == conn::joining_nsp) {
    c.st = conn::ready;
    handshake_over(i);
    s_.on_connect_answer(i, sio);
    s_.on_connected(i);
  } else if (sio[0] == '4') {
    ++protocol_errors;
    s_.on_connect_error(i, sio);
    fail(i, "connect_error " + std::string{sio.substr(1)});
    return false;
  } else if (sio[0] == '2') {
    s_.on_event(i, event_name(p), sio);
  } else if (sio[0] == '3') {
    uint32_t id = 0;
    for (size_t k = 1; k < sio.size() && sio[k] >= '0' && sio[k] <= '9'; ++k)
      id = id * 10 + static_cast<uint32_t>(sio[k] - '0');
    s_.on_ack(i, id, sio);
  } else if (sio[0] == '1') {
    fail(i, "disconnected by the server");
    return false;
  }
  return conns_[i].fd >= 0;
}

} // namespace loadgen
