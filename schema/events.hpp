// The event catalogue: a JSON Schema (schema/*.json, compiled into the binary)
// for every payload a client or backend sends, and readable error texts when a
// payload does not fit. File stems are event names with ':' spelled '.'
// (conversation.join.json for conversation:join), API bodies as api.<name>.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

namespace parley::schema {

class catalogue {
public:
  static const catalogue& instance();

  bool knows(std::string_view name) const;

  // nullopt when valid, else "Invalid payload for <name>: <detail>"
  // (or "Unknown event <name>"). Thread-safe.
  std::optional<std::string> validate(std::string_view name, const rapidjson::Value& payload) const;

private:
  catalogue();
  struct entry {
    rapidjson::Document doc;
    std::unique_ptr<rapidjson::SchemaDocument> schema;
  };
  std::map<std::string, std::unique_ptr<entry>, std::less<>> entries_;
};

} // namespace parley::schema
