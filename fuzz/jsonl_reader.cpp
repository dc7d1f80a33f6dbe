// Fuzz target: the JSONL readers of dataset records and preference lists (data module).
//
// Input: one control byte, then the file's bytes. The control byte picks the reader (dataset
// records or preference lists), skip or error on bad records, and whether rewards / ground truth
// are required. Images are not checked (the fuzzer cannot create them).
//
// Checks: the reader returns or throws an input error; every list it returns is valid (N >= 2,
// finite rewards and ref_logps of length N); the report counts what was returned; what perpo
// writes from the records (to_json, one a line) reads back equal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_files.h"
#include "fuzz_lists.h"
#include "perpo/data/jsonl.h"

namespace {

using namespace perpo;

void fuzz_dataset(const std::filesystem::path& path, const ReadOptions& options) {
  std::vector<DatasetRecord> records;
  ReadReport report;
  if (!fuzz::accepts([&] { records = read_dataset(path, options, &report); })) return;
  PERPO_FUZZ_CHECK(report.records == records.size(), "report.records");
  std::string text;
  for (const DatasetRecord& record : records) text += to_json(record).dump() + "\n";
  ReadOptions strict = options;
  strict.skip_bad_records = false;
  std::vector<DatasetRecord> again;
  PERPO_FUZZ_CHECK(fuzz::accepts([&] {
                     again = read_dataset(fuzz::scratch_file("written.jsonl", text), strict);
                   }),
                   "perpo cannot read the records it wrote:\n" + text);
  PERPO_FUZZ_CHECK(again.size() == records.size(), "record count changed");
  for (std::size_t i = 0; i < records.size(); ++i) fuzz::check_same_record(records[i], again[i]);
}

void fuzz_lists(const std::filesystem::path& path, const ReadOptions& options) {
  std::vector<PreferenceList> lists;
  ReadReport report;
  if (!fuzz::accepts([&] { lists = read_preference_lists(path, options, &report); })) return;
  PERPO_FUZZ_CHECK(report.records == lists.size(), "report.records");
  for (const PreferenceList& list : lists) fuzz::check_list(list, options);
  fuzz::check_lists_round_trip(lists, options);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  fuzz::quiet_logging();
  const std::uint8_t control = data[0];
  const std::string_view content(reinterpret_cast<const char*>(data + 1), size - 1);
  ReadOptions options;
  options.image_check = ImageCheck::kNone;
  options.skip_bad_records = control & 2;
  options.require_rewards = !(control & 4);
  options.require_ground_truth = !(control & 4);
  const std::filesystem::path path = fuzz::scratch_file("input.jsonl", content);
  if (control & 1) {
    fuzz_dataset(path, options);
  } else {
    fuzz_lists(path, options);
  }
  return 0;
}
