// The backend API client of the load generator (publisher.hpp).
#include "tools/loadgen/publisher.hpp"

#include "tools/loadgen/report.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace loadgen {

namespace {
thread_local char answer_buf[64 * 1024];
} // namespace

publisher::publisher(const options& o, size_t connections, on_answer handler, std::string path)
  : o_(o), handler_(std::move(handler)), path_(std::move(path)), conns_(connections) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0)
    throw std::runtime_error(std::string{"epoll_create1: "} + strerror(errno));
  host_port_ = o.host + ":" + std::to_string(o.port);
  for (size_t i = 0; i < connections; ++i) {
    if (!open(i))
      throw std::runtime_error("cannot open API connection " + std::to_string(i));
    free_.push_back(i);
  }
}

publisher::~publisher() {
  for (auto& c : conns_)
    if (c.fd >= 0)
      ::close(c.fd);
  ::close(ep_);
}

bool publisher::open(size_t i) {
  auto& c = conns_[i];
  std::string why;
  int fd = connect_socket(o_, i, why);
  if (fd < 0) {
    std::fprintf(stderr, "loadgen: API connection %zu: %s\n", i, why.c_str());
    return false;
  }
  c.fd = fd;
  c.connecting = true;
  c.in.clear();
  c.out.clear();
  c.out_sent = 0;
  c.out_armed = true;  // EPOLLOUT tells when the connect is done
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = i;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  return true;
}

void publisher::close(size_t i) {
  auto& c = conns_[i];
  if (c.fd >= 0)
    ::close(c.fd);  // also leaves the epoll set
  c.fd = -1;
  c.connecting = false;
  c.out_armed = false;
  c.in.clear();
  c.out.clear();
  c.out_sent = 0;
}

void publisher::failed(size_t i, const std::string& why) {
  auto& c = conns_[i];
  if (c.connecting && connect_failures++ == 0)
    first_error = why;
  close(i);
  if (!c.busy)
    return;  // an idle connection the server closed: opened again when next used
  c.busy = false;
  --outstanding_;
  free_.push_back(i);
  handler_({c.tag, i, 0, why});
}

std::string publisher::await_connected(uint64_t deadline, const std::function<void()>& poll) {
  while (connected() < size() && connect_failures == 0 && now_ns() < deadline)
    poll();
  if (connected() == size())
    return {};
  return "only " + std::to_string(connected()) + " of " + std::to_string(size()) + " API connections connected"
         + (first_error.empty() ? "" : ": " + first_error);
}

void publisher::send(std::string_view json_body, uint64_t tag) {
  if (free_.empty())
    throw std::logic_error("publisher::send without a free connection");
  auto i = free_.front();
  free_.pop_front();
  auto& c = conns_[i];
  if (c.fd < 0) {
    ++reopened;
    if (!open(i)) {
      free_.push_back(i);
      c.tag = tag;
      handler_({tag, i, 0, "the connection could not be opened again"});
      return;
    }
  }
  c.busy = true;
  c.tag = tag;
  ++outstanding_;
  c.out += api_request(host_port_, path_, o_.api_key, json_body);
  if (!c.connecting && !c.out_armed)
    flush(i);
}

void publisher::set_events(size_t i, bool want_out) {
  auto& c = conns_[i];
  if (want_out == c.out_armed)
    return;
  c.out_armed = want_out;
  epoll_event ev{};
  ev.events = EPOLLIN | (want_out ? uint32_t{EPOLLOUT} : 0u);
  ev.data.u64 = i;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
}

void publisher::flush(size_t i) {
  auto& c = conns_[i];
  if (int err = write_pending(c.fd, c.out, c.out_sent)) {
    failed(i, std::string{"send: "} + strerror(err));
    return;
  }
  set_events(i, c.out_sent < c.out.size());
}

void publisher::poll_ns(uint64_t timeout_ns) {
  epoll_event evs[256];
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000ull), static_cast<long>(timeout_ns % 1000000000ull)};
  int n = epoll_pwait2(ep_, evs, 256, &ts, nullptr);
  if (n < 0 && errno == ENOSYS)  // kernels before 5.11
    n = epoll_wait(ep_, evs, 256, static_cast<int>(timeout_ns / 1000000));
  for (int k = 0; k < n; ++k)
    on_io(static_cast<size_t>(evs[k].data.u64), evs[k].events);
}

void publisher::on_io(size_t i, uint32_t events) {
  auto& c = conns_[i];
  if (c.fd < 0)
    return;
  if (c.connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      failed(i, std::string{"connect: "} + strerror(err));
      return;
    }
    c.connecting = false;
    if (!c.ever_connected)
      ++connected_;
    c.ever_connected = true;
  }
  if (!c.connecting && (events & EPOLLOUT)) {
    flush(i);
    if (c.fd < 0)
      return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;
  while (true) {
    auto n = ::recv(c.fd, answer_buf, sizeof answer_buf, 0);
    if (n == 0) {
      failed(i, "closed by the server");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      failed(i, std::string{"recv: "} + strerror(errno));
      return;
    }
    c.in.append(answer_buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof answer_buf)
      break;
  }
  while (!c.in.empty()) {
    auto a = read_http_answer(c.in);
    if (a.status == http_answer::need_more)
      return;
    if (a.status == http_answer::bad) {
      failed(i, "bad answer: " + a.error);
      return;
    }
    if (!c.busy) {
      failed(i, "an answer to no request");
      return;
    }
    // Taken out of the buffer before the handler runs (it may send on this connection).
    std::string body{a.body};
    int code = a.code;
    bool close_after = a.close;
    c.in.erase(0, a.size);
    c.busy = false;
    --outstanding_;
    if (close_after)
      close(i);  // opened again when next used
    free_.push_back(i);
    handler_({c.tag, i, code, body});
    if (conns_[i].fd < 0)
      return;
  }
}

bool answer_faults::ok(const publisher::answer& a) {
  if (a.code == 0) {
    if (transport++ == 0)
      first_transport = std::string{a.body};
    return false;
  }
  if (a.code != 200) {
    if (non200++ == 0)
      first_non200 = std::to_string(a.code) + " " + std::string{a.body};
    return false;
  }
  return true;
}

void answer_faults::add_to(json_out& j) const {
  j.num("non_200", non200).num("transport_errors", transport);
  if (!first_non200.empty())
    j.str("first_non_200", first_non200);
  if (!first_transport.empty())
    j.str("first_transport_error", first_transport);
}

std::string answer_faults::error() const {
  if (non200 > 0)
    return std::to_string(non200) + " answers were not 200; the first: " + first_non200;
  if (transport > 0)
    return std::to_string(transport) + " publishes lost their connection; the first: " + first_transport;
  return {};
}

} // namespace loadgen
