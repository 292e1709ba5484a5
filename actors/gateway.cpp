#include "actors/gateway.hpp"

#include <algorithm>

#include <caf/send.hpp>

#include "actors/connection.hpp"
#include "net/engineio_server.hpp"

namespace parley {

gateway::gateway(caf::actor_system& sys, runtime_ptr rt) : sys_(sys), rt_(std::move(rt)) {
}

bool gateway::has_namespace(std::string_view nsp) const {
  auto& all = rt_->cfg.socketio.namespaces;
  return std::find(all.begin(), all.end(), nsp) != all.end();
}

void gateway::on_connect(const std::shared_ptr<sio::socket>& s, sio::packet&& connect) {
  connect_request req;
  if (connect.payload && connect.payload->IsObject()) {
    auto it = connect.payload->FindMember("token");
    if (it != connect.payload->MemberEnd() && it->value.IsString())
      req.auth_token.assign(it->value.GetString(), it->value.GetStringLength());
    if (rt_->cfg.recovery.enabled) {
      auto pid = connect.payload->FindMember("pid");
      if (pid != connect.payload->MemberEnd() && pid->value.IsString() && pid->value.GetStringLength() > 0) {
        req.pid.assign(pid->value.GetString(), pid->value.GetStringLength());
        auto off = connect.payload->FindMember("offset");
        if (off != connect.payload->MemberEnd()) {
          req.has_offset = true;
          if (off->value.IsString())
            req.offset.assign(off->value.GetString(), off->value.GetStringLength());
        }
        // From now on the socket's fan-outs are held: what the replay does
        // not cover is sent after it (see the connection actor).
        s->hold();
      }
    }
  }
  auto& hs = s->handshake();
  req.authorization = hs.authorization;
  auto target = "/?" + hs.query;
  req.query_token = eio::query_param(target, "token").value_or("");
  req.query_user_id = eio::query_param(target, "userId").value_or("");
  auto conn = sys_.spawn(connection, s, std::move(req), rt_);
  // The socket owns this callback: the raw pointer lives as long as it does.
  s->on_packet = [conn, raw = s.get()](sio::packet&& p) {
    raw->packet_in(); // done by the connection actor once handled (backpressure)
    caf::anon_send(conn, packet_atom::value, std::make_shared<sio::packet>(std::move(p)));
  };
  s->on_close = [conn](std::string_view reason) {
    caf::anon_send(conn, closed_atom::value, std::string{reason});
  };
}

} // namespace parley
