#include "net/json.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <locale.h>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

namespace parley::json {

namespace {

std::atomic<size_t> limit{default_max_depth};

// Builds the document from the reader's events, converting numbers here:
// RapidJSON 1.1.0's own conversion is not correctly rounded (234e45 became
// 2.3399999999999998e47 once written back), its full-precision mode is wrong
// for a zero with a large exponent (0e232 became 1.9e-34), and it lets 1.8e308
// through as infinity, which its writer then cannot write (`[1.8e308,1]` was
// written back as `[`). Integers keep RapidJSON's types; every other number
// is the nearest double (strtod, C locale), and one past the largest double
// is refused as RapidJSON refuses 1e309.
struct builder {
  rapidjson::Document& doc;
  bool too_big = false;

  bool Null() { return doc.Null(); }
  bool Bool(bool b) { return doc.Bool(b); }
  bool Int(int i) { return doc.Int(i); }
  bool Uint(unsigned u) { return doc.Uint(u); }
  bool Int64(int64_t i) { return doc.Int64(i); }
  bool Uint64(uint64_t u) { return doc.Uint64(u); }
  bool Double(double d) { return doc.Double(d); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc.String(s, n, copy); }
  bool StartObject() { return doc.StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc.Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType n) { return doc.EndObject(n); }
  bool StartArray() { return doc.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return doc.EndArray(n); }

  // `s` is a JSON number, NUL-terminated: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    bool minus = s[0] == '-';
    bool integer = true;
    uint64_t mag = 0;
    for (rapidjson::SizeType i = minus ? 1 : 0; i < n && integer; ++i) {
      auto digit = static_cast<uint64_t>(s[i] - '0');
      if (digit > 9 || mag > (UINT64_MAX - digit) / 10)
        integer = false; // a fraction, an exponent, or past 64 bits: a double
      else
        mag = mag * 10 + digit;
    }
    if (integer && !minus)
      return doc.Uint64(mag);
    if (integer && mag <= uint64_t{1} << 63)
      return doc.Int64(mag == uint64_t{1} << 63 ? INT64_MIN : -static_cast<int64_t>(mag));
    static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", nullptr);
    double d = strtod_l(s, nullptr, c_locale);
    if (std::isinf(d)) {
      too_big = true;
      return false;
    }
    return doc.Double(d);
  }
};

} // namespace

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
  builder b{doc};
  rapidjson::ParseResult result;
  auto read = [&](rapidjson::Document&) {
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
    result = reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(in, b);
    return !result.IsError();
  };
  doc.Populate(read);
  if (!result.IsError())
    return true;
  doc.SetNull();
  if (error) {
    auto code = b.too_big ? rapidjson::kParseErrorNumberTooBig : result.Code();
    *error = std::string{rapidjson::GetParseError_En(code)} + " at offset " + std::to_string(result.Offset());
  }
  return false;
}

} // namespace parley::json
