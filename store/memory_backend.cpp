// The memory backend: the SQLite backend's semantics over ordered maps, for
// tests and for nodes that keep nothing across restarts.
#include <algorithm>
#include <exception>
#include <map>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "store/backend.hpp"
#include "store/commit_check.hpp"

namespace parley::store {

namespace {

// Maps keyed by std::string order bytes as unsigned, like SQLite's BINARY
// collation, so room_counts() and load_sessions() list in the same order.
class memory_backend final : public backend {
public:
  std::string open() override {
    return {};
  }

  uint64_t last_offset() const override {
    return last_;
  }

  std::string commit(const std::vector<const record*>& records, const std::vector<session_row>& sessions,
                     const std::vector<std::string>& deleted_sessions) override {
    // Everything is checked before anything is written: nothing of a refused
    // commit shows.
    auto last = last_;
    for (size_t i = 0; i < records.size(); ++i) {
      if (auto why = check_record(records[i], i, last); !why.empty())
        return "cannot write memory store: " + why;
      last = records[i]->offset;
    }
    try {
      // As in SQLite: sessions written, then deleted, then records appended.
      for (auto& s : sessions)
        sessions_[s.pid] = s;
      for (auto& pid : deleted_sessions)
        sessions_.erase(pid);
      for (auto* r : records) {
        auto& log = rooms_[r->room];
        log.emplace_hint(log.end(), r->offset, *r);
      }
    } catch (const std::exception& e) {
      // Only allocation can fail here; what was added stays (unlike SQLite),
      // but last_offset() still says the commit did not happen.
      return std::string("cannot write memory store: ") + e.what();
    }
    last_ = last;
    return {};
  }

  std::string read_room(const std::string& room, uint64_t after, uint64_t before, size_t limit, bool newest,
                        std::vector<record>& out) override {
    auto it = rooms_.find(room);
    if (it == rooms_.end() || limit == 0 || after == max_offset)
      return {};
    auto& log = it->second;
    auto first = log.upper_bound(after);
    auto last = before == 0 ? log.end() : log.lower_bound(before);
    if (first == log.end() || (last != log.end() && last->first <= first->first))
      return {};
    auto start = out.size();
    try {
      if (newest) {
        for (auto i = last; i != first && out.size() - start < limit;)
          out.push_back((--i)->second);
        std::reverse(out.begin() + static_cast<ptrdiff_t>(start), out.end());
      } else {
        for (auto i = first; i != last && out.size() - start < limit; ++i)
          out.push_back(i->second);
      }
    } catch (const std::exception& e) {
      out.resize(start);
      return std::string("cannot read memory store: ") + e.what();
    }
    return {};
  }

  std::string read_rooms(const std::vector<std::string>& rooms, uint64_t after, size_t limit,
                         std::vector<record>& out) override {
    if (limit == 0 || after == max_offset)
      return {};
    auto start = out.size();
    try {
      // A merge of the rooms' logs from `after` on, smallest offset first.
      using iter = std::map<uint64_t, record>::const_iterator;
      struct cursor {
        iter at, end;
      };
      auto later = [](const cursor& a, const cursor& b) { return a.at->first > b.at->first; };
      std::priority_queue<cursor, std::vector<cursor>, decltype(later)> heads(later);
      std::vector<std::string> wanted(rooms);
      std::sort(wanted.begin(), wanted.end());
      wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
      for (auto& name : wanted)
        if (auto it = rooms_.find(name); it != rooms_.end())
          if (auto at = it->second.upper_bound(after); at != it->second.end())
            heads.push(cursor{at, it->second.end()});
      while (!heads.empty() && out.size() - start < limit) {
        auto c = heads.top();
        heads.pop();
        out.push_back(c.at->second);
        if (++c.at != c.end)
          heads.push(c);
      }
    } catch (const std::exception& e) {
      out.resize(start);
      return std::string("cannot read memory store: ") + e.what();
    }
    return {};
  }

  std::string trim(const std::string& room, uint64_t keep, int64_t older_than_ms,
                   uint64_t& removed) override {
    // Without a room there is no count limit to apply (as in SQLite).
    if (room.empty())
      keep = 0;
    try {
      uint64_t gone = 0;
      auto it = room.empty() ? rooms_.end() : rooms_.find(room);
      if (keep > 0 && it != rooms_.end() && it->second.size() > keep) {
        auto& log = it->second;
        auto n = log.size() - keep;
        auto cut = std::next(log.begin(), static_cast<ptrdiff_t>(n));
        raise_horizon(room, std::prev(cut)->first);
        log.erase(log.begin(), cut);
        gone += n;
      }
      if (older_than_ms != 0 && !room.empty()) {
        if (it != rooms_.end())
          gone += trim_older(it, older_than_ms);
      } else if (older_than_ms != 0) {
        for (auto i = rooms_.begin(); i != rooms_.end();) {
          auto next = std::next(i);
          gone += trim_older(i, older_than_ms);
          i = next;
        }
      }
      removed += gone;
    } catch (const std::exception& e) {
      return std::string("cannot trim memory store: ") + e.what();
    }
    return {};
  }

  uint64_t horizon(const std::string& room) override {
    auto it = horizons_.find(room);
    return it == horizons_.end() ? 0 : it->second;
  }

  std::string room_counts(std::vector<std::pair<std::string, uint64_t>>& out) override {
    auto start = out.size();
    try {
      for (auto& [name, log] : rooms_)
        out.emplace_back(name, log.size());
    } catch (const std::exception& e) {
      out.resize(start);
      return std::string("cannot read memory store: ") + e.what();
    }
    return {};
  }

  std::string load_sessions(std::vector<session_row>& out) override {
    auto start = out.size();
    try {
      for (auto& kvp : sessions_)
        out.push_back(kvp.second);
    } catch (const std::exception& e) {
      out.resize(start);
      return std::string("cannot read memory store: ") + e.what();
    }
    return {};
  }

private:
  using room_iter = std::map<std::string, std::map<uint64_t, record>>::iterator;

  // Removes a room's records older than `older_than_ms`, and the room when
  // none is left (SQLite's GROUP BY lists no empty room); returns how many went.
  uint64_t trim_older(room_iter room, int64_t older_than_ms) {
    // Timestamps need not grow with offsets (a clock stepped back): every
    // record of the room is looked at.
    auto& log = room->second;
    uint64_t upto = 0, gone = 0;
    for (auto i = log.begin(); i != log.end();) {
      if (i->second.ts_ms < older_than_ms) {
        upto = i->first;
        i = log.erase(i);
        ++gone;
      } else {
        ++i;
      }
    }
    if (upto)
      raise_horizon(room->first, upto);
    if (log.empty())
      rooms_.erase(room);
    return gone;
  }

  void raise_horizon(const std::string& room, uint64_t upto) {
    auto& h = horizons_[room];
    h = std::max(h, upto);
  }

  uint64_t last_ = 0;
  std::map<std::string, std::map<uint64_t, record>> rooms_; // each room's log by offset
  std::map<std::string, session_row> sessions_;             // by pid
  std::map<std::string, uint64_t> horizons_;
};

} // namespace

std::unique_ptr<backend> make_memory_backend() {
  return std::make_unique<memory_backend>();
}

} // namespace parley::store
