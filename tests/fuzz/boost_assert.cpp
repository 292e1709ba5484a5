// Boost's assertions in the fuzz build (BOOST_ENABLE_ASSERT_HANDLER): every
// one aborts, so that libFuzzer keeps the input, but for one that is known to
// be too strict. Beast 1.81's parse_chunk_header asserts `n >= 5` when the
// last chunk's line came in a read of its own ("0\r\n", then "\r"): a valid
// body split that way trips it. Later Beast relaxes the assertion (its pull
// request 2861); a release build, like Parley's, goes on and asks for more
// input, and so does this one.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <boost/assert.hpp>

namespace {

bool ends_with(const char* s, const char* tail) {
  size_t n = std::strlen(s), t = std::strlen(tail);
  return n >= t && std::strcmp(s + n - t, tail) == 0;
}

} // namespace

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (std::strcmp(expr, "n >= 5") == 0 && ends_with(file, "boost/beast/http/impl/basic_parser.ipp"))
    return;
  std::fprintf(stderr, "%s:%ld: %s: Boost assertion `%s' failed\n", file, line, function, expr);
  std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
  std::fprintf(stderr, "%s:%ld: %s: Boost assertion `%s' failed: %s\n", file, line, function, expr, msg);
  std::abort();
}

} // namespace boost
