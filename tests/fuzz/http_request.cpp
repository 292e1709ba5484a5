// http_request: HTTP/1.1 requests as net/http_session.cpp reads them: Beast's
// request_parser<string_body> with Parley's header limit and a 1,000,000-byte
// body limit, fed from a flat_buffer capped at net::read_buffer_limit that
// reads arrive into piece by piece, several requests per connection
// (pipelining) until the first error, a Connection: close or an upgrade.
// Exceptions are not caught: one escaping is a finding.
//
// Input: byte 0 chooses the size of each read; the rest is what the client
// sends, where 0xff HI LO C stands for HI*256+LO copies of byte C (at least
// one; 80 KiB in all at most), so that a small input can carry a header or
// trailer of 64 KiB.
#include <algorithm>
#include <cstring>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "fuzz_check.hpp"
#include "net/engineio_server.hpp"
#include "net/http_session.hpp"

using namespace parley;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr uint64_t body_limit = 1000000;
// Enough for a 64 KiB trailer field and past every buffer limit; bodies are
// refused on their declared sizes, before their bytes arrive.
constexpr size_t max_expanded = 80u << 10;
constexpr size_t reads[16] = {1, 2, 3, 5, 8, 13, 64, 100, 512, 1000, 1460, 4096, 8192, 16384, 65536, 1u << 20};
constexpr size_t max_requests = 64;

std::string expand(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size() && out.size() < max_expanded; ++i) {
    if (static_cast<uint8_t>(in[i]) == 0xff && i + 3 < in.size()) {
      size_t n = (size_t{static_cast<uint8_t>(in[i + 1])} << 8) | static_cast<uint8_t>(in[i + 2]);
      out.append(std::min(std::max<size_t>(n, 1), max_expanded - out.size()), in[i + 3]);
      i += 3;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// What the router looks at first.
void look_at(const net::request& req) {
  FUZZ_CHECK(req.body().size() <= body_limit);
  auto target = req.target();
  for (auto name : {"transport", "sid", "EIO", "token", "userId"})
    if (auto v = eio::query_param(target, name))
      FUZZ_CHECK(v->size() <= target.size());
  (void)beast::websocket::is_upgrade(req);
  (void)req.keep_alive();
  (void)req.find(http::field::authorization);
  (void)req.find(http::field::origin);
}

void new_parser(std::optional<http::request_parser<http::string_body>>& p) {
  p.emplace();
  p->header_limit(net::header_limit);
  p->body_limit(body_limit);
  p->eager(true); // as http::async_read sets it
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto wire = expand(fuzz::as_text(data + 1, size - 1));
  // At most about 4096 reads, so that a large input stays quick.
  size_t piece = std::max(reads[data[0] & 15], wire.size() / 4096);

  beast::flat_buffer buffer{net::read_buffer_limit};
  std::optional<http::request_parser<http::string_body>> parser;
  new_parser(parser);
  size_t off = 0, requests = 0;
  bool need_more = true; // as http::read_some: after need_more, read before parsing again
  beast::error_code ec;
  // Each turn reads, or parses something, or ends: bounded by the input.
  for (size_t turn = 0;; ++turn) {
    FUZZ_CHECK(turn <= 2 * wire.size() + 4 * max_requests + 4);
    FUZZ_CHECK(buffer.size() <= net::read_buffer_limit);
    if (!need_more && buffer.size() > 0) {
      size_t used = parser->put(buffer.data(), ec);
      FUZZ_CHECK(used <= buffer.size());
      buffer.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        need_more = true;
      } else if (ec) {
        break; // the session answers 413 to body_limit, else closes
      } else if (parser->is_done()) {
        auto req = parser->release();
        look_at(req);
        if (!req.keep_alive() || beast::websocket::is_upgrade(req) || ++requests == max_requests)
          break;
        new_parser(parser);
        continue;
      } else {
        FUZZ_CHECK(used > 0); // else http::read would spin
        continue;
      }
    }
    if (off == wire.size()) {
      if (parser->got_some()) {
        parser->put_eof(ec); // the peer's EOF
        FUZZ_CHECK(ec || parser->is_done());
        if (!ec)
          look_at(parser->release());
      }
      break;
    }
    // One read, as http::read_some does it: never past the buffer's cap.
    size_t room = beast::read_size(buffer, 65536);
    if (room == 0)
      break; // http::error::buffer_overflow: the session closes
    size_t n = std::min({piece, room, wire.size() - off});
    auto mb = buffer.prepare(n);
    std::memcpy(mb.data(), wire.data() + off, n);
    buffer.commit(n);
    off += n;
    need_more = false;
  }
  return 0;
}
