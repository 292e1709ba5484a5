#define CAF_SUITE actors
#define FAIL(msg) CAF_FAIL(msg) // caf 0.17.6's dsl.hpp uses an undefined FAIL()
#include <caf/test/dsl.hpp>

#include <boost/asio/io_context.hpp>

#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/presence.hpp"
#include "actors/room.hpp"
#include "actors/runtime.hpp"
#include "actors/store.hpp"
#include "net/plain_wire.hpp"
#include "actors/supervisor.hpp"
#include "net/metrics.hpp"
#include "net/engineio_server.hpp"
#include "net/socketio_server.hpp"

using namespace parley;

namespace {

// Stands in for the app above Socket.IO: accepts every CONNECT at once.
struct accepting_app : sio::app {
  std::shared_ptr<sio::socket> last;
  bool accept_now = true; // false: the test accepts later
  bool has_namespace(std::string_view) const override { return true; }
  void on_connect(const std::shared_ptr<sio::socket>& s, sio::packet&&) override {
    last = s;
    if (accept_now)
      s->accept();
  }
};

// Sockets backed by real Engine.IO sessions without a transport, connected
// the way a client connects them (a CONNECT packet, the answer), so what a
// fan-out delivers can be read from each session's queue.
struct io_fixture {
  boost::asio::io_context ioc;
  eio::server srv{ioc, eio::options{}, [](eio::session&) { return nullptr; }};
  accepting_app app;
  std::vector<std::shared_ptr<eio::session>> sessions;
  std::vector<std::unique_ptr<sio::client>> clients;
  std::vector<size_t> answered; // frames queued per session once connected (the CONNECT answer)

  socket_ptr make_socket(const std::string& nsp = "/") {
    auto s = std::make_shared<eio::session>(srv, "s" + std::to_string(sessions.size()), eio::handshake{});
    sessions.push_back(s);
    clients.push_back(std::make_unique<sio::client>(app, std::chrono::seconds(45)));
    clients.back()->on_message(*s, eio::packet{eio::packet_type::message, false, nsp == "/" ? "0" : "0" + nsp + ","});
    ioc.poll();
    ioc.restart();
    answered.push_back(s->queued().size());
    return std::move(app.last);
  }

  // A plain WebSocket member (net/plain_wire.hpp): `flavour` in place of a namespace.
  socket_ptr make_plain_socket(const std::string& flavour) {
    auto s = std::make_shared<eio::session>(srv, "s" + std::to_string(sessions.size()), eio::handshake{});
    sessions.push_back(s);
    clients.push_back(nullptr);
    answered.push_back(0);
    return std::make_shared<sio::socket>(s, flavour, "p" + std::to_string(sessions.size()));
  }

  std::vector<std::string> delivered(size_t i) {
    ioc.poll();
    ioc.restart();
    std::vector<std::string> out;
    auto& q = sessions[i]->queued();
    for (size_t k = answered[i]; k < q.size(); ++k)
      out.push_back(*q[k].bytes);
    return out;
  }
};

store::record make_rec(const std::string& room, const std::string& data) {
  store::record r;
  r.id = "id-" + data;
  r.room = room;
  r.event = "news";
  r.data = data;
  r.ts_ms = 1;
  return r;
}

struct fixture : test_coordinator_fixture<>, io_fixture {
  // A stand-in connection actor (rooms only monitor it).
  caf::actor conn() {
    return sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
  }
  // Records of room "r" straight to a store (no fan-out), as many as `data`.
  void append(const caf::actor& store, std::initializer_list<const char*> data) {
    for (auto d : data)
      self->send(store, store_append_atom::value, make_rec("r", d), fanout_ptr{});
  }
  void stop_store(const caf::actor& store) {
    self->send_exit(store, caf::exit_reason::user_shutdown);
    sys.registry().erase(store_key());
    sched.run();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(actor_tests, fixture)

CAF_TEST(a room fans one frame out to every member but the excluded one) {
  auto dir = sys.spawn(directory, std::make_shared<directory_memory>());
  auto c1 = conn(), c2 = conn(), c3 = conn();
  auto s1 = make_socket(), s2 = make_socket(), s3 = make_socket("/messages");
  run();
  for (auto [c, s] : {std::pair{c1, s1}, std::pair{c2, s2}, std::pair{c3, s3}})
    self->send(dir, join_atom::value, std::string{"conversation:1"}, c, s);
  run();
  for (int i = 0; i < 3; ++i)
    expect((joined_atom, caf::actor), from(_).to(self).with(joined_atom::value, _));
  self->send(dir, publish_atom::value, std::string{"conversation:1"}, std::string{"typing:start"},
             std::string{"{\"userId\":\"a\"}"}, s1->sid());
  run();
  auto d0 = delivered(0), d1 = delivered(1), d2 = delivered(2);
  CAF_CHECK_EQUAL(d0.size(), 0u);
  CAF_REQUIRE_EQUAL(d1.size(), 1u);
  CAF_CHECK_EQUAL(d1[0], "42[\"typing:start\",{\"userId\":\"a\"}]");
  CAF_REQUIRE_EQUAL(d2.size(), 1u);
  CAF_CHECK_EQUAL(d2[0], "42/messages,[\"typing:start\",{\"userId\":\"a\"}]");
  // Without an exclusion both "/" members get the very same buffer: encoded once.
  self->send(dir, publish_atom::value, std::string{"conversation:1"}, std::string{"x"},
             std::string{"1"}, std::string{});
  run();
  auto e0 = delivered(0), e1 = delivered(1);
  CAF_REQUIRE_EQUAL(e0.size(), 1u);
  CAF_REQUIRE_EQUAL(e1.size(), 2u);
  CAF_CHECK_EQUAL(sessions[0]->queued().back().bytes.get(), sessions[1]->queued().back().bytes.get());
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  for (auto& c : {c1, c2, c3})
    self->send_exit(c, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(a room is gone once its last member leaves and comes back on the next join) {
  auto dir = sys.spawn(directory, std::make_shared<directory_memory>());
  auto c1 = conn();
  auto s1 = make_socket();
  run();
  std::string name = "session:9";
  self->send(dir, join_atom::value, name, c1, s1);
  run();
  expect((joined_atom, caf::actor), from(_).to(self).with(joined_atom::value, _));
  self->send(dir, count_atom::value);
  run();
  expect((uint64_t), from(dir).to(self).with(1u));
  self->send(dir, leave_atom::value, name, c1);
  run();
  self->send(dir, count_atom::value);
  run();
  expect((uint64_t), from(dir).to(self).with(0u));
  // A publish to a room that does not exist goes nowhere.
  self->send(dir, publish_atom::value, name, std::string{"x"}, std::string{"1"}, std::string{});
  run();
  auto none = delivered(0);
  CAF_CHECK_EQUAL(none.size(), 0u);
  self->send(dir, join_atom::value, name, c1, s1);
  run();
  expect((joined_atom, caf::actor), from(_).to(self).with(joined_atom::value, _));
  self->send(dir, publish_atom::value, name, std::string{"x"}, std::string{"1"}, std::string{});
  run();
  auto one = delivered(0);
  CAF_CHECK_EQUAL(one.size(), 1u);
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  self->send_exit(c1, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(a member whose connection actor dies is removed) {
  auto dir = sys.spawn(directory, std::make_shared<directory_memory>());
  auto c1 = conn();
  auto s1 = make_socket();
  run();
  self->send(dir, join_atom::value, std::string{"r"}, c1, s1);
  run();
  expect((joined_atom, caf::actor), from(_).to(self).with(joined_atom::value, _));
  self->send_exit(c1, caf::exit_reason::kill);
  run();
  self->send(dir, count_atom::value);
  run();
  expect((uint64_t), from(dir).to(self).with(0u));
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(presence announces the first socket and the last one only) {
  // One directory shard, replaced by a probe that records publishes.
  settings s;
  s.rooms.directory_shards = 1;
  s.socketio.namespaces = {"/"};
  auto rt = std::make_shared<const runtime>(sys, s, std::nullopt);
  std::vector<std::string> published;
  auto probe = sys.spawn([&published](caf::event_based_actor*) -> caf::behavior {
    return {[&published](publish_atom, const std::string& room, const std::string& event,
                         const std::string& data, const std::string&) {
      published.push_back(room + " " + event + " " + data);
    }};
  });
  sys.registry().put(directory_key(0), caf::actor_cast<caf::strong_actor_ptr>(probe));
  auto p = sys.spawn(presence, rt, std::make_shared<presence_memory>());
  run();
  self->send(p, online_atom::value, std::string{"carol"}, std::string{"t1"});
  self->send(p, online_atom::value, std::string{"carol"}, std::string{"t2"});
  run();
  CAF_REQUIRE_EQUAL(published.size(), 1u);
  CAF_CHECK_EQUAL(published[0], "nsp:/ user:online {\"userId\":\"carol\"}");
  self->send(p, presence_atom::value, std::string{"carol"});
  run();
  expect((bool, uint64_t), from(p).to(self).with(true, 2u));
  self->send(p, offline_atom::value, std::string{"carol"}, std::string{"t1"});
  run();
  CAF_CHECK_EQUAL(published.size(), 1u);
  self->send(p, offline_atom::value, std::string{"carol"}, std::string{"t2"});
  run();
  CAF_REQUIRE_EQUAL(published.size(), 2u);
  CAF_CHECK_EQUAL(published[1], "nsp:/ user:offline {\"userId\":\"carol\"}");
  self->send(p, presence_atom::value, std::string{"carol"});
  run();
  expect((bool, uint64_t), from(p).to(self).with(false, 0u));
  sys.registry().erase(directory_key(0));
  self->send_exit(probe, caf::exit_reason::user_shutdown);
  self->send_exit(p, caf::exit_reason::user_shutdown);
  run();
}

// A connection as presence sees it: answers the backend's join / leave with
// `answer`, and its disconnect with true; notes what it was told.
caf::behavior connection_stub(caf::event_based_actor*, std::vector<std::string>* told, std::string name,
                              bool answer) {
  return {
    [=](join_atom, const std::vector<std::string>& rooms) {
      told->push_back(name + " join " + rooms.at(0));
      return answer;
    },
    [=](leave_atom, const std::vector<std::string>& rooms) {
      told->push_back(name + " leave " + rooms.at(0));
      return answer;
    },
    [=](disconnect_atom) {
      told->push_back(name + " disconnect");
      return true;
    },
  };
}

CAF_TEST(presence asks each socket of a user to join or leave or disconnect and counts those that did) {
  settings s;
  s.rooms.directory_shards = 1;
  s.socketio.namespaces = {"/"};
  s.presence.broadcast = false;
  auto rt = std::make_shared<const runtime>(sys, s, std::nullopt);
  auto p = sys.spawn(presence, rt, std::make_shared<presence_memory>());
  std::vector<std::string> told;
  auto t1 = sys.spawn(connection_stub, &told, std::string{"t1"}, true);
  auto t2 = sys.spawn(connection_stub, &told, std::string{"t2"}, true);
  auto t3 = sys.spawn(connection_stub, &told, std::string{"t3"}, false); // e.g. over its room limit
  run();
  self->send(p, online_atom::value, std::string{"carol"}, std::string{"t1"}, t1);
  self->send(p, online_atom::value, std::string{"carol"}, std::string{"t2"}, t2);
  self->send(p, online_atom::value, std::string{"dave"}, std::string{"t3"}, t3);
  self->send(p, online_atom::value, std::string{"erin"}, std::string{"t4"}); // known by count only
  run();
  self->send(p, join_atom::value, std::string{"carol"}, std::vector<std::string>{"team:7"});
  run();
  expect((uint64_t), from(p).to(self).with(2u));
  std::sort(told.begin(), told.end());
  CAF_CHECK_EQUAL(told, (std::vector<std::string>{"t1 join team:7", "t2 join team:7"}));
  told.clear();
  self->send(p, join_atom::value, std::string{"dave"}, std::vector<std::string>{"team:7"});
  run();
  expect((uint64_t), from(p).to(self).with(0u));
  CAF_CHECK_EQUAL(told, (std::vector<std::string>{"t3 join team:7"}));
  told.clear();
  for (auto user : {"erin", "nobody"}) {
    self->send(p, join_atom::value, std::string{user}, std::vector<std::string>{"team:7"});
    run();
    expect((uint64_t), from(p).to(self).with(0u));
  }
  CAF_CHECK(told.empty());
  // A socket gone offline is not asked any more.
  self->send(p, offline_atom::value, std::string{"carol"}, std::string{"t1"});
  self->send(p, leave_atom::value, std::string{"carol"}, std::vector<std::string>{"team:7"});
  run();
  expect((uint64_t), from(p).to(self).with(1u));
  self->send(p, disconnect_atom::value, std::string{"carol"});
  run();
  expect((uint64_t), from(p).to(self).with(1u));
  CAF_CHECK_EQUAL(told, (std::vector<std::string>{"t2 leave team:7", "t2 disconnect"}));
  self->send(p, presence_atom::value, std::string{"carol"});
  run();
  expect((bool, uint64_t), from(p).to(self).with(true, 1u));
  for (auto& a : {p, t1, t2, t3})
    self->send_exit(a, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(a room lists its sockets and their distinct users and a shard answers for a room it has not) {
  auto dir = sys.spawn(directory, std::make_shared<directory_memory>());
  std::vector<caf::actor> conns;
  std::vector<socket_ptr> socks;
  for (auto user : {"zoe", "adam", "zoe", ""}) {
    conns.push_back(conn());
    socks.push_back(make_socket());
    socks.back()->set_user(user);
    self->send(dir, join_atom::value, std::string{"team:7"}, conns.back(), socks.back());
    run();
    expect((joined_atom, caf::actor), from(_).to(self));
  }
  self->send(dir, members_atom::value, std::string{"team:7"});
  run();
  expect((uint64_t, std::vector<std::string>), from(_).to(self).with(4u, std::vector<std::string>{"adam", "zoe"}));
  self->send(dir, members_atom::value, std::string{"team:8"});
  run();
  expect((uint64_t, std::vector<std::string>), from(dir).to(self).with(0u, std::vector<std::string>{}));
  for (auto& c : conns)
    self->send_exit(c, caf::exit_reason::user_shutdown);
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(a socket hears nothing of its rooms before its CONNECT answer) {
  auto dir = sys.spawn(directory, std::make_shared<directory_memory>());
  auto c = conn();
  app.accept_now = false;
  auto s = make_socket();
  app.accept_now = true;
  CAF_CHECK_EQUAL(answered[0], 0u);
  run();
  // Joined before it is accepted, as a connection joins its namespace's room.
  self->send(dir, join_atom::value, std::string{"nsp:/"}, c, s);
  run();
  expect((joined_atom, caf::actor), from(_).to(self).with(joined_atom::value, _));
  self->send(dir, publish_atom::value, std::string{"nsp:/"}, std::string{"user:online"},
             std::string{"{\"userId\":\"x\"}"}, std::string{});
  run();
  CAF_CHECK_EQUAL(delivered(0).size(), 0u);
  s->accept();
  self->send(dir, publish_atom::value, std::string{"nsp:/"}, std::string{"user:online"},
             std::string{"{\"userId\":\"y\"}"}, std::string{});
  run();
  auto got = delivered(0);
  CAF_REQUIRE_EQUAL(got.size(), 2u);
  CAF_CHECK_EQUAL(got[0].substr(0, 9), "40{\"sid\":");
  CAF_CHECK_EQUAL(got[1], "42[\"user:online\",{\"userId\":\"y\"}]");
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  self->send_exit(c, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(a room that fails runs again with its members and tells their connections) {
  auto memory = std::make_shared<directory_memory>();
  auto dir = sys.spawn(directory, memory);
  std::vector<std::pair<std::string, caf::actor>> moved;
  auto c = sys.spawn([&moved](caf::event_based_actor*) -> caf::behavior {
    return {[&moved](room_moved_atom, const std::string& room, const caf::actor& r) { moved.emplace_back(room, r); }};
  });
  auto s1 = make_socket();
  run();
  self->send(dir, join_atom::value, std::string{"conversation:7"}, c, s1);
  run();
  caf::actor first;
  self->receive([&](joined_atom, const caf::actor& r) { first = r; });
  self->send(dir, kill_atom::value, std::string{"conversation:7"}, caf::make_error(caf::sec::runtime_error));
  run();
  CAF_REQUIRE_EQUAL(moved.size(), 1u);
  CAF_CHECK_EQUAL(moved[0].first, "conversation:7");
  CAF_CHECK_NOT_EQUAL(moved[0].second, first);
  CAF_CHECK_EQUAL(memory->rooms.at("conversation:7").room, moved[0].second);
  // Still a member: a publish through the shard reaches it.
  self->send(dir, publish_atom::value, std::string{"conversation:7"}, std::string{"after"}, std::string{"1"},
             std::string{});
  run();
  auto got = delivered(0);
  CAF_REQUIRE_EQUAL(got.size(), 1u);
  CAF_CHECK_EQUAL(got[0], "42[\"after\",1]");
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  self->send_exit(c, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(a shard restarted with its memory takes over the rooms that kept running) {
  auto memory = std::make_shared<directory_memory>();
  auto dir = sys.spawn(directory, memory);
  auto c1 = conn(), c2 = conn();
  auto s1 = make_socket(), s2 = make_socket();
  run();
  self->send(dir, join_atom::value, std::string{"a"}, c1, s1);
  self->send(dir, join_atom::value, std::string{"b"}, c2, s2);
  run();
  caf::actor room_a;
  self->receive([&](joined_atom, const caf::actor& r) { room_a = r; });
  self->receive([](joined_atom, const caf::actor&) {});
  self->monitor(room_a);
  // The shard fails; its rooms do not.
  self->send_exit(dir, caf::make_error(caf::sec::runtime_error));
  run();
  self->send(room_a, publish_atom::value, std::string{"still"}, std::string{"1"}, std::string{});
  run();
  CAF_CHECK_EQUAL(delivered(0).size(), 1u);
  // The next incarnation adopts them: publishes and leaves go through it.
  auto again = sys.spawn(directory, memory);
  run();
  self->send(again, publish_atom::value, std::string{"b"}, std::string{"via"}, std::string{"2"}, std::string{});
  run();
  auto got = delivered(1);
  CAF_REQUIRE_EQUAL(got.size(), 1u);
  CAF_CHECK_EQUAL(got[0], "42[\"via\",2]");
  self->send(again, leave_atom::value, std::string{"a"}, c1);
  run();
  self->receive([&](caf::down_msg& dm) {
    CAF_CHECK_EQUAL(dm.source, room_a.address());
    CAF_CHECK_EQUAL(dm.reason, caf::error{}); // emptied and stopped by the new shard
  });
  self->send(again, count_atom::value);
  run();
  expect((uint64_t), from(again).to(self).with(1u));
  // A shutdown stops the rooms too.
  self->send_exit(again, caf::exit_reason::user_shutdown);
  run();
  CAF_CHECK(memory->rooms.empty());
  for (auto& c : {c1, c2})
    self->send_exit(c, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(a restarted presence counts on from where its predecessor stopped) {
  settings s;
  s.rooms.directory_shards = 1;
  s.socketio.namespaces = {"/"};
  auto rt = std::make_shared<const runtime>(sys, s, std::nullopt);
  std::vector<std::string> published;
  auto probe = sys.spawn([&published](caf::event_based_actor*) -> caf::behavior {
    return {[&published](publish_atom, const std::string& room, const std::string& event, const std::string& data,
                         const std::string&) { published.push_back(event + " " + data); }};
  });
  sys.registry().put(directory_key(0), caf::actor_cast<caf::strong_actor_ptr>(probe));
  auto memory = std::make_shared<presence_memory>();
  auto p = sys.spawn(presence, rt, memory);
  run();
  self->send(p, online_atom::value, std::string{"dora"}, std::string{"t1"});
  run();
  self->send_exit(p, caf::make_error(caf::sec::runtime_error));
  run();
  auto next = sys.spawn(presence, rt, memory);
  run();
  // A second tab of a user counted before the restart: not announced again.
  self->send(next, online_atom::value, std::string{"dora"}, std::string{"t2"});
  self->send(next, offline_atom::value, std::string{"dora"}, std::string{"t1"});
  run();
  CAF_CHECK_EQUAL(published, std::vector<std::string>{"user:online {\"userId\":\"dora\"}"});
  self->send(next, offline_atom::value, std::string{"dora"}, std::string{"t2"});
  run();
  CAF_REQUIRE_EQUAL(published.size(), 2u);
  CAF_CHECK_EQUAL(published[1], "user:offline {\"userId\":\"dora\"}");
  sys.registry().erase(directory_key(0));
  self->send_exit(probe, caf::exit_reason::user_shutdown);
  self->send_exit(next, caf::exit_reason::user_shutdown);
  run();
}

CAF_TEST(joins and publishes meet in one room actor and rooms spread over every shard) {
  // Room names as the handlers make them.
  std::vector<std::string> names;
  for (int i = 0; i < 24; ++i)
    for (auto prefix : {"conversation:", "session:", "dialog:7-", "profile:"})
      names.push_back(prefix + std::to_string(i));
  auto c = conn();
  for (size_t shards : {1u, 2u, 3u, 5u, 8u, 16u}) {
    CAF_MESSAGE(shards << " shard(s)");
    settings s;
    s.rooms.directory_shards = shards;
    auto rt = std::make_shared<const runtime>(sys, s, std::nullopt);
    std::vector<caf::actor> dirs;
    for (size_t i = 0; i < shards; ++i) {
      dirs.push_back(sys.spawn(directory, std::make_shared<directory_memory>()));
      sys.registry().put(directory_key(i), caf::actor_cast<caf::strong_actor_ptr>(dirs.back()));
    }
    run();
    // One member per room, joined the way a connection joins: through directory_for.
    auto first = sessions.size();
    for (auto& name : names) {
      auto dir = rt->directory_for(std::string{name}); // a copy: only the text may matter
      CAF_REQUIRE(dir != nullptr);
      caf::anon_send(dir, join_atom::value, std::string{name}, c, make_socket());
    }
    run();
    // A publish per room, routed on its own by runtime::publish: each must reach
    // that room's member, so both found the same shard and the same room actor.
    for (size_t r = 0; r < names.size(); ++r)
      rt->publish(std::string{names[r]}, "hit", std::to_string(r));
    run();
    for (size_t r = 0; r < names.size(); ++r) {
      auto got = delivered(first + r);
      CAF_REQUIRE_EQUAL(got.size(), 1u);
      CAF_CHECK_EQUAL(got[0], "42[\"hit\"," + std::to_string(r) + "]");
    }
    // Every room lives on exactly one shard, and every shard holds some: a hash
    // that ignored the part after the prefix, or sent everything to one shard,
    // would leave shards empty. None holds more than three times its share.
    uint64_t total = 0;
    for (size_t i = 0; i < shards; ++i) {
      self->send(dirs[i], count_atom::value);
      run();
      uint64_t n = 0;
      self->receive([&n](uint64_t x) { n = x; });
      CAF_MESSAGE("shard " << i << ": " << n);
      CAF_CHECK_GREATER(n, 0u);
      CAF_CHECK_LESS_OR_EQUAL(n, 3 * names.size() / shards);
      total += n;
    }
    CAF_CHECK_EQUAL(total, names.size());
    for (size_t i = 0; i < shards; ++i) {
      sys.registry().erase(directory_key(i));
      self->send_exit(dirs[i], caf::exit_reason::user_shutdown);
    }
    run();
  }
  self->send_exit(c, caf::exit_reason::user_shutdown);
  run();
  CAF_CHECK_EQUAL(caf::to_string(directory_key(3)), "p_dir_3");
}

// The publish path of a stored event: directory → room (its members become
// the fan-out) → store, which commits in groups and only then answers and
// delivers, each event with its offset as the last argument. (sched.run()
// runs messages only: the fixture's run() would also fire the store's
// periodic timer for ever.)
struct store_rig {
  std::shared_ptr<store_memory> mem = std::make_shared<store_memory>();
  runtime_ptr rt;
  caf::actor store;
  store_rig(caf::actor_system& sys, uint64_t batch) {
    settings s;
    s.rooms.directory_shards = 1;
    s.store.commit_batch = batch;
    s.store.max_per_room = 0;
    s.store.max_age = duration{0};
    rt = std::make_shared<const runtime>(sys, s, std::nullopt);
    mem->db = store::make_memory_backend();
    mem->where = "memory";
    store = sys.spawn(store_actor, rt, mem);
    sys.registry().put(store_key(), caf::actor_cast<caf::strong_actor_ptr>(store));
  }
};

CAF_TEST(stored publishes are committed in one group then answered and delivered with their offsets) {
  store_rig rig{sys, 512};
  auto dir = sys.spawn(directory, std::make_shared<directory_memory>());
  auto c1 = conn(), c2 = conn();
  auto s1 = make_socket(), s2 = make_socket("/messages");
  sched.run();
  for (auto [c, s] : {std::pair{c1, s1}, std::pair{c2, s2}})
    self->send(dir, join_atom::value, std::string{"chat:1"}, c, s);
  sched.run();
  for (int i = 0; i < 2; ++i)
    expect((joined_atom, caf::actor), from(_).to(self).with(joined_atom::value, _));
  self->send(dir, publish_atom::value, make_rec("chat:1", "1"), s1->sid(), sio::delivered_ptr{});
  self->send(dir, publish_atom::value, make_rec("chat:1", "2"), std::string{}, sio::delivered_ptr{});
  self->send(dir, publish_atom::value, make_rec("chat:nobody", "3"), std::string{}, sio::delivered_ptr{});
  sched.run();
  expect((uint64_t), from(_).to(self).with(1u));
  expect((uint64_t), from(_).to(self).with(2u));
  expect((uint64_t), from(_).to(self).with(3u));
  auto d0 = delivered(0), d1 = delivered(1);
  CAF_REQUIRE_EQUAL(d0.size(), 1u); // the sender is skipped for its own record
  // Offsets are given in arrival at the store: the record of the room
  // without members came straight from the shard, ahead of the other two.
  CAF_CHECK_EQUAL(d0[0], "42[\"news\",2,\"3\"]");
  CAF_REQUIRE_EQUAL(d1.size(), 2u);
  CAF_CHECK_EQUAL(d1[0], "42/messages,[\"news\",1,\"2\"]");
  CAF_CHECK_EQUAL(d1[1], "42/messages,[\"news\",2,\"3\"]");
  // The room nobody is in has its record all the same.
  self->send(rig.store, store_history_atom::value, std::string{"chat:nobody"}, uint64_t{0}, uint64_t{0},
             uint64_t{10}, false);
  sched.run();
  std::vector<store::record> got;
  self->receive([&](std::vector<store::record>& recs) { got = std::move(recs); },
                caf::after(std::chrono::seconds(1)) >> [] { CAF_FAIL("no history"); });
  CAF_REQUIRE_EQUAL(got.size(), 1u);
  CAF_CHECK_EQUAL(got[0].offset, 1u);
  CAF_CHECK_EQUAL(got[0].data, "3");
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  self->send_exit(rig.store, caf::exit_reason::user_shutdown);
  for (auto& c : {c1, c2})
    self->send_exit(c, caf::exit_reason::user_shutdown);
  sys.registry().erase(store_key());
  sched.run();
}

CAF_TEST(a room encodes once per wire flavour and keeps a publish to its audience) {
  store_rig rig{sys, 512};
  auto dir = sys.spawn(directory, std::make_shared<directory_memory>());
  auto ca = conn(), cs = conn(), cw = conn(), cj = conn(), ci = conn();
  auto admin = make_plain_socket("~admin"), site = make_plain_socket("~site"), widget = make_plain_socket("~site");
  auto json = make_plain_socket("~json"), sio_sock = make_socket();
  sched.run();
  for (auto [c, s] : {std::pair{ca, admin}, std::pair{cs, site}, std::pair{cw, widget}, std::pair{cj, json},
                      std::pair{ci, sio_sock}})
    self->send(dir, join_atom::value, std::string{"dialog:7"}, c, s);
  sched.run();
  for (int i = 0; i < 5; ++i)
    expect((joined_atom, caf::actor), from(_).to(self).with(joined_atom::value, _));
  // Not stored, to the site audience, from the widget: the site socket only.
  std::pair<uint32_t, uint32_t> reached{99, 99};
  auto told = std::make_shared<publish_outcome>(publish_outcome::reach_callback{
    [&](uint64_t, const std::string&, uint32_t admins, uint32_t sites) { reached = {admins, sites}; }});
  self->send(dir, publish_atom::value, std::string{"dialog:7"}, std::string{"typing_start"},
             std::string{"{\"type\":\"typing_start\"}"}, widget->sid(), uint8_t{wire::sites}, told);
  told.reset();
  sched.run();
  CAF_CHECK_EQUAL(reached.first, 0u);
  CAF_CHECK_EQUAL(reached.second, 1u);
  CAF_CHECK_EQUAL(delivered(0).size(), 0u);
  auto d_site = delivered(1);
  CAF_REQUIRE_EQUAL(d_site.size(), 1u);
  CAF_CHECK_EQUAL(d_site[0], "{\"type\":\"typing_start\"}");
  CAF_CHECK_EQUAL(delivered(2).size(), 0u);
  CAF_CHECK_EQUAL(delivered(3).size(), 0u);
  CAF_CHECK_EQUAL(delivered(4).size(), 0u);
  // Stored, to the admins: admin, /ws and Socket.IO sockets, each in its form.
  auto rec = make_rec("dialog:7", "{\"sender\":\"user\"}");
  rec.event = "message";
  rec.audience = wire::admins;
  reached = {99, 99};
  told = std::make_shared<publish_outcome>(publish_outcome::reach_callback{
    [&](uint64_t, const std::string&, uint32_t admins, uint32_t sites) { reached = {admins, sites}; }});
  self->send(dir, publish_atom::value, rec, std::string{}, sio::delivered_ptr{}, told);
  told.reset();
  sched.run();
  CAF_CHECK_EQUAL(reached.first, 3u);
  CAF_CHECK_EQUAL(reached.second, 0u);
  auto d_admin = delivered(0), d_json = delivered(3), d_sio = delivered(4);
  CAF_REQUIRE_EQUAL(d_admin.size(), 1u);
  CAF_CHECK_EQUAL(d_admin[0], "{\"sender\":\"user\"}");
  CAF_REQUIRE_EQUAL(d_json.size(), 1u);
  CAF_CHECK_EQUAL(d_json[0], "{\"type\":\"message\",\"room\":\"dialog:7\",\"data\":{\"sender\":\"user\"}}");
  CAF_REQUIRE_EQUAL(d_sio.size(), 1u);
  CAF_CHECK_EQUAL(d_sio[0], "42[\"message\",{\"sender\":\"user\"},\"1\"]");
  CAF_CHECK_EQUAL(delivered(1).size(), 1u); // nothing new for the site audience
  CAF_CHECK_EQUAL(delivered(2).size(), 0u);
  // To everyone: the site and widget sockets share one buffer.
  self->send(dir, publish_atom::value, std::string{"dialog:7"}, std::string{"x"}, std::string{"[1]"},
             std::string{}, uint8_t{wire::everyone}, outcome_ptr{});
  sched.run();
  CAF_REQUIRE_EQUAL(delivered(2).size(), 1u);
  CAF_CHECK_EQUAL(sessions[1]->queued().back().bytes.get(), sessions[2]->queued().back().bytes.get());
  CAF_CHECK_EQUAL(*sessions[0]->queued().back().bytes, "[1]");
  self->send_exit(dir, caf::exit_reason::user_shutdown);
  self->send_exit(rig.store, caf::exit_reason::user_shutdown);
  for (auto& c : {ca, cs, cw, cj, ci})
    self->send_exit(c, caf::exit_reason::user_shutdown);
  sys.registry().erase(store_key());
  sched.run();
}

CAF_TEST(records waiting together are one commit and a full batch is committed at once) {
  {
    store_rig rig{sys, 512};
    auto commits = counters().store_commits.load();
    append(rig.store, {"1", "2", "3"});
    sched.run();
    // The store was idle, but the first two found more waiting behind them:
    // one transaction for all three.
    CAF_CHECK_EQUAL(counters().store_commits.load(), commits + 1);
    expect((uint64_t), from(rig.store).to(self).with(1u));
    expect((uint64_t), from(rig.store).to(self).with(2u));
    expect((uint64_t), from(rig.store).to(self).with(3u));
    // A session change alone waits for the commit interval.
    store::session_row row;
    row.pid = "p1";
    row.sid = "s1";
    self->send(rig.store, session_write_atom::value, row);
    sched.run();
    CAF_CHECK_EQUAL(counters().store_commits.load(), commits + 1);
    sched.trigger_timeouts();
    sched.run();
    CAF_CHECK_EQUAL(counters().store_commits.load(), commits + 2);
    stop_store(rig.store);
  }
  store_rig rig{sys, 2};
  auto commits = counters().store_commits.load();
  append(rig.store, {"1", "2", "3"});
  sched.run();
  // Two make a full batch, committed at once; the third came right after a
  // commit: it waits for the interval.
  CAF_CHECK_EQUAL(counters().store_commits.load(), commits + 1);
  expect((uint64_t), from(rig.store).to(self).with(1u));
  expect((uint64_t), from(rig.store).to(self).with(2u));
  CAF_CHECK(self->mailbox().empty());
  sched.trigger_timeouts();
  sched.run();
  CAF_CHECK_EQUAL(counters().store_commits.load(), commits + 2);
  expect((uint64_t), from(rig.store).to(self).with(3u));
  stop_store(rig.store);
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST(restart delays grow and stay within the cap) {
  std::minstd_rand rng{42};
  using ms = std::chrono::milliseconds;
  for (int n = 0; n < 12; ++n) {
    auto full = std::min<int64_t>(5000, 50LL << n);
    auto d = restart_delay(n, rng).count();
    CAF_CHECK_GREATER_OR_EQUAL(d, full - full / 2);
    CAF_CHECK_LESS_OR_EQUAL(d, full);
  }
  CAF_CHECK_LESS_OR_EQUAL(restart_delay(40, rng), ms(5000));
}
