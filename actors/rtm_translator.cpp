#include "actors/rtm_translator.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "net/metrics.hpp"

namespace parley {

namespace {

using self_ptr = caf::stateful_actor<rtm_translator_state>*;

bool needs_client(const rtm::event& e) {
  return e.kind == rtm::event_kind::message_new || e.kind == rtm::event_kind::email_new;
}

void deliver(self_ptr self, const runtime& rt, const rtm::event& e, const rtm::client_info& info) {
  spdlog::debug("{} profile={} dialog={} id={}", rtm::internal_name(e.kind), e.profile, e.dialog_id, e.id);
  for (auto& d : rtm::deliveries(e, info))
    rt.publish_to_rooms(d.rooms, d.event, d.data_json);
}

// Sends everything held back for a client, in arrival order.
void flush(self_ptr self, const runtime& rt, const std::string& client_id) {
  auto& st = self->state;
  auto it = st.pending.find(client_id);
  if (it == st.pending.end())
    return;
  auto events = std::move(it->second.events);
  st.pending.erase(it);
  rtm::client_info info;
  if (auto c = st.clients.find(client_id); c != st.clients.end())
    info = c->second.info;
  for (auto& e : events)
    deliver(self, rt, *e, info);
}

} // namespace

caf::behavior rtm_translator(caf::stateful_actor<rtm_translator_state>* self, runtime_ptr rt,
                             std::shared_ptr<net::rtm_client> client) {
  auto& opts = rt->cfg.rtm;
  return {
    [self, rt, client, &opts](rtm_event_atom, const rtm::event_ptr& e) {
      auto& st = self->state;
      auto& who = e->interlocutor;
      // Behind events already waiting for this client: keep their order.
      if (auto p = st.pending.find(who); p != st.pending.end() && !who.empty()) {
        p->second.events.push_back(e);
        return;
      }
      if (!needs_client(*e) || who.empty() || opts.api_url.empty() || !client) {
        deliver(self, *rt, *e, {});
        return;
      }
      auto now = self->clock().now();
      if (auto c = st.clients.find(who); c != st.clients.end() && c->second.until > now) {
        deliver(self, *rt, *e, c->second.info);
        return;
      }
      auto fetch = ++st.next_fetch;
      auto& w = st.pending[who];
      w.events.push_back(e);
      w.fetch = fetch;
      auto weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
      client->fetch_client(who, e->cookies, [weak, who, fetch](net::http_result r) {
        if (auto a = caf::actor_cast<caf::actor>(weak.lock()))
          caf::anon_send(a, rtm_client_atom::value, who, fetch, r.status, r.status ? r.body : r.error);
      });
      if (opts.client_wait.count() > 0)
        self->delayed_send(self, opts.client_wait, deadline_atom::value, who, fetch);
      else
        flush(self, *rt, who);
    },
    [self, rt, &opts](rtm_client_atom, const std::string& who, uint64_t fetch, int status,
                      const std::string& body) {
      auto& st = self->state;
      auto now = self->clock().now();
      if (status == 200) {
        st.clients[who] = {rtm::parse_client(body), now + opts.client_cache_ttl};
      } else {
        counters().rtm_client_api_failures.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("rtm: profile API for client {}: {}", who,
                     status ? "HTTP " + std::to_string(status) : body);
        // Remember the failure briefly, so a failing API is not asked per event.
        auto& c = st.clients[who];
        c.until = now + opts.client_cache_ttl / 10;
      }
      if (st.clients.size() > 100000) // bounded: drop what expired
        for (auto it = st.clients.begin(); it != st.clients.end();)
          it = it->second.until <= now ? st.clients.erase(it) : std::next(it);
      if (auto p = st.pending.find(who); p != st.pending.end() && p->second.fetch == fetch)
        flush(self, *rt, who);
    },
    [self, rt](deadline_atom, const std::string& who, uint64_t fetch) {
      auto& st = self->state;
      if (auto p = st.pending.find(who); p != st.pending.end() && p->second.fetch == fetch) {
        spdlog::info("rtm: profile API slow for client {}: toast sent without name", who);
        flush(self, *rt, who);
      }
    },
    [self](count_atom) { return static_cast<uint64_t>(self->state.clients.size()); },
  };
}

} // namespace parley
