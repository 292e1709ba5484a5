// The per-connection message rate limit (parley.limits.events-per-second,
// events-burst): a token bucket of `burst` tokens refilled at `per_second`.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace parley {

struct rate_bucket {
  enum verdict : uint8_t {
    pass,
    refuse_quietly, // refused; the client was told less than a second ago
    refuse_and_tell, // refused; tell the client (at most once a second)
    disconnect,     // refused more than a burst's worth in a row
  };

  float tokens = 0;
  uint32_t refused = 0;        // refusals since the last message let through
  int64_t refilled_ns = 0;
  int64_t noticed_ns = 0;      // when the client was last told

  // `per_second` 0: no limit.
  verdict take(uint64_t per_second, uint64_t burst) {
    if (per_second == 0)
      return pass;
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
    tokens = static_cast<float>(std::min(static_cast<double>(burst),
                                         tokens + static_cast<double>(now - refilled_ns) * 1e-9
                                                    * static_cast<double>(per_second)));
    refilled_ns = now;
    if (tokens >= 1) {
      tokens -= 1;
      refused = 0;
      return pass;
    }
    if (++refused > burst)
      return disconnect;
    if (now - noticed_ns >= 1000000000) {
      noticed_ns = now;
      return refuse_and_tell;
    }
    return refuse_quietly;
  }
};

} // namespace parley
