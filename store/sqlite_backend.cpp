// The SQLite backend: the log, the sessions and the retention horizons in one
// database file in WAL mode, written through statements prepared at open().
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sqlite3.h>

#include "store/backend.hpp"
#include "store/commit_check.hpp"

namespace parley::store {

namespace {

// Version 2 is the schema below (version 1 had no messages.audience: it is
// added when such a file is opened); a file of a later version was written by
// a newer Parley and is refused rather than misread.
constexpr int schema_version = 2;

constexpr const char* schema_sql = R"(
CREATE TABLE IF NOT EXISTS messages(
  pos INTEGER PRIMARY KEY, id TEXT NOT NULL, room TEXT NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL,
  ts INTEGER NOT NULL, sender TEXT, origin TEXT, audience INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages(room, pos);
CREATE TABLE IF NOT EXISTS sessions(
  pid TEXT PRIMARY KEY, sid TEXT NOT NULL, nsp TEXT NOT NULL, user TEXT NOT NULL, rooms TEXT NOT NULL,
  base INTEGER NOT NULL, disconnected INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS horizons(room TEXT PRIMARY KEY, upto INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 2;
)";

constexpr const char* record_columns = "pos, id, room, event, data, ts, sender, origin, audience";

// Rooms per `room IN (...)` statement in read_rooms; more rooms are read in
// several statements and merged. Statements for up to this many rooms are
// kept once prepared (a reconnecting client is in a handful of rooms).
constexpr size_t rooms_per_statement = 500;
constexpr size_t cached_room_statements = 64;

struct finalizer {
  void operator()(sqlite3_stmt* s) const {
    sqlite3_finalize(s);
  }
};
using statement = std::unique_ptr<sqlite3_stmt, finalizer>;

// One use of a kept statement: binds parameters in order and, however the
// use ends, resets the statement and clears its bindings. A statement left
// active would keep its read snapshot of the WAL and hold back checkpoints.
class use {
public:
  explicit use(sqlite3_stmt* s) : s_(s) {
  }
  ~use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  use(const use&) = delete;
  use& operator=(const use&) = delete;

  use& text(const std::string& v) {
    if (rc_ == SQLITE_OK)
      rc_ = sqlite3_bind_text64(s_, ++n_, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
    return *this;
  }
  use& text_or_null(const std::string& v) {
    if (!v.empty())
      return text(v);
    if (rc_ == SQLITE_OK)
      rc_ = sqlite3_bind_null(s_, ++n_);
    return *this;
  }
  use& integer(int64_t v) {
    if (rc_ == SQLITE_OK)
      rc_ = sqlite3_bind_int64(s_, ++n_, v);
    return *this;
  }

  // sqlite3_step's result, or the binding's error when a bind failed (a value
  // over SQLite's length limit).
  int step() {
    return rc_ == SQLITE_OK ? sqlite3_step(s_) : rc_;
  }
  bool bind_failed() const {
    return rc_ != SQLITE_OK;
  }
  sqlite3_stmt* get() const {
    return s_;
  }

private:
  sqlite3_stmt* s_;
  int rc_ = SQLITE_OK;
  int n_ = 0;
};

std::string column_text(sqlite3_stmt* s, int i) {
  // Text first, then its size: the documented order (the size is of the text
  // as converted, and embedded NULs are kept).
  auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  auto n = sqlite3_column_bytes(s, i);
  return p ? std::string(p, static_cast<size_t>(n)) : std::string();
}

record column_record(sqlite3_stmt* s) {
  record r;
  r.offset = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  r.id = column_text(s, 1);
  r.room = column_text(s, 2);
  r.event = column_text(s, 3);
  r.data = column_text(s, 4);
  r.ts_ms = sqlite3_column_int64(s, 5);
  r.sender = column_text(s, 6);
  r.origin = column_text(s, 7);
  r.audience = static_cast<uint8_t>(sqlite3_column_int(s, 8));
  return r;
}

int64_t clamp(size_t n) {
  return static_cast<int64_t>(std::min<uint64_t>(n, max_offset));
}

// A session's rooms as a JSON array of strings, then, when the backend
// joined it to some (session_row::granted), an object {"granted":[...]}
// (rows written before have none). RapidJSON writes bytes of
// 0x80 and above as they are and escapes quotes, backslashes and control
// characters (NUL included), and reads them back the same way, so any room
// name round-trips, valid UTF-8 or not.
bool encode_rooms(const std::vector<std::string>& rooms, const std::vector<std::string>& granted, std::string& out) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto strings = [&w](const std::vector<std::string>& names) {
    for (auto& r : names) {
      if (r.size() > std::numeric_limits<rapidjson::SizeType>::max())
        return false;
      w.String(r.data(), static_cast<rapidjson::SizeType>(r.size()));
    }
    return true;
  };
  w.StartArray();
  if (!strings(rooms))
    return false;
  if (!granted.empty()) {
    w.StartObject();
    w.Key("granted");
    w.StartArray();
    if (!strings(granted))
      return false;
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  out.assign(buf.GetString(), buf.GetSize());
  return true;
}

bool decode_rooms(const std::string& text, std::vector<std::string>& out, std::vector<std::string>& granted) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsArray())
    return false;
  for (auto& v : doc.GetArray()) {
    if (v.IsObject()) {
      auto g = v.FindMember("granted");
      if (g == v.MemberEnd() || !g->value.IsArray())
        return false;
      for (auto& r : g->value.GetArray()) {
        if (!r.IsString())
          return false;
        granted.emplace_back(r.GetString(), r.GetStringLength());
      }
      continue;
    }
    if (!v.IsString())
      return false;
    out.emplace_back(v.GetString(), v.GetStringLength());
  }
  return true;
}

class sqlite_backend final : public backend {
public:
  sqlite_backend(std::string path, sync_mode sync) : path_(std::move(path)), sync_(sync) {
  }

  ~sqlite_backend() override {
    close();
  }

  std::string open() override {
    if (db_)
      return "cannot open " + path_ + ": already open";
    try {
      auto err = open_db();
      if (!err.empty())
        close();
      return err;
    } catch (const std::exception& e) {
      close();
      return "cannot open " + path_ + ": " + e.what();
    }
  }

  uint64_t last_offset() const override {
    return last_;
  }

  std::string commit(const std::vector<const record*>& records, const std::vector<session_row>& sessions,
                     const std::vector<std::string>& deleted_sessions) override {
    if (!db_)
      return not_open("write");
    if (records.empty() && sessions.empty() && deleted_sessions.empty())
      return {};
    try {
      return write(records, sessions, deleted_sessions);
    } catch (const std::exception& e) {
      return "cannot write " + path_ + ": " + e.what();
    }
  }

  std::string read_room(const std::string& room, uint64_t after, uint64_t before, size_t limit, bool newest,
                        std::vector<record>& out) override {
    if (!db_)
      return not_open("read");
    // Offsets are at most max_offset: nothing lies above that, and a bound
    // above it bounds nothing.
    if (limit == 0 || after >= max_offset || before == 1)
      return {};
    auto upto = before == 0 || before > max_offset ? max_offset : before - 1;
    auto start = out.size();
    try {
      use u(newest ? room_newest_.get() : room_oldest_.get());
      u.text(room).integer(static_cast<int64_t>(after)).integer(static_cast<int64_t>(upto));
      u.integer(clamp(limit));
      if (auto err = read_records(u, out); !err.empty()) {
        out.resize(start);
        return err;
      }
    } catch (const std::exception& e) {
      out.resize(start);
      return "cannot read " + path_ + ": " + e.what();
    }
    if (newest)
      std::reverse(out.begin() + static_cast<ptrdiff_t>(start), out.end());
    return {};
  }

  std::string read_rooms(const std::vector<std::string>& rooms, uint64_t after, size_t limit,
                         std::vector<record>& out) override {
    if (!db_)
      return not_open("read");
    if (rooms.empty() || limit == 0 || after >= max_offset)
      return {};
    auto start = out.size();
    try {
      auto err = read_many(rooms, after, limit, out);
      if (!err.empty())
        out.resize(start);
      return err;
    } catch (const std::exception& e) {
      out.resize(start);
      return "cannot read " + path_ + ": " + e.what();
    }
  }

  std::string trim(const std::string& room, uint64_t keep, int64_t older_than_ms,
                   uint64_t& removed) override {
    if (!db_)
      return not_open("trim");
    // Without a room there is no count limit to apply: retention by count
    // goes room by room (room_counts() says which rooms are over).
    if (room.empty())
      keep = 0;
    if (keep == 0 && older_than_ms == 0)
      return {};
    try {
      return trim_in_transaction(room, keep, older_than_ms, removed);
    } catch (const std::exception& e) {
      return "cannot trim " + path_ + ": " + e.what();
    }
  }

  uint64_t horizon(const std::string& room) override {
    if (!db_)
      return 0;
    use u(horizon_.get());
    u.text(room);
    // An error reads as "nothing removed": the caller cannot tell, and the
    // next read that fails reports it.
    if (u.step() != SQLITE_ROW)
      return 0;
    auto v = sqlite3_column_int64(u.get(), 0);
    return v > 0 ? static_cast<uint64_t>(v) : 0;
  }

  std::string room_counts(std::vector<std::pair<std::string, uint64_t>>& out) override {
    if (!db_)
      return not_open("read");
    auto start = out.size();
    try {
      use u(room_counts_.get());
      int rc;
      while ((rc = u.step()) == SQLITE_ROW)
        out.emplace_back(column_text(u.get(), 0), static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1)));
      if (rc != SQLITE_DONE) {
        out.resize(start);
        return failure("read", rc);
      }
      return {};
    } catch (const std::exception& e) {
      out.resize(start);
      return "cannot read " + path_ + ": " + e.what();
    }
  }

  std::string load_sessions(std::vector<session_row>& out) override {
    if (!db_)
      return not_open("read");
    auto start = out.size();
    try {
      auto err = read_sessions(out);
      if (!err.empty())
        out.resize(start);
      return err;
    } catch (const std::exception& e) {
      out.resize(start);
      return "cannot read " + path_ + ": " + e.what();
    }
  }

private:
  // "cannot <what> <path>: <SQLite's message>". Called right after the failing
  // call, before anything else on the connection replaces the message.
  std::string failure(const char* what, int rc) const {
    const char* msg = db_ ? sqlite3_errmsg(db_) : nullptr;
    // A failed bind leaves "not an error" or an older message behind; the
    // result code's own text is the better one then.
    if (!msg || sqlite3_errcode(db_) != rc)
      msg = sqlite3_errstr(rc);
    auto text = std::string("cannot ") + what + " " + path_ + ": " + msg;
    // "disk I/O error" and "unable to open database file" say little; the
    // system's reason (file too large, permission denied, ...) says more.
    auto primary = rc & 0xff;
    if (db_ && (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN))
      if (int e = sqlite3_system_errno(db_); e != 0)
        text += " (" + std::system_category().message(e) + ")";
    return text;
  }

  std::string not_open(const char* what) const {
    return std::string("cannot ") + what + " " + path_ + ": not open";
  }

  std::string open_db() {
    if (path_.empty() || path_.find('\0') != std::string::npos)
      return "cannot open '" + path_ + "': not a file name";
    auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec)
        return "cannot open " + path_ + ": cannot create " + dir.string() + ": " + ec.message();
    }
    // No URI parsing ("file:" names are files like any other), and no mutex:
    // the store actor alone uses the connection, from one thread at a time.
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK)
      return failure("open", rc);
    sqlite3_extended_result_codes(db_, 1);
    // A checkpoint by another process (the sqlite3 shell, a backup) can hold
    // the lock briefly; commits wait for it rather than fail.
    sqlite3_busy_timeout(db_, 5000);
    // Setting the journal mode is the first statement that reads the file, so
    // a file that is not a database is refused here, at open().
    std::string mode;
    if (auto err = query_text("PRAGMA journal_mode=WAL", mode); !err.empty())
      return err;
    if (mode != "wal")
      return "cannot open " + path_ + ": journal mode stays '" + mode + "', WAL is not available";
    // In WAL mode FULL syncs the log on every commit; NORMAL only at
    // checkpoints, so a commit survives a crash of the process but the last
    // ones may not survive a power loss.
    if (auto err = exec(sync_ == sync_mode::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        !err.empty())
      return err;
    std::string version;
    if (auto err = query_text("PRAGMA user_version", version); !err.empty())
      return err;
    if (std::atoll(version.c_str()) > schema_version)
      return "cannot open " + path_ + ": schema version " + version + " is newer than this Parley's ("
             + std::to_string(schema_version) + ")";
    if (auto err = exec("BEGIN IMMEDIATE"); !err.empty())
      return err;
    if (auto err = exec(schema_sql); !err.empty()) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return err;
    }
    // A version 1 file: its messages table lacks the audience column.
    if (std::atoll(version.c_str()) == 1) {
      if (auto err = exec("ALTER TABLE messages ADD COLUMN audience INTEGER NOT NULL DEFAULT 0"); !err.empty()) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return err;
      }
    }
    if (auto err = exec("COMMIT"); !err.empty()) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return err;
    }
    if (auto err = prepare_all(); !err.empty())
      return err;
    // The meta row is the highest offset ever committed; the newest row
    // counts too, for a file whose meta row is missing.
    std::string last;
    if (auto err = query_text("SELECT max(coalesce((SELECT value FROM meta WHERE key = 'last_offset'), 0), "
                              "coalesce((SELECT max(pos) FROM messages), 0))",
                              last);
        !err.empty())
      return err;
    auto v = std::strtoll(last.c_str(), nullptr, 10);
    last_ = v > 0 ? static_cast<uint64_t>(v) : 0;
    return {};
  }

  std::string prepare_all() {
    std::string by_room = std::string("SELECT ") + record_columns
                          + " FROM messages WHERE room = ?1 AND pos > ?2 AND pos <= ?3 ORDER BY pos ";
    const std::pair<statement*, std::string> all[] = {
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&insert_, "INSERT INTO messages(pos, id, room, event, data, ts, sender, origin, audience) "
                 "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
      {&set_last_, "INSERT OR REPLACE INTO meta(key, value) VALUES('last_offset', ?1)"},
      {&upsert_session_, "INSERT OR REPLACE INTO sessions(pid, sid, nsp, user, rooms, base, disconnected) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      {&delete_session_, "DELETE FROM sessions WHERE pid = ?1"},
      {&room_oldest_, by_room + "LIMIT ?4"},
      {&room_newest_, by_room + "DESC LIMIT ?4"},
      {&horizon_, "SELECT upto FROM horizons WHERE room = ?1"},
      {&raise_horizon_, "INSERT INTO horizons(room, upto) VALUES(?1, ?2) "
                        "ON CONFLICT(room) DO UPDATE SET upto = max(upto, excluded.upto)"},
      {&nth_newest_, "SELECT pos FROM messages WHERE room = ?1 ORDER BY pos DESC LIMIT 1 OFFSET ?2"},
      {&delete_upto_, "DELETE FROM messages WHERE room = ?1 AND pos <= ?2"},
      {&older_in_room_, "SELECT max(pos) FROM messages WHERE room = ?1 AND ts < ?2"},
      {&delete_older_in_room_, "DELETE FROM messages WHERE room = ?1 AND ts < ?2"},
      {&older_by_room_, "SELECT room, max(pos) FROM messages WHERE ts < ?1 GROUP BY room"},
      {&delete_older_, "DELETE FROM messages WHERE ts < ?1"},
      {&room_counts_, "SELECT room, count(*) FROM messages GROUP BY room ORDER BY room"},
      {&load_sessions_, "SELECT pid, sid, nsp, user, rooms, base, disconnected FROM sessions ORDER BY pid"},
    };
    for (auto& [where, sql] : all)
      if (auto err = prepare(sql, *where, "open"); !err.empty())
        return err;
    return {};
  }

  std::string prepare(const std::string& sql, statement& out, const char* what) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s,
                                nullptr);
    out.reset(s);
    return rc == SQLITE_OK ? std::string() : failure(what, rc);
  }

  std::string exec(const char* sql) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? std::string() : failure("open", rc);
  }

  // The first column of the first row of `sql` as text ("" without a row).
  std::string query_text(const std::string& sql, std::string& out) {
    statement s;
    if (auto err = prepare(sql, s, "open"); !err.empty())
      return err;
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_ROW)
      out = column_text(s.get(), 0);
    else if (rc != SQLITE_DONE)
      return failure("open", rc);
    return {};
  }

  void close() {
    for (auto* s : {&begin_, &commit_, &rollback_, &insert_, &set_last_, &upsert_session_, &delete_session_,
                    &room_oldest_, &room_newest_, &horizon_, &raise_horizon_, &nth_newest_, &delete_upto_,
                    &older_in_room_, &delete_older_in_room_, &older_by_room_, &delete_older_, &room_counts_,
                    &load_sessions_})
      s->reset();
    rooms_statements_.clear();
    if (db_) {
      // Closing the last connection checkpoints the WAL into the database
      // and removes it.
      sqlite3_close_v2(db_);
      db_ = nullptr;
    }
  }

  // Runs a statement that returns no rows.
  std::string run(use& u, const char* what) {
    int rc = u.step();
    return rc == SQLITE_DONE ? std::string() : failure(what, rc);
  }

  // BEGIN IMMEDIATE, and ROLLBACK when the scope ends without commit(): on an
  // error, and on an exception (the statements' own guards, declared later,
  // have reset them by then).
  class transaction {
  public:
    transaction(sqlite_backend& b) : b_(b) {
    }
    ~transaction() {
      if (open_ && !sqlite3_get_autocommit(b_.db_)) {
        use u(b_.rollback_.get());
        u.step();
      }
    }
    std::string begin(const char* what) {
      use u(b_.begin_.get());
      auto err = b_.run(u, what);
      open_ = err.empty();
      return err;
    }
    std::string commit(const char* what) {
      use u(b_.commit_.get());
      auto err = b_.run(u, what);
      if (err.empty())
        open_ = false;
      return err;
    }

  private:
    sqlite_backend& b_;
    bool open_ = false;
  };

  std::string write(const std::vector<const record*>& records, const std::vector<session_row>& sessions,
                    const std::vector<std::string>& deleted_sessions) {
    transaction tx(*this);
    if (auto err = tx.begin("write"); !err.empty())
      return err;
    // Sessions are written before records and deleted after being written:
    // a pid in both lists ends deleted.
    std::string rooms;
    for (auto& s : sessions) {
      if (!encode_rooms(s.rooms, s.granted, rooms))
        return "cannot write " + path_ + ": session " + s.pid + " has a room name over 4 GiB";
      use u(upsert_session_.get());
      u.text(s.pid).text(s.sid).text(s.nsp).text(s.user).text(rooms);
      u.integer(static_cast<int64_t>(s.base)).integer(s.disconnected_ms);
      if (auto err = run(u, "write"); !err.empty())
        return err;
    }
    for (auto& pid : deleted_sessions) {
      use u(delete_session_.get());
      u.text(pid);
      if (auto err = run(u, "write"); !err.empty())
        return err;
    }
    auto last = last_;
    for (size_t i = 0; i < records.size(); ++i) {
      if (auto why = check_record(records[i], i, last); !why.empty())
        return "cannot write " + path_ + ": " + why;
      auto& r = *records[i];
      use u(insert_.get());
      u.integer(static_cast<int64_t>(r.offset)).text(r.id).text(r.room).text(r.event).text(r.data);
      u.integer(r.ts_ms).text_or_null(r.sender).text_or_null(r.origin).integer(r.audience);
      if (auto err = run(u, "write"); !err.empty())
        return err;
      last = r.offset;
    }
    if (last != last_) {
      use u(set_last_.get());
      u.integer(static_cast<int64_t>(last));
      if (auto err = run(u, "write"); !err.empty())
        return err;
    }
    if (auto err = tx.commit("write"); !err.empty())
      return err;
    last_ = last;
    return {};
  }

  std::string read_records(use& u, std::vector<record>& out) {
    int rc;
    while ((rc = u.step()) == SQLITE_ROW)
      out.push_back(column_record(u.get()));
    return rc == SQLITE_DONE ? std::string() : failure("read", rc);
  }

  // The statement reading `n` rooms at once: ?1 the offset to read after,
  // ?2..?n+1 the rooms, ?n+2 the limit.
  sqlite3_stmt* rooms_statement(size_t n, statement& scratch, std::string& err) {
    auto it = rooms_statements_.find(n);
    if (it != rooms_statements_.end())
      return it->second.get();
    std::string sql = std::string("SELECT ") + record_columns + " FROM messages WHERE pos > ?1 AND room IN (";
    for (size_t i = 0; i < n; ++i) {
      sql += i ? ", ?" : "?";
      sql += std::to_string(i + 2);
    }
    sql += ") ORDER BY pos LIMIT ?" + std::to_string(n + 2);
    statement s;
    if (err = prepare(sql, s, "read"); !err.empty())
      return nullptr;
    if (n > cached_room_statements) {
      scratch = std::move(s);
      return scratch.get();
    }
    return rooms_statements_.emplace(n, std::move(s)).first->second.get();
  }

  std::string read_many(const std::vector<std::string>& rooms, uint64_t after, size_t limit,
                        std::vector<record>& out) {
    std::vector<std::string> wanted(rooms);
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    auto start = out.size();
    for (size_t first = 0; first < wanted.size(); first += rooms_per_statement) {
      auto n = std::min(rooms_per_statement, wanted.size() - first);
      statement scratch;
      std::string err;
      auto s = rooms_statement(n, scratch, err);
      if (!s)
        return err;
      use u(s);
      u.integer(static_cast<int64_t>(after));
      for (size_t i = first; i < first + n; ++i)
        u.text(wanted[i]);
      u.integer(clamp(limit));
      if (err = read_records(u, out); !err.empty())
        return err;
    }
    // Each statement read its first `limit`: the first `limit` of them all
    // are among those.
    if (wanted.size() > rooms_per_statement) {
      auto begin = out.begin() + static_cast<ptrdiff_t>(start);
      std::sort(begin, out.end(), [](const record& a, const record& b) { return a.offset < b.offset; });
      if (out.size() - start > limit)
        out.resize(start + limit);
    }
    return {};
  }

  std::string raise_horizon(const std::string& room, int64_t upto) {
    use u(raise_horizon_.get());
    u.text(room).integer(upto);
    return run(u, "trim");
  }

  std::string trim_in_transaction(const std::string& room, uint64_t keep, int64_t older_than_ms,
                                  uint64_t& removed) {
    transaction tx(*this);
    if (auto err = tx.begin("trim"); !err.empty())
      return err;
    uint64_t gone = 0;
    if (keep > 0 && keep <= max_offset) {
      // The (keep+1)-th newest record and everything older go.
      int64_t cutoff = 0;
      {
        use u(nth_newest_.get());
        u.text(room).integer(static_cast<int64_t>(keep));
        int rc = u.step();
        if (rc == SQLITE_ROW)
          cutoff = sqlite3_column_int64(u.get(), 0);
        else if (rc != SQLITE_DONE)
          return failure("trim", rc);
      }
      if (cutoff > 0) {
        use u(delete_upto_.get());
        u.text(room).integer(cutoff);
        if (auto err = run(u, "trim"); !err.empty())
          return err;
        gone += static_cast<uint64_t>(sqlite3_changes64(db_));
        if (auto err = raise_horizon(room, cutoff); !err.empty())
          return err;
      }
    }
    if (older_than_ms != 0 && !room.empty()) {
      int64_t newest_old = 0;
      {
        use u(older_in_room_.get());
        u.text(room).integer(older_than_ms);
        int rc = u.step();
        if (rc == SQLITE_ROW)
          newest_old = sqlite3_column_int64(u.get(), 0); // NULL (none) reads as 0
        else if (rc != SQLITE_DONE)
          return failure("trim", rc);
      }
      if (newest_old > 0) {
        use u(delete_older_in_room_.get());
        u.text(room).integer(older_than_ms);
        if (auto err = run(u, "trim"); !err.empty())
          return err;
        gone += static_cast<uint64_t>(sqlite3_changes64(db_));
        if (auto err = raise_horizon(room, newest_old); !err.empty())
          return err;
      }
    } else if (older_than_ms != 0) {
      std::vector<std::pair<std::string, int64_t>> affected;
      {
        use u(older_by_room_.get());
        u.integer(older_than_ms);
        int rc;
        while ((rc = u.step()) == SQLITE_ROW)
          affected.emplace_back(column_text(u.get(), 0), sqlite3_column_int64(u.get(), 1));
        if (rc != SQLITE_DONE)
          return failure("trim", rc);
      }
      if (!affected.empty()) {
        use u(delete_older_.get());
        u.integer(older_than_ms);
        if (auto err = run(u, "trim"); !err.empty())
          return err;
        gone += static_cast<uint64_t>(sqlite3_changes64(db_));
        for (auto& [name, upto] : affected)
          if (auto err = raise_horizon(name, upto); !err.empty())
            return err;
      }
    }
    if (auto err = tx.commit("trim"); !err.empty())
      return err;
    removed += gone;
    return {};
  }

  std::string read_sessions(std::vector<session_row>& out) {
    use u(load_sessions_.get());
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) {
      auto s = u.get();
      session_row row;
      row.pid = column_text(s, 0);
      row.sid = column_text(s, 1);
      row.nsp = column_text(s, 2);
      row.user = column_text(s, 3);
      if (!decode_rooms(column_text(s, 4), row.rooms, row.granted))
        return "cannot read " + path_ + ": session " + row.pid + " has a malformed room list";
      row.base = static_cast<uint64_t>(sqlite3_column_int64(s, 5));
      row.disconnected_ms = sqlite3_column_int64(s, 6);
      out.push_back(std::move(row));
    }
    return rc == SQLITE_DONE ? std::string() : failure("read", rc);
  }

  std::string path_;
  sync_mode sync_;
  sqlite3* db_ = nullptr;
  uint64_t last_ = 0;
  statement begin_, commit_, rollback_, insert_, set_last_, upsert_session_, delete_session_, room_oldest_,
    room_newest_, horizon_, raise_horizon_, nth_newest_, delete_upto_, older_in_room_, delete_older_in_room_,
    older_by_room_, delete_older_, room_counts_, load_sessions_;
  std::map<size_t, statement> rooms_statements_;
};

} // namespace

std::unique_ptr<backend> make_sqlite_backend(std::string path, sync_mode sync) {
  return std::make_unique<sqlite_backend>(std::move(path), sync);
}

} // namespace parley::store
