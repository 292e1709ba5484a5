#include "tools/rtm-sim/sim_state.hpp"

#include <stdexcept>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace parley::rtmsim {

std::string random_hex(size_t bytes) {
  static const char digits[] = "0123456789abcdef";
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    char why[256];
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    throw std::runtime_error{std::string{"RAND_bytes failed: "} + why};
  }
  std::string out;
  out.reserve(bytes * 2);
  for (auto b : raw) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

void sim_state::add_account(const std::string& profile_id, const std::string& password) {
  passwords_[profile_id] = password;
  stats(profile_id);
}

bool sim_state::check_password(const std::string& profile_id, const std::string& password) const {
  auto it = passwords_.find(profile_id);
  return it != passwords_.end() && it->second == password;
}

std::string sim_state::issue_session(const std::string& profile_id) {
  auto token = random_hex(16);
  sessions_[token] = rtm_session{profile_id, sim_clock::now() + session_ttl_, false};
  stats(profile_id);
  return token;
}

const rtm_session* sim_state::find_session(const std::string& token) const {
  auto it = sessions_.find(token);
  return it == sessions_.end() ? nullptr : &it->second;
}

int sim_state::expire_sessions() {
  auto now = sim_clock::now();
  int expired = 0;
  for (auto& [token, s] : sessions_) {
    if (s.valid(now))
      ++expired;
    s.revoked = true;
  }
  return expired;
}

profile_stats& sim_state::stats(const std::string& profile_id) {
  return stats_[profile_id];
}

client_data sim_state::client(const std::string& client_id) const {
  if (auto it = clients_.find(client_id); it != clients_.end())
    return it->second;
  return {"Client " + client_id, "https://rtm-sim.local/avatars/" + client_id + ".png"};
}

void sim_state::set_client(const std::string& client_id, std::optional<std::string> name,
                           std::optional<std::string> avatar) {
  auto data = client(client_id);
  if (name)
    data.name = std::move(*name);
  if (avatar)
    data.avatar = std::move(*avatar);
  clients_[client_id] = std::move(data);
}

std::string sim_state::to_json() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  auto optional_string = [&](const std::optional<std::string>& s) {
    if (s)
      w.String(s->data(), static_cast<rapidjson::SizeType>(s->size()));
    else
      w.Null();
  };
  w.StartObject();
  w.Key("profiles");
  w.StartObject();
  for (auto& [id, st] : stats_) {
    w.Key(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    w.StartObject();
    w.Key("connections");
    w.Int(st.connections);
    w.Key("connectTimes");
    w.StartArray();
    for (auto t : st.connect_times)
      w.Int64(t);
    w.EndArray();
    w.Key("handshakes");
    w.Int(st.handshakes);
    w.Key("pongs");
    w.Int(st.pongs);
    w.Key("logins");
    w.Int(st.logins);
    w.Key("failedLogins");
    w.Int(st.failed_logins);
    w.Key("refusedUpgrades");
    w.Int(st.refused_upgrades);
    w.Key("lastOrigin");
    optional_string(st.last_origin);
    w.Key("lastCookie");
    optional_string(st.last_cookie);
    w.EndObject();
  }
  w.EndObject();
  w.Key("clientApi");
  w.StartObject();
  w.Key("requests");
  w.StartObject();
  for (auto& [id, n] : api_requests) {
    w.Key(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    w.Int(n);
  }
  w.EndObject();
  w.Key("answered");
  w.StartObject();
  for (auto& [id, n] : api_answered) {
    w.Key(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    w.Int(n);
  }
  w.EndObject();
  w.Key("held");
  w.Int(api_held);
  w.Key("failures");
  w.Int(api_failures);
  w.Key("latencyMs");
  w.Int64(api_latency.count());
  w.Key("failureRate");
  w.Double(api_failure_rate);
  w.EndObject();
  w.Key("refusing");
  w.Bool(refusing());
  w.EndObject();
  return buf.GetString();
}

} // namespace parley::rtmsim
