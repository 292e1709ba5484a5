// The development profile's chat page (parley.dev, tools/run): /demo serves one
// self-contained page that talks to Parley through the Socket.IO client
// bundle Parley serves itself, and /demo/token?user=NAME gives that page a
// token for any user name (every room allowed). Never routed outside the
// development profile.
#pragma once

#include <memory>
#include <string>

#include "actors/runtime.hpp"
#include "net/http_session.hpp"

namespace parley::demo {

// An HS256 token for `user`, every room allowed, valid for a day.
std::string token_for(const std::string& user, const std::string& secret);

void handle(const runtime& rt, const std::shared_ptr<net::http_session>& hs, net::request&& req);

} // namespace parley::demo
