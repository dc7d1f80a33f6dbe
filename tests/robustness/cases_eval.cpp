// Robustness rows for `perpo eval`.
#include "cases_model_commands.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(eval) {
  const std::string run = "eval --config {dir}/c.yaml";
  return {
      {"missing_eval_records", run + " data.eval={dir}/none.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none.jsonl"},
      {"missing_checkpoint", run + " data.eval={dir}/records.jsonl --checkpoint {dir}/none",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none"},
      {"bad_limit", run + " data.eval={dir}/records.jsonl eval.limit=-1",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "eval.limit"},
      {"out_is_user_folder", run + " data.eval={dir}/records.jsonl --out {dir}/mine",
       [](const fs::path& dir) {
         write_tiny_setup(dir);
         write_text(dir / "mine" / "notes.txt", "mine");
       },
       2, "--force"},
      {"out_is_records_folder", run + " data.eval={dir}/records.jsonl --out {dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "records.jsonl"},
  };
}

}  // namespace perpo::robustness
