#include "tools/rtm-sim/replies.hpp"

#include <rapidjson/error/en.h>

#include "net/socketio_packet.hpp"

namespace parley::rtmsim {

net::response json_reply(const net::request& req, http::status status, std::string body) {
  return net::make_response(req, status, std::move(body), "application/json");
}

net::response error_reply(const net::request& req, http::status status, std::string_view message) {
  std::string body = "{\"error\":";
  sio::append_json_string(body, message);
  body += "}";
  return json_reply(req, status, std::move(body));
}

std::variant<rapidjson::Document, std::string> parse_object(std::string_view body) {
  rapidjson::Document doc;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    doc.SetObject();
    return doc;
  }
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError())
    return "invalid JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": "
           + rapidjson::GetParseError_En(doc.GetParseError());
  if (!doc.IsObject())
    return std::string{"the body must be a JSON object"};
  return doc;
}

} // namespace parley::rtmsim
