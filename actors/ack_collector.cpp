#include "actors/ack_collector.hpp"

#include "net/socketio_packet.hpp"

namespace parley {

namespace {

void finish(caf::stateful_actor<ack_collector_state>* self) {
  auto& st = self->state;
  if (!st.done)
    return;
  auto receivers = st.expected.value_or(0);
  auto settled = st.answered + st.disconnected;
  auto timed_out = receivers > settled ? receivers - settled : 0;
  std::string body = "{\"ok\":true,\"receivers\":" + std::to_string(receivers) + ",\"acks\":["
                     + st.answers + "],\"timedOut\":" + std::to_string(timed_out)
                     + ",\"disconnected\":" + std::to_string(st.disconnected) + "}";
  auto done = std::move(st.done);
  st.done = nullptr;
  done(std::move(body));
  self->quit();
}

void check(caf::stateful_actor<ack_collector_state>* self) {
  auto& st = self->state;
  if (st.expected && st.answered + st.disconnected >= *st.expected)
    finish(self);
}

} // namespace

caf::behavior ack_collector(caf::stateful_actor<ack_collector_state>* self,
                            std::chrono::milliseconds timeout,
                            std::function<void(std::string)> done) {
  self->state.done = std::move(done);
  self->delayed_send(self, timeout, timeout_atom::value);
  return {
    [self](expect_atom, uint64_t n) {
      self->state.expected = n;
      check(self);
    },
    [self](ack_atom, const std::string& sid, const std::string& user, const std::string& args) {
      auto& st = self->state;
      if (!st.answers.empty())
        st.answers += ',';
      st.answers += "{\"sid\":";
      sio::append_json_string(st.answers, sid);
      st.answers += ",\"userId\":";
      sio::append_json_string(st.answers, user);
      st.answers += ",\"response\":" + args + "}";
      ++st.answered;
      check(self);
    },
    [self](ack_atom, const std::string&, const std::string&) {
      ++self->state.disconnected;
      check(self);
    },
    [self](timeout_atom) { finish(self); },
  };
}

} // namespace parley
