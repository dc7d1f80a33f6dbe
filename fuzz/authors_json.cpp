// Fuzz target: the importer of the authors' JSON list format (data module), and the format
// detection that routes a list file to it.
//
// Input: one control byte, then the file's bytes. The control byte picks skip or error on bad
// items and whether rewards (iou_scores) are required. Images are not checked.
//
// Checks: the importer returns or throws an input error; every list it returns is valid; the
// report counts what was returned; the lists, written as perpo JSONL (to_json, one a line), read
// back equal with the perpo reader; read_lists with format "auto" routes a file that starts with
// '[' to this importer (same result).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_files.h"
#include "fuzz_lists.h"
#include "perpo/data/jsonl.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace perpo;
  if (size == 0) return 0;
  fuzz::quiet_logging();
  const std::uint8_t control = data[0];
  const std::string_view content(reinterpret_cast<const char*>(data + 1), size - 1);
  ReadOptions options;
  options.image_check = ImageCheck::kNone;
  options.skip_bad_records = control & 1;
  options.require_rewards = !(control & 2);
  const std::filesystem::path path = fuzz::scratch_file("authors.json", content);

  std::vector<PreferenceList> lists;
  ReadReport report;
  if (!fuzz::accepts([&] { lists = read_authors_lists(path, options, &report); })) return 0;
  PERPO_FUZZ_CHECK(report.records == lists.size(), "report.records");
  for (const PreferenceList& list : lists) fuzz::check_list(list, options);
  fuzz::check_lists_round_trip(lists, options);

  // A file the importer accepts is a JSON list, so auto-detection must send it here.
  std::vector<PreferenceList> detected;
  PERPO_FUZZ_CHECK(fuzz::accepts([&] { detected = read_lists(path, "auto", options); }),
                   "read_lists(auto) rejects what read_authors_lists accepts");
  PERPO_FUZZ_CHECK(detected.size() == lists.size(), "read_lists(auto) read another format");
  return 0;
}
