// json: parley::json::parse (net/json.hpp), the iterative, depth-limited
// parser of everything that comes from outside. No input may crash it; a
// document it accepts nests no deeper than the limit and serialises, and
// reading that serialisation back gives the same text (numbers included).
// Within the limit it agrees with RapidJSON's recursive parser on what is JSON.
//
// Input: byte 0 chooses the depth limit; the rest is the text.
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "fuzz_check.hpp"
#include "net/json.hpp"
#include "net/socketio_packet.hpp"

using namespace parley;

namespace {

constexpr size_t limits[4] = {1, 2, 8, json::default_max_depth};

// Arrays and objects nested in v, v itself counted (a scalar is 0), walked
// without recursion.
size_t depth_of(const rapidjson::Value& root) {
  struct item {
    const rapidjson::Value* v;
    size_t depth;
  };
  std::vector<item> todo{{&root, 0}};
  size_t max = 0;
  while (!todo.empty()) {
    auto [v, d] = todo.back();
    todo.pop_back();
    if (v->IsArray()) {
      max = std::max(max, d + 1);
      for (auto& x : v->GetArray())
        todo.push_back({&x, d + 1});
    } else if (v->IsObject()) {
      max = std::max(max, d + 1);
      for (auto& m : v->GetObject())
        todo.push_back({&m.value, d + 1});
    }
  }
  return max;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  size_t limit = limits[data[0] & 3];
  json::set_max_depth(limit);
  auto text = fuzz::as_text(data + 1, size - 1);

  rapidjson::Document doc;
  std::string error;
  bool ok = json::parse(doc, text, &error);
  bool deep = json::too_deep(text, limit);
  if (deep) {
    FUZZ_CHECK(!ok);
    FUZZ_CHECK(error == "nesting deeper than " + std::to_string(limit) + " levels");
    FUZZ_CHECK(doc.IsNull());
  } else {
    // Shallow enough for RapidJSON's recursive parser: it must agree on what is
    // JSON (numbers kept as text there, so that only json::parse converts
    // them), except for numbers past the largest double, which only json::parse refuses.
    rapidjson::Document rec;
    rec.Parse<rapidjson::kParseNumbersAsStringsFlag>(text.data(), text.size());
    if (ok)
      FUZZ_CHECK(!rec.HasParseError());
    else if (!rec.HasParseError())
      FUZZ_CHECK(error.rfind("Number too big to be stored in double.", 0) == 0);
  }
  if (!ok) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(error.empty());
  FUZZ_CHECK(depth_of(doc) <= limit);
  auto out = sio::to_json(doc);
  FUZZ_CHECK(!out.empty());
  rapidjson::Document again;
  FUZZ_CHECK(json::parse(again, out));
  FUZZ_CHECK(sio::to_json(again) == out);
  return 0;
}
