// The storage backends: every case runs against SQLite (in a fresh directory
// under /tmp, removed afterwards) and against memory, with the same
// expectations; the cases about files (open errors, reopening, a crash) are
// SQLite's alone.
#define CAF_SUITE store
#include <caf/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <csignal>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/backend.hpp"

using namespace parley::store;
namespace fs = std::filesystem;

namespace {

fs::path make_temp_dir() {
  std::string name = (fs::temp_directory_path() / "parley-store-XXXXXX").string();
  if (!mkdtemp(name.data()))
    CAF_FAIL("mkdtemp failed for " << name);
  return name;
}

// One backend under test. SQLite's file is in a directory that does not
// exist yet, so open() has to create it.
struct subject {
  explicit subject(std::string k, sync_mode s = sync_mode::full) : kind(std::move(k)), sync(s) {
    if (kind == "sqlite")
      dir = make_temp_dir();
    b = make();
    CAF_REQUIRE_EQUAL(b->open(), "");
  }

  ~subject() {
    b.reset();
    std::error_code ec;
    if (!dir.empty())
      fs::remove_all(dir, ec);
  }

  bool sqlite() const {
    return kind == "sqlite";
  }

  std::string path() const {
    return (dir / "data" / "parley.db").string();
  }

  // How the backend's error texts name it.
  std::string where() const {
    return sqlite() ? path() : "memory store";
  }

  std::unique_ptr<backend> make() const {
    return sqlite() ? make_sqlite_backend(path(), sync) : make_memory_backend();
  }

  // Closes and opens the file again (SQLite only: memory keeps nothing).
  void reopen() {
    b.reset();
    b = make();
    CAF_REQUIRE_EQUAL(b->open(), "");
  }

  backend* operator->() {
    return b.get();
  }

  std::string kind;
  sync_mode sync;
  fs::path dir;
  std::unique_ptr<backend> b;
};

template <class F>
void for_each_backend(F f) {
  for (auto kind : {"sqlite", "memory"}) {
    CAF_MESSAGE("backend: " << kind);
    subject s(kind);
    f(s);
  }
}

record rec(uint64_t offset, std::string room, int64_t ts_ms = 1000) {
  record r;
  r.id = new_record_id();
  r.room = std::move(room);
  r.event = "msg";
  r.data = "{\"n\":" + std::to_string(offset) + "}";
  r.offset = offset;
  r.ts_ms = ts_ms;
  r.sender = offset % 2 ? "user-" + std::to_string(offset) : ""; // some sent through the API
  r.origin = offset % 2 ? "sid-" + std::to_string(offset) : "";
  r.audience = static_cast<uint8_t>(offset % 3); // everyone, admins, sites
  return r;
}

std::string put(backend& b, const std::vector<record>& records, const std::vector<session_row>& sessions = {},
                const std::vector<std::string>& deleted = {}) {
  std::vector<const record*> ptrs;
  for (auto& r : records)
    ptrs.push_back(&r);
  return b.commit(ptrs, sessions, deleted);
}

std::string offsets(const std::vector<record>& rs) {
  std::string out;
  for (auto& r : rs)
    out += (out.empty() ? "" : ",") + std::to_string(r.offset);
  return out;
}

std::string room_of(backend& b, const std::string& room, uint64_t after = 0, uint64_t before = 0,
                    size_t limit = 1000, bool newest = false) {
  std::vector<record> out;
  auto err = b.read_room(room, after, before, limit, newest, out);
  if (!err.empty())
    return "error: " + err;
  return offsets(out);
}

std::string rooms_of(backend& b, const std::vector<std::string>& rooms, uint64_t after, size_t limit) {
  std::vector<record> out;
  auto err = b.read_rooms(rooms, after, limit, out);
  if (!err.empty())
    return "error: " + err;
  return offsets(out);
}

std::string counts(backend& b) {
  std::vector<std::pair<std::string, uint64_t>> out;
  auto err = b.room_counts(out);
  if (!err.empty())
    return "error: " + err;
  std::string s;
  for (auto& [room, n] : out)
    s += (s.empty() ? "" : ",") + room + "=" + std::to_string(n);
  return s;
}

void check_same(const record& got, const record& want) {
  CAF_CHECK_EQUAL(got.id, want.id);
  CAF_CHECK_EQUAL(got.room, want.room);
  CAF_CHECK_EQUAL(got.event, want.event);
  CAF_CHECK_EQUAL(got.data, want.data);
  CAF_CHECK_EQUAL(got.offset, want.offset);
  CAF_CHECK_EQUAL(got.ts_ms, want.ts_ms);
  CAF_CHECK_EQUAL(got.sender, want.sender);
  CAF_CHECK_EQUAL(got.origin, want.origin);
  CAF_CHECK_EQUAL(static_cast<int>(got.audience), static_cast<int>(want.audience));
}

void check_same(const session_row& got, const session_row& want) {
  CAF_CHECK_EQUAL(got.pid, want.pid);
  CAF_CHECK_EQUAL(got.sid, want.sid);
  CAF_CHECK_EQUAL(got.nsp, want.nsp);
  CAF_CHECK_EQUAL(got.user, want.user);
  CAF_REQUIRE_EQUAL(got.rooms.size(), want.rooms.size());
  for (size_t i = 0; i < got.rooms.size(); ++i)
    CAF_CHECK_EQUAL(got.rooms[i], want.rooms[i]);
  CAF_CHECK_EQUAL(got.granted, want.granted);
  CAF_CHECK_EQUAL(got.base, want.base);
  CAF_CHECK_EQUAL(got.disconnected_ms, want.disconnected_ms);
}

std::vector<session_row> sessions_of(backend& b) {
  std::vector<session_row> out;
  auto err = b.load_sessions(out);
  CAF_CHECK_EQUAL(err, "");
  return out;
}

// Every byte from 0x01 to 0x7f, then multi-byte UTF-8 (2, 3 and 4 bytes).
std::string all_bytes() {
  std::string s;
  for (int c = 1; c < 0x80; ++c)
    s += static_cast<char>(c);
  return s + "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80";
}

} // namespace

CAF_TEST(record ids are 32 lowercase hex characters and distinct) {
  std::set<std::string> seen;
  size_t malformed = 0;
  for (int i = 0; i < 2000; ++i) {
    auto id = new_record_id();
    if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
      ++malformed;
    seen.insert(id);
  }
  CAF_CHECK_EQUAL(malformed, 0u);
  CAF_CHECK_EQUAL(seen.size(), 2000u);
  CAF_MESSAGE("e.g. " << *seen.begin());
}

CAF_TEST(append then read one room) {
  for_each_backend([](subject& s) {
    // Room a holds the odd offsets, b the even ones; two commits.
    std::vector<record> first, second;
    for (uint64_t i = 1; i <= 12; ++i)
      (i <= 6 ? first : second).push_back(rec(i, i % 2 ? "a" : "b"));
    CAF_REQUIRE_EQUAL(put(*s.b, first), "");
    CAF_REQUIRE_EQUAL(put(*s.b, second), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "1,3,5,7,9,11");
    CAF_CHECK_EQUAL(room_of(*s.b, "b"), "2,4,6,8,10,12");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 3), "5,7,9,11");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 4), "5,7,9,11");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 9), "1,3,5,7");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 3, 9), "5,7");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 0, 2), "1,3");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 0, 2, true), "9,11");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 1, 9, 2, false), "3,5");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 1, 9, 2, true), "5,7");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 0, 100, true), "1,3,5,7,9,11");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 1, 0, 1, true), "11");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 11), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 1), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 5, 5), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 7, 3), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 5, 7), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 0, 0), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 0, 0, true), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "none"), "");
    CAF_CHECK_EQUAL(room_of(*s.b, ""), "");
    constexpr auto max = std::numeric_limits<uint64_t>::max();
    CAF_CHECK_EQUAL(room_of(*s.b, "a", max), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, max), "1,3,5,7,9,11");
    CAF_CHECK_EQUAL(room_of(*s.b, "a", 0, 0, std::numeric_limits<size_t>::max(), true), "1,3,5,7,9,11");
    // Every field comes back, an empty sender as empty; reads append to `out`.
    std::vector<record> out{rec(99, "x")};
    CAF_REQUIRE_EQUAL(s->read_room("b", 0, 5, 10, false, out), "");
    CAF_REQUIRE_EQUAL(s->read_room("a", 2, 6, 10, true, out), "");
    CAF_REQUIRE_EQUAL(out.size(), 5u);
    CAF_CHECK_EQUAL(out[0].offset, 99u);
    check_same(out[1], first[1]);
    check_same(out[2], first[3]);
    check_same(out[3], first[2]);
    check_same(out[4], first[4]);
    CAF_CHECK_EQUAL(out[1].sender, "");
    CAF_CHECK_EQUAL(out[4].sender, "user-5");
  });
}

CAF_TEST(read several rooms in offset order) {
  for_each_backend([](subject& s) {
    std::vector<record> rs;
    const char* names[] = {"a", "b", "c"};
    for (uint64_t i = 1; i <= 15; ++i)
      rs.push_back(rec(i, names[i % 3])); // a: 3,6,9,12,15  b: 1,4,7,10,13  c: 2,5,8,11,14
    CAF_REQUIRE_EQUAL(put(*s.b, rs), "");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"a", "c"}, 0, 100), "2,3,5,6,8,9,11,12,14,15");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"c", "a"}, 6, 100), "8,9,11,12,14,15");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"a", "c"}, 6, 3), "8,9,11");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"a", "b", "c"}, 0, 4), "1,2,3,4");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"b", "b", "nowhere", "b"}, 4, 100), "7,10,13");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"a"}, 15, 100), "");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"a"}, 0, 0), "");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {}, 0, 100), "");
    CAF_CHECK_EQUAL(rooms_of(*s.b, {"a"}, std::numeric_limits<uint64_t>::max(), 100), "");
    // More rooms than SQLite reads in one statement: one record each in
    // rooms r0..r1199, asked for with unknown rooms mixed in.
    std::vector<record> many;
    std::vector<std::string> wanted;
    for (uint64_t i = 0; i < 1200; ++i) {
      many.push_back(rec(100 + i, "r" + std::to_string(i)));
      wanted.push_back("r" + std::to_string(1199 - i));
      wanted.push_back("unknown" + std::to_string(i));
    }
    CAF_REQUIRE_EQUAL(put(*s.b, many), "");
    std::string expect;
    for (uint64_t i = 200; i < 250; ++i)
      expect += (expect.empty() ? "" : ",") + std::to_string(i + 1);
    CAF_CHECK_EQUAL(rooms_of(*s.b, wanted, 200, 50), expect);
    std::vector<record> out;
    CAF_REQUIRE_EQUAL(s->read_rooms(wanted, 0, 5000, out), "");
    CAF_REQUIRE_EQUAL(out.size(), 1200u);
    size_t misplaced = 0;
    for (size_t i = 0; i < out.size(); ++i)
      misplaced += out[i].offset != 100 + i;
    CAF_CHECK_EQUAL(misplaced, 0u);
  });
}

CAF_TEST(last offset never goes back) {
  for_each_backend([](subject& s) {
    CAF_CHECK_EQUAL(s->last_offset(), 0u);
    std::vector<record> rs;
    for (uint64_t i = 1; i <= 5; ++i)
      rs.push_back(rec(i, "a", 100));
    CAF_REQUIRE_EQUAL(put(*s.b, rs), "");
    CAF_CHECK_EQUAL(s->last_offset(), 5u);
    session_row only;
    only.pid = "p";
    CAF_REQUIRE_EQUAL(put(*s.b, {}, {only}), "");
    CAF_REQUIRE_EQUAL(put(*s.b, {}), "");
    CAF_CHECK_EQUAL(s->last_offset(), 5u);
    // Retention removes everything, the newest record too.
    uint64_t removed = 0;
    CAF_REQUIRE_EQUAL(s->trim("", 0, 200, removed), "");
    CAF_CHECK_EQUAL(removed, 5u);
    CAF_CHECK_EQUAL(counts(*s.b), "");
    CAF_CHECK_EQUAL(s->last_offset(), 5u);
    if (s.sqlite()) {
      s.reopen();
      CAF_CHECK_EQUAL(s->last_offset(), 5u);
      CAF_CHECK_EQUAL(s->horizon("a"), 5u);
    }
    CAF_CHECK_EQUAL(put(*s.b, {rec(5, "a")}),
                    "cannot write " + s.where() + ": record 0 has offset 5, not above 5");
    CAF_REQUIRE_EQUAL(put(*s.b, {rec(9, "a")}), "");
    CAF_CHECK_EQUAL(s->last_offset(), 9u);
    if (s.sqlite()) {
      s.reopen();
      CAF_CHECK_EQUAL(s->last_offset(), 9u);
      CAF_CHECK_EQUAL(room_of(*s.b, "a"), "9");
    }
  });
}

CAF_TEST(sessions round trip) {
  for_each_backend([](subject& s) {
    session_row a;
    a.pid = "pid-a";
    a.sid = "sid-a";
    a.nsp = "/chat";
    a.user = "alice";
    a.rooms = {"plain", "with,comma", "with \"quotes\" and 'single'", "line\nbreak\r\n", "tab\there",
               "back\\slash", "[\"json\",1]", "", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
               std::string("nul\0inside", 10), "\xff\xfe not UTF-8", all_bytes()};
    a.base = 42;
    a.disconnected_ms = 0;
    session_row b;
    b.pid = "pid-b";
    b.sid = "sid-b";
    b.nsp = "/";
    b.user = "";
    b.base = (uint64_t{1} << 63) + 5; // above int64's range: kept bit for bit
    b.disconnected_ms = 1700000000123;
    session_row c = b;
    c.pid = "pid-c";
    c.rooms = {"one", "granted \"by\" the backend", "two"};
    c.granted = {"granted \"by\" the backend", "two"}; // rooms its token does not allow
    CAF_REQUIRE_EQUAL(put(*s.b, {}, {c, b, a}), "");
    auto got = sessions_of(*s.b);
    CAF_REQUIRE_EQUAL(got.size(), 3u); // ordered by pid
    check_same(got[0], a);
    check_same(got[1], b);
    check_same(got[2], c);
    // Overwrite one, delete one, delete one that never was.
    a.rooms = {"only,this"};
    a.disconnected_ms = 1700000000999;
    CAF_REQUIRE_EQUAL(put(*s.b, {}, {a}, {"pid-c", "pid-none"}), "");
    got = sessions_of(*s.b);
    CAF_REQUIRE_EQUAL(got.size(), 2u);
    check_same(got[0], a);
    check_same(got[1], b);
    // Within one commit the last write of a pid wins, and a pid both
    // written and deleted ends deleted.
    session_row b2 = b;
    b2.sid = "sid-b2";
    session_row d = c;
    d.pid = "pid-d";
    CAF_REQUIRE_EQUAL(put(*s.b, {}, {b, b2, d}, {"pid-d"}), "");
    got = sessions_of(*s.b);
    CAF_REQUIRE_EQUAL(got.size(), 2u);
    check_same(got[0], a);
    check_same(got[1], b2);
    if (s.sqlite()) {
      s.reopen();
      got = sessions_of(*s.b);
      CAF_REQUIRE_EQUAL(got.size(), 2u);
      check_same(got[0], a);
      check_same(got[1], b2);
    }
    CAF_REQUIRE_EQUAL(put(*s.b, {}, {}, {"pid-a", "pid-b"}), "");
    CAF_CHECK_EQUAL(sessions_of(*s.b).size(), 0u);
  });
}

CAF_TEST(trim by count) {
  for_each_backend([](subject& s) {
    std::vector<record> rs;
    for (uint64_t i = 1; i <= 10; ++i)
      rs.push_back(rec(i, "a"));
    for (uint64_t i = 11; i <= 13; ++i)
      rs.push_back(rec(i, "b"));
    CAF_REQUIRE_EQUAL(put(*s.b, rs), "");
    CAF_CHECK_EQUAL(counts(*s.b), "a=10,b=3");
    uint64_t removed = 100; // added to, not set
    CAF_REQUIRE_EQUAL(s->trim("a", 4, 0, removed), "");
    CAF_CHECK_EQUAL(removed, 106u);
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "7,8,9,10");
    CAF_CHECK_EQUAL(s->horizon("a"), 6u);
    CAF_CHECK_EQUAL(s->horizon("b"), 0u);
    CAF_CHECK_EQUAL(s->horizon("nowhere"), 0u);
    removed = 0;
    CAF_REQUIRE_EQUAL(s->trim("a", 4, 0, removed), "");
    CAF_REQUIRE_EQUAL(s->trim("a", 0, 0, removed), "");
    CAF_REQUIRE_EQUAL(s->trim("b", 3, 0, removed), "");
    CAF_REQUIRE_EQUAL(s->trim("b", 50, 0, removed), "");
    CAF_REQUIRE_EQUAL(s->trim("nowhere", 1, 0, removed), "");
    CAF_REQUIRE_EQUAL(s->trim("", 1, 0, removed), ""); // no count limit without a room
    CAF_CHECK_EQUAL(removed, 0u);
    CAF_CHECK_EQUAL(counts(*s.b), "a=4,b=3");
    CAF_REQUIRE_EQUAL(s->trim("b", 1, 0, removed), "");
    CAF_CHECK_EQUAL(removed, 2u);
    CAF_CHECK_EQUAL(room_of(*s.b, "b"), "13");
    CAF_CHECK_EQUAL(s->horizon("b"), 12u);
    CAF_CHECK_EQUAL(s->horizon("a"), 6u);
    CAF_CHECK_EQUAL(counts(*s.b), "a=4,b=1");
    CAF_CHECK_EQUAL(s->last_offset(), 13u);
    if (s.sqlite()) {
      s.reopen();
      CAF_CHECK_EQUAL(s->horizon("a"), 6u);
      CAF_CHECK_EQUAL(s->horizon("b"), 12u);
      CAF_CHECK_EQUAL(counts(*s.b), "a=4,b=1");
    }
  });
}

CAF_TEST(trim by age) {
  for_each_backend([](subject& s) {
    // Timestamps need not grow with offsets (a clock stepped back).
    std::vector<record> rs{rec(1, "a", 100), rec(2, "a", 200), rec(3, "a", 50),   rec(4, "a", 400),
                           rec(5, "a", 500), rec(6, "a", 600), rec(7, "b", 100),  rec(8, "b", 700),
                           rec(9, "b", 800), rec(10, "c", 900), rec(11, "c", 100), rec(12, "d", 1)};
    CAF_REQUIRE_EQUAL(put(*s.b, rs), "");
    uint64_t removed = 0;
    CAF_REQUIRE_EQUAL(s->trim("a", 0, 300, removed), "");
    CAF_CHECK_EQUAL(removed, 3u);
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "4,5,6");
    CAF_CHECK_EQUAL(room_of(*s.b, "b"), "7,8,9");
    CAF_CHECK_EQUAL(s->horizon("a"), 3u);
    CAF_CHECK_EQUAL(s->horizon("b"), 0u);
    // Over all rooms.
    removed = 0;
    CAF_REQUIRE_EQUAL(s->trim("", 0, 450, removed), "");
    CAF_CHECK_EQUAL(removed, 4u);
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "5,6");
    CAF_CHECK_EQUAL(room_of(*s.b, "b"), "8,9");
    CAF_CHECK_EQUAL(room_of(*s.b, "c"), "10");
    CAF_CHECK_EQUAL(room_of(*s.b, "d"), "");
    CAF_CHECK_EQUAL(s->horizon("a"), 4u);
    CAF_CHECK_EQUAL(s->horizon("b"), 7u);
    CAF_CHECK_EQUAL(s->horizon("c"), 11u); // above the record still there: it is the highest removed
    CAF_CHECK_EQUAL(s->horizon("d"), 12u);
    CAF_CHECK_EQUAL(counts(*s.b), "a=2,b=2,c=1");
    // Removing c's older offset later does not lower its horizon.
    removed = 0;
    CAF_REQUIRE_EQUAL(s->trim("c", 0, 1000, removed), "");
    CAF_CHECK_EQUAL(removed, 1u);
    CAF_CHECK_EQUAL(s->horizon("c"), 11u);
    CAF_REQUIRE_EQUAL(s->trim("", 0, 1, removed), ""); // nothing that old
    CAF_REQUIRE_EQUAL(s->trim("nowhere", 0, 5000, removed), "");
    CAF_REQUIRE_EQUAL(s->trim("a", 0, -5, removed), "");
    CAF_CHECK_EQUAL(removed, 1u);
    CAF_CHECK_EQUAL(counts(*s.b), "a=2,b=2");
    CAF_CHECK_EQUAL(s->last_offset(), 12u);
  });
}

CAF_TEST(trim by count and age at once) {
  for_each_backend([](subject& s) {
    std::vector<record> rs;
    for (uint64_t i = 1; i <= 10; ++i)
      rs.push_back(rec(i, "a", static_cast<int64_t>(i) * 100));
    rs.push_back(rec(11, "b", 100));
    CAF_REQUIRE_EQUAL(put(*s.b, rs), "");
    uint64_t removed = 0;
    // The count leaves 6..10, the age then takes 6 and 7; b is not this room.
    CAF_REQUIRE_EQUAL(s->trim("a", 5, 800, removed), "");
    CAF_CHECK_EQUAL(removed, 7u);
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "8,9,10");
    CAF_CHECK_EQUAL(s->horizon("a"), 7u);
    CAF_CHECK_EQUAL(s->horizon("b"), 0u);
    CAF_CHECK_EQUAL(counts(*s.b), "a=3,b=1");
    // The age alone goes further than the count.
    removed = 0;
    CAF_REQUIRE_EQUAL(s->trim("a", 2, 2000, removed), "");
    CAF_CHECK_EQUAL(removed, 3u);
    CAF_CHECK_EQUAL(s->horizon("a"), 10u);
    CAF_CHECK_EQUAL(counts(*s.b), "b=1");
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "");
  });
}

CAF_TEST(a refused commit writes nothing) {
  for_each_backend([](subject& s) {
    session_row one;
    one.pid = "one";
    one.rooms = {"a"};
    CAF_REQUIRE_EQUAL(put(*s.b, {rec(1, "a"), rec(2, "a"), rec(3, "b")}, {one}), "");
    session_row two;
    two.pid = "two";
    session_row one_changed = one;
    one_changed.rooms = {"changed"};
    auto refused = "cannot write " + s.where() + ": ";
    // Offset 2 is used already: the sessions written before it in the same
    // transaction, and the deletion, are undone too.
    CAF_CHECK_EQUAL(put(*s.b, {rec(4, "a"), rec(2, "b")}, {two, one_changed}, {"one"}),
                    refused + "record 1 has offset 2, not above 4");
    CAF_CHECK_EQUAL(put(*s.b, {rec(3, "a")}, {two}), refused + "record 0 has offset 3, not above 3");
    CAF_CHECK_EQUAL(put(*s.b, {rec(6, "a"), rec(5, "a")}, {two}),
                    refused + "record 1 has offset 5, not above 6");
    CAF_CHECK_EQUAL(put(*s.b, {rec(4, "a"), rec(4, "b")}, {two}),
                    refused + "record 1 has offset 4, not above 4");
    CAF_CHECK_EQUAL(put(*s.b, {rec(uint64_t{1} << 63, "a")}, {two}),
                    refused + "record 0 has offset 9223372036854775808, above the highest storable "
                              "9223372036854775807");
    auto r = rec(4, "a");
    CAF_CHECK_EQUAL(s->commit({&r, nullptr}, {two}, {}), refused + "record 1 is missing (null pointer)");
    CAF_CHECK_EQUAL(s->last_offset(), 3u);
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "1,2");
    CAF_CHECK_EQUAL(room_of(*s.b, "b"), "3");
    auto got = sessions_of(*s.b);
    CAF_REQUIRE_EQUAL(got.size(), 1u);
    check_same(got[0], one);
    // Nothing was left half done: the next good commit goes through.
    CAF_REQUIRE_EQUAL(put(*s.b, {rec(4, "a")}, {two}), "");
    CAF_CHECK_EQUAL(room_of(*s.b, "a"), "1,2,4");
    CAF_CHECK_EQUAL(sessions_of(*s.b).size(), 2u);
    if (s.sqlite()) {
      s.reopen();
      CAF_CHECK_EQUAL(room_of(*s.b, "a"), "1,2,4");
      CAF_CHECK_EQUAL(room_of(*s.b, "b"), "3");
      CAF_CHECK_EQUAL(s->last_offset(), 4u);
    }
  });
}

CAF_TEST(every byte and multi-byte UTF-8 round trip) {
  for_each_backend([](subject& s) {
    record r;
    r.id = all_bytes();
    r.room = all_bytes();
    r.event = all_bytes();
    r.data = all_bytes();
    r.sender = all_bytes();
    r.origin = all_bytes();
    r.offset = 1;
    r.ts_ms = -1;
    record other = rec(2, all_bytes().substr(0, 127)); // the same name without the UTF-8 tail
    CAF_REQUIRE_EQUAL(put(*s.b, {r, other}), "");
    for (int pass = 0; pass < (s.sqlite() ? 2 : 1); ++pass) {
      if (pass == 1)
        s.reopen();
      std::vector<record> out;
      CAF_REQUIRE_EQUAL(s->read_room(all_bytes(), 0, 0, 10, false, out), "");
      CAF_REQUIRE_EQUAL(out.size(), 1u);
      check_same(out[0], r);
      out.clear();
      CAF_REQUIRE_EQUAL(s->read_rooms({all_bytes()}, 0, 10, out), "");
      CAF_REQUIRE_EQUAL(out.size(), 1u);
      check_same(out[0], r);
      std::vector<std::pair<std::string, uint64_t>> rooms;
      CAF_REQUIRE_EQUAL(s->room_counts(rooms), "");
      CAF_REQUIRE_EQUAL(rooms.size(), 2u);
      CAF_CHECK_EQUAL(rooms[0].first, other.room); // a prefix sorts first
      CAF_CHECK_EQUAL(rooms[1].first, all_bytes());
    }
    uint64_t removed = 0;
    CAF_REQUIRE_EQUAL(s->trim(all_bytes(), 0, 0x7fffffff, removed), "");
    CAF_CHECK_EQUAL(removed, 1u);
    CAF_CHECK_EQUAL(s->horizon(all_bytes()), 1u);
    CAF_CHECK_EQUAL(s->horizon(other.room), 0u);
  });
}

CAF_TEST(open errors name the path and the reason) {
  auto dir = make_temp_dir();
  std::ofstream(dir / "file") << "a regular file";
  // A directory that cannot be made: its parent is a regular file.
  auto under_file = (dir / "file" / "sub" / "x.db").string();
  auto b = make_sqlite_backend(under_file, sync_mode::full);
  auto err = b->open();
  CAF_MESSAGE(err);
  CAF_CHECK_EQUAL(err.rfind("cannot open " + under_file + ": cannot create " + (dir / "file" / "sub").string()
                              + ": ",
                            0),
                  0u);
  // Nothing crashes after a failed open: every call answers an error or nothing.
  auto r = rec(1, "a");
  CAF_CHECK_EQUAL(b->commit({&r}, {}, {}), "cannot write " + under_file + ": not open");
  std::vector<record> out;
  CAF_CHECK_EQUAL(b->read_room("a", 0, 0, 10, false, out), "cannot read " + under_file + ": not open");
  CAF_CHECK_EQUAL(b->read_rooms({"a"}, 0, 10, out), "cannot read " + under_file + ": not open");
  uint64_t removed = 0;
  CAF_CHECK_EQUAL(b->trim("a", 1, 0, removed), "cannot trim " + under_file + ": not open");
  CAF_CHECK_EQUAL(counts(*b), "error: cannot read " + under_file + ": not open");
  std::vector<session_row> sessions;
  CAF_CHECK_EQUAL(b->load_sessions(sessions), "cannot read " + under_file + ": not open");
  CAF_CHECK_EQUAL(b->horizon("a"), 0u);
  CAF_CHECK_EQUAL(b->last_offset(), 0u);
  b.reset();
  // A file that is not a database: 4 KiB of garbage.
  auto garbage = (dir / "garbage.db").string();
  {
    std::mt19937 gen(7);
    std::string bytes(4096, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(gen());
    std::ofstream(garbage, std::ios::binary) << bytes;
  }
  b = make_sqlite_backend(garbage, sync_mode::full);
  CAF_CHECK_EQUAL(b->open(), "cannot open " + garbage + ": file is not a database");
  // A directory where the file should be.
  b = make_sqlite_backend(dir.string(), sync_mode::normal);
  err = b->open();
  CAF_MESSAGE(err);
  CAF_CHECK_EQUAL(err.rfind("cannot open " + dir.string() + ": ", 0), 0u);
  CAF_CHECK_EQUAL(make_sqlite_backend("", sync_mode::full)->open(), "cannot open '': not a file name");
  // Opening twice is refused, the first stays usable.
  b = make_sqlite_backend((dir / "ok.db").string(), sync_mode::full);
  CAF_REQUIRE_EQUAL(b->open(), "");
  CAF_CHECK_EQUAL(b->open(), "cannot open " + (dir / "ok.db").string() + ": already open");
  CAF_CHECK_EQUAL(b->commit({&r}, {}, {}), "");
  b.reset();
  fs::remove_all(dir);
}

CAF_TEST(a version 1 file gains the audience column and keeps its records) {
  auto dir = make_temp_dir();
  auto path = (dir / "v1.db").string();
  {
    // The schema as the first release wrote it, with one record.
    sqlite3* db = nullptr;
    CAF_REQUIRE_EQUAL(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    auto sql = "CREATE TABLE messages(pos INTEGER PRIMARY KEY, id TEXT NOT NULL, room TEXT NOT NULL, "
               "event TEXT NOT NULL, data TEXT NOT NULL, ts INTEGER NOT NULL, sender TEXT, origin TEXT);"
               "CREATE INDEX messages_by_room ON messages(room, pos);"
               "CREATE TABLE sessions(pid TEXT PRIMARY KEY, sid TEXT NOT NULL, nsp TEXT NOT NULL, user TEXT NOT NULL, "
               "rooms TEXT NOT NULL, base INTEGER NOT NULL, disconnected INTEGER NOT NULL);"
               "CREATE TABLE horizons(room TEXT PRIMARY KEY, upto INTEGER NOT NULL) WITHOUT ROWID;"
               "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
               "INSERT INTO messages VALUES(1, 'id1', 'dialog:7', 'message', '{\"a\":1}', 5, NULL, NULL);"
               "INSERT INTO meta VALUES('last_offset', 1);"
               "PRAGMA user_version = 1;";
    CAF_REQUIRE_EQUAL(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto b = make_sqlite_backend(path, sync_mode::full);
  CAF_REQUIRE_EQUAL(b->open(), "");
  CAF_CHECK_EQUAL(b->last_offset(), 1u);
  auto r = rec(2, "dialog:7");
  r.audience = 1;
  CAF_CHECK_EQUAL(put(*b, {r}), "");
  std::vector<record> out;
  CAF_REQUIRE_EQUAL(b->read_room("dialog:7", 0, 0, 10, false, out), "");
  CAF_REQUIRE_EQUAL(out.size(), 2u);
  CAF_CHECK_EQUAL(out[0].id, "id1");
  CAF_CHECK_EQUAL(out[0].data, "{\"a\":1}");
  CAF_CHECK_EQUAL(static_cast<int>(out[0].audience), 0);
  check_same(out[1], r);
  b.reset();
  // Opened again: already version 2, nothing to add.
  b = make_sqlite_backend(path, sync_mode::full);
  CAF_REQUIRE_EQUAL(b->open(), "");
  out.clear();
  CAF_REQUIRE_EQUAL(b->read_room("dialog:7", 0, 0, 10, false, out), "");
  CAF_CHECK_EQUAL(out.size(), 2u);
  b.reset();
  fs::remove_all(dir);
}

CAF_TEST(reopen after a crash finds every committed record) {
  // The child commits and dies without closing anything (as after kill -9
  // once commit() returned): no checkpoint, the records are in the WAL alone.
  constexpr uint64_t batches = 20, per_batch = 50;
  auto dir = make_temp_dir();
  auto path = (dir / "crash.db").string();
  auto pid = fork();
  CAF_REQUIRE(pid >= 0);
  if (pid == 0) {
    auto b = make_sqlite_backend(path, sync_mode::full);
    if (!b->open().empty())
      _exit(2);
    for (uint64_t n = 0; n < batches; ++n) {
      std::vector<record> rs;
      for (uint64_t i = 1; i <= per_batch; ++i) {
        auto off = n * per_batch + i;
        rs.push_back(rec(off, "room" + std::to_string(off % 3), static_cast<int64_t>(off)));
      }
      session_row s;
      s.pid = "p" + std::to_string(n);
      if (!put(*b, rs, {s}).empty())
        _exit(3);
    }
    b.release(); // never destroyed: the connection is not closed
    _exit(0);
  }
  int status = 0;
  CAF_REQUIRE_EQUAL(waitpid(pid, &status, 0), pid);
  CAF_REQUIRE(WIFEXITED(status));
  CAF_REQUIRE_EQUAL(WEXITSTATUS(status), 0);
  std::error_code ec;
  CAF_CHECK_GREATER(fs::file_size(path + "-wal", ec), 0u);
  auto b = make_sqlite_backend(path, sync_mode::full);
  CAF_REQUIRE_EQUAL(b->open(), "");
  CAF_CHECK_EQUAL(b->last_offset(), batches * per_batch);
  std::vector<record> out;
  CAF_REQUIRE_EQUAL(b->read_rooms({"room0", "room1", "room2"}, 0, 100000, out), "");
  CAF_REQUIRE_EQUAL(out.size(), batches * per_batch);
  size_t wrong = 0;
  for (size_t i = 0; i < out.size(); ++i)
    wrong += out[i].offset != i + 1 || out[i].data != "{\"n\":" + std::to_string(i + 1) + "}"
             || out[i].ts_ms != static_cast<int64_t>(i + 1);
  CAF_CHECK_EQUAL(wrong, 0u);
  std::vector<session_row> sessions;
  CAF_REQUIRE_EQUAL(b->load_sessions(sessions), "");
  CAF_CHECK_EQUAL(sessions.size(), batches);
  b.reset();
  fs::remove_all(dir);
}

CAF_TEST(a commit SQLite cannot write reports why and writes nothing) {
  // A child process whose files may not grow past 256 KiB commits a record
  // of 1 MiB; it sends back what commit() said.
  auto dir = make_temp_dir();
  auto path = (dir / "full.db").string();
  int fds[2];
  CAF_REQUIRE_EQUAL(pipe(fds), 0);
  auto pid = fork();
  CAF_REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    auto b = make_sqlite_backend(path, sync_mode::full);
    if (!b->open().empty() || !put(*b, {rec(1, "a"), rec(2, "a"), rec(3, "b")}).empty())
      _exit(2);
    signal(SIGXFSZ, SIG_IGN); // a write past the limit fails with EFBIG instead of killing
    rlimit lim{256 * 1024, 256 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
      _exit(3);
    auto big = rec(4, "a");
    big.data = std::string(1 << 20, 'x');
    session_row sess;
    sess.pid = "p";
    auto err = put(*b, {big}, {sess});
    if (write(fds[1], err.data(), err.size()) != static_cast<ssize_t>(err.size()))
      _exit(4);
    _exit(b->last_offset() == 3 ? 0 : 5);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;)
    err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  CAF_REQUIRE_EQUAL(waitpid(pid, &status, 0), pid);
  CAF_REQUIRE(WIFEXITED(status));
  CAF_CHECK_EQUAL(WEXITSTATUS(status), 0);
  CAF_MESSAGE(err);
  CAF_CHECK_EQUAL(err.rfind("cannot write " + path + ": ", 0), 0u);
  CAF_CHECK_GREATER(err.size(), ("cannot write " + path + ": ").size());
  auto b = make_sqlite_backend(path, sync_mode::full);
  CAF_REQUIRE_EQUAL(b->open(), "");
  CAF_CHECK_EQUAL(b->last_offset(), 3u);
  CAF_CHECK_EQUAL(room_of(*b, "a"), "1,2");
  std::vector<session_row> sessions;
  CAF_REQUIRE_EQUAL(b->load_sessions(sessions), "");
  CAF_CHECK_EQUAL(sessions.size(), 0u);
  b.reset();
  fs::remove_all(dir);
}

CAF_TEST(commit time of 10000 records in batches of 50) {
  // A measurement for the log, not an assertion.
  for (auto sync : {sync_mode::full, sync_mode::normal}) {
    subject s("sqlite", sync);
    std::vector<record> rs;
    for (uint64_t i = 1; i <= 10000; ++i)
      rs.push_back(rec(i, "room" + std::to_string(i % 10)));
    std::string err;
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < rs.size() && err.empty(); i += 50) {
      std::vector<const record*> batch;
      for (size_t k = i; k < i + 50; ++k)
        batch.push_back(&rs[k]);
      err = s->commit(batch, {}, {});
    }
    CAF_REQUIRE_EQUAL(err, "");
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    CAF_MESSAGE("sync " << (sync == sync_mode::full ? "full" : "normal") << ": 10000 records in 200 commits: "
                        << ms << " ms (" << ms / 200 << " ms per commit)");
    CAF_CHECK_EQUAL(s->last_offset(), 10000u);
  }
}

CAF_TEST(offsets parse from 1 to 19 decimal digits and nothing else) {
  CAF_CHECK_EQUAL(parse_offset("0").value_or(99), 0u);
  CAF_CHECK_EQUAL(parse_offset("42").value_or(0), 42u);
  CAF_CHECK_EQUAL(parse_offset("9999999999999999999").value_or(0), 9999999999999999999ull);
  for (auto bad : {"", "12345678901234567890", "-1", "+1", "1.0", " 1", "1a", "0x10"})
    CAF_CHECK(!parse_offset(bad));
}
