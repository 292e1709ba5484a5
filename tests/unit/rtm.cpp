#define CAF_SUITE rtm
#define FAIL(msg) CAF_FAIL(msg) // caf 0.17.6's dsl.hpp uses an undefined FAIL()
#include <caf/test/dsl.hpp>

#include "actors/messages.hpp"
#include "actors/rtm_dedup.hpp"
#include "actors/rtm_upstream.hpp"
#include "config/settings.hpp"
#include "net/http_client.hpp"
#include "schema/rtm.hpp"

using namespace parley;
using std::chrono::milliseconds;

namespace {

// Stands in for the network: records what the upstream actor asks for; the
// test plays the upstream's part by sending the actor the messages the real
// client's callbacks would.
struct fake_link : net::ws_link {
  std::vector<std::string> sent;
  bool closed = false;
  void send(std::string text) override { sent.push_back(std::move(text)); }
  void close() override { closed = true; }
};

struct fake_client : net::rtm_client {
  std::vector<std::string> opened; // cookies of each open()
  std::vector<std::shared_ptr<fake_link>> links;
  std::vector<std::string> logins;
  std::shared_ptr<net::ws_link> open(const std::string& cookies, net::ws_link::callbacks) override {
    opened.push_back(cookies);
    links.push_back(std::make_shared<fake_link>());
    return links.back();
  }
  void login(const std::string& profile, const std::string& password,
             std::function<void(net::http_result)>) override {
    logins.push_back(profile + ":" + password);
  }
  void fetch_client(const std::string&, const std::string&, std::function<void(net::http_result)>) override {}
};

rtm::event_ptr message(const std::string& profile, const std::string& id) {
  rtm::event e;
  e.kind = rtm::event_kind::message_new;
  e.profile = profile;
  e.id = id;
  return std::make_shared<const rtm::event>(std::move(e));
}

struct fixture : test_coordinator_fixture<> {
  // Pending timers (delayed sends) of the test clock.
  size_t timers() { return sched.clock().schedule().size(); }
};

} // namespace

CAF_TEST(backoff doubles per failure up to the cap) {
  milliseconds base{100}, cap{1000};
  std::vector<int64_t> got;
  for (uint32_t f = 0; f < 6; ++f)
    got.push_back(backoff_delay(f, base, cap, 0, 0.5).count());
  CAF_CHECK_EQUAL(got, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000}));
  // ±20 %: u = 0 is the low end, u → 1 the high end, never above the cap.
  CAF_CHECK_EQUAL(backoff_delay(1, base, cap, 20, 0.0).count(), 160);
  CAF_CHECK_EQUAL(backoff_delay(1, base, cap, 20, 0.999999).count(), 239);
  CAF_CHECK_EQUAL(backoff_delay(9, base, cap, 20, 0.999999).count(), 1000);
  CAF_CHECK_EQUAL(backoff_delay(9, base, cap, 20, 0.0).count(), 800);
  // Huge failure counts do not overflow.
  CAF_CHECK_EQUAL(backoff_delay(4000000000u, base, cap, 0, 0.5).count(), 1000);
}

CAF_TEST(the frames of the upstream are classified) {
  auto ping = rtm::parse_frame("{}");
  CAF_REQUIRE(std::holds_alternative<rtm::frame>(ping));
  CAF_CHECK(std::get<rtm::frame>(ping).kind == rtm::frame_kind::ping);
  auto reply = rtm::parse_frame(R"({"id":1,"connect":{"client":"c","ping":25,"pong":true}})");
  CAF_CHECK(std::get<rtm::frame>(reply).kind == rtm::frame_kind::connect_reply);
  CAF_CHECK_EQUAL(std::get<rtm::frame>(reply).ping_seconds, 25);
  auto error_of = [](const std::string& text) { return std::get<std::string>(rtm::parse_frame(text)); };
  CAF_CHECK_EQUAL(error_of(R"({"push":)"), "invalid JSON: Invalid value. at offset 8");
  CAF_CHECK_EQUAL(error_of(R"({"push":{"pub":{}}})"), "push without pub.data");
  CAF_CHECK_EQUAL(error_of("[1]"), "frame is not a JSON object");
}

CAF_TEST(a chat message becomes a toast and a dialog message) {
  rapidjson::Document d;
  d.Parse(R"({"type":"chat_MessageNew","data":{"message":{"id":555,"idUserFrom":42,"idUserTo":7,
    "type":"text","content":{"message":"Hi &amp; <b>bye</b>"},"dateCreated":"2026-11-24T10:00:00Z"}}})");
  auto ev = rtm::parse_event(d, "7");
  CAF_REQUIRE(std::holds_alternative<rtm::event>(ev));
  auto& e = std::get<rtm::event>(ev);
  CAF_CHECK_EQUAL(e.dialog_id, "7-42");
  CAF_CHECK_EQUAL(rtm::dedup_key(e), "7:m:555");
  rtm::client_info who{"\"Ann\"", "\"https://a/1.png\""};
  auto out = rtm::deliveries(e, who);
  CAF_REQUIRE_EQUAL(out.size(), 2u);
  CAF_CHECK_EQUAL(out[0].rooms, std::vector<std::string>{"profile:7"});
  CAF_CHECK_EQUAL(out[0].event, "message_toast");
  CAF_CHECK_EQUAL(out[0].data_json,
                  R"({"messageId":555,"idUserFrom":42,"idUserTo":7,"dateCreated":"2026-11-24T10:00:00Z",)"
                  R"("type":"new_message","dialogId":"7-42","clientName":"Ann","clientAvatar":"https://a/1.png",)"
                  R"("preview":"Hi & bye","fromSelf":false})");
  CAF_CHECK_EQUAL(out[1].rooms, std::vector<std::string>{"dialog:7-42"});
  CAF_CHECK_EQUAL(out[1].event, "message");
  CAF_CHECK_EQUAL(out[1].data_json,
                  R"({"id":555,"idUserFrom":42,"idUserTo":7,"type":"text",)"
                  R"("content":{"message":"Hi &amp; <b>bye</b>"},"message":"Hi & bye",)"
                  R"("dateCreated":"2026-11-24T10:00:00Z"})");
  // Sent by the profile itself: the partner is the recipient, and fromSelf is set.
  rapidjson::Document s;
  s.Parse(R"({"type":"MessageSent","message":{"id":"x","idUserFrom":"7","idUserTo":"9","type":"photo"}})");
  auto sent = std::get<rtm::event>(rtm::parse_event(s, "7"));
  CAF_CHECK_EQUAL(sent.dialog_id, "7-9");
  CAF_CHECK(sent.from_self);
  CAF_CHECK_EQUAL(sent.text, "[photo]");
}

CAF_TEST(reads and typing go to the dialog and the profile as one delivery) {
  rapidjson::Document d;
  d.Parse(R"({"type":"chat_MessageRead","data":{"idInterlocutor":42,"idMessage":555}})");
  auto e = std::get<rtm::event>(rtm::parse_event(d, "7"));
  auto out = rtm::deliveries(e, {});
  CAF_REQUIRE_EQUAL(out.size(), 1u);
  CAF_CHECK_EQUAL(out[0].rooms, (std::vector<std::string>{"dialog:7-42", "profile:7"}));
  CAF_CHECK_EQUAL(out[0].event, "message_read");
  CAF_CHECK_EQUAL(out[0].data_json, R"({"messageId":555,"idInterlocutor":42,"dialogId":"7-42"})");
  rapidjson::Document t;
  t.Parse(R"({"type":"chat_DialogTyping","data":{"idUser":42,"idInterlocutor":7}})");
  auto typing = rtm::deliveries(std::get<rtm::event>(rtm::parse_event(t, "7")), {});
  CAF_REQUIRE_EQUAL(typing.size(), 1u);
  CAF_CHECK_EQUAL(typing[0].rooms, (std::vector<std::string>{"dialog:7-42", "profile:7"}));
  CAF_CHECK_EQUAL(typing[0].data_json, R"({"dialogId":"7-42","idUser":42,"idInterlocutor":7,"isTyping":true})");
}

CAF_TEST(events missing their ids are refused with the field named) {
  auto error_of = [](const char* json) {
    rapidjson::Document d;
    d.Parse(json);
    return std::get<std::string>(rtm::parse_event(d, "7"));
  };
  CAF_CHECK_EQUAL(error_of(R"({"type":"chat_MessageRead","data":{"idInterlocutor":3}})"),
                  "chat_MessageRead without data.idMessage");
  CAF_CHECK_EQUAL(error_of(R"({"type":"email","email":{"id":1,"id_user_from":2}})"), "email without email.id_user_to");
  CAF_CHECK_EQUAL(error_of(R"({"data":{}})"), "event without a type");
}

CAF_TEST(html becomes plain text and previews are cut safely) {
  CAF_CHECK_EQUAL(rtm::html_to_text("<p>Hello&nbsp;<b>world</b></p><br/>Bye &#x263A; &#9731;"), "Hello world Bye ☺ ☃");
  CAF_CHECK_EQUAL(rtm::preview_of("ààààà", 3), "ààà…");
  CAF_CHECK_EQUAL(rtm::preview_of("abc", 3), "abc");
}

CAF_TEST(cookies from Set-Cookie headers replace same-named ones) {
  CAF_CHECK_EQUAL(net::merge_cookies("a=1; tld-token=old", {"tld-token=new; Path=/; HttpOnly", "tld-user=7; Path=/"}),
                  "a=1; tld-token=new; tld-user=7");
}

CAF_TEST(iso 8601 times) {
  CAF_CHECK_EQUAL(parse_iso8601("1970-01-01T00:01:00Z").value_or(-1), 60);
  CAF_CHECK_EQUAL(parse_iso8601("1970-01-01T01:00:00+01:00").value_or(-1), 0);
  CAF_CHECK_EQUAL(parse_iso8601("2026-11-24T10:00:00.250Z").value_or(-1), 1795514400);
  CAF_CHECK(!parse_iso8601("yesterday"));
  CAF_CHECK_EQUAL(format_iso8601_ms(1795514400250), "2026-11-24T10:00:00.250Z");
}

CAF_TEST_FIXTURE_SCOPE(rtm_actors, fixture)

CAF_TEST(dedup drops a repeat within the TTL and lets it through after) {
  caf::actor sink = self;
  auto d = sys.spawn(rtm_dedup, milliseconds(30000), uint64_t{1000}, [sink] { return sink; },
                     std::make_shared<rtm_dedup_memory>());
  sched.run();
  self->send(d, rtm_event_atom::value, message("7", "m1"));
  expect((rtm_event_atom, rtm::event_ptr), from(self).to(d));
  expect((rtm_event_atom, rtm::event_ptr), from(d).to(self));
  // The same id again 29.999 s later: dropped.
  sched.clock().advance_time(milliseconds(29999));
  self->send(d, rtm_event_atom::value, message("7", "m1"));
  expect((rtm_event_atom, rtm::event_ptr), from(self).to(d));
  disallow((rtm_event_atom, rtm::event_ptr), from(d).to(self));
  // Another profile's copy of that id is its own.
  self->send(d, rtm_event_atom::value, message("8", "m1"));
  expect((rtm_event_atom, rtm::event_ptr), from(self).to(d));
  expect((rtm_event_atom, rtm::event_ptr), from(d).to(self));
  // 30 s after the first sighting it is new again.
  sched.clock().advance_time(milliseconds(1));
  self->send(d, rtm_event_atom::value, message("7", "m1"));
  expect((rtm_event_atom, rtm::event_ptr), from(self).to(d));
  expect((rtm_event_atom, rtm::event_ptr), from(d).to(self));
  CAF_CHECK_EQUAL(deref<caf::stateful_actor<rtm_dedup_state>>(d).state.dropped, 1u);
}

CAF_TEST(dedup memory stays bounded by its cap) {
  caf::actor sink = self;
  auto d = sys.spawn(rtm_dedup, milliseconds(30000), uint64_t{100}, [sink] { return sink; },
                     std::make_shared<rtm_dedup_memory>());
  sched.run();
  for (int i = 0; i < 1000; ++i) {
    self->send(d, rtm_event_atom::value, message("7", std::to_string(i)));
    sched.run();
  }
  auto& st = *deref<caf::stateful_actor<rtm_dedup_state>>(d).state.memory;
  CAF_CHECK_EQUAL(st.seen.size(), 100u);
  CAF_CHECK_LESS_OR_EQUAL(st.order.size(), 200u);
  // The newest are remembered, the oldest forgotten.
  CAF_CHECK(st.seen.count("7:m:999") == 1);
  CAF_CHECK(st.seen.count("7:m:0") == 0);
}

CAF_TEST(a restarted dedup still drops what its predecessor saw) {
  caf::actor sink = self;
  auto memory = std::make_shared<rtm_dedup_memory>();
  auto d = sys.spawn(rtm_dedup, milliseconds(30000), uint64_t{1000}, [sink] { return sink; }, memory);
  sched.run();
  self->send(d, rtm_event_atom::value, message("7", "m1"));
  expect((rtm_event_atom, rtm::event_ptr), from(self).to(d));
  expect((rtm_event_atom, rtm::event_ptr), from(d).to(self));
  self->send_exit(d, caf::exit_reason::kill);
  sched.run();
  // The supervisor spawns the next one with the same memory.
  auto again = sys.spawn(rtm_dedup, milliseconds(30000), uint64_t{1000}, [sink] { return sink; }, memory);
  sched.run();
  self->send(again, rtm_event_atom::value, message("7", "m1"));
  expect((rtm_event_atom, rtm::event_ptr), from(self).to(again));
  disallow((rtm_event_atom, rtm::event_ptr), from(again).to(self));
  self->send(again, rtm_event_atom::value, message("7", "m2"));
  expect((rtm_event_atom, rtm::event_ptr), from(self).to(again));
  expect((rtm_event_atom, rtm::event_ptr), from(again).to(self));
}

CAF_TEST(the upstream reconnects on the backoff schedule) {
  auto client = std::make_shared<fake_client>();
  rtm_settings opts;
  opts.backoff_base = milliseconds(100);
  opts.backoff_max = milliseconds(1000);
  opts.backoff_jitter = 0;
  rtm_profile p;
  p.id = "7";
  p.cookies = "tld-token=abc";
  caf::actor none;
  auto u = sys.spawn(rtm_upstream, p, opts, client, none, [] { return caf::actor{}; });
  sched.run();
  CAF_REQUIRE_EQUAL(client->opened.size(), 1u);
  CAF_CHECK_EQUAL(client->opened[0], "tld-token=abc");
  auto& st = deref<caf::stateful_actor<rtm_upstream_state>>(u).state;
  // Opened: it sends the connect command; the connect reply makes it connected.
  self->send(u, rtm_open_atom::value, st.gen);
  sched.run();
  CAF_CHECK_EQUAL(client->links[0]->sent, (std::vector<std::string>{R"({"connect":{"name":"js","version":"1.0"},"id":1})"}));
  self->send(u, rtm_frame_atom::value, st.gen, std::string{R"({"id":1,"connect":{"client":"x"}})"});
  sched.run();
  CAF_CHECK(st.phase == upstream_phase::connected);
  // A ping is answered.
  self->send(u, rtm_frame_atom::value, st.gen, std::string{"{}"});
  sched.run();
  CAF_CHECK_EQUAL(client->links[0]->sent.back(), "{}");
  // Five drops in a row: 100, 200, 400, 800, 1000 ms (capped).
  std::vector<int64_t> expected{100, 200, 400, 800, 1000};
  for (size_t i = 0; i < expected.size(); ++i) {
    self->send(u, rtm_closed_atom::value, st.gen, 0, std::string{"connection lost"});
    sched.run();
    CAF_CHECK(st.phase == upstream_phase::backoff);
    auto opens = client->opened.size();
    sched.clock().advance_time(milliseconds(expected[i] - 1));
    sched.run();
    CAF_CHECK_EQUAL(client->opened.size(), opens); // not yet
    sched.clock().advance_time(milliseconds(1));
    sched.run();
    CAF_CHECK_EQUAL(client->opened.size(), opens + 1); // exactly on time
    self->send(u, rtm_open_atom::value, st.gen);
    self->send(u, rtm_frame_atom::value, st.gen, std::string{R"({"id":1,"connect":{}})"});
    sched.run();
    CAF_CHECK(st.phase == upstream_phase::connected);
  }
  CAF_CHECK_EQUAL(st.reconnects, 5u);
  // A connection that stays up for backoff-max starts the schedule over.
  sched.clock().advance_time(milliseconds(1000));
  self->send(u, rtm_closed_atom::value, st.gen, 0, std::string{"connection lost"});
  sched.run();
  auto opens = client->opened.size();
  sched.clock().advance_time(milliseconds(100));
  sched.run();
  CAF_CHECK_EQUAL(client->opened.size(), opens + 1);
  self->send(u, stop_atom::value);
  sched.run();
}

CAF_TEST(a refused session logs in again when a password is configured) {
  auto client = std::make_shared<fake_client>();
  rtm_settings opts;
  opts.backoff_base = milliseconds(100);
  opts.backoff_max = milliseconds(1000);
  opts.backoff_jitter = 0;
  rtm_profile p;
  p.id = "7";
  p.cookies = "tld-token=old";
  p.password = "pw";
  caf::actor none;
  auto u = sys.spawn(rtm_upstream, p, opts, client, none, [] { return caf::actor{}; });
  sched.run();
  auto& st = deref<caf::stateful_actor<rtm_upstream_state>>(u).state;
  self->send(u, rtm_closed_atom::value, st.gen, 401, std::string{"upgrade refused with HTTP 401"});
  sched.run();
  CAF_CHECK_EQUAL(client->logins, (std::vector<std::string>{"7:pw"}));
  self->send(u, rtm_login_atom::value, st.gen, 200, std::string{"tld-token=new"});
  sched.run();
  CAF_CHECK_EQUAL(client->opened.back(), "tld-token=new");
  // The new session is refused too: no second login in a row, auth_failed and backoff.
  self->send(u, rtm_closed_atom::value, st.gen, 401, std::string{"upgrade refused with HTTP 401"});
  sched.run();
  CAF_CHECK_EQUAL(to_string(st.phase), std::string{"auth_failed"});
  CAF_CHECK_EQUAL(client->logins.size(), 1u);
  // The retry logs in first.
  sched.clock().advance_time(milliseconds(100));
  sched.run();
  CAF_CHECK_EQUAL(client->logins.size(), 2u);
  // A wrong password: auth_failed, retried on the growing schedule.
  self->send(u, rtm_login_atom::value, st.gen, 401, std::string{"login refused with HTTP 401"});
  sched.run();
  CAF_CHECK(st.phase == upstream_phase::auth_failed);
  sched.clock().advance_time(milliseconds(199));
  sched.run();
  CAF_CHECK_EQUAL(client->logins.size(), 2u);
  sched.clock().advance_time(milliseconds(1));
  sched.run();
  CAF_CHECK_EQUAL(client->logins.size(), 3u);
  self->send(u, stop_atom::value);
  sched.run();
}

CAF_TEST_FIXTURE_SCOPE_END()
