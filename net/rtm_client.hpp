// What an RTM upstream actor needs from the network, behind an interface so
// the actors never touch a socket and tests can stand in for the upstream:
// the upstream WebSocket (with the session cookies and Origin), the login that
// turns credentials into cookies, and the profile API.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "net/http_client.hpp"

namespace parley::net {

class rtm_client {
public:
  virtual ~rtm_client() = default;
  // Opens the upstream WebSocket with these cookies.
  virtual std::shared_ptr<ws_link> open(const std::string& cookies, ws_link::callbacks cb) = 0;
  // POST {"profileId","password"} to the login URL.
  virtual void login(const std::string& profile, const std::string& password,
                     std::function<void(http_result)> done) = 0;
  // GET {api-url}/clients/{id} with the cookies.
  virtual void fetch_client(const std::string& client_id, const std::string& cookies,
                            std::function<void(http_result)> done) = 0;
};

struct rtm_endpoints {
  endpoint_url upstream;
  std::string api_url;
  std::string login_url;
  std::string origin;
  std::chrono::milliseconds timeout{10000};
};

std::shared_ptr<rtm_client> make_rtm_client(boost::asio::io_context& ioc, rtm_endpoints e);

} // namespace parley::net
