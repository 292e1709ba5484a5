// The bridge between Socket.IO sockets (net/) and connection actors: on every
// CONNECT to a configured namespace it spawns a connection actor and wires the
// socket's packets and close to it.
#pragma once

#include <caf/actor_system.hpp>

#include "actors/runtime.hpp"
#include "net/socketio_server.hpp"

namespace parley {

class gateway : public sio::app {
public:
  gateway(caf::actor_system& sys, runtime_ptr rt);

  bool has_namespace(std::string_view nsp) const override;
  void on_connect(const std::shared_ptr<sio::socket>& s, sio::packet&& connect) override;

private:
  caf::actor_system& sys_;
  runtime_ptr rt_;
};

} // namespace parley
