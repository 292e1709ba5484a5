// The load generator's client of the backend API: HTTP/1.1 keep-alive
// connections over an epoll set of their own, each with at most one POST (to
// /api/v1/publish, or the path it is given) outstanding (no pipelining, so a
// connection's answers come back in the order it sent its requests). Its
// epoll descriptor can be watched by another loop (the engine's), so a
// scenario can publish and receive in one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/loadgen/engine.hpp"

namespace loadgen {

class publisher {
public:
  struct answer {
    uint64_t tag;           // what send() was given
    size_t conn;            // which connection carried it
    int code;               // HTTP status; 0 when the connection failed first
    std::string_view body;  // the answer's body, or why the connection failed
  };
  using on_answer = std::function<void(const answer&)>;

  // Opens `connections` connections to o.host:o.port at once (source
  // addresses spread as the engine's are); every request is a POST to `path`.
  publisher(const options& o, size_t connections, on_answer handler, std::string path = "/api/v1/publish");
  ~publisher();
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;

  int fd() const { return ep_; }
  size_t size() const { return conns_.size(); }
  // Connections whose TCP connect has completed (at least once).
  size_t connected() const { return connected_; }
  bool has_free() const { return !free_.empty(); }
  size_t outstanding() const { return outstanding_; }

  // Runs `poll` until every connection is up, one failed to connect, or
  // `deadline` (now_ns()) passed: "" when all are up, else why not.
  std::string await_connected(uint64_t deadline, const std::function<void()>& poll);

  // Sends a publish with this JSON body on a free connection (check has_free()
  // first); a connection the server closed while idle is opened again here.
  void send(std::string_view json_body, uint64_t tag);
  // One epoll round; waits at most timeout_ns (0: does not wait).
  void poll_ns(uint64_t timeout_ns);

  uint64_t reopened = 0;          // connections opened again after the server closed them while idle
  uint64_t connect_failures = 0;  // connects that failed (the first: first_error)
  std::string first_error;

private:
  struct hconn {
    int fd = -1;
    bool connecting = false;
    bool ever_connected = false;
    bool busy = false;  // a request is outstanding
    bool out_armed = false;
    uint64_t tag = 0;
    std::string in, out;
    size_t out_sent = 0;
  };

  bool open(size_t i);
  void close(size_t i);
  void flush(size_t i);
  void on_io(size_t i, uint32_t events);
  // The connection is gone: its outstanding request (if any) is answered with code 0.
  void failed(size_t i, const std::string& why);
  void set_events(size_t i, bool want_out);

  const options& o_;
  on_answer handler_;
  std::string path_;
  int ep_ = -1;
  std::string host_port_;
  std::vector<hconn> conns_;
  std::deque<size_t> free_;  // taken in turn, so none sits idle long enough to be closed
  size_t outstanding_ = 0, connected_ = 0;
};

class json_out;

// The answers that fail a run: not 200, or no answer because the connection
// was lost; counted, the first of each kept.
struct answer_faults {
  uint64_t non200 = 0, transport = 0;
  std::string first_non200, first_transport;

  // Counts the answer if it is a fault; true when it is a 200.
  bool ok(const publisher::answer& a);
  // non_200 and transport_errors, and the first of each when there was one.
  void add_to(json_out& j) const;
  // Why the run failed, or "".
  std::string error() const;
};

} // namespace loadgen
