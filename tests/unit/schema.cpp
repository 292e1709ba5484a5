#define CAF_SUITE schema
#include <caf/test/unit_test.hpp>

#include <thread>

#include "schema/events.hpp"

using namespace parley;

namespace {

std::string check(std::string_view name, const char* json) {
  rapidjson::Document d;
  d.Parse(json);
  auto r = schema::catalogue::instance().validate(name, d);
  return r ? *r : "ok";
}

} // namespace

CAF_TEST(every client event knows its valid payloads) {
  CAF_CHECK_EQUAL(check("conversation:join", R"({"conversationId":"c1"})"), "ok");
  CAF_CHECK_EQUAL(check("conversation:join", R"({"conversationId":12,"extra":true})"), "ok");
  CAF_CHECK_EQUAL(check("session:leave", R"({"sessionId":"s"})"), "ok");
  CAF_CHECK_EQUAL(check("join", R"({"room":"dialog:1-2"})"), "ok");
  CAF_CHECK_EQUAL(check("join", R"({"dialogId":5})"), "ok");
  CAF_CHECK_EQUAL(check("typing", R"({"chatId":"1","isTyping":false})"), "ok");
  CAF_CHECK_EQUAL(check("send_message", R"({"chatId":1,"message":"hi"})"), "ok");
  CAF_CHECK_EQUAL(check("api.publish", R"({"room":"r","event":"e","data":[1],"except":"sid"})"), "ok");
  CAF_CHECK_EQUAL(check("api.broadcast", R"({"rooms":["a","b"],"event":"e"})"), "ok");
}

CAF_TEST(errors name the problem) {
  CAF_CHECK_EQUAL(check("conversation:join", "{}"),
                  "Invalid payload for conversation:join: conversationId is required");
  CAF_CHECK_EQUAL(check("conversation:join", R"({"conversationId":true})"),
                  "Invalid payload for conversation:join: conversationId must be string or integer");
  CAF_CHECK_EQUAL(check("conversation:join", R"({"conversationId":""})"),
                  "Invalid payload for conversation:join: conversationId must not be empty");
  CAF_CHECK_EQUAL(check("typing:start", "[1]"), "Invalid payload for typing:start: payload must be an object");
  CAF_CHECK_EQUAL(check("join", "{}"), "Invalid payload for join: room or dialogId is required");
  CAF_CHECK_EQUAL(check("typing", R"({"isTyping":true})"),
                  "Invalid payload for typing: chatId, conversationId or dialogId is required");
  CAF_CHECK_EQUAL(check("typing", R"({"chatId":"1","isTyping":"yes"})"),
                  "Invalid payload for typing: isTyping must be boolean");
  CAF_CHECK_EQUAL(check("send_message", R"({"chatId":1})"), "Invalid payload for send_message: message is required");
  CAF_CHECK_EQUAL(check("api.publish", R"({"room":"r","event":"e","x":1})"),
                  "Invalid payload for api.publish: unexpected property x");
  CAF_CHECK_EQUAL(check("api.broadcast", R"({"rooms":[],"event":"e"})"),
                  "Invalid payload for api.broadcast: rooms must not be empty");
  CAF_CHECK_EQUAL(check("nope", "{}"), "Unknown event nope");
  CAF_CHECK(!schema::catalogue::instance().knows("nope"));
  CAF_CHECK(schema::catalogue::instance().knows("send_message"));
}

CAF_TEST(validation from several threads at once) {
  std::atomic<int> bad{0};
  auto work = [&] {
    for (int i = 0; i < 1000; ++i)
      if (check("conversation:join", R"({"conversationId":"x"})") != "ok"
          || check("conversation:join", "{}") == "ok")
        ++bad;
  };
  std::thread a{work}, b{work};
  a.join();
  b.join();
  CAF_CHECK_EQUAL(bad.load(), 0);
}
