#include "actors/room.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/sec.hpp>

#include "actors/store.hpp"
#include "net/metrics.hpp"
#include "net/plain_wire.hpp"
#include "net/socketio_packet.hpp"

namespace parley {

namespace {

void remove_member(room_members& st, caf::actor_id conn) {
  auto it = st.sid_of.find(conn);
  if (it == st.sid_of.end())
    return;
  st.by_sid.erase(it->second);
  st.sid_of.erase(it);
  st.dirty = true;
  st.size.store(st.by_sid.size(), std::memory_order_relaxed);
}

void rebuild(room_members& st) {
  std::map<std::string, std::shared_ptr<sio::socket_list>, std::less<>> groups;
  for (auto& kvp : st.by_sid) {
    auto& g = groups[kvp.second.sock->nsp()];
    if (!g)
      g = std::make_shared<sio::socket_list>();
    g->push_back(kvp.second.sock);
  }
  st.by_nsp.clear();
  for (auto& kvp : groups)
    st.by_nsp.emplace(kvp.first, std::move(kvp.second));
  st.dirty = false;
}

// How many of the receivers per audience a publish to `to` reaches (the
// sender not counted).
std::pair<uint32_t, uint32_t> reach(room_members& st, uint8_t to, const socket_ptr& except) {
  uint32_t admins = 0, sites = 0;
  for (auto& [group, targets] : st.by_nsp) {
    if (!wire::reaches(group, to))
      continue;
    auto n = static_cast<uint32_t>(targets->size());
    if (except && except->nsp() == group)
      --n;
    (wire::in_site_audience(group) ? sites : admins) += n;
  }
  return {admins, sites};
}

// Encodes the packet once per namespace (or plain flavour) among the members
// and hands each frame set, with that group's receivers, to the I/O thread in
// one hop. `to`: the audience (plain_wire.hpp); `outcome` (may be null) learns
// how many it reached, and is told at once.
void fan_out(caf::stateful_actor<room_state>* self, const std::string& event,
             const std::string& data, const std::string& except_sid, const buffers& attachments,
             const sio::delivered_ptr& once = nullptr, uint8_t to = wire::everyone,
             const outcome_ptr& outcome = nullptr) {
  auto& st = *self->state.members;
  if (st.by_sid.empty()) {
    if (outcome)
      outcome->tell(0, {});
    return;
  }
  if (st.dirty)
    rebuild(st);
  socket_ptr except;
  if (!except_sid.empty())
    if (auto it = st.by_sid.find(except_sid); it != st.by_sid.end())
      except = it->second.sock;
  auto body = sio::event_array(event, data);
  wire::plain_frames plain{st.room_name, event, data};
  uint64_t n = 0; // receivers, the sender not counted
  for (auto& [nsp, targets] : st.by_nsp) {
    if (!wire::reaches(nsp, to))
      continue;
    if (wire::is_plain(nsp) && !attachments.empty())
      continue; // binary attachments have no plain form
    n += targets->size() - (except && except->nsp() == nsp ? 1 : 0);
    if (wire::is_plain(nsp)) {
      sio::deliver(targets, plain.get(nsp), except, once);
      continue;
    }
    if (attachments.empty()) {
      auto frame = eio::text_frame(sio::encode(sio::packet_type::event, nsp, std::nullopt, body));
      sio::deliver(targets, std::move(frame), except, once);
      continue;
    }
    std::vector<eio::frame> fs;
    fs.push_back(eio::text_frame(
      sio::encode(sio::packet_type::binary_event, nsp, std::nullopt, body, attachments.size())));
    for (auto& b : attachments)
      fs.push_back(eio::frame{b, true});
    sio::deliver(targets, std::move(fs), except);
  }
  if (outcome) {
    auto [admins, sites] = reach(st, to, except);
    outcome->reached(admins, sites);
    outcome->tell(0, {});
  }
  counters().fanouts.fetch_add(1, std::memory_order_relaxed);
  counters().deliveries.fetch_add(n, std::memory_order_relaxed);
}

// An event asking for an ack: the same id and frame for every receiver; the I/O
// thread registers each receiver's ack before writing, then tells the
// collector how many answers to wait for.
void fan_out_with_ack(caf::stateful_actor<room_state>* self, const std::string& event,
                      const std::string& data, const std::string& except_sid,
                      const caf::actor& collector) {
  auto& st = *self->state.members;
  if (st.by_sid.empty()) {
    self->send(collector, expect_atom::value, uint64_t{0});
    return;
  }
  if (st.dirty)
    rebuild(st);
  socket_ptr except;
  if (!except_sid.empty())
    if (auto it = st.by_sid.find(except_sid); it != st.by_sid.end())
      except = it->second.sock;
  auto id = sio::next_ack_id();
  auto body = sio::event_array(event, data);
  std::vector<std::pair<eio::frame, std::shared_ptr<const sio::socket_list>>> parts;
  wire::plain_frames plain{st.room_name, event, data};
  for (auto& [nsp, targets] : st.by_nsp) {
    if (wire::is_plain(nsp)) {
      // Plain sockets cannot answer: they get the event, and are not waited for.
      sio::deliver(targets, plain.get(nsp), except);
      continue;
    }
    parts.emplace_back(eio::text_frame(sio::encode(sio::packet_type::event, nsp, id, body)), targets);
  }
  auto& ctx = st.by_sid.begin()->second.sock->context();
  boost::asio::post(ctx, [parts = std::move(parts), except, id, collector] {
    uint64_t n = 0;
    for (auto& [frame, targets] : parts)
      for (auto& t : *targets) {
        if (t == except)
          continue;
        auto answered = [collector, sid = t->sid(), user = t->user()](std::optional<std::string> args) {
          if (args)
            caf::anon_send(collector, ack_atom::value, sid, user, *args);
          else
            caf::anon_send(collector, ack_atom::value, sid, user);
        };
        if (t->expect_ack(id, std::move(answered))) {
          t->deliver(frame);
          ++n;
        }
      }
    caf::anon_send(collector, expect_atom::value, n);
    counters().deliveries.fetch_add(n, std::memory_order_relaxed);
  });
  counters().fanouts.fetch_add(1, std::memory_order_relaxed);
}

// Who receives a record to store here: it goes on to the store with it, so
// that the store fans it out once it is committed.
fanout_ptr members_fanout(caf::stateful_actor<room_state>* self, const std::string& except_sid,
                          const sio::delivered_ptr& once) {
  auto& st = *self->state.members;
  auto to = std::make_shared<fanout>();
  if (!st.by_sid.empty()) {
    if (st.dirty)
      rebuild(st);
    for (auto& [nsp, targets] : st.by_nsp)
      to->by_nsp.emplace_back(nsp, targets);
    if (!except_sid.empty())
      if (auto it = st.by_sid.find(except_sid); it != st.by_sid.end())
        to->except = it->second.sock;
    to->once = once;
  }
  return to;
}

} // namespace

void forward_to_store(caf::local_actor* self, store::record& rec, fanout_ptr to, const outcome_ptr& outcome) {
  auto store = caf::actor_cast<caf::actor>(self->system().registry().get(store_key()));
  if (!store) {
    outcome->tell(0, "store_unavailable: the store is restarting");
    return;
  }
  caf::anon_send(store, store_append_atom::value, std::move(rec), std::move(to), outcome);
}

caf::result<uint64_t> forward_to_store(caf::local_actor* self, store::record& rec, fanout_ptr to) {
  auto store = caf::actor_cast<caf::actor>(self->system().registry().get(store_key()));
  if (!store)
    return caf::make_error(caf::sec::runtime_error, std::string{"store_unavailable: the store is restarting"});
  auto rp = self->make_response_promise();
  rp.delegate(store, store_append_atom::value, std::move(rec), std::move(to));
  return rp;
}

caf::behavior room(caf::stateful_actor<room_state>* self, std::shared_ptr<room_members> members,
                   caf::actor directory) {
  self->state.members = std::move(members);
  self->state.directory = std::move(directory);
  counters().rooms.fetch_add(1, std::memory_order_relaxed);
  self->attach_functor([] { counters().rooms.fetch_sub(1, std::memory_order_relaxed); });
  auto report_if_empty = [self] {
    auto& st = *self->state.members;
    if (st.by_sid.empty())
      self->send(self->state.directory, empty_atom::value, st.room_name, st.ops);
  };
  self->set_down_handler([self, report_if_empty](caf::down_msg& dm) {
    remove_member(*self->state.members, dm.source.id());
    report_if_empty();
  });
  // Spawned again after a failure: the members are watched again, and their
  // connections learn the new actor.
  for (auto& [sid, m] : self->state.members->by_sid) {
    self->monitor(m.conn);
    self->send(m.conn, room_moved_atom::value, self->state.members->room_name, caf::actor{self});
  }
  return {
    [self](join_atom, const std::string&, const caf::actor& conn, const socket_ptr& sock) {
      auto& st = *self->state.members;
      ++st.ops;
      if (!st.sid_of.count(conn.id())) {
        st.by_sid[sock->sid()] = room_members::member{sock, conn};
        st.sid_of[conn.id()] = sock->sid();
        st.dirty = true;
        st.size.store(st.by_sid.size(), std::memory_order_relaxed);
        self->monitor(conn);
      }
      return caf::make_message(joined_atom::value, caf::actor{self});
    },
    [self, report_if_empty](leave_atom, const std::string&, const caf::actor& conn) {
      auto& st = *self->state.members;
      if (st.sid_of.count(conn.id())) {
        self->demonitor(conn);
        remove_member(st, conn.id());
      }
      report_if_empty();
    },
    [self](publish_atom, const std::string& event, const std::string& data,
           const std::string& except_sid) { fan_out(self, event, data, except_sid, {}); },
    [self](publish_atom, const std::string& event, const std::string& data,
           const std::string& except_sid,
           const buffers& attachments) { fan_out(self, event, data, except_sid, attachments); },
    [self](publish_atom, const std::string& event, const std::string& data, const std::string& except_sid,
           const sio::delivered_ptr& once) { fan_out(self, event, data, except_sid, {}, once); },
    [self](publish_atom, ack_atom, const std::string& event, const std::string& data,
           const std::string& except_sid,
           const caf::actor& collector) { fan_out_with_ack(self, event, data, except_sid, collector); },
    [self](publish_atom, store::record& rec, const std::string& except_sid, const sio::delivered_ptr& once) {
      return forward_to_store(self, rec, members_fanout(self, except_sid, once));
    },
    [self](publish_atom, store::record& rec, const std::string& except_sid, const sio::delivered_ptr& once,
           const outcome_ptr& outcome) {
      auto to = members_fanout(self, except_sid, once);
      auto& st = *self->state.members;
      if (!st.by_sid.empty()) {
        auto [admins, sites] = reach(st, rec.audience, to->except);
        outcome->reached(admins, sites);
      }
      forward_to_store(self, rec, std::move(to), outcome);
    },
    [self](publish_atom, const std::string& event, const std::string& data, const std::string& except_sid,
           uint8_t to, const outcome_ptr& outcome) { fan_out(self, event, data, except_sid, {}, nullptr, to, outcome); },
    [self](count_atom) { return static_cast<uint64_t>(self->state.members->by_sid.size()); },
    [self](members_atom) {
      // Every member (Socket.IO and plain), and the distinct users among them
      // (dialog site and widget sockets have none), sorted.
      auto& st = *self->state.members;
      std::vector<std::string> users;
      users.reserve(st.by_sid.size());
      for (auto& [sid, m] : st.by_sid)
        if (!m.sock->user().empty())
          users.push_back(m.sock->user());
      std::sort(users.begin(), users.end());
      users.erase(std::unique(users.begin(), users.end()), users.end());
      return caf::make_message(static_cast<uint64_t>(st.by_sid.size()), std::move(users));
    },
    [self](stop_atom) { self->quit(); },
    [self, report_if_empty](adopt_atom, const caf::actor& directory) {
      self->state.directory = directory;
      report_if_empty();
    },
  };
}

} // namespace parley
