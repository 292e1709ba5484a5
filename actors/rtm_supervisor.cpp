#include "actors/rtm_supervisor.hpp"

#include "net/metrics.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include "actors/rtm_upstream.hpp"
#include "actors/supervisor.hpp"
#include "net/socketio_packet.hpp"

namespace parley {

caf::atom_value rtm_supervisor_key() {
  return caf::atom("p_rtm");
}
caf::atom_value rtm_dedup_key() {
  return caf::atom("p_rtm_dd");
}
caf::atom_value rtm_translator_key() {
  return caf::atom("p_rtm_tr");
}

namespace {

using self_ptr = caf::stateful_actor<rtm_supervisor_state>*;

const std::string initial_status =
  R"({"state":"connecting","reconnects":0,"lastEventAt":null,"nextAttemptAt":null})";

void start(self_ptr self, const runtime_ptr& rt, const std::shared_ptr<net::rtm_client>& client,
           rtm_supervisor_state::entry& e) {
  auto& sys = self->system();
  auto next = [&sys] { return caf::actor_cast<caf::actor>(sys.registry().get(rtm_dedup_key())); };
  e.upstream = self->spawn<caf::monitored>(rtm_upstream, e.spec, rt->cfg.rtm, client, caf::actor{self}, next);
  e.status = initial_status;
  e.connected = false;
}

std::string status_json(const rtm_supervisor_state& st) {
  size_t up = 0;
  std::string profiles;
  for (auto& [id, e] : st.profiles) {
    if (!profiles.empty())
      profiles += ',';
    sio::append_json_string(profiles, id);
    profiles += ':' + e.status;
    up += e.connected ? 1 : 0;
  }
  const char* overall = st.profiles.empty() || up == 0 ? "disconnected"
                        : up == st.profiles.size()     ? "connected"
                                                       : "degraded";
  return std::string{"{\"status\":\""} + overall + "\",\"profiles\":{" + profiles + "}}";
}

} // namespace

caf::behavior rtm_supervisor(caf::stateful_actor<rtm_supervisor_state>* self, runtime_ptr rt,
                             std::shared_ptr<net::rtm_client> client, std::shared_ptr<rtm_profile_book> book) {
  self->state.book = std::move(book);
  for (auto& [id, p] : self->state.book->profiles) {
    auto& e = self->state.profiles[id];
    e.spec = p;
    start(self, rt, client, e);
  }
  // Shutdown (or the root supervisor restarting us): the upstreams go too.
  self->set_exit_handler([self](caf::exit_msg& em) {
    for (auto& [id, e] : self->state.profiles)
      if (e.upstream)
        self->send_exit(e.upstream, em.reason);
    self->quit(em.reason);
  });
  self->set_down_handler([self, rt, client](caf::down_msg& dm) {
    for (auto& [id, e] : self->state.profiles) {
      if (e.upstream.address() != dm.source)
        continue;
      e.upstream = nullptr;
      e.connected = false;
      auto delay = restart_delay(e.failures++, self->state.rng, rt->cfg.rtm.backoff_base, rt->cfg.rtm.backoff_max);
      spdlog::error("rtm {}: upstream actor failed ({}), restarting in {} ms", id, caf::to_string(dm.reason),
                    delay.count());
      self->delayed_send(self, delay, restart_atom::value, id);
      return;
    }
  });
  return {
    [self, rt, client](restart_atom, const std::string& id) {
      auto it = self->state.profiles.find(id);
      if (it != self->state.profiles.end() && !it->second.upstream)
        start(self, rt, client, it->second);
    },
    [self, rt, client](put_atom, const rtm_profile& p) {
      auto& profiles = self->state.profiles;
      self->state.book->profiles[p.id] = p;
      auto it = profiles.find(p.id);
      if (it != profiles.end()) {
        it->second.spec = p;
        if (it->second.upstream)
          self->send(it->second.upstream, put_atom::value, p);
        spdlog::info("rtm {}: new session, reconnecting", p.id);
        return false;
      }
      auto& e = profiles[p.id];
      e.spec = p;
      start(self, rt, client, e);
      spdlog::info("rtm {}: added", p.id);
      return true;
    },
    [self](delete_atom, const std::string& id) {
      self->state.book->profiles.erase(id);
      auto it = self->state.profiles.find(id);
      if (it == self->state.profiles.end())
        return false;
      if (it->second.upstream) {
        self->demonitor(it->second.upstream);
        self->send(it->second.upstream, stop_atom::value);
      }
      self->state.profiles.erase(it);
      spdlog::info("rtm {}: removed", id);
      return true;
    },
    [self](rtm_status_atom) { return status_json(self->state); },
    [self](rtm_metrics_atom) {
      std::string out = "# HELP parley_rtm_upstream_connected 1 when the profile's upstream is connected\n"
                        "# TYPE parley_rtm_upstream_connected gauge\n";
      for (auto& [id, e] : self->state.profiles) {
        out += "parley_rtm_upstream_connected{profile=";
        append_label_value(out, id);
        out += "} " + std::string{e.connected ? "1" : "0"} + "\n";
      }
      return out;
    },
    [self](rtm_status_atom, const std::string& id, const std::string& entry, bool connected) {
      auto it = self->state.profiles.find(id);
      if (it == self->state.profiles.end()
          || caf::actor_cast<caf::strong_actor_ptr>(it->second.upstream) != self->current_sender())
        return; // a report of a stopped upstream
      it->second.status = entry;
      it->second.connected = connected;
      if (connected)
        it->second.failures = 0;
    },
  };
}

} // namespace parley
