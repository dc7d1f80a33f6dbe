// Checks shared by the data readers' fuzz targets (jsonl_reader.cpp, authors_json.cpp): what a
// reader returns is valid, and what perpo writes from it (to_json, one record a line) reads back
// equal: "whatever one command writes, the others can read".
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_files.h"
#include "perpo/core/log.h"
#include "perpo/data/jsonl.h"
#include "perpo/data/records.h"

namespace perpo::fuzz {

/// Logging off: skipped records would each print a warning.
inline void quiet_logging() {
  static const bool done = [] {
    init_logging("off");
    return true;
  }();
  (void)done;
}

inline void check_numbers(const std::vector<double>& numbers, std::size_t n, bool may_be_empty,
                          const std::string& what) {
  PERPO_FUZZ_CHECK(numbers.size() == n || (may_be_empty && numbers.empty()), what + " count");
  for (double value : numbers) PERPO_FUZZ_CHECK(std::isfinite(value), what + " not finite");
}

inline void check_list(const PreferenceList& list, const ReadOptions& options) {
  PERPO_FUZZ_CHECK(list.size() >= 2, "a list with fewer than 2 answers was returned");
  check_numbers(list.rewards, list.size(), !options.require_rewards, "rewards");
  check_numbers(list.ref_logps, list.size(), true, "ref_logps");
  PERPO_FUZZ_CHECK(list.record.extra.is_object(), "extra is not an object");
}

inline void check_same_record(const DatasetRecord& a, const DatasetRecord& b) {
  PERPO_FUZZ_CHECK(a.id == b.id, a.id + " vs " + b.id);
  PERPO_FUZZ_CHECK(a.task == b.task, "task");
  PERPO_FUZZ_CHECK(a.image == b.image, "image");
  PERPO_FUZZ_CHECK(a.prompt == b.prompt, "prompt");
  PERPO_FUZZ_CHECK(a.ground_truth == b.ground_truth, "ground_truth");
  PERPO_FUZZ_CHECK(a.extra == b.extra, a.extra.dump() + " vs " + b.extra.dump());
}

/// Writes `lists` as perpo JSONL and reads them back with `options` (no skipping): the same lists.
inline void check_lists_round_trip(const std::vector<PreferenceList>& lists, ReadOptions options) {
  std::string text;
  for (const PreferenceList& list : lists) text += to_json(list).dump() + "\n";
  options.skip_bad_records = false;
  std::vector<PreferenceList> again;
  const bool read =
      accepts([&] { again = read_preference_lists(scratch_file("written.jsonl", text), options); });
  PERPO_FUZZ_CHECK(read, "perpo cannot read the lists it wrote:\n" + text);
  PERPO_FUZZ_CHECK(again.size() == lists.size(), "list count changed");
  for (std::size_t i = 0; i < lists.size(); ++i) {
    check_same_record(lists[i].record, again[i].record);
    PERPO_FUZZ_CHECK(lists[i].answers == again[i].answers, "answers");
    PERPO_FUZZ_CHECK(lists[i].rewards == again[i].rewards, "rewards");
    PERPO_FUZZ_CHECK(lists[i].ref_logps == again[i].ref_logps, "ref_logps");
  }
}

}  // namespace perpo::fuzz
