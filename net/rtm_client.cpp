#include "net/rtm_client.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "net/socketio_packet.hpp"

namespace parley::net {

namespace {

class asio_rtm_client : public rtm_client {
public:
  asio_rtm_client(boost::asio::io_context& ioc, rtm_endpoints e) : ioc_(ioc), e_(std::move(e)) {
  }

  std::shared_ptr<ws_link> open(const std::string& cookies, ws_link::callbacks cb) override {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!cookies.empty())
      headers.emplace_back("Cookie", cookies);
    if (!e_.origin.empty())
      headers.emplace_back("Origin", e_.origin);
    return ws_connect(ioc_, e_.upstream, std::move(headers), e_.timeout, std::move(cb));
  }

  void login(const std::string& profile, const std::string& password,
             std::function<void(http_result)> done) override {
    http_call call;
    call.method = "POST";
    call.url = e_.login_url;
    call.timeout = e_.timeout;
    call.headers.emplace_back("Content-Type", "application/json");
    if (!e_.origin.empty())
      call.headers.emplace_back("Origin", e_.origin);
    call.body = "{\"profileId\":";
    sio::append_json_string(call.body, profile);
    call.body += ",\"password\":";
    sio::append_json_string(call.body, password);
    call.body += "}";
    http_fetch(ioc_, std::move(call), std::move(done));
  }

  void fetch_client(const std::string& client_id, const std::string& cookies,
                    std::function<void(http_result)> done) override {
    http_call call;
    auto base = e_.api_url;
    while (!base.empty() && base.back() == '/')
      base.pop_back();
    call.url = base + "/clients/" + boost::urls::encode(client_id, boost::urls::unreserved_chars);
    call.timeout = e_.timeout;
    if (!cookies.empty())
      call.headers.emplace_back("Cookie", cookies);
    if (!e_.origin.empty())
      call.headers.emplace_back("Origin", e_.origin);
    call.headers.emplace_back("Accept", "application/json");
    http_fetch(ioc_, std::move(call), std::move(done));
  }

private:
  boost::asio::io_context& ioc_;
  rtm_endpoints e_;
};

} // namespace

std::shared_ptr<rtm_client> make_rtm_client(boost::asio::io_context& ioc, rtm_endpoints e) {
  return std::make_shared<asio_rtm_client>(ioc, std::move(e));
}

} // namespace parley::net
