// Robustness rows for `perpo demo`: its output folder follows the output rules.
#include "harness.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(demo) {
  return {
      {"out_is_user_folder", "demo --quick --out {dir}/mine",
       [](const fs::path& dir) { write_text(dir / "mine" / "notes.txt", "mine"); }, 2, "--force"},
      {"out_is_a_file", "demo --quick --out {dir}/notes.txt",
       [](const fs::path& dir) { write_text(dir / "notes.txt", "mine"); }, 2, "not a folder"},
      {"unknown_setting", "demo --quick --out {dir}/out --set colour=red", nullptr, 2,
       "unknown demo setting 'colour'"},
      {"ocr_max_words_out_of_range", "demo --quick --out {dir}/out --set ocr_max_words=9", nullptr,
       2, "'ocr_max_words' must be in [1, 8]"},
      {"warmup_share_above_one", "demo --quick --out {dir}/out --set warmup_share=1.5", nullptr, 2,
       "'warmup_share' must be in [0, 1]"},
      {"vocab_size_too_small", "demo --quick --out {dir}/out --set vocab_size=10", nullptr, 2,
       "'vocab_size' must be in [64, 32000]"},
  };
}

}  // namespace perpo::robustness
