// build/parley [--config-file=PATH] [--parley.<group>.<option>=VALUE ...]
// build/parley --check-config FILE
// build/parley --help
//
// Reads config/caf-application.conf of the source tree unless --config-file
// names another; prints "parley listening on http://ADDR:PORT" once it accepts
// connections; stops cleanly on SIGINT/SIGTERM. A bad option exits with 2.
// --check-config reads FILE as the config is read, prints "FILE: ok" and exits
// (0), or names the bad option (2); --help lists Parley's options.
#include <algorithm>
#include <csignal>
#include <stdexcept>

#include <openssl/rand.h>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/directory.hpp"
#include "actors/gateway.hpp"
#include "actors/presence.hpp"
#include "actors/rtm_dedup.hpp"
#include "actors/rtm_supervisor.hpp"
#include "actors/rtm_translator.hpp"
#include "actors/runtime.hpp"
#include "actors/store.hpp"
#include "actors/supervisor.hpp"
#include "config/settings.hpp"
#include "net/api.hpp"
#include "net/console.hpp"
#include "net/engineio_server.hpp"
#include "net/json.hpp"
#include "net/client_bundle.hpp"
#include "net/demo.hpp"
#include "net/listener.hpp"
#include "net/plainws.hpp"
#include "net/rtm_client.hpp"
#include "net/socketio_server.hpp"

using namespace parley;

namespace {

// 32 random hex digits (the development profile's secret and API key).
std::string dev_secret() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (auto b : raw) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

int fail_config(const std::string& msg) {
  std::cerr << "parley: " << msg << "\n";
  return 2;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The few CAF options a user of Parley needs (the rest: --long-help).
struct caf_option_doc {
  const char* arg;
  const char* doc;
};
const caf_option_doc caf_options[] = {
  {"--config-file=<path>", "the config file (default: config/caf-application.conf of the source tree)"},
  {"--scheduler.max-threads=<n>", "CAF worker threads; 0 = one per core (default: 2, set in the config file)"},
  {"--long-help", "also list CAF's own options"},
};

void print_help(std::ostream& out) {
  out << "usage: parley [--config-file=FILE] [--OPTION=VALUE ...]\n"
         "       parley --check-config FILE   read FILE as the config is read, report the first bad option, exit\n"
         "       parley --help, -h            this list\n"
         "\n"
         "Every option below can be set in the config file ([parley.GROUP] NAME=VALUE) or on the\n"
         "command line (--parley.GROUP.NAME=VALUE; a boolean alone means true, or =true / =false).\n";
  auto docs = option_docs();
  std::string group;
  size_t width = 0;
  for (auto& d : docs)
    width = std::max(width, d.key.size() + d.placeholder.size() + 3);
  for (auto& c : caf_options)
    width = std::max(width, std::string{c.arg}.size());
  for (auto& d : docs) {
    auto g = d.key.substr(0, d.key.rfind('.'));
    if (g != group) {
      group = g;
      out << "\n" << group << ":\n";
    }
    auto arg = "--" + d.key + "=" + d.placeholder;
    out << "  " << arg << std::string(width - arg.size() + 2, ' ') << d.doc << " (default: " << d.value
        << ")\n";
  }
  out << "\nCAF:\n";
  for (auto& c : caf_options)
    out << "  " << c.arg << std::string(width - std::string{c.arg}.size() + 2, ' ') << c.doc << "\n";
}

// CAF's name for a type of one of its options, as a sentence would say it.
std::string accepted_form(caf::string_view name) {
  std::string caf_type{name.data(), name.size()};
  if (caf_type.find("int") != std::string::npos || caf_type == "size_t")
    return "a non-negative integer";
  if (caf_type.find("timespan") != std::string::npos)
    return "a duration such as 250ms, 5s or 1min";
  if (caf_type.find("string") != std::string::npos)
    return "a string";
  if (caf_type.find("atom") != std::string::npos)
    return "an atom such as 'sharing'";
  return caf_type;
}

// What the command line asks for, checked: parley.* values converted to their
// types (applied over the config file), the CAF options left for CAF.
struct command_line {
  std::vector<std::string> caf_args;
  std::vector<std::pair<std::string, caf::config_value>> parley;
  std::optional<std::string> check_file;
  bool help = false;
};

std::variant<command_line, std::string> read_command_line(const parley_config& cfg, int argc, char** argv) {
  command_line cl;
  std::vector<std::string> args{argv + 1, argv + argc};
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h" || a == "-?") {
      cl.help = true;
    } else if (a == "--check-config") {
      if (i + 1 == args.size())
        return std::string{"missing file for --check-config: expected parley --check-config FILE"};
      cl.check_file = args[++i];
    } else if (a.rfind("--check-config=", 0) == 0) {
      cl.check_file = a.substr(15);
    } else if (a.rfind("--parley.", 0) == 0) {
      if (auto err = parse_cli_option(cfg.options(), std::string_view{a}.substr(2), cl.parley); !err.empty())
        return err;
    } else if (a.rfind("--", 0) == 0 && a.size() > 2) {
      auto eq = a.find('=');
      auto name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      auto opt = cfg.options().cli_long_name_lookup(name);
      if (opt == nullptr || name == "help")
        return "unknown option --" + name + " (see parley --help)";
      if (opt->is_flag()) {
        if (eq != std::string::npos)
          return "invalid value for --" + name + ": it takes no value (--" + name + ")";
      } else {
        auto form = accepted_form(opt->type_name());
        if (eq == std::string::npos)
          return "missing value for " + name + ": expected --" + name + "=VALUE (" + form + ")";
        if (!opt->parse(a.substr(eq + 1)))
          return "invalid value for " + name + ": expected " + form + ", got \"" + a.substr(eq + 1) + "\"";
      }
      cl.caf_args.push_back(a);
    } else if (!a.empty() && a[0] == '-') {
      return "unknown option " + a + " (see parley --help)";
    } else {
      return "unexpected argument \"" + a + "\" (see parley --help)";
    }
  }
  if (cl.check_file) {
    // FILE is the config file, whatever else the command line says.
    cl.caf_args.erase(std::remove_if(cl.caf_args.begin(), cl.caf_args.end(),
                                     [](const std::string& a) { return a.rfind("--config-file", 0) == 0; }),
                      cl.caf_args.end());
    cl.caf_args.push_back("--config-file=" + *cl.check_file);
  }
  return cl;
}

// CAF's errors from reading the config file, as sentences.
std::string describe(const parley_config& cfg, const caf::error& err) {
  if (err.category() == caf::atom("system") && err.code() == static_cast<uint8_t>(caf::sec::cannot_open_file))
    return "cannot open the config file " + cfg.config_file_path;
  if (err.category() == caf::atom("parser")) {
    auto what = caf::to_string(static_cast<caf::pec>(err.code()));
    std::replace(what.begin(), what.end(), '_', ' ');
    auto& ctx = err.context();
    if (ctx.match_elements<int32_t, int32_t>())
      return cfg.config_file_path + ": " + what + " at line " + std::to_string(ctx.get_as<int32_t>(0))
             + ", column " + std::to_string(ctx.get_as<int32_t>(1));
    return cfg.config_file_path + ": " + what;
  }
  return caf::actor_system_config::render(err);
}

} // namespace

int main(int argc, char** argv) {
  parley_config cfg;
  cfg.load<caf::io::middleman>();
  auto cli = read_command_line(cfg, argc, argv);
  if (auto err = std::get_if<std::string>(&cli))
    return fail_config(*err);
  auto& cl = std::get<command_line>(cli);
  if (cl.help) {
    print_help(std::cout);
    return 0;
  }
  if (cl.check_file && !std::ifstream{*cl.check_file})
    return fail_config("cannot open the config file " + *cl.check_file);
  std::string default_file = default_config_file();
  if (auto err = cfg.parse(cl.caf_args, default_file.c_str()))
    return fail_config(describe(cfg, err));
  if (cfg.cli_helptext_printed)
    return 0;
  // The command line wins over the file.
  for (auto& [key, value] : cl.parley)
    caf::put(cfg.content, key, std::move(value));
  auto read = read_settings(cfg);
  if (auto err = std::get_if<std::string>(&read))
    return fail_config(*err);
  auto s = std::get<settings>(std::move(read));
  if (s.dev) {
    // The development profile: reachable from this machine only, usable at
    // once (a secret and an API key for this run, printed below), and open
    // to pages served from localhost on any port.
    auto a = s.http.address;
    if (a != "127.0.0.1" && a != "::1" && a != "localhost")
      return fail_config("parley.dev serves this machine only: parley.http.address must be 127.0.0.1, ::1 or "
                         "localhost, not " + a);
    if (s.auth.jwt_secret.empty() && s.auth.jwt_public_key_file.empty())
      s.auth.jwt_secret = dev_secret();
    if (s.api.key.empty())
      s.api.key = dev_secret();
    for (const char* o : {"http://localhost:*", "http://127.0.0.1:*"})
      if (std::find(s.cors.origins.begin(), s.cors.origins.end(), o) == s.cors.origins.end())
        s.cors.origins.emplace_back(o);
  }

  spdlog::set_level(spdlog::level::from_str(s.log.level));
  json::set_max_depth(s.limits.max_json_depth);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  std::optional<jwt::verifier> verifier;
  if (!s.auth.jwt_secret.empty() || !s.auth.jwt_public_key_file.empty()) {
    jwt::key_config kc;
    kc.hs256_secret = s.auth.jwt_secret;
    kc.issuer = s.auth.issuer;
    kc.audience = s.auth.audience;
    if (!s.auth.jwt_public_key_file.empty()) {
      auto pem = read_file(s.auth.jwt_public_key_file);
      if (!pem)
        return fail_config("invalid value for parley.auth.jwt-public-key-file: cannot read "
                           + s.auth.jwt_public_key_file);
      kc.public_key_pem = *pem;
    }
    auto v = jwt::verifier::make(std::move(kc));
    if (auto err = std::get_if<std::string>(&v))
      return fail_config("invalid value for parley.auth: " + *err);
    verifier.emplace(std::get<jwt::verifier>(std::move(v)));
  } else if (!s.auth.allow_anonymous_dev && !cl.check_file) {
    spdlog::warn("no parley.auth.jwt-secret or jwt-public-key-file: every connection will be refused");
  }
  if (cl.check_file) {
    std::cout << *cl.check_file << ": ok\n";
    return 0;
  }

  int exit_code = 0;
  {
    caf::actor_system sys{cfg};
    auto rt = std::make_shared<const runtime>(sys, s, std::move(verifier));

    boost::asio::io_context ioc{1};

    // What a shard and presence hold outlives their restarts (held here).
    std::vector<child_spec> children;
    // The message log, on a thread of its own (detached); its backend stays
    // open across restarts of the actor.
    auto log = std::make_shared<store_memory>();
    if (s.store.backend == "memory") {
      log->db = store::make_memory_backend();
      log->where = "memory";
    } else {
      log->db = store::make_sqlite_backend(
        s.store.path, s.store.sync == "normal" ? store::sync_mode::normal : store::sync_mode::full);
      log->where = s.store.path;
    }
    children.push_back({store_key(), [rt, log](caf::actor_system& sys) {
                          return sys.spawn<caf::detached>(store_actor, rt, log);
                        }});
    for (size_t i = 0; i < s.rooms.directory_shards; ++i) {
      auto memory = std::make_shared<directory_memory>();
      children.push_back({directory_key(i), [memory](caf::actor_system& sys) { return sys.spawn(directory, memory); }});
    }
    auto counted = std::make_shared<presence_memory>();
    children.push_back({presence_key(), [rt, counted](caf::actor_system& sys) {
                          return sys.spawn(presence, rt, counted);
                        }});
    if (!s.rtm.url.empty()) {
      // RTM: upstreams ──▶ dedup ──▶ translator ──▶ rooms; each found through the registry.
      net::rtm_endpoints ep;
      ep.upstream = std::get<net::endpoint_url>(net::parse_endpoint_url(s.rtm.url));
      ep.api_url = s.rtm.api_url;
      ep.login_url = s.rtm.login_url;
      ep.origin = s.rtm.origin;
      ep.timeout = s.rtm.connect_timeout;
      auto client = net::make_rtm_client(ioc, std::move(ep));
      children.push_back({rtm_translator_key(), [rt, client](caf::actor_system& sys) {
                            return sys.spawn(rtm_translator, rt, client);
                          }});
      // What the dedup and the RTM supervisor hold survives their restarts.
      auto seen = std::make_shared<rtm_dedup_memory>();
      children.push_back({rtm_dedup_key(), [rt, seen](caf::actor_system& sys) {
                            auto next = [&sys] {
                              return caf::actor_cast<caf::actor>(sys.registry().get(rtm_translator_key()));
                            };
                            return sys.spawn(rtm_dedup, rt->cfg.rtm.dedup_ttl, rt->cfg.rtm.dedup_max, next, seen);
                          }});
      auto book = std::make_shared<rtm_profile_book>();
      for (auto& p : s.rtm.profiles)
        book->profiles[p.id] = p;
      children.push_back({rtm_supervisor_key(), [rt, client, book](caf::actor_system& sys) {
                            return sys.spawn(rtm_supervisor, rt, client, book);
                          }});
    }
    std::vector<caf::atom_value> keys;
    for (auto& c : children)
      keys.push_back(c.key);
    auto root = sys.spawn(supervisor, std::move(children));
    // Connections are accepted once every long-lived actor is registered and
    // the store has tried to open its file (else the first publishes would be
    // refused as if rooms were restarting).
    for (int waited = 0; waited < 10000; ++waited) {
      bool ready = log->tried.load(std::memory_order_acquire);
      for (auto k : keys)
        ready = ready && sys.registry().get(k) != nullptr;
      if (ready)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    eio::options eo;
    eo.ping_interval = s.engineio.ping_interval;
    eo.ping_timeout = s.engineio.ping_timeout;
    eo.upgrade_timeout = s.engineio.upgrade_timeout;
    eo.max_payload = s.engineio.max_payload;
    eo.max_write_queue = s.limits.max_write_queue;
    eo.max_connections = s.limits.max_connections;
    eo.max_connections_per_ip = s.limits.max_connections_per_ip;
    eo.max_inbound_packets = static_cast<uint32_t>(s.limits.max_inbound_packets);
    eo.cors_origins = s.cors.origins;
    gateway gw{sys, rt};
    auto connect_timeout = s.socketio.connect_timeout;
    eio::server socketio{ioc, eo, [&gw, connect_timeout](eio::session&) {
                           return std::make_unique<sio::client>(gw, connect_timeout);
                         }};
    net::api backend{ioc, rt};
    auto router = std::make_shared<net::path_router>();
    router->add("/socket.io/", [&](auto& hs, net::request&& req) {
      if (!client_bundle::serve(hs, req))
        socketio.handle(hs, std::move(req));
    });
    router->add("/api/", [&](auto& hs, net::request&& req) { backend.handle(hs, std::move(req)); });
    if (s.dev)
      router->add("/demo", [&](auto& hs, net::request&& req) { demo::handle(*rt, hs, std::move(req)); });
    std::optional<plainws::front> plain;
    if (s.plainws.enabled) {
      plain.emplace(ioc, rt);
      router->add("/ws", [&](auto& hs, net::request&& req) { plain->handle(hs, std::move(req)); });
    }
    net::console console{ioc, rt};
    router->add("/console", [&](auto& hs, net::request&& req) { console.handle(hs, std::move(req)); });
    router->add("/health", [&](auto& hs, net::request&& req) { backend.handle(hs, std::move(req)); });
    router->add("/metrics", [&](auto& hs, net::request&& req) { backend.handle(hs, std::move(req)); });
    auto listener = std::make_shared<net::listener>(ioc, router, s.engineio.max_payload);
    auto bound = listener->start(s.http.address, s.http.port);
    if (auto err = std::get_if<std::string>(&bound)) {
      std::cerr << "parley: " << *err << "\n";
      caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
      return 1;
    }
    auto origin = "http://" + s.http.address + ":" + std::to_string(std::get<uint16_t>(bound));
    std::printf("parley listening on %s\n", origin.c_str());
    if (s.dev) {
      std::printf("dev api key: %s\n", s.api.key.c_str());
      if (!s.auth.jwt_secret.empty())
        std::printf("dev token (user \"dev\", every room): %s\n", demo::token_for("dev", s.auth.jwt_secret).c_str());
      std::printf("demo: %s/demo\n", origin.c_str());
    }
    std::fflush(stdout);

    boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
    boost::asio::steady_timer grace{ioc};
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec)
        return;
      spdlog::info("signal {}: closing connections", sig);
      listener->stop();
      socketio.close_all();
      if (plain)
        plain->close_all();
      console.close_all();
      // Let the close frames go out, then stop.
      grace.expires_after(std::chrono::milliseconds(200));
      grace.async_wait([&](boost::system::error_code) { ioc.stop(); });
    });
    std::signal(SIGPIPE, SIG_IGN);
    // A file that may not grow (RLIMIT_FSIZE) makes the write fail: the store
    // refuses the commit (503 store_unavailable) instead of Parley dying.
    std::signal(SIGXFSZ, SIG_IGN);
    net::run_guarded(ioc);
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }
  spdlog::info("stopped");
  return exit_code;
}
