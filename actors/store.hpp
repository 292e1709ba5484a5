// The store actor: the message log of this node. It runs detached (on a thread
// of its own), so a commit's fsync never blocks a scheduler worker or the I/O
// thread. It assigns offsets in arrival order, commits records in groups (all
// that arrive within parley.store.commit-interval, at most commit-batch), and
// only then answers the publishers and fans the records out, in offset order,
// with one hop per record onto the I/O thread.
//
//   api / connection / translator ──publish(record)──▶ directory shard ──▶ room
//       ──(append, record, fanout)──▶ store ──commit──▶ I/O fan-out, reply offset
//
// The room adds who receives the record on this node (its members when the
// publish passed it); a room without members sends no actor and no fan-out, but
// the record is stored all the same.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "actors/runtime.hpp"
#include "store/backend.hpp"

namespace parley {

// Who receives a record on this node: the room's members per namespace at the
// time the publish passed the room. Local only (sockets).
struct fanout {
  std::vector<std::pair<std::string, std::shared_ptr<const sio::socket_list>>> by_nsp;
  socket_ptr except;        // the sender's socket, skipped
  sio::delivered_ptr once;  // one publish to several rooms: each socket gets it once
};
using fanout_ptr = std::shared_ptr<const fanout>;

// What became of a stored publish whose publisher is not waiting as an actor
// (the API, RTM events): told once, its offset, or why it was refused
// ("store_unavailable: <reason>" or "unavailable: <reason>"). Told on the
// store's thread, or wherever the last reference goes away untold (a message
// to an actor that died on the way): then "unavailable". Local only.
class publish_outcome {
public:
  using callback = std::function<void(uint64_t offset, const std::string& refusal)>;
  // The same, also told how many it reached per audience (see reached()).
  using reach_callback =
    std::function<void(uint64_t offset, const std::string& refusal, uint32_t admins, uint32_t sites)>;
  explicit publish_outcome(callback cb) : cb_(std::move(cb)) {
  }
  explicit publish_outcome(reach_callback cb)
    : cb_([this, cb = std::move(cb)](uint64_t offset, const std::string& refusal) {
        cb(offset, refusal, admins_, sites_);
      }) {
  }
  ~publish_outcome() {
    tell(0, "unavailable: rooms are restarting, try again");
  }
  publish_outcome(const publish_outcome&) = delete;
  publish_outcome& operator=(const publish_outcome&) = delete;
  void tell(uint64_t offset, const std::string& refusal) {
    if (auto cb = std::move(cb_)) {
      cb_ = nullptr;
      cb(offset, refusal);
    }
  }
  // Whom the publish was handed to, per audience (net/plain_wire.hpp): set
  // by the room before it passes the publish on, read by the callback (the
  // message in between orders the two).
  void reached(uint32_t admins, uint32_t sites) {
    admins_ = admins;
    sites_ = sites;
  }
  uint32_t admins() const { return admins_; }
  uint32_t sites() const { return sites_; }

private:
  callback cb_;
  uint32_t admins_ = 0, sites_ = 0;
};
using outcome_ptr = std::shared_ptr<publish_outcome>;

// What outlives one incarnation of the store actor (the supervisor's spec
// holds it): the open backend and the offsets it handed out.
struct store_memory {
  std::unique_ptr<store::backend> db;
  std::string where;         // for log lines: the path, or "memory"
  bool open = false;
  std::atomic<bool> tried{false}; // the first open was attempted (start-up waits for it)
  std::string open_error;    // why the last open failed
  uint64_t last = 0;         // the last offset handed out
  std::unordered_map<std::string, uint64_t> counts; // records per room (retention by count)
  int64_t aged_ms = 0;       // when retention by age last ran
  // Socket.IO sessions that can be recovered (disconnected ones), by pid.
  std::unordered_map<std::string, store::session_row> sessions;
  // Those being recovered, by the connection actor recovering them: the
  // session stays recoverable until that connection writes it as connected,
  // and becomes recoverable again if the connection dies before.
  std::unordered_map<std::string, caf::actor_addr> taken;
};

struct store_state {
  std::shared_ptr<store_memory> mem;
  runtime_ptr rt;
  struct item {
    store::record rec;
    fanout_ptr to;
    caf::response_promise rp; // the publisher waits as an actor, or
    outcome_ptr outcome;      // it is told through this
  };
  std::vector<item> batch; // waiting for the next commit
  // Session changes waiting for the next commit (the newest row per pid).
  std::unordered_map<std::string, store::session_row> session_writes;
  std::unordered_set<std::string> session_deletes;
  bool flush_armed = false;
  std::chrono::steady_clock::time_point last_commit; // of the last transaction
  caf::actor timer; // see store_timer in store.cpp
  static inline const char* name = "store";
};

// Messages:
//   (store_append_atom, record, fanout|null) -> uint64_t offset, once committed
//       (an error "store_unavailable: ..." when the store is not open or the commit failed)
//   (store_append_atom, record, fanout|null, outcome)   the same, told through the outcome
//   (store_history_atom, room, after, before, limit, newest) -> std::vector<store::record>
// Connection-state recovery (sessions are written with the next commit; the
// store keeps in memory only those that can be recovered, i.e. disconnected):
//   (session_write_atom, session_row)   a session as its connection sees it
//       (connected: disconnected_ms 0; gone for now: the time it went)
//   (session_close_atom, pid)   gone for good (disconnected on purpose): deleted
//   (session_take_atom, pid, nsp, user, offset_text, has_offset, rooms)
//       -> (session_row, uint64_t after)   a disconnected session of that user and
//       namespace, within max-disconnection, that can replay from the offset
//       (or from its base without one) over its rooms and `rooms`; it is
//       being recovered by the sender (until it writes the session as
//       connected). An offset above the session's base must be that of a
//       record of its rooms; at or below it (or none), the replay starts at
//       the base. An error otherwise (the reason, for the log).
//   (replay_atom, rooms, after) -> (std::vector<store::record>, uint64_t head)
//       everything committed in those rooms after `after`, once what waits is
//       committed; head: the last offset committed (the socket's held fan-outs
//       up to it are in the replay). An error when retention removed some of
//       it, or it is more than parley.recovery.max-replay events or would not
//       fit in a client's write queue.
//   (store_flush_atom), (store_trim_atom), (store_open_atom)   its own timers
caf::behavior store_actor(caf::stateful_actor<store_state>* self, runtime_ptr rt, std::shared_ptr<store_memory> mem);

// The registry name of the store actor ("p_store").
caf::atom_value store_key();

// The last offset committed on this node (0 before the store opened): a new
// session's base, from where it is replayed if it comes back without an
// offset (it can have missed nothing committed before it joined its rooms).
uint64_t committed_offset();

// The Socket.IO EVENT array of a stored record: ["event",data,"offset"]
// (the offset only when connection-state recovery is on).
std::string stored_event_array(const store::record& r, bool with_offset);

} // namespace parley

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::fanout_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(parley::outcome_ptr)
