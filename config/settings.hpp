// Parley's options: declared once in config/settings.cpp (name, default, one line
// of documentation), read from config/caf-application.conf and the command line
// through CAF's actor_system_config, validated, and handed to the rest of the
// program as this plain struct.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/config_value.hpp>

namespace parley {

using duration = std::chrono::milliseconds;

// One RTM upstream profile: a session (cookies) or credentials to get one.
struct rtm_profile {
  std::string id;
  std::string cookies;   // Cookie header value, e.g. "tld-token=...; other=..."
  std::string password;  // for parley.rtm.login-url
  int64_t expires_at = 0; // unix seconds when the session ends; 0 = unknown
};

struct rtm_settings {
  std::string url;        // ws:// or wss://; RTM off when empty
  std::string api_url;    // {api-url}/clients/{id}
  std::string login_url;  // POST {"profileId","password"} → Set-Cookie
  std::string origin;
  duration backoff_base{1000};
  duration backoff_max{30000};
  uint64_t backoff_jitter = 20;   // percent, ± around each delay
  duration dedup_ttl{30000};
  uint64_t dedup_max = 100000;    // ids remembered at most
  duration client_cache_ttl{600000};
  duration client_wait{250};      // longest a toast waits for the profile API
  duration connect_timeout{10000};
  std::vector<rtm_profile> profiles;
};

struct settings {
  struct {
    std::string address = "127.0.0.1";
    uint16_t port = 3000;
  } http;
  struct {
    duration ping_interval{25000};
    duration ping_timeout{20000};
    duration upgrade_timeout{10000};
    uint64_t max_payload = 1000000;
  } engineio;
  struct {
    std::vector<std::string> namespaces{"/", "/messages"};
    duration connect_timeout{45000};
  } socketio;
  struct {
    std::string jwt_secret;
    std::string jwt_public_key_file;
    std::string issuer;
    std::string audience;
    bool allow_anonymous_dev = false;
    // disconnect a socket when its token's exp passes (as Centrifugo does)
    bool disconnect_on_expiry = true;
  } auth;
  struct {
    std::string key;
  } api;
  struct {
    // the key of /console and /console/events; empty = parley.api.key
    std::string key;
  } console;
  struct {
    std::vector<std::string> origins;
  } cors;
  struct {
    uint64_t max_connections = 100000;
    uint64_t max_write_queue = 4u << 20;  // bytes queued for one client
    uint64_t max_rooms_per_socket = 1000;
    uint64_t max_json_depth = 64;         // nesting of any JSON from outside
    uint64_t max_connections_per_ip = 0;  // Engine.IO sessions from one address; 0 = no limit
    uint64_t max_inbound_packets = 256;   // handed to a connection and not yet handled: reading pauses
    uint64_t events_per_second = 100;     // per socket; 0 = no limit
    uint64_t events_burst = 200;          // events a socket may send at once
  } limits;
  struct {
    // POST /api/v1/debug/kill/{actor}: makes a long-lived actor fail (tests of supervision)
    bool fault_injection = false;
  } debug;
  struct {
    uint64_t directory_shards = 8;
  } rooms;
  struct {
    // user:online / user:offline to every socket of the namespaces (seed 001's
    // client.broadcast.emit); off, presence is only counted (API, metrics).
    bool broadcast = true;
  } presence;
  struct {
    std::string level = "info";
  } log;
  struct {
    std::string backend = "sqlite";  // "sqlite" | "memory"
    std::string path = "data/parley.db";
    std::string sync = "full";       // "full" | "normal"
    duration commit_interval{2};     // records arriving within this share a transaction
    uint64_t commit_batch = 512;     // ... up to this many
    uint64_t max_per_room = 10000;   // records kept per room; 0 = no limit
    duration max_age{std::chrono::hours(24 * 7)}; // 0 = no limit
    std::vector<std::string> rooms{"*"}; // rooms whose events are stored (names, "prefix*", "*")
    // never stored, delivered as before (no offset)
    std::vector<std::string> volatile_events{"typing", "typing:start", "typing:stop", "typing_start", "typing_stop", "user:online",
                                             "user:offline"};
  } store;
  struct {
    bool enabled = true;                      // offsets on stored events, {sid, pid} sessions
    duration max_disconnection{std::chrono::minutes(2)};
    uint64_t max_replay = 100000;             // missed events replayed at most (else a new session)
  } recovery;
  struct {
    // plain WebSocket endpoints (net/plainws.hpp): /ws and seed 003's dialog sockets
    bool enabled = true;
    std::string validate_url;               // asked about site tokens and assistant ids
    duration validate_timeout{2000};
    duration validate_cache_ttl{60000};     // refusals: a tenth of it
    std::vector<std::string> site_tokens;   // admitted without asking (development)
    std::vector<std::string> assistants;    // likewise
    uint64_t max_per_dialog = 50;
    uint64_t max_total = 1000;
    duration ping_interval{25000};
    duration ping_timeout{40000};
    uint64_t max_message = 65536;
  } plainws;
  rtm_settings rtm;
  // The development profile (tools/run): see tools/parley/main.cpp.
  bool dev = false;
};

// The actor_system_config that knows every `parley.*` option.
class parley_config : public caf::actor_system_config {
public:
  parley_config();
  // Every option CAF and Parley know, to check the command line against.
  const caf::config_option_set& options() const { return custom_options_; }
};

// Parses one command-line argument "parley.GROUP.NAME[=VALUE]" (without the
// leading "--") as the option's type (a boolean alone means true); on success
// appends the key and value to `out` and returns "", else a sentence naming
// the option and the accepted form.
std::string parse_cli_option(const caf::config_option_set& opts, std::string_view arg,
                             std::vector<std::pair<std::string, caf::config_value>>& out);

// Every parley.* option as --help shows it, in declaration order.
struct option_doc {
  std::string key;          // "parley.http.port"
  std::string placeholder;  // "<port>"
  std::string doc;          // one line
  std::string value;        // its value in `values` (by default: the default), config-file syntax
  std::string accepted;     // "a port number (0..65535)"
};
std::vector<option_doc> option_docs(const settings& values = settings{});

// Reads and checks every option; the error text names the offending option.
std::variant<settings, std::string> read_settings(const caf::actor_system_config& cfg);

// "2026-11-24T10:00:00Z" (fraction and ±hh:mm offset allowed) → unix seconds.
std::optional<int64_t> parse_iso8601(std::string_view text);
std::string format_iso8601_ms(int64_t unix_ms);
// Now, in unix milliseconds (the wall clock).
int64_t unix_ms();

// The default config file: config/caf-application.conf of the source tree.
std::string default_config_file();

} // namespace parley
