#include "tools/rtm-sim/rtm_connection.hpp"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "net/socketio_packet.hpp"
#include "tools/rtm-sim/rtm_service.hpp"

namespace parley::rtmsim {

namespace {

// Centrifugo's close for a frame it cannot parse.
constexpr uint16_t bad_request_code = 3501;

// "8-4-4-4-12" hex, like the client ids Centrifugo hands out.
std::string new_client_id() {
  auto hex = random_hex(16);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-"
         + hex.substr(16, 4) + "-" + hex.substr(20);
}

} // namespace

rtm_connection::rtm_connection(rtm_service& service, std::shared_ptr<net::ws_stream> ws,
                               std::string profile_id)
  : service_(service), ws_(std::move(ws)), profile_id_(std::move(profile_id)) {
}

void rtm_connection::start() {
  do_read();
}

// -- reading -------------------------------------------------------------------

void rtm_connection::do_read() {
  ws_->async_read(buffer_, beast::bind_front_handler(&rtm_connection::on_read, shared_from_this()));
}

void rtm_connection::on_read(beast::error_code ec, size_t) {
  if (ec) {
    if (!closing_) {
      if (ec == websocket::error::closed)
        spdlog::info("rtm {}: client closed the connection ({} {})", profile_id_,
                     ws_->reason().code,
                     std::string_view{ws_->reason().reason.data(), ws_->reason().reason.size()});
      else
        spdlog::info("rtm {}: connection lost: {}", profile_id_, ec.message());
    }
    finish();
    return;
  }
  auto text = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  if (closing_) {
    do_read(); // until the client answers the close
    return;
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto frame = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (frame.find_first_not_of(" \t\r") == std::string_view::npos)
      continue;
    if (!on_frame(frame))
      break;
  }
  do_read();
}

bool rtm_connection::on_frame(std::string_view frame) {
  rapidjson::Document doc;
  doc.Parse(frame.data(), frame.size());
  auto malformed = [&] {
    spdlog::info("rtm {}: malformed frame from the client, closing with {} bad request",
                 profile_id_, bad_request_code);
    close(bad_request_code, "bad request");
    return false;
  };
  if (doc.HasParseError() || !doc.IsObject())
    return malformed();
  auto id = doc.FindMember("id");
  bool has_id = id != doc.MemberEnd();
  if (has_id && !id->value.IsNumber())
    return malformed();
  auto& stats = service_.state().stats(profile_id_);
  if (doc.ObjectEmpty()) {
    ++stats.pongs;
    return true;
  }
  if (!has_id) {
    spdlog::info("rtm {}: ignoring a frame without an id: {}", profile_id_, frame);
    return true;
  }
  auto id_json = sio::to_json(id->value);
  if (doc.HasMember("connect")) {
    std::string reply = "{\"id\":" + id_json + ",\"connect\":{\"client\":\"" + new_client_id()
                        + "\",\"version\":\"rtm-sim 1.0\",\"ping\":"
                        + std::to_string(service_.ping_interval().count()) + ",\"pong\":true}}";
    send(std::make_shared<const std::string>(std::move(reply)));
    ++stats.handshakes;
    if (!subscribed_)
      spdlog::info("rtm {}: connect handshake done, subscribed to personal:{}", profile_id_,
                   profile_id_);
    subscribed_ = true;
    return true;
  }
  spdlog::info("rtm {}: command not available: {}", profile_id_, frame);
  send(std::make_shared<const std::string>(
    "{\"id\":" + id_json + ",\"error\":{\"code\":108,\"message\":\"not available\"}}"));
  return true;
}

// -- writing -------------------------------------------------------------------

void rtm_connection::send(message_ptr message) {
  if (closing_ || finished_)
    return;
  queue_.push_back(std::move(message));
  do_write();
}

void rtm_connection::do_write() {
  if (writing_ || finished_)
    return;
  if (queue_.empty()) {
    if (pending_close_)
      do_close();
    return;
  }
  writing_ = true;
  ws_->text(true);
  ws_->async_write(asio::buffer(*queue_.front()),
                   beast::bind_front_handler(&rtm_connection::on_write, shared_from_this()));
}

void rtm_connection::on_write(beast::error_code ec, size_t) {
  writing_ = false;
  if (ec) {
    if (!finished_)
      spdlog::info("rtm {}: write failed: {}", profile_id_, ec.message());
    abort();
    return;
  }
  queue_.pop_front();
  do_write();
}

// -- closing -------------------------------------------------------------------

void rtm_connection::close(uint16_t code, std::string_view reason) {
  if (closing_ || finished_)
    return;
  closing_ = true;
  reason = reason.substr(0, 123); // what a close frame has room for
  pending_close_.emplace(static_cast<websocket::close_code>(code),
                         beast::string_view{reason.data(), reason.size()});
  leave();
  do_write();
}

void rtm_connection::do_close() {
  auto reason = *pending_close_;
  pending_close_.reset();
  ws_->async_close(reason, [self = shared_from_this()](beast::error_code) {
    // The read loop sees the end of the connection and finishes it.
  });
}

void rtm_connection::abort() {
  if (finished_)
    return;
  closing_ = true;
  leave();
  beast::error_code ec;
  beast::get_lowest_layer(*ws_).socket().shutdown(net::tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(*ws_).socket().close(ec);
}

void rtm_connection::leave() {
  if (left_)
    return;
  left_ = true;
  --service_.state().stats(profile_id_).connections;
}

void rtm_connection::finish() {
  if (finished_)
    return;
  closing_ = true;
  leave();
  finished_ = true;
  queue_.clear();
  beast::error_code ec;
  beast::get_lowest_layer(*ws_).socket().close(ec);
  service_.forget(*this);
}

} // namespace parley::rtmsim
