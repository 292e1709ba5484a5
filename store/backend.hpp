// Where records and sessions are kept. The store actor (actors/store.hpp) is
// the only user and calls a backend from its own thread only; backends need no
// locking. SQLite (the embedded default) and memory today; a PostgreSQL
// backend for clusters implements the same interface.
//
// Every call returns "" on success or an error text for the log (the store
// then refuses publishes with 503 store_unavailable).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/record.hpp"

namespace parley::store {

class backend {
public:
  virtual ~backend() = default;

  // Opens (creating what is missing). Called once, before anything else.
  virtual std::string open() = 0;

  // The highest offset ever committed (0 for a new log). Offsets never go
  // back, also when retention removed the newest records.
  virtual uint64_t last_offset() const = 0;

  // One transaction: appends the records (offsets assigned by the caller,
  // strictly increasing, above last_offset()), and writes or deletes
  // sessions. Durable when it returns "" (as durable as the sync setting).
  // On an error nothing of it was written.
  virtual std::string commit(const std::vector<const record*>& records, const std::vector<session_row>& sessions,
                             const std::vector<std::string>& deleted_sessions) = 0;

  // One room's records with after < offset < before (before 0: no upper
  // bound), oldest first, at most `limit`. With `newest` the last `limit` of
  // that range (still returned oldest first), else the first `limit`.
  virtual std::string read_room(const std::string& room, uint64_t after, uint64_t before, size_t limit,
                                bool newest, std::vector<record>& out) = 0;

  // Records of any of `rooms` with offset > after, oldest first, at most `limit`.
  virtual std::string read_rooms(const std::vector<std::string>& rooms, uint64_t after, size_t limit,
                                 std::vector<record>& out) = 0;

  // Retention: removes a room's records beyond the newest `keep` (0: no
  // count limit) and every record with ts_ms < older_than_ms (0: no age
  // limit) — the age limit over all rooms when room is empty. Adds what it
  // removed to `removed`. Remembers, per room, the highest offset removed.
  virtual std::string trim(const std::string& room, uint64_t keep, int64_t older_than_ms, uint64_t& removed) = 0;

  // The highest offset retention removed from a room (0: none): a reader
  // holding an offset below it has missed records that are gone.
  virtual uint64_t horizon(const std::string& room) = 0;

  // Rooms and how many records each holds (for retention by count).
  virtual std::string room_counts(std::vector<std::pair<std::string, uint64_t>>& out) = 0;

  // Every stored session.
  virtual std::string load_sessions(std::vector<session_row>& out) = 0;
};

enum class sync_mode { full, normal };

// SQLite in WAL mode at `path` (its directory is created). sync full:
// every commit is on disk when it returns; normal: it survives a crash of
// Parley but perhaps not of the machine.
std::unique_ptr<backend> make_sqlite_backend(std::string path, sync_mode sync);

// Kept in memory only: gone when Parley stops.
std::unique_ptr<backend> make_memory_backend();

} // namespace parley::store
