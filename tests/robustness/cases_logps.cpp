// Robustness rows for `perpo logps`: missing or unusable inputs and outputs that would destroy
// them.
#include "cases_model_commands.h"

namespace perpo::robustness {

namespace {
const char* kList =
    R"({"id": "l1", "task": "grounding", "image": "img.png", "prompt": "p", )"
    R"("ground_truth": "[0.1, 0.2, 0.3, 0.4]", "answers": ["[0.1, 0.2, 0.3, 0.4]", "x"], )"
    R"("rewards": [1.0, 0.0]})"
    "\n";
void list_setup(const fs::path& dir) {
  write_tiny_setup(dir);
  write_text(dir / "lists.jsonl", kList);
}
}  // namespace

PERPO_ROBUSTNESS_CASES(logps) {
  const std::string run = "logps --config {dir}/c.yaml";
  // Data parallel: torchrun's variables, a bad set refused before anything is read or written.
  Case port_missing{"dist_port_missing",
                    run + " --input {dir}/lists.jsonl --output {dir}/out.jsonl", list_setup, 2,
                    "MASTER_PORT is not set"};
  port_missing.env = "WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1";
  Case no_rendezvous{
      "dist_no_rendezvous",
      run + " --input {dir}/lists.jsonl --output {dir}/out.jsonl" + " distributed.timeout_s=2",
      list_setup, 1, "no rendezvous with rank 0 at 127.0.0.1:1 within 2 s"};
  no_rendezvous.env = "WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=1";
  CaseList rows = {
      {"missing_input", run + " --input {dir}/none.jsonl --output {dir}/out.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none.jsonl"},
      {"no_output_flag", run + " --input {dir}/lists.jsonl", list_setup, 2, "--output"},
      {"output_is_an_existing_file", run + " --input {dir}/lists.jsonl --output {dir}/mine.jsonl",
       [](const fs::path& dir) {
         list_setup(dir);
         write_text(dir / "mine.jsonl", "my notes\n");
       },
       2, "only with --force"},
      {"output_is_input", run + " --input {dir}/lists.jsonl --output {dir}/lists.jsonl", list_setup,
       2, "is the input"},
      {"output_is_folder", run + " --input {dir}/lists.jsonl --output {dir}", list_setup, 2,
       "folder"},
      {"list_with_one_answer", run + " --input {dir}/one.jsonl --output {dir}/out.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup(dir);
         write_text(dir / "one.jsonl",
                    R"({"id": "l1", "task": "grounding", "image": "img.png", "prompt": "p", )"
                    R"("ground_truth": "g", "answers": ["a"], "rewards": [1.0]})"
                    "\n");
       },
       2, "one.jsonl:1"},
      // Issue 21: --force reached the --config file.
      {"output_is_the_config_forced",
       run + " --input {dir}/lists.jsonl --output {dir}/c.yaml --force", list_setup, 2,
       "is the input {dir}/c.yaml"},
      {"bad_input_format",
       run + " --input {dir}/lists.jsonl --output {dir}/o.jsonl "
             "--input-format csv",
       list_setup, 2, "csv"},
  };
  rows.push_back(port_missing);
  rows.push_back(no_rendezvous);
  return rows;
}

}  // namespace perpo::robustness
