// What every backend refuses in a commit, in the same words: the SQLite and
// the memory backend must answer a bad batch identically.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "store/record.hpp"

namespace parley::store {

// Offsets are kept as SQLite's signed 64-bit integers: anything above this
// would sort below offset 1.
constexpr uint64_t max_offset = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// "" when the records[index] may follow offset `above` in the log, else why
// not. Offsets must be strictly increasing and above the last committed one:
// an offset used before (perhaps by a record retention removed since) would
// reorder or overwrite history that readers have already seen.
inline std::string check_record(const record* r, size_t index, uint64_t above) {
  auto which = "record " + std::to_string(index);
  if (!r)
    return which + " is missing (null pointer)";
  if (r->offset <= above)
    return which + " has offset " + std::to_string(r->offset) + ", not above " + std::to_string(above);
  if (r->offset > max_offset)
    return which + " has offset " + std::to_string(r->offset) + ", above the highest storable "
           + std::to_string(max_offset);
  return {};
}

} // namespace parley::store
