#include "config/settings.hpp"

#include "store/record.hpp"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>
#include <set>
#include <type_traits>

#include <caf/config_option_adder.hpp>
#include <caf/config_value.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/settings.hpp>
#include <caf/timespan.hpp>

namespace parley {

namespace {

using str_list = std::vector<std::string>;

// One row per option: where it lives, what it means, and how it lands in `settings`.
struct option_row {
  const char* group;  // e.g. "parley.http"
  const char* name;   // e.g. "port"
  const char* doc;
  std::string accepted;     // the accepted form, e.g. "a port number (0..65535)"
  std::string placeholder;  // for --help, e.g. "<port>"
  // declares the option on a config (type and CLI binding)
  std::function<void(caf::config_option_set&)> declare;
  // reads it from the merged config into settings; returns an error text or ""
  std::function<std::string(const caf::actor_system_config&, const std::string& key, settings&)> read;
  // its value in `settings`, in config-file syntax
  std::function<std::string(const settings&)> show;
  // the text after "--key=" (nullopt: no "=") as a config value; returns an error text or ""
  std::function<std::string(const caf::config_option_set&, const std::string& key,
                            const std::optional<std::string>& text, caf::config_value& out)>
    parse_cli;
};

template <class T>
std::string type_name();
template <> std::string type_name<std::string>() { return "a string"; }
template <> std::string type_name<uint16_t>() { return "a port number (0..65535)"; }
template <> std::string type_name<uint64_t>() { return "a non-negative integer"; }
template <> std::string type_name<bool>() { return "true or false"; }
template <> std::string type_name<caf::timespan>() { return "a duration such as 250ms, 5s or 1min"; }
template <> std::string type_name<str_list>() { return "a list of strings such as [\"a\", \"b\"]"; }

template <class T>
std::string placeholder();
template <> std::string placeholder<std::string>() { return "<string>"; }
template <> std::string placeholder<uint16_t>() { return "<port>"; }
template <> std::string placeholder<uint64_t>() { return "<n>"; }
template <> std::string placeholder<bool>() { return "<true|false>"; }
template <> std::string placeholder<caf::timespan>() { return "<duration>"; }
template <> std::string placeholder<str_list>() { return "<list>"; }

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string show_value(const std::string& v) { return quoted(v); }
std::string show_value(uint16_t v) { return std::to_string(v); }
std::string show_value(uint64_t v) { return std::to_string(v); }
std::string show_value(bool v) { return v ? "true" : "false"; }
std::string show_value(caf::timespan v) {
  using namespace std::chrono;
  auto ns = v.count();
  if (ns == 0)
    return "0s";
  const std::pair<int64_t, const char*> units[] = {
    {duration_cast<nanoseconds>(hours(1)).count(), "h"},
    {duration_cast<nanoseconds>(minutes(1)).count(), "min"},
    {duration_cast<nanoseconds>(seconds(1)).count(), "s"},
    {duration_cast<nanoseconds>(milliseconds(1)).count(), "ms"},
    {duration_cast<nanoseconds>(microseconds(1)).count(), "us"},
  };
  for (auto& [size, suffix] : units)
    if (ns % size == 0)
      return std::to_string(ns / size) + suffix;
  return std::to_string(ns) + "ns";
}
std::string show_value(const str_list& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i)
    out += (i ? ", " : "") + quoted(v[i]);
  return out + "]";
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

template <class T, class Get, class Assign>
option_row row(const char* group, const char* name, const char* doc, Get get, Assign assign) {
  option_row r;
  r.group = group;
  r.name = name;
  r.doc = doc;
  r.accepted = type_name<T>();
  r.placeholder = placeholder<T>();
  r.declare = [group, name, doc](caf::config_option_set& opts) {
    caf::config_option_adder{opts, group}.add<T>(name, doc);
  };
  r.read = [assign](const caf::actor_system_config& cfg, const std::string& key,
                    settings& out) -> std::string {
    auto raw = caf::get_if(&cfg.content, key);
    if (raw == nullptr)
      return {};
    auto val = caf::get_if<T>(&cfg.content, key);
    if (!val)
      return "invalid value for " + key + ": expected " + type_name<T>() + ", got "
             + caf::deep_to_string(*raw);
    return assign(out, *val);
  };
  r.show = [get](const settings& s) { return show_value(T{get(s)}); };
  r.parse_cli = [](const caf::config_option_set& opts, const std::string& key,
                   const std::optional<std::string>& text, caf::config_value& out) -> std::string {
    if constexpr (std::is_same_v<T, bool>) {
      // A flag alone means true; true/false (also yes/no, on/off, 1/0) set it either way.
      auto word = text ? lower(*text) : std::string{"true"};
      if (word == "true" || word == "yes" || word == "on" || word == "1")
        out = caf::config_value{true};
      else if (word == "false" || word == "no" || word == "off" || word == "0")
        out = caf::config_value{false};
      else
        return "invalid value for " + key + ": expected true or false, got " + quoted(*text);
      return {};
    } else {
      if (!text)
        return "missing value for " + key + ": expected --" + key + "=" + placeholder<T>() + " ("
               + type_name<T>() + ")";
      // (qualified_name_lookup splits at the first dot: "parley" / "http.port")
      auto opt = opts.qualified_name_lookup(key.substr(0, key.rfind('.')), key.substr(key.rfind('.') + 1));
      auto val = opt ? opt->parse(*text) : caf::expected<caf::config_value>{caf::sec::invalid_argument};
      if (!val || !caf::get_if<T>(&*val))
        return "invalid value for " + key + ": expected " + type_name<T>() + ", got " + quoted(*text);
      out = std::move(*val);
      return {};
    }
  };
  return r;
}

duration to_ms(caf::timespan t) {
  return std::chrono::duration_cast<duration>(t);
}

std::string positive(const char* what, caf::timespan t) {
  return t.count() > 0 ? std::string{} : std::string{what} + " must be greater than zero";
}

std::string check_url(const char* key, const std::string& v, bool websocket) {
  if (v.empty())
    return {};
  auto scheme = v.substr(0, v.find(':'));
  bool ok = websocket ? (scheme == "ws" || scheme == "wss") : (scheme == "http" || scheme == "https");
  if (!ok || v.find("://") == std::string::npos || v.size() <= scheme.size() + 3)
    return std::string{"invalid value for "} + key + ": \"" + v + "\" is not an absolute "
           + (websocket ? "ws:// or wss://" : "http:// or https://") + " URL";
  return {};
}

// parley.rtm.profiles: a list of maps {id=..., cookies="...", password="...", expires-at="ISO8601"}.
std::string read_profiles(const caf::actor_system_config& cfg, settings& out) {
  const char* key = "parley.rtm.profiles";
  auto raw = caf::get_if(&cfg.content, key);
  if (!raw)
    return {};
  auto list = caf::get_if<caf::config_value::list>(raw);
  if (!list)
    return std::string{"invalid value for "} + key + ": expected a list of {id=..., cookies=\"...\"|password=\"...\"}";
  for (size_t i = 0; i < list->size(); ++i) {
    auto where = std::string{key} + "[" + std::to_string(i) + "]";
    auto dict = caf::get_if<caf::config_value::dictionary>(&(*list)[i]);
    if (!dict)
      return "invalid value for " + where + ": expected {id=..., cookies=\"...\"|password=\"...\"}";
    rtm_profile p;
    for (auto& [k, v] : *dict) {
      if (k == "id") {
        if (auto s = caf::get_if<std::string>(&v))
          p.id = *s;
        else if (auto n = caf::get_if<int64_t>(&v))
          p.id = std::to_string(*n);
      } else if (k == "cookies" || k == "password" || k == "expires-at") {
        auto s = caf::get_if<std::string>(&v);
        if (!s)
          return "invalid value for " + where + "." + k + ": expected a string";
        if (k == "cookies")
          p.cookies = *s;
        else if (k == "password")
          p.password = *s;
        else if (auto t = parse_iso8601(*s))
          p.expires_at = *t;
        else
          return "invalid value for " + where + ".expires-at: expected an ISO 8601 time";
      } else {
        return "unknown option " + where + "." + k;
      }
    }
    if (p.id.empty())
      return "invalid value for " + where + ": id is required";
    if (p.cookies.empty() && p.password.empty())
      return "invalid value for " + where + ": cookies or password is required";
    out.rtm.profiles.push_back(std::move(p));
  }
  return {};
}

const std::vector<option_row>& rows() {
  static const std::vector<option_row> all = {
    row<std::string>("parley.http", "address", "listen address",
                     [](const settings& s) { return s.http.address; },
                     [](settings& s, const std::string& v) { s.http.address = v; return std::string{}; }),
    row<uint16_t>("parley.http", "port", "listen port; 0 picks a free one",
                  [](const settings& s) { return s.http.port; },
                  [](settings& s, uint16_t v) { s.http.port = v; return std::string{}; }),
    row<caf::timespan>("parley.engineio", "ping-interval", "server ping period",
                       [](const settings& s) { return s.engineio.ping_interval; },
                       [](settings& s, caf::timespan v) {
                         s.engineio.ping_interval = to_ms(v);
                         return positive("parley.engineio.ping-interval", v);
                       }),
    row<caf::timespan>("parley.engineio", "ping-timeout", "close when no pong within this",
                       [](const settings& s) { return s.engineio.ping_timeout; },
                       [](settings& s, caf::timespan v) {
                         s.engineio.ping_timeout = to_ms(v);
                         return positive("parley.engineio.ping-timeout", v);
                       }),
    row<caf::timespan>("parley.engineio", "upgrade-timeout",
                       "abandon a polling→websocket upgrade not completed within this",
                       [](const settings& s) { return s.engineio.upgrade_timeout; },
                       [](settings& s, caf::timespan v) {
                         s.engineio.upgrade_timeout = to_ms(v);
                         return positive("parley.engineio.upgrade-timeout", v);
                       }),
    row<uint64_t>("parley.engineio", "max-payload", "bytes per HTTP request / WebSocket message",
                  [](const settings& s) { return s.engineio.max_payload; },
                  [](settings& s, uint64_t v) {
                    s.engineio.max_payload = v;
                    return v >= 64 ? std::string{}
                                   : std::string{"parley.engineio.max-payload must be at least 64"};
                  }),
    row<str_list>("parley.socketio", "namespaces", "namespaces clients may connect to",
                  [](const settings& s) { return s.socketio.namespaces; },
                  [](settings& s, const str_list& v) {
                    s.socketio.namespaces = v;
                    for (auto& n : v)
                      if (n.empty() || n[0] != '/')
                        return "invalid value for parley.socketio.namespaces: \"" + n
                               + "\" does not start with /";
                    return std::string{};
                  }),
    row<caf::timespan>("parley.socketio", "connect-timeout",
                       "close an Engine.IO session that joins no namespace within this",
                       [](const settings& s) { return s.socketio.connect_timeout; },
                       [](settings& s, caf::timespan v) {
                         s.socketio.connect_timeout = to_ms(v);
                         return positive("parley.socketio.connect-timeout", v);
                       }),
    row<std::string>("parley.auth", "jwt-secret", "HS256 key",
                     [](const settings& s) { return s.auth.jwt_secret; },
                     [](settings& s, const std::string& v) { s.auth.jwt_secret = v; return std::string{}; }),
    row<std::string>("parley.auth", "jwt-public-key-file", "RS256/ES256 public key (PEM file)",
                     [](const settings& s) { return s.auth.jwt_public_key_file; },
                     [](settings& s, const std::string& v) {
                       s.auth.jwt_public_key_file = v;
                       return std::string{};
                     }),
    row<std::string>("parley.auth", "issuer", "required iss claim when set",
                     [](const settings& s) { return s.auth.issuer; },
                     [](settings& s, const std::string& v) { s.auth.issuer = v; return std::string{}; }),
    row<std::string>("parley.auth", "audience", "required aud claim when set",
                     [](const settings& s) { return s.auth.audience; },
                     [](settings& s, const std::string& v) { s.auth.audience = v; return std::string{}; }),
    row<bool>("parley.auth", "allow-anonymous-dev",
              "accept ?userId= without a token (development only)",
              [](const settings& s) { return s.auth.allow_anonymous_dev; },
              [](settings& s, bool v) { s.auth.allow_anonymous_dev = v; return std::string{}; }),
    row<std::string>("parley.api", "key", "key for the backend HTTP API; API disabled when unset",
                     [](const settings& s) { return s.api.key; },
                     [](settings& s, const std::string& v) { s.api.key = v; return std::string{}; }),
    row<bool>("parley", "dev",
              "development profile: loopback only, a random secret and API key for this run, "
              "CORS for http://localhost:* and http://127.0.0.1:*, /demo",
              [](const settings& s) { return s.dev; },
              [](settings& s, bool v) { s.dev = v; return std::string{}; }),
    row<std::string>("parley.console", "key", "key for /console (?key= or Authorization: apikey KEY); empty = parley.api.key",
                     [](const settings& s) { return s.console.key; },
                     [](settings& s, const std::string& v) { s.console.key = v; return std::string{}; }),
    row<str_list>("parley.cors", "origins",
                  "allowed browser origins (credentials allowed): \"*\", \"https://host\", \"http://host:*\" (any port)",
                  [](const settings& s) { return s.cors.origins; },
                  [](settings& s, const str_list& v) { s.cors.origins = v; return std::string{}; }),
    row<uint64_t>("parley.limits", "max-connections", "Engine.IO sessions on this node",
                  [](const settings& s) { return s.limits.max_connections; },
                  [](settings& s, uint64_t v) { s.limits.max_connections = v; return std::string{}; }),
    row<uint64_t>("parley.limits", "max-write-queue",
                  "bytes queued for one client before it is disconnected as too slow",
                  [](const settings& s) { return s.limits.max_write_queue; },
                  [](settings& s, uint64_t v) {
                    s.limits.max_write_queue = v;
                    return v >= 1024 ? std::string{}
                                     : std::string{"parley.limits.max-write-queue must be at least 1024"};
                  }),
    row<uint64_t>("parley.limits", "max-rooms-per-socket", "rooms one socket may be in",
                  [](const settings& s) { return s.limits.max_rooms_per_socket; },
                  [](settings& s, uint64_t v) { s.limits.max_rooms_per_socket = v; return std::string{}; }),
    row<uint64_t>("parley.limits", "max-json-depth",
                  "deepest nesting of arrays/objects accepted in any JSON from outside",
                  [](const settings& s) { return s.limits.max_json_depth; },
                  [](settings& s, uint64_t v) {
                    s.limits.max_json_depth = v;
                    return v >= 2 && v <= 1000
                             ? std::string{}
                             : std::string{"parley.limits.max-json-depth must be within 2..1000"};
                  }),
    row<uint64_t>("parley.limits", "max-connections-per-ip",
                  "Engine.IO sessions one client address may hold; 0 = no limit",
                  [](const settings& s) { return s.limits.max_connections_per_ip; },
                  [](settings& s, uint64_t v) { s.limits.max_connections_per_ip = v; return std::string{}; }),
    row<uint64_t>("parley.limits", "max-inbound-packets",
                  "packets of one client waiting to be handled before its socket is no longer read",
                  [](const settings& s) { return s.limits.max_inbound_packets; },
                  [](settings& s, uint64_t v) {
                    s.limits.max_inbound_packets = v;
                    return v >= 2 && v <= 1000000
                             ? std::string{}
                             : std::string{"parley.limits.max-inbound-packets must be within 2..1000000"};
                  }),
    row<uint64_t>("parley.limits", "events-per-second",
                  "events one socket may send per second, sustained; 0 = no limit",
                  [](const settings& s) { return s.limits.events_per_second; },
                  [](settings& s, uint64_t v) { s.limits.events_per_second = v; return std::string{}; }),
    row<uint64_t>("parley.limits", "events-burst",
                  "events one socket may send at once above the sustained rate",
                  [](const settings& s) { return s.limits.events_burst; },
                  [](settings& s, uint64_t v) {
                    s.limits.events_burst = v;
                    return v >= 1 ? std::string{} : std::string{"parley.limits.events-burst must be at least 1"};
                  }),
    row<bool>("parley.auth", "disconnect-on-expiry",
              "disconnect a socket when its token's exp passes",
              [](const settings& s) { return s.auth.disconnect_on_expiry; },
              [](settings& s, bool v) { s.auth.disconnect_on_expiry = v; return std::string{}; }),
    row<bool>("parley.debug", "fault-injection",
              "enable POST /api/v1/debug/kill/{actor} (tests of supervision; never in production)",
              [](const settings& s) { return s.debug.fault_injection; },
              [](settings& s, bool v) { s.debug.fault_injection = v; return std::string{}; }),
    row<bool>("parley.presence", "broadcast",
              "send user:online / user:offline to every socket of the namespaces",
              [](const settings& s) { return s.presence.broadcast; },
              [](settings& s, bool v) { s.presence.broadcast = v; return std::string{}; }),
    row<uint64_t>("parley.rooms", "directory-shards", "room directory actors (rooms hashed over them)",
                  [](const settings& s) { return s.rooms.directory_shards; },
                  [](settings& s, uint64_t v) {
                    s.rooms.directory_shards = v;
                    return v >= 1 && v <= 256
                             ? std::string{}
                             : std::string{"parley.rooms.directory-shards must be within 1..256"};
                  }),
    row<std::string>("parley.rtm", "url", "upstream WebSocket (ws:// or wss://); RTM off when unset",
                     [](const settings& s) { return s.rtm.url; },
                     [](settings& s, const std::string& v) {
                       s.rtm.url = v;
                       return check_url("parley.rtm.url", v, true);
                     }),
    row<std::string>("parley.rtm", "api-url", "base of the upstream profile API ({api-url}/clients/{id})",
                     [](const settings& s) { return s.rtm.api_url; },
                     [](settings& s, const std::string& v) {
                       s.rtm.api_url = v;
                       return check_url("parley.rtm.api-url", v, false);
                     }),
    row<std::string>("parley.rtm", "login-url", "where profile credentials are exchanged for session cookies",
                     [](const settings& s) { return s.rtm.login_url; },
                     [](settings& s, const std::string& v) {
                       s.rtm.login_url = v;
                       return check_url("parley.rtm.login-url", v, false);
                     }),
    row<std::string>("parley.rtm", "origin", "Origin header sent to the upstream",
                     [](const settings& s) { return s.rtm.origin; },
                     [](settings& s, const std::string& v) { s.rtm.origin = v; return std::string{}; }),
    row<caf::timespan>("parley.rtm", "backoff-base", "first reconnect delay, doubled per failure",
                       [](const settings& s) { return s.rtm.backoff_base; },
                       [](settings& s, caf::timespan v) {
                         s.rtm.backoff_base = to_ms(v);
                         return positive("parley.rtm.backoff-base", v);
                       }),
    row<caf::timespan>("parley.rtm", "backoff-max", "longest reconnect delay",
                       [](const settings& s) { return s.rtm.backoff_max; },
                       [](settings& s, caf::timespan v) {
                         s.rtm.backoff_max = to_ms(v);
                         return positive("parley.rtm.backoff-max", v);
                       }),
    row<uint64_t>("parley.rtm", "backoff-jitter", "percent of random spread around each delay (0..100)",
                  [](const settings& s) { return s.rtm.backoff_jitter; },
                  [](settings& s, uint64_t v) {
                    s.rtm.backoff_jitter = v;
                    return v <= 100 ? std::string{} : std::string{"parley.rtm.backoff-jitter must be within 0..100"};
                  }),
    row<caf::timespan>("parley.rtm", "dedup-ttl", "a message/email id seen within this is dropped",
                       [](const settings& s) { return s.rtm.dedup_ttl; },
                       [](settings& s, caf::timespan v) {
                         s.rtm.dedup_ttl = to_ms(v);
                         return positive("parley.rtm.dedup-ttl", v);
                       }),
    row<uint64_t>("parley.rtm", "dedup-max", "ids the dedup remembers at most (oldest forgotten first)",
                  [](const settings& s) { return s.rtm.dedup_max; },
                  [](settings& s, uint64_t v) {
                    s.rtm.dedup_max = v;
                    return v >= 1 ? std::string{} : std::string{"parley.rtm.dedup-max must be at least 1"};
                  }),
    row<caf::timespan>("parley.rtm", "client-cache-ttl", "how long client names/avatars are cached",
                       [](const settings& s) { return s.rtm.client_cache_ttl; },
                       [](settings& s, caf::timespan v) {
                         s.rtm.client_cache_ttl = to_ms(v);
                         return positive("parley.rtm.client-cache-ttl", v);
                       }),
    row<caf::timespan>("parley.rtm", "client-wait",
                       "longest a toast waits for an uncached client's name (then sent without)",
                       [](const settings& s) { return s.rtm.client_wait; },
                       [](settings& s, caf::timespan v) {
                         s.rtm.client_wait = to_ms(v);
                         return std::string{};
                       }),
    row<caf::timespan>("parley.rtm", "connect-timeout", "upstream connect + handshake deadline",
                       [](const settings& s) { return s.rtm.connect_timeout; },
                       [](settings& s, caf::timespan v) {
                         s.rtm.connect_timeout = to_ms(v);
                         return positive("parley.rtm.connect-timeout", v);
                       }),
    row<std::string>("parley.store", "backend", "where messages are kept: sqlite or memory (lost at exit)",
                     [](const settings& s) { return s.store.backend; },
                     [](settings& s, const std::string& v) {
                       s.store.backend = v;
                       return v == "sqlite" || v == "memory"
                                ? std::string{}
                                : "invalid value for parley.store.backend: \"" + v + "\" (sqlite or memory)";
                     }),
    row<std::string>("parley.store", "path", "the SQLite file (its directory is created)",
                     [](const settings& s) { return s.store.path; },
                     [](settings& s, const std::string& v) {
                       s.store.path = v;
                       return v.empty() ? std::string{"parley.store.path must not be empty"} : std::string{};
                     }),
    row<std::string>("parley.store", "sync",
                     "full: a commit is on disk before it is acknowledged; normal: survives a crash of "
                     "Parley, perhaps not of the machine",
                     [](const settings& s) { return s.store.sync; },
                     [](settings& s, const std::string& v) {
                       s.store.sync = v;
                       return v == "full" || v == "normal"
                                ? std::string{}
                                : "invalid value for parley.store.sync: \"" + v + "\" (full or normal)";
                     }),
    row<caf::timespan>("parley.store", "commit-interval", "records arriving within this share one transaction",
                       [](const settings& s) { return s.store.commit_interval; },
                       [](settings& s, caf::timespan v) {
                         s.store.commit_interval = to_ms(v);
                         return std::string{};
                       }),
    row<uint64_t>("parley.store", "commit-batch", "most records in one transaction",
                  [](const settings& s) { return s.store.commit_batch; },
                  [](settings& s, uint64_t v) {
                    s.store.commit_batch = v;
                    return v >= 1 && v <= 100000
                             ? std::string{}
                             : std::string{"parley.store.commit-batch must be within 1..100000"};
                  }),
    row<uint64_t>("parley.store", "max-per-room", "records kept per room, oldest removed first; 0 = no limit",
                  [](const settings& s) { return s.store.max_per_room; },
                  [](settings& s, uint64_t v) { s.store.max_per_room = v; return std::string{}; }),
    row<caf::timespan>("parley.store", "max-age", "records older than this are removed; 0 = kept",
                       [](const settings& s) { return s.store.max_age; },
                       [](settings& s, caf::timespan v) {
                         s.store.max_age = to_ms(v);
                         return std::string{};
                       }),
    row<str_list>("parley.store", "rooms", "rooms whose events are stored: names, \"prefix*\", or \"*\"",
                  [](const settings& s) { return s.store.rooms; },
                  [](settings& s, const str_list& v) { s.store.rooms = v; return std::string{}; }),
    row<str_list>("parley.store", "volatile-events", "events never stored (delivered live only)",
                  [](const settings& s) { return s.store.volatile_events; },
                  [](settings& s, const str_list& v) { s.store.volatile_events = v; return std::string{}; }),
    row<bool>("parley.recovery", "enabled",
              "connection-state recovery: offsets on stored events, sessions restored on reconnect",
              [](const settings& s) { return s.recovery.enabled; },
              [](settings& s, bool v) { s.recovery.enabled = v; return std::string{}; }),
    row<uint64_t>("parley.recovery", "max-replay",
                  "most missed events replayed to a recovering client (more: a new session)",
                  [](const settings& s) { return s.recovery.max_replay; },
                  [](settings& s, uint64_t v) {
                    s.recovery.max_replay = v;
                    return v >= 1 ? std::string{} : std::string{"parley.recovery.max-replay must be at least 1"};
                  }),
    row<caf::timespan>("parley.recovery", "max-disconnection", "how long a session can be recovered",
                       [](const settings& s) { return s.recovery.max_disconnection; },
                       [](settings& s, caf::timespan v) {
                         s.recovery.max_disconnection = to_ms(v);
                         return positive("parley.recovery.max-disconnection", v);
                       }),
    row<bool>("parley.plainws", "enabled", "plain WebSocket endpoints: /ws and /ws/{,site/,widget/}dialogs/{id}",
              [](const settings& s) { return s.plainws.enabled; },
              [](settings& s, bool v) { s.plainws.enabled = v; return std::string{}; }),
    row<std::string>("parley.plainws", "validate-url",
                     "asked (POST) whether a site_token or assistant_id may open a dialog; \"\": nobody",
                     [](const settings& s) { return s.plainws.validate_url; },
                     [](settings& s, const std::string& v) {
                       s.plainws.validate_url = v;
                       return check_url("parley.plainws.validate-url", v, false);
                     }),
    row<caf::timespan>("parley.plainws", "validate-timeout", "longest wait for validate-url's answer",
                       [](const settings& s) { return s.plainws.validate_timeout; },
                       [](settings& s, caf::timespan v) {
                         s.plainws.validate_timeout = to_ms(v);
                         return positive("parley.plainws.validate-timeout", v);
                       }),
    row<caf::timespan>("parley.plainws", "validate-cache-ttl",
                       "how long an answer of validate-url is reused (a refusal: a tenth of it)",
                       [](const settings& s) { return s.plainws.validate_cache_ttl; },
                       [](settings& s, caf::timespan v) {
                         s.plainws.validate_cache_ttl = to_ms(v);
                         return std::string{};
                       }),
    row<str_list>("parley.plainws", "site-tokens", "site tokens admitted without asking validate-url",
                  [](const settings& s) { return s.plainws.site_tokens; },
                  [](settings& s, const str_list& v) { s.plainws.site_tokens = v; return std::string{}; }),
    row<str_list>("parley.plainws", "assistants", "assistant ids admitted without asking validate-url",
                  [](const settings& s) { return s.plainws.assistants; },
                  [](settings& s, const str_list& v) { s.plainws.assistants = v; return std::string{}; }),
    row<uint64_t>("parley.plainws", "max-per-dialog", "plain connections to one dialog at most",
                  [](const settings& s) { return s.plainws.max_per_dialog; },
                  [](settings& s, uint64_t v) {
                    s.plainws.max_per_dialog = v;
                    return v >= 1 ? std::string{} : std::string{"parley.plainws.max-per-dialog must be at least 1"};
                  }),
    row<uint64_t>("parley.plainws", "max-total", "plain connections at most",
                  [](const settings& s) { return s.plainws.max_total; },
                  [](settings& s, uint64_t v) {
                    s.plainws.max_total = v;
                    return v >= 1 ? std::string{} : std::string{"parley.plainws.max-total must be at least 1"};
                  }),
    row<caf::timespan>("parley.plainws", "ping-interval", "a WebSocket ping to each plain connection this often",
                       [](const settings& s) { return s.plainws.ping_interval; },
                       [](settings& s, caf::timespan v) {
                         s.plainws.ping_interval = to_ms(v);
                         return positive("parley.plainws.ping-interval", v);
                       }),
    row<caf::timespan>("parley.plainws", "ping-timeout", "no pong within this after a ping: the connection is closed",
                       [](const settings& s) { return s.plainws.ping_timeout; },
                       [](settings& s, caf::timespan v) {
                         s.plainws.ping_timeout = to_ms(v);
                         return positive("parley.plainws.ping-timeout", v);
                       }),
    row<uint64_t>("parley.plainws", "max-message", "largest message a plain client may send, in bytes",
                  [](const settings& s) { return s.plainws.max_message; },
                  [](settings& s, uint64_t v) {
                    s.plainws.max_message = v;
                    return v >= 64 ? std::string{} : std::string{"parley.plainws.max-message must be at least 64"};
                  }),
    row<std::string>("parley.log", "level", "trace, debug, info, warn, error or off",
                     [](const settings& s) { return s.log.level; },
                     [](settings& s, const std::string& v) {
                       s.log.level = v;
                       static const std::set<std::string> ok{"trace", "debug", "info", "warn", "error", "off"};
                       return ok.count(v) ? std::string{}
                                          : "invalid value for parley.log.level: \"" + v + "\"";
                     }),
  };
  return all;
}

// Every key below `parley` that no row declares is a typo the user wants to hear about.
void find_unknown(const caf::settings& dict, const std::string& prefix,
                  const std::set<std::string>& known, std::string& first_unknown) {
  for (auto& kvp : dict) {
    auto key = prefix + "." + kvp.first;
    if (!first_unknown.empty())
      return;
    if (auto sub = caf::get_if<caf::settings>(&kvp.second)) {
      bool is_group = false;
      for (auto& k : known)
        if (k.compare(0, key.size() + 1, key + ".") == 0)
          is_group = true;
      if (is_group) {
        find_unknown(*sub, key, known, first_unknown);
        continue;
      }
    }
    if (!known.count(key))
      first_unknown = key;
  }
}

} // namespace

parley_config::parley_config() {
  // Serialisable messages (they may cross a node boundary).
  add_message_type<store::record>("parley::store::record");
  add_message_type<std::vector<store::record>>("std::vector<parley::store::record>");
  for (auto& r : rows())
    r.declare(custom_options_);
}

std::variant<settings, std::string> read_settings(const caf::actor_system_config& cfg) {
  settings out;
  std::set<std::string> known;
  for (auto& r : rows()) {
    auto key = std::string{r.group} + "." + r.name;
    known.insert(key);
    if (auto err = r.read(cfg, key, out); !err.empty())
      return err;
  }
  known.insert("parley.rtm.profiles");
  if (auto err = read_profiles(cfg, out); !err.empty())
    return err;
  for (auto& p : out.rtm.profiles)
    if (!p.password.empty() && out.rtm.login_url.empty())
      return "invalid value for parley.rtm.profiles: profile " + p.id
             + " has a password but parley.rtm.login-url is not set";
  if (auto parley = caf::get_if<caf::settings>(&cfg.content, "parley")) {
    std::string unknown;
    find_unknown(*parley, "parley", known, unknown);
    if (!unknown.empty())
      return "unknown option " + unknown;
  }
  return out;
}

std::string parse_cli_option(const caf::config_option_set& opts, std::string_view arg,
                             std::vector<std::pair<std::string, caf::config_value>>& out) {
  auto eq = arg.find('=');
  std::string key{arg.substr(0, eq)};
  std::optional<std::string> text;
  if (eq != std::string_view::npos)
    text = std::string{arg.substr(eq + 1)};
  if (key == "parley.rtm.profiles") {
    const char* form = "[{id=\"...\", cookies=\"...\"}, {id=\"...\", password=\"...\"}]";
    if (!text)
      return "missing value for " + key + ": expected --" + key + "=" + form;
    auto val = caf::config_value::parse(*text);
    if (!val || !caf::holds_alternative<caf::config_value::list>(*val))
      return "invalid value for " + key + ": expected a list such as " + form + ", got " + quoted(*text);
    out.emplace_back(key, std::move(*val));
    return {};
  }
  for (auto& r : rows()) {
    if (key != std::string{r.group} + "." + r.name)
      continue;
    caf::config_value val;
    if (auto err = r.parse_cli(opts, key, text, val); !err.empty())
      return err;
    out.emplace_back(key, std::move(val));
    return {};
  }
  return "unknown option --" + key + " (see parley --help)";
}

std::vector<option_doc> option_docs(const settings& values) {
  std::vector<option_doc> out;
  for (auto& r : rows())
    out.push_back({std::string{r.group} + "." + r.name, r.placeholder, r.doc, r.show(values), r.accepted});
  out.push_back({"parley.rtm.profiles", "<list>",
                 "upstream profiles connected at start: [{id=\"...\", cookies=\"...\"|password=\"...\", "
                 "expires-at=\"ISO 8601\"}, ...]",
                 "[]", "a list of {id=..., cookies=\"...\"|password=\"...\"}"});
  return out;
}

std::optional<int64_t> parse_iso8601(std::string_view text) {
  int y, mo, d, h, mi;
  double sec;
  char rest[16] = {0};
  std::string t{text};
  int n = std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%15s", &y, &mo, &d, &h, &mi, &sec, rest);
  if (n < 6 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = static_cast<int>(sec);
  int64_t secs = timegm(&tm);
  std::string_view zone{rest};
  if (zone.empty() || zone == "Z")
    return secs;
  int zh, zm;
  if ((zone[0] == '+' || zone[0] == '-') && std::sscanf(rest + 1, "%2d:%2d", &zh, &zm) == 2) {
    int64_t off = zh * 3600 + zm * 60;
    return zone[0] == '+' ? secs - off : secs + off;
  }
  return std::nullopt;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string format_iso8601_ms(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

std::string default_config_file() {
  return std::string{PARLEY_SOURCE_DIR} + "/config/caf-application.conf";
}

} // namespace parley
