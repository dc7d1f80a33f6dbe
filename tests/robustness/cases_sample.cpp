// Robustness rows for `perpo sample`: bad configs, data and model/tokenizer pairs.
#include "cases_model_commands.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(sample) {
  const std::string run = "sample --config {dir}/c.yaml";
  return {
      {"missing_config", "sample --config {dir}/none.yaml", nullptr, 2, "none.yaml"},
      {"unknown_key", run,
       [](const fs::path& dir) { write_tiny_setup(dir, "sampling:\n  num_answerz: 4\n"); }, 2,
       "did you mean 'sampling.num_answers'"},
      {"one_answer", run + " sampling.num_answers=1",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "must be >= 2"},
      {"missing_records", run + " data.train={dir}/none.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none.jsonl"},
      {"tiny_model_without_tokenizer", run + " data.train={dir}/records.jsonl tokenizer.path=",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "needs tokenizer.path"},
      {"model_folder_missing", run + " data.train={dir}/records.jsonl model.path={dir}/nope",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "does not exist"},
      {"tokenizer_does_not_fit_model",
       run + " data.train={dir}/records.jsonl model.path={dir}/ckpt image.size=32",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         copy_checkpoint(dir / "ckpt");
       },
       2, "embeds only 96"},
      {"image_size_does_not_fit_model", run + " data.train={dir}/records.jsonl image.size=32",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "image.size=16"},
      {"missing_image", run + " data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "img.png"},
      {"output_is_a_user_file",
       run + " data.train={dir}/records.jsonl sampling.output={dir}/notes.txt",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "notes.txt", "my notes\nno newline at the end");
       },
       2, "continues only lists it wrote"},
      {"output_holds_other_json",
       run + " data.train={dir}/records.jsonl sampling.output={dir}/mine.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "mine.jsonl", "{\"id\": \"r1\", \"note\": \"mine\"}\n");
       },
       2, "no \"id\" and \"answers\""},
      {"output_is_the_records",
       run + " data.train={dir}/records.jsonl sampling.output={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "records.jsonl"},
  };
}

}  // namespace perpo::robustness
