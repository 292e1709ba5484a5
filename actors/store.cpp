#include "actors/store.hpp"

#include <atomic>
#include <chrono>
#include <utility>

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include "net/metrics.hpp"
#include "net/plain_wire.hpp"
#include "net/socketio_packet.hpp"

namespace parley {

caf::atom_value store_key() {
  return caf::atom("p_store");
}

namespace {
std::atomic<uint64_t> committed{0};
} // namespace

uint64_t committed_offset() {
  return committed.load(std::memory_order_acquire);
}

std::string stored_event_array(const store::record& r, bool with_offset) {
  auto body = sio::event_array(r.event, r.data);
  if (with_offset) {
    body.pop_back(); // ']'
    body += ",\"";
    body += std::to_string(r.offset);
    body += "\"]";
  }
  return body;
}

namespace {

using self_ptr = caf::stateful_actor<store_state>*;

// The store's timers. A delayed message to the detached store itself would
// keep a reference to it in CAF's clock after it stopped, and the actor
// system waits, at exit, until every detached actor is destroyed: this
// scheduled actor holds the timers instead and sends the store what is due.
// It stops when the store does.
struct store_timer_state {
  static inline const char* name = "store-timer";
};

caf::behavior store_timer(caf::stateful_actor<store_timer_state>* self, caf::actor store) {
  self->monitor(store);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  return {
    [self](caf::timespan delay, caf::message& what) { self->delayed_send(self, delay, timeout_atom::value, what); },
    [self, store](timeout_atom, caf::message& what) { self->send(store, what); },
  };
}

// `what` reaches the store after `delay`.
template <class Duration>
void later(self_ptr self, Duration delay, caf::message what) {
  self->send(self->state.timer, std::chrono::duration_cast<caf::timespan>(delay), std::move(what));
}


// A refusal: its text is the reason (the requester logs or answers it).
caf::error refused(std::string why) {
  return caf::make_error(caf::sec::runtime_error, std::move(why));
}

caf::error unavailable(const std::string& why) {
  return refused("store_unavailable: " + why);
}

void load_sessions(self_ptr self);

// Opens the backend; a failure is logged once per cause and retried later.
void try_open(self_ptr self) {
  auto& mem = *self->state.mem;
  if (mem.open) {
    // A restarted store actor: the backend stayed open.
    counters().store_available.store(1, std::memory_order_relaxed);
    return;
  }
  struct mark_tried {
    store_memory& m;
    ~mark_tried() { m.tried.store(true, std::memory_order_release); }
  } tried{mem};
  auto err = mem.db->open();
  if (!err.empty()) {
    if (err != mem.open_error)
      spdlog::error("store: {}; publishes to stored rooms are refused (503 store_unavailable) until it opens",
                    err);
    mem.open_error = err;
    later(self, std::chrono::seconds(5), caf::make_message(store_open_atom::value));
    return;
  }
  mem.open = true;
  mem.last = std::max(mem.last, mem.db->last_offset());
  committed.store(mem.last, std::memory_order_release);
  std::vector<std::pair<std::string, uint64_t>> counts;
  if (auto e = mem.db->room_counts(counts); e.empty())
    for (auto& [room, n] : counts)
      mem.counts[room] = n;
  counters().store_available.store(1, std::memory_order_relaxed);
  if (self->state.rt->cfg.recovery.enabled && mem.sessions.empty())
    load_sessions(self);
  if (!mem.open_error.empty())
    spdlog::info("store: {} is open again", mem.where);
  mem.open_error.clear();
  spdlog::info("store: {} open, last offset {}", mem.where, mem.last);
}

// Hands a committed record to the I/O thread: one frame per namespace among
// its receivers (its offset as the event's last argument), and one per plain
// WebSocket flavour, for the groups in the record's audience.
void fan_out(const store_state& st, const store::record& r, const fanout& to) {
  if (to.by_nsp.empty())
    return;
  auto body = stored_event_array(r, st.rt->cfg.recovery.enabled);
  wire::plain_frames plain{r.room, r.event, r.data};
  uint64_t n = 0;
  for (auto& [nsp, targets] : to.by_nsp) {
    if (!targets || targets->empty() || !wire::reaches(nsp, r.audience))
      continue;
    n += targets->size() - (to.except && to.except->nsp() == nsp ? 1 : 0);
    if (wire::is_plain(nsp))
      sio::deliver(targets, plain.get(nsp), to.except, to.once, r.offset);
    else
      sio::deliver(targets, eio::text_frame(sio::encode(sio::packet_type::event, nsp, std::nullopt, body)),
                   to.except, to.once, r.offset);
  }
  counters().fanouts.fetch_add(1, std::memory_order_relaxed);
  counters().deliveries.fetch_add(n, std::memory_order_relaxed);
}

void refuse(store_state::item& it, const std::string& why) {
  if (it.outcome)
    it.outcome->tell(0, "store_unavailable: " + why);
  else
    it.rp.deliver(unavailable(why));
}

// Commits what waits, then answers each publisher and fans each record out,
// in offset order.
void flush(self_ptr self) {
  auto& st = self->state;
  auto& mem = *st.mem;
  if (!mem.open || (st.batch.empty() && st.session_writes.empty() && st.session_deletes.empty()))
    return;
  auto batch = std::move(st.batch);
  st.batch.clear();
  std::vector<const store::record*> recs;
  recs.reserve(batch.size());
  for (auto& it : batch)
    recs.push_back(&it.rec);
  std::vector<store::session_row> rows;
  rows.reserve(st.session_writes.size());
  for (auto& [pid, row] : st.session_writes)
    rows.push_back(row);
  std::vector<std::string> gone{st.session_deletes.begin(), st.session_deletes.end()};
  auto err = mem.db->commit(recs, rows, gone);
  if (!err.empty()) {
    // Session changes are tried again with the next commit; records are refused.
    if (!batch.empty())
      spdlog::error("store: commit of {} records failed: {}; they were refused (503 store_unavailable)",
                    batch.size(), err);
    else
      spdlog::error("store: writing {} session changes failed: {}; trying again", rows.size() + gone.size(), err);
    counters().store_failures.fetch_add(batch.size(), std::memory_order_relaxed);
    for (auto& it : batch)
      refuse(it, err);
    if (!st.flush_armed) {
      st.flush_armed = true;
      later(self, std::chrono::seconds(1), caf::make_message(store_flush_atom::value));
    }
    return;
  }
  st.session_writes.clear();
  st.session_deletes.clear();
  st.last_commit = std::chrono::steady_clock::now();
  counters().store_commits.fetch_add(1, std::memory_order_relaxed);
  counters().store_records.fetch_add(batch.size(), std::memory_order_relaxed);
  if (!batch.empty())
    committed.store(batch.back().rec.offset, std::memory_order_release);
  for (auto& it : batch) {
    ++mem.counts[it.rec.room];
    if (it.to)
      fan_out(st, it.rec, *it.to);
    if (it.outcome)
      it.outcome->tell(it.rec.offset, {});
    else
      it.rp.deliver(it.rec.offset);
  }
}

// Something waits to be committed. Records that arrive while the store is
// idle (no commit within the last commit-interval) and find nothing behind
// them are committed at once: a lone publish waits for its fsync only. Else
// they gather for commit-interval, or until commit-batch of them; session
// changes alone always wait for the interval.
void arm(self_ptr self) {
  auto& st = self->state;
  auto& cfg = st.rt->cfg.store;
  bool idle = std::chrono::steady_clock::now() - st.last_commit >= cfg.commit_interval;
  if (st.batch.size() >= cfg.commit_batch || cfg.commit_interval.count() == 0
      || (!st.batch.empty() && idle && self->mailbox().empty())) {
    flush(self);
  } else if (!st.flush_armed) {
    st.flush_armed = true;
    later(self, cfg.commit_interval, caf::make_message(store_flush_atom::value));
  }
}

// A record joins the next commit, with the next offset.
void append(self_ptr self, store::record& rec, const fanout_ptr& to, caf::response_promise rp,
            outcome_ptr outcome) {
  auto& st = self->state;
  rec.offset = ++st.mem->last;
  if (rec.ts_ms == 0)
    rec.ts_ms = unix_ms();
  st.batch.push_back({std::move(rec), to, std::move(rp), std::move(outcome)});
  arm(self);
}

void write_session(self_ptr self, const store::session_row& row) {
  self->state.session_writes[row.pid] = row;
  arm(self);
}

void delete_session(self_ptr self, const std::string& pid) {
  auto& st = self->state;
  st.mem->sessions.erase(pid);
  st.session_writes.erase(pid);
  st.session_deletes.insert(pid);
  arm(self);
}

// Sessions disconnected longer than max-disconnection are forgotten.
void expire_sessions(self_ptr self, int64_t now) {
  auto& mem = *self->state.mem;
  auto limit = self->state.rt->cfg.recovery.max_disconnection.count();
  std::vector<std::string> old;
  for (auto& [pid, row] : mem.sessions)
    if (row.disconnected_ms != 0 && now - row.disconnected_ms > limit)
      old.push_back(pid);
  for (auto& pid : old)
    delete_session(self, pid);
}

// At open: the stored sessions. Those still marked connected belonged to a
// Parley that stopped or crashed: they went away now.
void load_sessions(self_ptr self) {
  auto& mem = *self->state.mem;
  std::vector<store::session_row> rows;
  if (auto err = mem.db->load_sessions(rows); !err.empty()) {
    spdlog::error("store: reading sessions failed: {}; sessions before this start cannot be recovered", err);
    return;
  }
  auto now = unix_ms();
  for (auto& row : rows) {
    if (row.disconnected_ms == 0) {
      row.disconnected_ms = now;
      write_session(self, row);
    }
    mem.sessions[row.pid] = std::move(row);
  }
  expire_sessions(self, now);
  if (!mem.sessions.empty())
    spdlog::info("store: {} sessions can be recovered", mem.sessions.size());
}

// Retention: rooms past max-per-room (with some slack, so a busy room is not
// trimmed at every commit) and, every ten seconds, records past max-age.
void trim(self_ptr self) {
  auto& st = self->state;
  auto& mem = *st.mem;
  auto& cfg = st.rt->cfg.store;
  if (!mem.open)
    return;
  uint64_t removed = 0;
  if (cfg.max_per_room > 0) {
    auto slack = std::max<uint64_t>(1, cfg.max_per_room / 16);
    for (auto& [room, n] : mem.counts) {
      if (n < cfg.max_per_room + slack)
        continue;
      uint64_t r = 0;
      if (auto err = mem.db->trim(room, cfg.max_per_room, 0, r); !err.empty()) {
        spdlog::warn("store: retention of room {} failed: {}", room, err);
        continue;
      }
      n -= std::min(n, r);
      removed += r;
    }
  }
  auto now = unix_ms();
  if (cfg.max_age.count() > 0 && now - mem.aged_ms >= 10000) {
    mem.aged_ms = now;
    uint64_t r = 0;
    if (auto err = mem.db->trim({}, 0, now - cfg.max_age.count(), r); !err.empty()) {
      spdlog::warn("store: retention by age failed: {}", err);
    } else if (r > 0) {
      removed += r;
      std::vector<std::pair<std::string, uint64_t>> counts;
      if (mem.db->room_counts(counts).empty()) {
        mem.counts.clear();
        for (auto& [room, n] : counts)
          mem.counts[room] = n;
      }
    }
  }
  for (auto it = mem.counts.begin(); it != mem.counts.end();)
    it = it->second == 0 ? mem.counts.erase(it) : std::next(it);
  if (removed > 0) {
    counters().store_trimmed.fetch_add(removed, std::memory_order_relaxed);
    spdlog::debug("store: retention removed {} records", removed);
  }
}

} // namespace

caf::behavior store_actor(caf::stateful_actor<store_state>* self, runtime_ptr rt, std::shared_ptr<store_memory> mem) {
  self->state.mem = std::move(mem);
  self->state.rt = std::move(rt);
  self->state.timer = self->spawn(store_timer, caf::actor{self});
  try_open(self);
  later(self, std::chrono::seconds(1), caf::make_message(store_trim_atom::value));
  // Stopping: what waits is committed first (its publishers are answered).
  self->set_exit_handler([self](caf::exit_msg& em) {
    if (self->state.mem->open)
      flush(self);
    self->quit(em.reason);
  });
  self->attach_functor([] { counters().store_available.store(0, std::memory_order_relaxed); });
  // A connection that was recovering a session is gone: recoverable again.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& taken = self->state.mem->taken;
    for (auto it = taken.begin(); it != taken.end();)
      it = it->second == dm.source ? taken.erase(it) : std::next(it);
  });
  // A failure: those waiting for the batch are told now (not by a timeout).
  self->set_exception_handler([self](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    auto what = exception_text(eptr);
    spdlog::error("store: failed ({}); {} waiting publishes refused", what, self->state.batch.size());
    for (auto& it : self->state.batch)
      refuse(it, "the store failed");
    self->state.batch.clear();
    return caf::make_error(caf::sec::runtime_error, what);
  });
  return {
    [self](store_append_atom, store::record& rec, const fanout_ptr& to) -> caf::result<uint64_t> {
      auto& mem = *self->state.mem;
      if (!mem.open) {
        counters().store_failures.fetch_add(1, std::memory_order_relaxed);
        return unavailable(mem.open_error);
      }
      auto rp = self->make_response_promise();
      append(self, rec, to, rp, nullptr);
      return rp;
    },
    [self](store_append_atom, store::record& rec, const fanout_ptr& to, const outcome_ptr& outcome) {
      auto& mem = *self->state.mem;
      if (!mem.open) {
        counters().store_failures.fetch_add(1, std::memory_order_relaxed);
        outcome->tell(0, "store_unavailable: " + mem.open_error);
        return;
      }
      append(self, rec, to, {}, outcome);
    },
    [self](session_write_atom, store::session_row& row) {
      auto& mem = *self->state.mem;
      if (!mem.open)
        return;
      mem.taken.erase(row.pid);
      if (row.disconnected_ms != 0)
        mem.sessions[row.pid] = row;
      else
        mem.sessions.erase(row.pid);
      write_session(self, row);
    },
    [self](session_close_atom, const std::string& pid) {
      auto& mem = *self->state.mem;
      mem.taken.erase(pid);
      if (mem.open)
        delete_session(self, pid);
    },
    [self](session_take_atom, const std::string& pid, const std::string& nsp, const std::string& user,
           const std::string& offset_text, bool has_offset,
           const std::vector<std::string>& rooms) -> caf::result<store::session_row, uint64_t> {
      auto& mem = *self->state.mem;
      if (!mem.open)
        return refused("the store is unavailable");
      auto it = mem.sessions.find(pid);
      if (it == mem.sessions.end())
        return refused("no such session (unknown, expired, or still connected)");
      auto& row = it->second;
      if (row.nsp != nsp || row.user != user)
        return refused("the session belongs to another user or namespace");
      auto now = unix_ms();
      if (now - row.disconnected_ms > self->state.rt->cfg.recovery.max_disconnection.count()) {
        delete_session(self, pid);
        return refused("the session expired");
      }
      if (mem.taken.count(pid))
        return refused("the session is being recovered by another connection");
      std::vector<std::string> all = row.rooms;
      all.insert(all.end(), rooms.begin(), rooms.end());
      uint64_t after = row.base;
      if (has_offset) {
        auto parsed = store::parse_offset(offset_text);
        if (!parsed)
          return refused("the offset is not one of this log's");
        auto o = *parsed;
        if (o > mem.last)
          return refused("the offset is not one of this log's");
        // socket.io-client takes the last string argument of any event as
        // its offset: it must name a record of the session's rooms. One at or
        // below the base was not received in this session: from the base.
        if (o > row.base) {
          std::vector<store::record> probe;
          if (auto err = mem.db->read_rooms(all, o - 1, 1, probe); !err.empty())
            return refused(err);
          if (probe.empty() || probe.front().offset != o)
            return refused("the offset is not that of an event of the session's rooms");
          after = o;
        }
      }
      for (auto& room : all)
        if (mem.db->horizon(room) > after)
          return refused("retention removed messages of " + room + " after that offset");
      auto taker = caf::actor_cast<caf::actor>(self->current_sender());
      if (!taker)
        return refused("no connection to give it to");
      mem.taken[pid] = taker.address();
      self->monitor(taker);
      return caf::make_result(row, after);
    },
    [self](replay_atom, const std::vector<std::string>& rooms,
           uint64_t after) -> caf::result<std::vector<store::record>, uint64_t> {
      auto& mem = *self->state.mem;
      auto& rec = self->state.rt->cfg.recovery;
      if (!mem.open)
        return unavailable(mem.open_error);
      flush(self); // everything handed out so far is committed and fanned out
      for (auto& room : rooms)
        if (mem.db->horizon(room) > after)
          return refused("retention removed messages of " + room + " after that offset");
      std::vector<store::record> out;
      if (auto err = mem.db->read_rooms(rooms, after, rec.max_replay + 1, out); !err.empty()) {
        spdlog::error("store: replay failed: {}", err);
        return unavailable(err);
      }
      if (out.size() > rec.max_replay)
        return refused("more than " + std::to_string(rec.max_replay) + " events missed (parley.recovery.max-replay)");
      // Frames of about this size, all queued at once: within the write queue.
      uint64_t bytes = 0;
      for (auto& r : out)
        bytes += r.event.size() + r.data.size() + r.room.size() + 48;
      if (bytes > self->state.rt->cfg.limits.max_write_queue / 4 * 3)
        return refused("the missed events (" + std::to_string(bytes) + " bytes) would not fit a client's write queue");
      return caf::make_result(std::move(out), mem.last);
    },
    [self](store_flush_atom) {
      self->state.flush_armed = false;
      flush(self);
    },
    [self](store_history_atom, const std::string& room, uint64_t after, uint64_t before, uint64_t limit,
           bool newest) -> caf::result<std::vector<store::record>> {
      auto& mem = *self->state.mem;
      if (!mem.open)
        return unavailable(mem.open_error);
      std::vector<store::record> out;
      if (auto err = mem.db->read_room(room, after, before, limit, newest, out); !err.empty()) {
        spdlog::error("store: reading room {} failed: {}", room, err);
        return unavailable(err);
      }
      return out;
    },
    [self](store_trim_atom) {
      trim(self);
      if (self->state.mem->open)
        expire_sessions(self, unix_ms());
      later(self, std::chrono::seconds(1), caf::make_message(store_trim_atom::value));
    },
    [self](store_open_atom) { try_open(self); },
  };
}

} // namespace parley
