// Process-wide counters for /metrics. Each is written by many actors and the
// I/O thread and read only by the metrics endpoint: relaxed atomics, no locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley {

struct metrics {
  std::atomic<int64_t> sessions{0};         // Engine.IO sessions open
  std::atomic<int64_t> sockets{0};          // Socket.IO sockets connected
  std::atomic<int64_t> rooms{0};            // room actors alive
  std::atomic<uint64_t> connects{0};        // sockets accepted since start
  std::atomic<uint64_t> connect_refused{0}; // CONNECT_ERRORs sent
  std::atomic<uint64_t> packets_in{0};      // Socket.IO packets from clients
  std::atomic<uint64_t> packets_out{0};     // Socket.IO packets to single clients
  std::atomic<uint64_t> fanouts{0};         // room publishes
  std::atomic<uint64_t> deliveries{0};      // frames handed to receivers by fan-out
  std::atomic<uint64_t> ws_writes{0};       // gathered WebSocket writes (one per system call)
  std::atomic<uint64_t> slow_clients_dropped{0};
  std::atomic<uint64_t> invalid_payloads{0};
  std::atomic<uint64_t> api_requests{0};
  std::atomic<int64_t> rtm_connected{0};       // RTM upstreams connected
  std::atomic<uint64_t> rtm_reconnects{0};     // upstream connections after a profile's first
  std::atomic<uint64_t> rtm_events{0};         // events received from upstreams
  std::atomic<uint64_t> rtm_duplicates{0};     // dropped by the dedup
  std::atomic<uint64_t> rtm_malformed{0};      // frames or events skipped
  std::atomic<uint64_t> rtm_auth_failures{0};  // sessions refused / logins failed
  std::atomic<uint64_t> rtm_client_api_failures{0}; // profile API errors and timeouts
  std::atomic<uint64_t> store_records{0};      // records committed to the message log
  std::atomic<uint64_t> store_commits{0};      // transactions committed
  std::atomic<uint64_t> store_failures{0};     // records refused: store unavailable or commit failed
  std::atomic<uint64_t> store_trimmed{0};      // records removed by retention
  std::atomic<int64_t> store_available{0};     // 1 while the store is open
  std::atomic<int64_t> plain_connections{0};   // plain WebSocket connections open
  std::atomic<uint64_t> plain_refused{0};      // plain WebSocket upgrades refused (401/403) or closed at a limit

  // Prometheus text exposition.
  std::string render() const;
};

metrics& counters();

// A Prometheus label value, quoted, escaped per the text exposition format
// (backslash, double quote and line feed; every other byte as it is).
void append_label_value(std::string& out, std::string_view value);

} // namespace parley
