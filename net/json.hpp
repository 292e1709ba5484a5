// Parsing JSON that came from outside (clients, backends, tokens, the RTM
// upstream): iteratively, so no input can exhaust the stack, and refused when
// nested deeper than a limit, so that what later walks the document
// (serialising, schema validation) stays shallow too.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace parley::json {

constexpr size_t default_max_depth = 64;

// The process-wide limit (parley.limits.max-json-depth), set once at start.
void set_max_depth(size_t depth);
size_t max_depth();

// Whether `text` nests arrays/objects deeper than `limit` (strings, with their
// escapes, are skipped; malformed text is left to the parser).
bool too_deep(std::string_view text, size_t limit);

// Parses `text` into `doc`; on failure returns false and, when `error` is
// given, a text such as "Missing a comma or ']' after an array element at
// offset 12" or "nesting deeper than 64 levels".
bool parse(rapidjson::Document& doc, std::string_view text, std::string* error = nullptr);

} // namespace parley::json
