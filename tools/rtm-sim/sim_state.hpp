// What the simulated RTM service knows apart from its sockets: login accounts,
// sessions, client profiles, how the client API behaves, whether upgrades are
// refused, and the counters tests read through GET /control/state.
//
// Plain data on the sim's single I/O thread; nothing here touches a socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace parley::rtmsim {

using sim_clock = std::chrono::steady_clock;

// Everything that happened for one profile id.
struct profile_stats {
  int connections = 0;                 // open /rtm WebSockets right now
  std::vector<int64_t> connect_times;  // epoch ms of each successful upgrade
  int handshakes = 0;                  // connect commands answered
  int pongs = 0;                       // `{}` frames received
  int logins = 0;
  int failed_logins = 0;
  int refused_upgrades = 0;            // answered 401 or 503
  std::optional<std::string> last_origin;  // of the last upgrade attempt
  std::optional<std::string> last_cookie;
};

struct rtm_session {
  std::string profile_id;
  sim_clock::time_point expires;
  bool revoked = false;  // by expire-sessions

  bool valid(sim_clock::time_point now) const { return !revoked && now < expires; }
};

struct client_data {
  std::string name;
  std::string avatar;
};

class sim_state {
public:
  explicit sim_state(std::chrono::seconds session_ttl) : session_ttl_(session_ttl) {}

  // -- accounts and sessions
  void add_account(const std::string& profile_id, const std::string& password);
  bool check_password(const std::string& profile_id, const std::string& password) const;
  // A new session for the profile; returns its token.
  std::string issue_session(const std::string& profile_id);
  // The session a token names, valid or not; null when the token was never issued.
  const rtm_session* find_session(const std::string& token) const;
  // Revokes every session; returns how many were still valid.
  int expire_sessions();

  // -- counters (a profile appears on first use)
  profile_stats& stats(const std::string& profile_id);

  // -- the client profile API
  client_data client(const std::string& client_id) const;
  void set_client(const std::string& client_id, std::optional<std::string> name,
                  std::optional<std::string> avatar);
  std::chrono::milliseconds api_latency{0};
  double api_failure_rate = 0.0;
  std::map<std::string, int> api_requests;  // per client id
  std::map<std::string, int> api_answered;  // per client id: answers written (200 or 500)
  int api_failures = 0;
  int api_held = 0;                         // requests waiting out the latency right now

  // -- availability of /rtm upgrades
  bool refusing() const { return stopped || sim_clock::now() < refuse_until; }
  bool stopped = false;                     // control stop, until control start
  sim_clock::time_point refuse_until{};     // control refuse

  // GET /control/state
  std::string to_json() const;

private:
  std::chrono::seconds session_ttl_;
  std::map<std::string, std::string> passwords_;
  std::map<std::string, rtm_session> sessions_;  // by token
  std::map<std::string, profile_stats> stats_;
  std::map<std::string, client_data> clients_;
};

// `bytes` random bytes as lower-case hex; throws std::runtime_error when
// OpenSSL cannot provide them (rtm-sim then exits with that error).
std::string random_hex(size_t bytes);

} // namespace parley::rtmsim
