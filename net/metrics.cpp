#include "net/metrics.hpp"

namespace parley {

metrics& counters() {
  static metrics m;
  return m;
}

namespace {

template <class T>
void line(std::string& out, const char* name, const char* type, const char* help, const T& v) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += std::to_string(v.load(std::memory_order_relaxed));
  out += '\n';
}

} // namespace

std::string metrics::render() const {
  std::string out;
  line(out, "parley_sessions", "gauge", "Engine.IO sessions open", sessions);
  line(out, "parley_connections", "gauge", "Socket.IO sockets connected", sockets);
  line(out, "parley_rooms", "gauge", "rooms with at least one member", rooms);
  line(out, "parley_connects_total", "counter", "sockets accepted", connects);
  line(out, "parley_connect_refused_total", "counter", "CONNECT_ERROR answers", connect_refused);
  line(out, "parley_packets_in_total", "counter", "Socket.IO packets received", packets_in);
  line(out, "parley_packets_out_total", "counter", "Socket.IO packets sent to one socket", packets_out);
  line(out, "parley_fanouts_total", "counter", "room publishes", fanouts);
  line(out, "parley_fanout_deliveries_total", "counter", "frames delivered by fan-out", deliveries);
  line(out, "parley_ws_writes_total", "counter", "gathered WebSocket writes (frames coalesced per write)", ws_writes);
  line(out, "parley_slow_clients_dropped_total", "counter", "clients dropped for a full write queue",
       slow_clients_dropped);
  line(out, "parley_invalid_payloads_total", "counter", "payloads refused by schema", invalid_payloads);
  line(out, "parley_api_requests_total", "counter", "backend API requests", api_requests);
  line(out, "parley_rtm_upstreams_connected", "gauge", "RTM upstreams connected", rtm_connected);
  line(out, "parley_rtm_reconnects_total", "counter", "RTM upstream reconnections", rtm_reconnects);
  line(out, "parley_rtm_events_total", "counter", "RTM events received", rtm_events);
  line(out, "parley_rtm_duplicates_dropped_total", "counter", "RTM events dropped as duplicates", rtm_duplicates);
  line(out, "parley_rtm_malformed_total", "counter", "RTM frames or events skipped as malformed", rtm_malformed);
  line(out, "parley_rtm_auth_failures_total", "counter", "RTM sessions refused or logins failed", rtm_auth_failures);
  line(out, "parley_rtm_client_api_failures_total", "counter", "RTM profile API failures", rtm_client_api_failures);
  line(out, "parley_store_records_total", "counter", "records committed to the message log", store_records);
  line(out, "parley_store_commits_total", "counter", "message log transactions committed", store_commits);
  line(out, "parley_store_failures_total", "counter", "publishes refused because the store was unavailable",
       store_failures);
  line(out, "parley_store_trimmed_total", "counter", "records removed by retention", store_trimmed);
  line(out, "parley_store_available", "gauge", "1 while the message log is open and writable", store_available);
  line(out, "parley_plain_connections", "gauge", "plain WebSocket connections open", plain_connections);
  line(out, "parley_plain_refused_total", "counter", "plain WebSocket connections refused or closed at a limit",
       plain_refused);
  return out;
}

void append_label_value(std::string& out, std::string_view value) {
  out += '"';
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  out += '"';
}

} // namespace parley
