// parley-conformance --port=N
//
// The fixture the official Engine.IO v4 and Socket.IO v5 protocol test suites
// expect, built from Parley's own net/ code: a bare Engine.IO echo service at
// /engine.io/, and Socket.IO at /socket.io/ with the namespaces "/" and
// "/custom" (pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1 s,
// maxPayload 1000000, CORS for every origin). Each socket is sent
// ["auth", <its CONNECT payload>]; on "/", "message" is echoed back as
// "message-back" and "message-with-ack" is acknowledged with its arguments.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "net/engineio_server.hpp"
#include "net/listener.hpp"
#include "net/socketio_server.hpp"

using namespace parley;

namespace {

// /engine.io/: every message comes straight back.
class echo_handler : public eio::session_handler {
public:
  void on_message(eio::session& s, eio::packet&& p) override {
    if (p.binary)
      s.send(eio::binary_frame(std::move(p.data)));
    else
      s.send(eio::text_frame("4" + p.data));
  }
  void on_close(eio::session&, std::string_view) override {}
};

class fixture : public sio::app {
public:
  bool has_namespace(std::string_view nsp) const override {
    return nsp == "/" || nsp == "/custom";
  }

  void on_connect(const std::shared_ptr<sio::socket>& s, sio::packet&& connect) override {
    std::weak_ptr<sio::socket> weak = s;
    if (s->nsp() == "/") {
      s->on_packet = [weak](sio::packet&& p) {
        if (auto s = weak.lock())
          on_event(*s, std::move(p));
      };
    }
    s->accept();
    auto auth = connect.payload ? sio::to_json(*connect.payload) : std::string{"{}"};
    s->send(eio::text_frame(sio::encode(sio::packet_type::event, s->nsp(), std::nullopt,
                                        sio::event_array("auth", auth))));
  }

private:
  static void on_event(sio::socket& s, sio::packet&& p) {
    if (p.type != sio::packet_type::event && p.type != sio::packet_type::binary_event)
      return;
    auto& args = *p.payload;
    std::string name = args[0].IsString() ? args[0].GetString() : "";
    std::string rest;
    for (rapidjson::SizeType i = 1; i < args.Size(); ++i) {
      if (!rest.empty())
        rest += ',';
      rest += sio::to_json(args[i]);
    }
    std::vector<eio::frame> frames;
    if (name == "message") {
      frames.push_back(eio::text_frame(sio::encode(p.type, s.nsp(), std::nullopt,
                                                   sio::event_array("message-back", rest),
                                                   p.buffers.size())));
    } else if (name == "message-with-ack" && p.id) {
      auto type = p.is_binary() ? sio::packet_type::binary_ack : sio::packet_type::ack;
      frames.push_back(eio::text_frame(
        sio::encode(type, s.nsp(), p.id, "[" + rest + "]", p.buffers.size())));
    } else {
      return;
    }
    for (auto& b : p.buffers)
      frames.push_back(eio::frame{b, true});
    s.send(std::move(frames));
  }
};

} // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  uint16_t port = 3000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--port=", 0) == 0) {
      port = static_cast<uint16_t>(std::stoul(arg.substr(7)));
    } else if (arg.rfind("--address=", 0) == 0) {
      address = arg.substr(10);
    } else {
      std::cerr << "parley-conformance: unknown option " << arg << "\nusage: parley-conformance [--port=N] [--address=A]\n";
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  boost::asio::io_context ioc{1};
  eio::options opts;
  opts.ping_interval = std::chrono::milliseconds(300);
  opts.ping_timeout = std::chrono::milliseconds(200);
  opts.max_payload = 1000000;
  opts.cors_origins = {"*"};
  fixture app;
  eio::server engine(ioc, opts, [](eio::session&) { return std::make_unique<echo_handler>(); });
  eio::server socketio(ioc, opts, [&app](eio::session&) {
    return std::make_unique<sio::client>(app, std::chrono::milliseconds(1000));
  });
  auto router = std::make_shared<net::path_router>();
  router->add("/engine.io/", [&](auto& hs, net::request&& req) { engine.handle(hs, std::move(req)); });
  router->add("/socket.io/", [&](auto& hs, net::request&& req) { socketio.handle(hs, std::move(req)); });
  auto l = std::make_shared<net::listener>(ioc, router, opts.max_payload);
  auto bound = l->start(address, port);
  if (auto err = std::get_if<std::string>(&bound)) {
    std::cerr << "parley-conformance: " << *err << "\n";
    return 1;
  }
  std::printf("parley-conformance listening on http://%s:%u\n", address.c_str(),
              static_cast<unsigned>(std::get<uint16_t>(bound)));
  std::fflush(stdout);
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) {
    l->stop();
    engine.close_all();
    socketio.close_all();
    ioc.stop();
  });
  ioc.run();
  return 0;
}
