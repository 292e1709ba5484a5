// schema: a payload parsed as Parley parses what comes from outside
// (json::parse, net/json.hpp), validated against every JSON Schema of the
// event catalogue (schema/events.hpp, the schema/*.json embedded at build
// time), and serialised with sio::to_json. An array ["name", payload, ...] is
// also validated as the connection actor validates a client event.
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "fuzz_check.hpp"
#include "net/json.hpp"
#include "net/socketio_packet.hpp"
#include "schema/events.hpp"

using namespace parley;

namespace parley::schema {
// Generated from schema/*.json (cmake/embed_schemas.cmake): file stem → text.
const std::vector<std::pair<std::string_view, std::string_view>>& embedded_schemas();
} // namespace parley::schema

namespace {

// The catalogue's names: file stems, ':' for '.' except the API bodies' "api.".
const std::vector<std::string>& event_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto& [stem, text] : schema::embedded_schemas()) {
      std::string name{stem};
      if (name.rfind("api.", 0) != 0)
        for (auto& c : name)
          if (c == '.')
            c = ':';
      out.push_back(std::move(name));
    }
    return out;
  }();
  return names;
}

void check(const std::string& name, const rapidjson::Value& payload) {
  auto& cat = schema::catalogue::instance();
  auto r = cat.validate(name, payload);
  if (!cat.knows(name)) {
    FUZZ_CHECK(r && *r == "Unknown event " + name);
    return;
  }
  if (r) {
    auto prefix = "Invalid payload for " + name + ": ";
    FUZZ_CHECK(r->size() > prefix.size() && r->compare(0, prefix.size(), prefix) == 0);
  } else {
    FUZZ_CHECK(payload.IsObject());
  }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FUZZ_CHECK(event_names().size() >= 10);
  for (auto& name : event_names())
    FUZZ_CHECK(schema::catalogue::instance().knows(name));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rapidjson::Document doc;
  if (!json::parse(doc, fuzz::as_text(data, size)))
    return 0;
  FUZZ_CHECK(!sio::to_json(doc).empty());
  for (auto& name : event_names())
    check(name, doc);
  if (doc.IsArray() && !doc.Empty() && doc[0].IsString()) {
    static const rapidjson::Value null_value;
    check({doc[0].GetString(), doc[0].GetStringLength()}, doc.Size() > 1 ? doc[1] : null_value);
  }
  return 0;
}
