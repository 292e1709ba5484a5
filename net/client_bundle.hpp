// The socket.io-client browser bundle, served as a stock Socket.IO server
// serves it (its `serveClient` option): /socket.io/socket.io.js, .min.js,
// .esm.min.js, .msgpack.min.js and their .map files, with the client's
// version as ETag. The files come from the npm socket.io-client package at
// build time (tools/deps installs it into client/, CMake embeds it).
#pragma once

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "net/http_session.hpp"

namespace parley::client_bundle {

// Generated (cmake/embed_client.cmake): empty when the package was missing.
std::string_view version();
const std::vector<std::pair<std::string_view, std::string_view>>& files();

// Answers a GET or HEAD of one of the bundle's paths; false for any other request.
bool serve(const std::shared_ptr<net::http_session>& hs, const net::request& req);

} // namespace parley::client_bundle
