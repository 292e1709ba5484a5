// build/loadgen: drives Parley or the benchmark peer over real sockets and
// prints one JSON object of results on stdout (tools/loadgen/README.md).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "tools/loadgen/scenarios.hpp"

using namespace loadgen;

namespace {

const char* usage =
  "usage: loadgen --scenario=fanout|chat|plainfanout|connect|idle|reconnect|presence|publish|replay\n"
  "               --url=http://127.0.0.1:PORT\n"
  "               [--server-pid=PID] [--secret=S] [--path=/socket.io/]\n"
  "  fanout:    --members=1000 [--rate=MSG/S | --inflight=16] [--size=0] [--stuck=0] [--flood=0]\n"
  "  chat:      --rooms=100 --members=10 [--rate=MSG/S | --inflight=16] [--typing]\n"
  "  plainfanout: --api-key=KEY --members=1000 [--rate=MSG/S [--connections=64] | --inflight=16\n"
  "             [--connections=INFLIGHT]] [--size=0] [--stuck=0]\n"
  "             all three: [--warmup=1] [--duration=5] [--concurrency=256]\n"
  "  connect, idle, reconnect: --count=N [--concurrency=256] [--procs=0] [--settle=3]\n"
  "  presence:  --observers=1000 --churners=32 --count=MAX_CYCLES [--duration=5]\n"
  "  publish:   --api-key=KEY [--rooms=1] [--rate=PUB/S [--connections=256] | --inflight=16]\n"
  "             [--warmup=1] [--duration=5] [--no-offsets]\n"
  "  replay:    --api-key=KEY --count=N [--runs=1] [--connections=64]\n"
  "  all:       [--timeout=120] [--sources=50] (source addresses 127.0.0.2 …)\n";

bool take(const std::string& arg, const char* name, std::string& value) {
  auto prefix = std::string{"--"} + name + "=";
  if (arg.rfind(prefix, 0) != 0)
    return false;
  value = arg.substr(prefix.size());
  return true;
}

options parse(int argc, char** argv) {
  options o;
  std::string url;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k], v;
    auto num = [&](const char* n, auto& field) {
      if (!take(a, n, v))
        return false;
      using T = std::decay_t<decltype(field)>;
      if constexpr (std::is_same_v<T, double>)
        field = std::stod(v);
      else
        field = static_cast<T>(std::stoull(v));
      return true;
    };
    if (take(a, "scenario", o.scenario) || take(a, "url", url) || take(a, "secret", o.secret)
        || take(a, "path", o.path) || num("server-pid", o.server_pid) || num("rooms", o.rooms)
        || num("members", o.members) || num("rate", o.rate) || num("inflight", o.inflight)
        || num("size", o.size) || num("stuck", o.stuck) || num("flood", o.flood) || num("warmup", o.warmup)
        || num("duration", o.duration) || num("count", o.count) || num("concurrency", o.concurrency)
        || num("procs", o.procs) || num("settle", o.settle) || num("observers", o.observers)
        || num("churners", o.churners) || num("timeout", o.timeout) || num("sources", o.sources)
        || take(a, "api-key", o.api_key) || num("connections", o.connections) || num("runs", o.runs))
      continue;
    if (a == "--verbose") {
      o.verbose = true;
      continue;
    }
    if (a == "--typing") {
      o.typing = true;
      continue;
    }
    if (a == "--no-offsets") {
      o.no_offsets = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    throw std::invalid_argument("unknown argument " + a);
  }
  // Only loopback: http://127.x.y.z:PORT.
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    throw std::invalid_argument("--url must be http://127.x.y.z:PORT");
  auto hp = url.substr(scheme.size());
  if (auto slash = hp.find('/'); slash != std::string::npos)
    hp.resize(slash);
  auto colon = hp.rfind(':');
  if (colon == std::string::npos)
    throw std::invalid_argument("--url needs a port");
  o.host = hp.substr(0, colon);
  o.port = std::stoi(hp.substr(colon + 1));
  if (o.host == "localhost")
    o.host = "127.0.0.1";
  if (o.host.rfind("127.", 0) != 0)
    throw std::invalid_argument("loadgen only targets 127.0.0.0/8, not " + o.host);
  if (o.sources < 0 || o.sources > 250)
    throw std::invalid_argument("--sources must be 0…250");
  if (o.timeout <= 0 || o.timeout > 3600)
    throw std::invalid_argument("--timeout must be in (0, 3600] seconds");
  bool room_scenario = o.scenario == "fanout" || o.scenario == "chat" || o.scenario == "plainfanout";
  if (o.count > 1'000'000 || o.members > 100'000 || (room_scenario && o.rooms * o.members > 100'000))
    throw std::invalid_argument("counts are bounded: --count ≤ 1000000, connections ≤ 100000");
  return o;
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    auto o = parse(argc, argv);
    std::string out;
    if (o.scenario == "fanout" || o.scenario == "chat" || o.scenario == "plainfanout")
      out = run_rooms(o);
    else if (o.scenario == "connect" || o.scenario == "idle" || o.scenario == "reconnect")
      out = run_hold(o);
    else if (o.scenario == "presence")
      out = run_presence(o);
    else if (o.scenario == "publish")
      out = run_publish(o);
    else if (o.scenario == "replay")
      out = run_replay(o);
    else
      throw std::invalid_argument("unknown --scenario " + o.scenario);
    std::printf("%s\n", out.c_str());
    return out.find("\"error\"") == std::string::npos ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n%s", e.what(), usage);
    return 2;
  }
}
