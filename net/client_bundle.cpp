#include "net/client_bundle.hpp"

#include "net/listener.hpp"

namespace parley::client_bundle {

namespace {

// socket.io(.msgpack|.esm)?(.min)?.js(.map)?
bool bundle_name(std::string_view n) {
  constexpr std::string_view stem = "socket.io";
  if (n.compare(0, stem.size(), stem) != 0)
    return false;
  n.remove_prefix(stem.size());
  for (std::string_view part : {".msgpack", ".esm"})
    if (n.compare(0, part.size(), part) == 0) {
      n.remove_prefix(part.size());
      break;
    }
  if (n.compare(0, 4, ".min") == 0)
    n.remove_prefix(4);
  return n == ".js" || n == ".js.map";
}

} // namespace

bool serve(const std::shared_ptr<net::http_session>& hs, const net::request& req) {
  using namespace net;
  constexpr std::string_view prefix = "/socket.io/";
  auto path = target_path(req.target());
  if (path.compare(0, prefix.size(), prefix) != 0)
    return false;
  auto name = path.substr(prefix.size());
  if (!bundle_name(name) || (req.method() != http::verb::get && req.method() != http::verb::head))
    return false;
  const std::string_view* content = nullptr;
  for (auto& [file, bytes] : files())
    if (file == name)
      content = &bytes;
  if (!content) {
    hs->reply(json_error(req, http::status::not_found, "not_found",
                         version().empty() ? "The Socket.IO client bundle was not built in: run tools/deps, then build"
                                           : "No such file in socket.io-client " + std::string{version()}));
    return true;
  }
  std::string etag = "\"" + std::string{version()} + "\"";
  if (auto it = req.find(http::field::if_none_match); it != req.end()
      && (it->value() == etag || it->value() == "W/" + etag)) {
    response res{http::status::not_modified, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(http::field::etag, etag);
    hs->reply(std::move(res));
    return true;
  }
  bool map = name.size() > 4 && name.substr(name.size() - 4) == ".map";
  auto res = make_response(req, http::status::ok, std::string{*content},
                           map ? "application/json; charset=utf-8" : "application/javascript; charset=utf-8");
  res.set(http::field::cache_control, "public, max-age=0");
  res.set(http::field::etag, etag);
  if (req.method() == http::verb::head) {
    res.content_length(content->size());
    res.body().clear();
  }
  hs->reply(std::move(res));
  return true;
}

} // namespace parley::client_bundle
