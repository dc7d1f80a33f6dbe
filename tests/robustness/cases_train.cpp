// Robustness rows for `perpo train`.
#include "cases_model_commands.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(train) {
  const std::string run = "train --config {dir}/c.yaml";
  return {
      {"unknown_loss", run + " loss.name=ppo data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "loss.name"},
      {"missing_lists", run + " data.train={dir}/none.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none.jsonl"},
      {"no_training_data", run, [](const fs::path& dir) { write_tiny_setup(dir); }, 2,
       "data.train"},
      {"negative_lr", run + " optim.lr=-1 data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "optim.lr"},
      {"run_dir_is_user_folder", run + " data.train={dir}/records.jsonl run.dir={dir}/mine",
       [](const fs::path& dir) {
         write_tiny_setup(dir);
         write_text(dir / "mine" / "notes.txt", "mine");
       },
       2, "--force"},
      {"eval_every_not_wired", run + " train.eval_every=5 data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "train.eval_every"},
      {"resume_without_checkpoint", run + " --resume data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "checkpoint"},
  };
}

}  // namespace perpo::robustness
