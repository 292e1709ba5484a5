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

namespace detail {
struct pool_holder {
  explicit pool_holder(size_t chunk) : pool(chunk) {}
  rapidjson::MemoryPoolAllocator<> pool;
};
} // namespace detail

// A document whose values live in chunks of `chunk` bytes (grown as needed)
// instead of RapidJSON's default first chunk of 64 KiB: a small event waiting
// in a mailbox costs a few hundred bytes, not 64 KiB.
class document : private detail::pool_holder, public rapidjson::Document {
public:
  static constexpr size_t default_chunk = 512;
  explicit document(size_t chunk = default_chunk)
    : detail::pool_holder(chunk), rapidjson::Document(&pool) {}
  document(const document&) = delete;
  document& operator=(const document&) = delete;
};

// Parses `text` into `doc`; on failure returns false and, when `error` is
// given, a text such as "Missing a comma or ']' after an array element at
// offset 12" or "nesting deeper than 64 levels".
bool parse(rapidjson::Document& doc, std::string_view text, std::string* error = nullptr);

} // namespace parley::json
