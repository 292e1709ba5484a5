// The shapes every rtm-sim answer shares: JSON bodies, errors as
// {"error":"<what is wrong>"}, and request bodies read as one JSON object.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include <rapidjson/document.h>

#include "net/http_session.hpp"

namespace parley::rtmsim {

namespace http = net::http;

// A response with a JSON body.
net::response json_reply(const net::request& req, http::status status, std::string body);
// {"error":"<message>"}
net::response error_reply(const net::request& req, http::status status, std::string_view message);

// The request body as a JSON object (an empty body reads as {}); the error text
// says what is wrong with it.
std::variant<rapidjson::Document, std::string> parse_object(std::string_view body);

} // namespace parley::rtmsim
