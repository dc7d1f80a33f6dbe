// Robustness rows for `perpo eval`.
#include "cases_model_commands.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(eval) {
  const std::string run = "eval --config {dir}/c.yaml";
  // Data parallel: torchrun's variables, a bad set refused before anything is read or written.
  Case port_missing{"dist_port_missing", run + " data.eval={dir}/records.jsonl",
                    [](const fs::path& dir) { write_tiny_setup(dir); }, 2,
                    "MASTER_PORT is not set"};
  port_missing.env = "WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1";
  Case no_rendezvous{"dist_no_rendezvous",
                     run + " data.eval={dir}/records.jsonl" + " distributed.timeout_s=2",
                     [](const fs::path& dir) { write_tiny_setup(dir); }, 1,
                     "no rendezvous with rank 0 at 127.0.0.1:1 within 2 s"};
  no_rendezvous.env = "WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=1";
  CaseList rows = {
      {"missing_eval_records", run + " data.eval={dir}/none.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none.jsonl"},
      {"missing_checkpoint", run + " data.eval={dir}/records.jsonl --checkpoint {dir}/none",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none"},
      {"bad_limit", run + " data.eval={dir}/records.jsonl eval.limit=-1",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "eval.limit"},
      {"out_is_user_folder", run + " data.eval={dir}/records.jsonl --out {dir}/mine",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "mine" / "notes.txt", "mine");
       },
       2, "--force"},
      {"out_is_records_folder", run + " data.eval={dir}/records.jsonl --out {dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2,
       "is the input {dir}/records.jsonl"},
      // Issue 21: a truth the reward cannot use was counted as an unparsable answer.
      {"ground_truth_inverted_box", run + " data.eval={dir}/records.jsonl",
       record_setup("grounding", "x", "[0.5, 0.6, 0.1, 0.2]"), 2, "has x1 > x2 or y1 > y2"},
      {"ground_truth_text", run + " data.eval={dir}/records.jsonl",
       record_setup("grounding", "x", "the cat on the left"), 2, "cannot use the ground truth"},
      {"ground_truth_empty", run + " data.eval={dir}/records.jsonl", record_setup("ocr", "x", " "),
       2, "the ground truth is empty"},
      {"duplicate_ids", run + " data.eval={dir}/records.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "records.jsonl", std::string(kOneRecord) + kOneRecord);
       },
       2, "record id 'r1' was already used"},
      {"force_over_the_config_file",
       "eval --config {dir}/run/eval-config.yaml --force "
       "data.eval={dir}/records.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "run" / "eval-config.yaml", "# mine\n" + tiny_model_yaml(dir));
       },
       2, "is the input"},
      {"weights_file_is_a_folder", run + " data.eval={dir}/records.jsonl --checkpoint {dir}/ckpt",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         copy_checkpoint(dir / "ckpt");
         fs::remove(dir / "ckpt" / "model.safetensors");
         fs::create_directories(dir / "ckpt" / "model.safetensors");
       },
       2, "is a folder, not a safetensors file"},
      {"config_json_claims_a_larger_model",
       run + " data.eval={dir}/records.jsonl --checkpoint {dir}/ckpt",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         copy_checkpoint(dir / "ckpt");
         std::string config = read_text(dir / "ckpt" / "config.json");
         const std::string from = "\"intermediate_size\": 64";
         config.replace(config.find(from), from.size(), "\"intermediate_size\": 6400000");
         write_text(dir / "ckpt" / "config.json", config);
       },
       2, "but config.json makes it"},
  };
  rows.push_back(port_missing);
  rows.push_back(no_rendezvous);
  return rows;
}

}  // namespace perpo::robustness
