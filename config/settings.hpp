// Parley's options: declared once in config/settings.cpp (name, default, one line
// of documentation), read from config/caf-application.conf and the command line
// through CAF's actor_system_config, validated, and handed to the rest of the
// program as this plain struct.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <caf/actor_system_config.hpp>

namespace parley {

using duration = std::chrono::milliseconds;

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
  } auth;
  struct {
    std::string key;
  } api;
  struct {
    std::vector<std::string> origins;
  } cors;
  struct {
    uint64_t max_connections = 100000;
    uint64_t max_write_queue = 4u << 20;  // bytes queued for one client
    uint64_t max_rooms_per_socket = 1000;
  } limits;
  struct {
    uint64_t directory_shards = 8;
  } rooms;
  struct {
    std::string level = "info";
  } log;
};

// The actor_system_config that knows every `parley.*` option.
class parley_config : public caf::actor_system_config {
public:
  parley_config();
};

// Reads and checks every option; the error text names the offending option.
std::variant<settings, std::string> read_settings(const caf::actor_system_config& cfg);

// The default config file: config/caf-application.conf of the source tree.
std::string default_config_file();

} // namespace parley
