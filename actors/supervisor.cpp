#include "actors/supervisor.hpp"

#include <caf/actor_registry.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include "actors/messages.hpp"

namespace parley {

std::chrono::milliseconds restart_delay(int failures, std::minstd_rand& rng,
                                        std::chrono::milliseconds base,
                                        std::chrono::milliseconds cap) {
  auto d = std::min<std::chrono::milliseconds>(cap, std::chrono::milliseconds{base.count() << std::min(failures, 20)});
  std::uniform_int_distribution<int64_t> jitter(0, d.count() / 2);
  return std::chrono::milliseconds{d.count() - d.count() / 2 + jitter(rng)};
}

namespace {

void start_child(caf::stateful_actor<supervisor_state>* self, size_t i) {
  auto& st = self->state;
  auto& c = st.children[i];
  c.handle = st.specs[i].make(self->system());
  c.started = std::chrono::steady_clock::now();
  self->monitor(c.handle);
  self->system().registry().put(st.specs[i].key, caf::actor_cast<caf::strong_actor_ptr>(c.handle));
}

} // namespace

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, std::vector<child_spec> specs) {
  auto& st = self->state;
  st.specs = std::move(specs);
  st.children.resize(st.specs.size());
  for (size_t i = 0; i < st.specs.size(); ++i)
    start_child(self, i);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t i = 0; i < st.children.size(); ++i) {
      auto& c = st.children[i];
      if (!c.handle || c.handle.address() != dm.source)
        continue;
      c.handle = nullptr;
      // Until the restart, lookups find nothing rather than the dead actor,
      // so that those who lost it wait and try again.
      auto& reg = self->system().registry();
      if (caf::actor_cast<caf::actor_addr>(reg.get(st.specs[i].key)) == dm.source)
        reg.erase(st.specs[i].key);
      if (st.shutting_down)
        return;
      if (std::chrono::steady_clock::now() - c.started > std::chrono::seconds(10))
        c.failures = 0;
      auto delay = restart_delay(c.failures++, st.rng);
      spdlog::error("{} stopped ({}); restarting in {} ms", caf::to_string(st.specs[i].key),
                    self->system().render(dm.reason), delay.count());
      self->delayed_send(self, delay, restart_atom::value, static_cast<uint64_t>(i));
      return;
    }
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    auto& st = self->state;
    st.shutting_down = true;
    auto& reg = self->system().registry();
    for (size_t i = 0; i < st.children.size(); ++i) {
      auto& c = st.children[i];
      if (!c.handle)
        continue;
      // The registry's reference would outlive the system's wait for
      // detached actors (which waits until they are destroyed).
      if (caf::actor_cast<caf::actor_addr>(reg.get(st.specs[i].key)) == c.handle.address())
        reg.erase(st.specs[i].key);
      self->send_exit(c.handle, em.reason);
    }
    self->quit(em.reason);
  });
  return {
    [self](restart_atom, uint64_t i) {
      auto& st = self->state;
      if (st.shutting_down || i >= st.children.size() || st.children[i].handle)
        return;
      start_child(self, i);
    },
  };
}

} // namespace parley
