// The simulated RTM service's own endpoints, as a real RTM (TalkyTimes style)
// deployment offers them to Parley's upstream actors:
//
//   POST /auth/login      {"profileId","password"} → session cookies tld-token, tld-user
//   GET  /rtm             WebSocket (Centrifugo JSON protocol), needs the tld-token cookie
//   GET  /clients/{id}    a client's name and avatar, needs the tld-token cookie
//
// It also owns the open /rtm connections and the fan-out the control API and
// scenarios use (push, drop, ping, raw frames), and pings every subscribed
// connection each ping interval.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/http_session.hpp"
#include "tools/rtm-sim/rtm_connection.hpp"
#include "tools/rtm-sim/sim_state.hpp"

namespace parley::rtmsim {

namespace asio = net::asio;

class rtm_service : public net::router {
public:
  rtm_service(asio::io_context& ioc, sim_state& state, std::chrono::seconds ping_interval);

  void handle(const std::shared_ptr<net::http_session>& hs, net::request&& req) override;

  // Starts the ping timer.
  void start();
  // Stops the timers and closes every connection with 1001 (process exit).
  void shutdown();

  sim_state& state() { return state_; }
  std::chrono::seconds ping_interval() const { return ping_interval_; }

  // Each returns the number of connections reached. A missing profile id means
  // every profile.
  int push(const std::string& profile_id, std::string_view event_json, int times, bool batch);
  int send_raw(const std::string& profile_id, std::string text);
  int ping(const std::optional<std::string>& profile_id);
  int drop(const std::optional<std::string>& profile_id, uint16_t code, std::string_view reason,
           bool abrupt = false);
  // Answers every GET /clients/{id} still waiting out the latency, now; returns how many.
  int release_held();

  // A connection that has ended.
  void forget(const rtm_connection& c);

private:
  void login(const std::shared_ptr<net::http_session>& hs, net::request&& req);
  void upgrade(const std::shared_ptr<net::http_session>& hs, net::request&& req);
  void accept(const std::shared_ptr<net::http_session>& hs, net::request&& req,
              std::string profile_id);
  void client_profile(const std::shared_ptr<net::http_session>& hs, net::request&& req,
                      std::string client_id);
  void answer_client_profile(const std::shared_ptr<net::http_session>& hs, const net::request& req,
                             const std::string& client_id);
  // A GET /clients/{id} waiting out the latency: answered by its timer or by release_held().
  struct held_request {
    held_request(asio::io_context& ioc, std::chrono::milliseconds latency,
                 std::shared_ptr<net::http_session> hs, net::request req, std::string client_id)
      : timer(ioc, latency), hs(std::move(hs)), req(std::move(req)), client_id(std::move(client_id)) {}
    asio::steady_timer timer;
    std::shared_ptr<net::http_session> hs;
    net::request req;
    std::string client_id;
  };
  void answer_held(const std::shared_ptr<held_request>& h);
  void schedule_ping();
  // The open connections of one profile, or of all; subscribed ones only if asked.
  std::vector<std::shared_ptr<rtm_connection>> select(const std::optional<std::string>& profile_id,
                                                      bool subscribed_only) const;

  asio::io_context& ioc_;
  sim_state& state_;
  std::chrono::seconds ping_interval_;
  asio::steady_timer ping_timer_;
  std::vector<std::shared_ptr<rtm_connection>> connections_;
  std::list<std::shared_ptr<held_request>> held_;
  std::mt19937_64 rng_{std::random_device{}()};
  bool shut_down_ = false;
};

// The push frame Centrifugo sends for a publication on the profile's channel.
std::string push_frame(const std::string& profile_id, std::string_view event_json);

} // namespace parley::rtmsim
