// Robustness rows for `perpo demo`: its output folder follows the output rules.
#include "harness.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(demo) {
  return {
      {"out_is_user_folder", "demo --quick --out {dir}/mine",
       [](const fs::path& dir) { write_text(dir / "mine" / "notes.txt", "mine"); }, 2, "--force"},
      {"out_is_a_file", "demo --quick --out {dir}/notes.txt",
       [](const fs::path& dir) { write_text(dir / "notes.txt", "mine"); }, 2, "not a folder"},
  };
}

}  // namespace perpo::robustness
