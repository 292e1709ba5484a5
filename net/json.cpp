#include "net/json.hpp"

#include <atomic>

#include <rapidjson/error/en.h>

namespace parley::json {

namespace {
std::atomic<size_t> limit{default_max_depth};
}

void set_max_depth(size_t depth) {
  limit.store(depth, std::memory_order_relaxed);
}

size_t max_depth() {
  return limit.load(std::memory_order_relaxed);
}

bool too_deep(std::string_view text, size_t max) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max)
          return true;
        break;
      case ']':
      case '}':
        if (depth > 0)
          --depth;
        break;
      default: break;
    }
  }
  return false;
}

bool parse(rapidjson::Document& doc, std::string_view text, std::string* error) {
  auto max = max_depth();
  if (too_deep(text, max)) {
    // Leaves the document null, as a failed parse does.
    doc.SetNull();
    if (error)
      *error = "nesting deeper than " + std::to_string(max) + " levels";
    return false;
  }
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (!doc.HasParseError())
    return true;
  if (error)
    *error = std::string{rapidjson::GetParseError_En(doc.GetParseError())} + " at offset "
             + std::to_string(doc.GetErrorOffset());
  return false;
}

} // namespace parley::json
