// Record ids: 128 random bits from OpenSSL, as 32 lowercase hex characters.
#include "store/record.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include <openssl/rand.h>
#include <pthread.h>

namespace parley::store {

namespace {

// Bumped in a forked child: the pool it inherited holds the bytes its parent
// is about to use, so the child draws its own.
std::atomic<unsigned> forks{0};

void forked() {
  forks.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

std::string new_record_id() {
  // Random bytes are drawn 4 KiB at a time: one RAND_bytes call (with its
  // locking and fork check) per 256 ids instead of per id, which matters on
  // the publish path where every accepted message gets one.
  constexpr size_t id_bytes = 16;
  thread_local unsigned char pool[4096];
  thread_local size_t used = sizeof(pool);
  thread_local unsigned pool_forks = 0;
  static const bool watching = pthread_atfork(nullptr, nullptr, forked) == 0;
  (void) watching;
  if (auto n = forks.load(std::memory_order_relaxed); n != pool_forks) {
    pool_forks = n;
    used = sizeof(pool);
  }
  if (used + id_bytes > sizeof(pool)) {
    // An id from stale or missing randomness could collide with another
    // node's: the publish fails instead.
    if (RAND_bytes(pool, sizeof(pool)) != 1)
      throw std::runtime_error("RAND_bytes failed: no random bytes for a record id");
    used = 0;
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(id_bytes * 2, '0');
  for (size_t i = 0; i < id_bytes; ++i) {
    auto b = pool[used + i];
    id[2 * i] = hex[b >> 4];
    id[2 * i + 1] = hex[b & 0x0f];
  }
  std::fill(pool + used, pool + used + id_bytes, 0); // drawn bytes are not kept around
  used += id_bytes;
  return id;
}

std::optional<uint64_t> parse_offset(std::string_view text) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  return std::stoull(std::string{text});
}

} // namespace parley::store
