#include "tools/rtm-sim/scenario.hpp"

#include <fstream>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <spdlog/spdlog.h>

#include "tools/rtm-sim/rtm_service.hpp"

namespace parley::rtmsim {

std::variant<std::vector<scenario_step>, std::string> load_scenario(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return "cannot read scenario file " + path;
  std::vector<scenario_step> steps;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    auto where = [&](const std::string& what) {
      return "scenario " + path + " line " + std::to_string(line) + ": " + what;
    };
    auto first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos || text[first] == '#')
      continue;
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError())
      return where("invalid JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": "
                   + rapidjson::GetParseError_En(doc.GetParseError()));
    if (!doc.IsObject())
      return where("must be a JSON object");
    scenario_step step;
    step.line = line;
    if (auto it = doc.FindMember("delayMs"); it != doc.MemberEnd()) {
      if (!it->value.IsInt64() || it->value.GetInt64() < 0)
        return where("\"delayMs\" must be a whole number of milliseconds, 0 or more");
      step.delay = std::chrono::milliseconds(it->value.GetInt64());
    }
    auto name = doc.FindMember("action");
    if (name == doc.MemberEnd() || !name->value.IsString())
      return where("\"action\" must be the name of a control action");
    step.name = name->value.GetString();
    auto a = parse_action(step.name, doc);
    if (auto err = std::get_if<std::string>(&a))
      return where(*err);
    step.action = std::get<control_action>(std::move(a));
    steps.push_back(std::move(step));
  }
  return steps;
}

scenario_player::scenario_player(boost::asio::io_context& ioc, rtm_service& service,
                                 std::vector<scenario_step> steps)
  : timer_(ioc), service_(service), steps_(std::move(steps)) {
}

void scenario_player::start() {
  if (steps_.empty())
    return;
  spdlog::info("scenario: {} step(s)", steps_.size());
  schedule(0);
}

void scenario_player::stop() {
  timer_.cancel();
}

void scenario_player::schedule(size_t next) {
  if (next == steps_.size()) {
    spdlog::info("scenario: finished");
    return;
  }
  timer_.expires_after(steps_[next].delay);
  timer_.async_wait([this, next](boost::system::error_code ec) {
    if (ec)
      return;
    auto& step = steps_[next];
    auto result = perform(service_, step.action);
    spdlog::info("scenario line {}: {} -> {}", step.line, step.name, result);
    schedule(next + 1);
  });
}

} // namespace parley::rtmsim
