#define CAF_SUITE config
#include <caf/test/unit_test.hpp>

#include <fstream>

#include "config/settings.hpp"

using namespace parley;

namespace {

using overrides = std::vector<std::pair<std::string, caf::config_value>>;

// Parses one command-line argument; "" or the error sentence.
std::string cli(const std::string& arg, overrides& out) {
  parley_config cfg;
  return parse_cli_option(cfg.options(), arg, out);
}

} // namespace

CAF_TEST(the documented config file declares every option with its default) {
  parley_config cfg;
  std::ifstream file{default_config_file()};
  CAF_REQUIRE(file.good());
  CAF_REQUIRE(!cfg.parse(caf::actor_system_config::string_list{}, file));
  auto read = read_settings(cfg);
  CAF_REQUIRE(std::holds_alternative<settings>(read));
  auto defaults = option_docs();
  auto in_file = option_docs(std::get<settings>(read));
  CAF_REQUIRE_EQUAL(defaults.size(), in_file.size());
  for (size_t i = 0; i < defaults.size(); ++i) {
    CAF_MESSAGE(defaults[i].key << " = " << defaults[i].value);
    CAF_CHECK(caf::get_if(&cfg.content, defaults[i].key) != nullptr);
    CAF_CHECK_EQUAL(defaults[i].value, in_file[i].value);
    CAF_CHECK(!defaults[i].doc.empty());
  }
}

CAF_TEST(booleans take true and false on the command line) {
  overrides out;
  CAF_CHECK_EQUAL(cli("parley.presence.broadcast=false", out), "");
  CAF_CHECK_EQUAL(cli("parley.presence.broadcast=true", out), "");
  CAF_CHECK_EQUAL(cli("parley.presence.broadcast", out), "");
  CAF_CHECK_EQUAL(cli("parley.presence.broadcast=0", out), "");
  CAF_CHECK_EQUAL(cli("parley.presence.broadcast=Yes", out), "");
  CAF_REQUIRE_EQUAL(out.size(), 5u);
  CAF_CHECK_EQUAL(out[0].first, "parley.presence.broadcast");
  CAF_CHECK_EQUAL(caf::get<bool>(out[0].second), false);
  CAF_CHECK_EQUAL(caf::get<bool>(out[1].second), true);
  CAF_CHECK_EQUAL(caf::get<bool>(out[2].second), true);
  CAF_CHECK_EQUAL(caf::get<bool>(out[3].second), false);
  CAF_CHECK_EQUAL(caf::get<bool>(out[4].second), true);
  CAF_CHECK_EQUAL(cli("parley.presence.broadcast=maybe", out),
                  "invalid value for parley.presence.broadcast: expected true or false, got \"maybe\"");
}

CAF_TEST(other types are parsed as CAF parses them) {
  overrides out;
  CAF_CHECK_EQUAL(cli("parley.http.port=8080", out), "");
  CAF_CHECK_EQUAL(cli("parley.engineio.ping-interval=250ms", out), "");
  CAF_CHECK_EQUAL(cli("parley.plainws.site-tokens=[\"s1\",\"s2\"]", out), "");
  CAF_CHECK_EQUAL(cli("parley.store.rooms=[]", out), "");
  CAF_CHECK_EQUAL(cli("parley.api.key=\"\"", out), "");
  CAF_CHECK_EQUAL(cli("parley.log.level=warn", out), "");
  CAF_REQUIRE_EQUAL(out.size(), 6u);
  CAF_CHECK_EQUAL(caf::get<uint16_t>(out[0].second), 8080u);
  CAF_CHECK_EQUAL(caf::get<caf::timespan>(out[1].second), std::chrono::milliseconds(250));
  CAF_CHECK_EQUAL(caf::get<std::vector<std::string>>(out[2].second), (std::vector<std::string>{"s1", "s2"}));
  CAF_CHECK(caf::get<std::vector<std::string>>(out[3].second).empty());
  CAF_CHECK_EQUAL(caf::get<std::string>(out[4].second), "");
  CAF_CHECK_EQUAL(caf::get<std::string>(out[5].second), "warn");
  CAF_CHECK_EQUAL(cli("parley.http.port=x", out),
                  "invalid value for parley.http.port: expected a port number (0..65535), got \"x\"");
  CAF_CHECK_EQUAL(cli("parley.http.prot=1", out), "unknown option --parley.http.prot (see parley --help)");
  CAF_CHECK_EQUAL(out.size(), 6u);
}

CAF_TEST(defaults are shown in config-file syntax) {
  std::map<std::string, std::string> shown;
  for (auto& d : option_docs())
    shown[d.key] = d.value;
  CAF_CHECK_EQUAL(shown["parley.http.port"], "3000");
  CAF_CHECK_EQUAL(shown["parley.http.address"], "\"127.0.0.1\"");
  CAF_CHECK_EQUAL(shown["parley.presence.broadcast"], "true");
  CAF_CHECK_EQUAL(shown["parley.engineio.ping-interval"], "25s");
  CAF_CHECK_EQUAL(shown["parley.store.max-age"], "168h");
  CAF_CHECK_EQUAL(shown["parley.store.commit-interval"], "2ms");
  CAF_CHECK_EQUAL(shown["parley.socketio.namespaces"], "[\"/\", \"/messages\"]");
  CAF_CHECK_EQUAL(shown["parley.cors.origins"], "[]");
}
