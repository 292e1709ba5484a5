// The live console: GET /console (one self-contained page: HTML, CSS and JS
// in the binary, no external resources) and GET /console/events, a
// Server-Sent Events stream of one JSON snapshot a second (connections,
// users, rooms, the busiest rooms, publishes and deliveries per second, slow
// clients dropped, the RTM profiles, the cluster).
//
// Both need parley.console.key (or, when that is empty, parley.api.key) as
// ?key=KEY or `Authorization: apikey KEY`: missing or wrong → 401, no key
// configured → 403, both with a JSON error body.
//
// The I/O thread owns the streams (at most max_streams) and one timer for all
// of them. Counters are read on the I/O thread (atomics); what the actors know
// (users online, rooms, members of the busiest rooms, RTM profile states) is
// asked by a short-lived actor that posts the finished snapshot back, so the
// I/O thread never waits. While a stream is still writing, only the newest
// snapshot waits for it: a slow console costs at most one snapshot of memory.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "actors/runtime.hpp"
#include "net/http_session.hpp"

namespace parley::net {

class console {
public:
  static constexpr size_t max_streams = 16;
  static constexpr size_t busiest_rooms = 10;

  console(asio::io_context& ioc, runtime_ptr rt);
  ~console();

  // Requests whose path starts with /console.
  void handle(const std::shared_ptr<http_session>& hs, request&& req);

  // Closes every event stream and stops the timer (shutdown).
  void close_all();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

// The page (net/console_page.cpp).
extern const char* const console_page;

} // namespace parley::net
