#include "schema/events.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include <rapidjson/stringbuffer.h>

namespace parley::schema {

const std::vector<std::pair<std::string_view, std::string_view>>& embedded_schemas();

namespace {

std::string path_of(const rapidjson::Pointer& p) {
  rapidjson::StringBuffer sb;
  p.Stringify(sb);
  std::string s = sb.GetString();
  if (!s.empty() && s[0] == '/')
    s.erase(0, 1);
  for (auto& c : s)
    if (c == '/')
      c = '.';
  return s;
}

std::string join_types(const rapidjson::Value& t) {
  if (t.IsString())
    return t.GetString();
  std::string out;
  if (t.IsArray())
    for (auto& x : t.GetArray()) {
      if (!out.empty())
        out += " or ";
      out += x.GetString();
    }
  return out;
}

} // namespace

const catalogue& catalogue::instance() {
  static const catalogue c;
  return c;
}

catalogue::catalogue() {
  for (auto& [stem, text] : embedded_schemas()) {
    auto e = std::make_unique<entry>();
    e->doc.Parse(text.data(), text.size());
    if (e->doc.HasParseError() || !e->doc.IsObject()) {
      std::fprintf(stderr, "schema/%.*s.json is not valid JSON\n", static_cast<int>(stem.size()), stem.data());
      std::abort();
    }
    e->schema = std::make_unique<rapidjson::SchemaDocument>(e->doc);
    std::string name{stem};
    if (name.rfind("api.", 0) != 0)
      for (auto& c : name)
        if (c == '.')
          c = ':';
    entries_.emplace(std::move(name), std::move(e));
  }
}

bool catalogue::knows(std::string_view name) const {
  return entries_.find(name) != entries_.end();
}

std::optional<std::string> catalogue::validate(std::string_view name,
                                               const rapidjson::Value& payload) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    return "Unknown event " + std::string{name};
  auto fail = [&](const std::string& detail) {
    return "Invalid payload for " + std::string{name} + ": " + detail;
  };
  const auto& schema = it->second->doc;
  if (!payload.IsObject())
    return fail("payload must be an object");
  // The top-level structure first, so the texts name the property.
  if (auto req = schema.FindMember("required"); req != schema.MemberEnd())
    for (auto& r : req->value.GetArray())
      if (!payload.HasMember(r.GetString()))
        return fail(std::string{r.GetString()} + " is required");
  auto props = schema.FindMember("properties");
  if (auto ap = schema.FindMember("additionalProperties");
      ap != schema.MemberEnd() && ap->value.IsFalse() && props != schema.MemberEnd())
    for (auto& m : payload.GetObject())
      if (!props->value.HasMember(m.name))
        return fail("unexpected property " + std::string{m.name.GetString()});
  rapidjson::SchemaValidator v{*it->second->schema};
  if (payload.Accept(v))
    return std::nullopt;
  std::string keyword = v.GetInvalidSchemaKeyword();
  auto path = path_of(v.GetInvalidDocumentPointer());
  const rapidjson::Value* at = v.GetInvalidSchemaPointer().Get(schema);
  if (keyword == "anyOf" || keyword == "oneOf") {
    if (auto m = schema.FindMember("errorMessage"); m != schema.MemberEnd())
      return fail(m->value.GetString());
  }
  if (path.empty())
    path = "payload";
  if (keyword == "type" && at && at->HasMember("type"))
    return fail(path + " must be " + join_types((*at)["type"]));
  if (keyword == "minLength")
    return fail(path + " must not be empty");
  if (keyword == "maxLength" || keyword == "maxItems")
    return fail(path + " is too long");
  if (keyword == "minItems")
    return fail(path + " must not be empty");
  auto bound = [&](const char* key) {
    const auto& b = (*at)[key];
    return b.IsInt64() ? std::to_string(b.GetInt64()) : std::to_string(b.GetDouble());
  };
  if (keyword == "minimum" && at && at->HasMember("minimum"))
    return fail(path + " must be at least " + bound("minimum"));
  if (keyword == "maximum" && at && at->HasMember("maximum"))
    return fail(path + " must be at most " + bound("maximum"));
  if (keyword == "required" && at && at->HasMember("required")) {
    const rapidjson::Value* inst = v.GetInvalidDocumentPointer().Get(payload);
    for (auto& r : (*at)["required"].GetArray())
      if (!inst || !inst->IsObject() || !inst->HasMember(r.GetString()))
        return fail((path == "payload" ? std::string{} : path + ".") + r.GetString() + " is required");
  }
  return fail(path + " is invalid");
}

} // namespace parley::schema
