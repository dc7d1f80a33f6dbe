// Robustness rows for `perpo export`: bad checkpoints and output folders the rules refuse. The
// checkpoint is a copy of the tiny fixture at {dir}/models/ckpt.
#include "harness.h"

namespace perpo::robustness {

namespace {

const std::string kExport = "export --checkpoint {dir}/models/ckpt ";

// A row exporting the fixture copy; `more_setup` adds what the row needs.
Case export_case(std::string name, std::string args_after_checkpoint, std::string message,
                 std::function<void(const fs::path&)> more_setup = nullptr) {
  return {std::move(name), kExport + args_after_checkpoint,
          [more_setup](const fs::path& dir) {
            copy_checkpoint(dir / "models" / "ckpt");
            if (more_setup) more_setup(dir);
          },
          2, std::move(message)};
}

// A training checkpoint {dir}/run/step-1 whose config.yaml names the base model {dir}/base and
// the tokenizer {dir}/tok/tokenizer.model (the export's inputs besides the checkpoint).
void write_run_checkpoint_stub(const fs::path& dir) {
  copy_checkpoint(dir / "base");
  write_text(dir / "tok" / "tokenizer.model", "pieces");
  write_text(dir / "run" / "step-1" / "trainer_state.json", "{\"step\": 1}");
  write_text(dir / "run" / "step-1" / "config.yaml",
             "model:\n  path: " + (dir / "base").string() +
                 "\ntokenizer:\n  path: " + (dir / "tok" / "tokenizer.model").string() + "\n");
}

}  // namespace

PERPO_ROBUSTNESS_CASES(export) {
  return {
      {"no_checkpoint_flag", "export --output {dir}/out", nullptr, 2, "--checkpoint"},
      export_case("no_output_flag", "", "--output"),
      {"missing_checkpoint", "export --checkpoint {dir}/none --output {dir}/out", nullptr, 2,
       "none does not exist"},
      {"checkpoint_is_file", "export --checkpoint {dir}/ckpt.bin --output {dir}/out",
       [](const fs::path& dir) { write_text(dir / "ckpt.bin", "weights?"); }, 2, "is not a folder"},
      {"checkpoint_without_config", "export --checkpoint {dir}/empty --output {dir}/out",
       [](const fs::path& dir) { fs::create_directories(dir / "empty"); }, 2, "has no config.json"},
      export_case("output_is_checkpoint", "--output {dir}/models/ckpt", "is the input"),
      export_case("output_is_checkpoint_forced", "--output {dir}/models/ckpt/ --force",
                  "is the input"),
      export_case("output_inside_checkpoint", "--output {dir}/models/ckpt/export",
                  "inside the input folder"),
      export_case("output_parent_of_checkpoint", "--output {dir}/models", "above the input"),
      export_case("output_grandparent_forced", "--output {dir} --force", "above the input"),
      [] {
        Case c = export_case("output_dot_above_checkpoint", "--output .", "above the input");
        c.cwd = ".";
        return c;
      }(),
      export_case("output_dotdot_spelling", "--output {dir}/models/ckpt/../ckpt", "is the input"),
      export_case("output_symlink_to_checkpoint", "--output {dir}/link", "is the input",
                  [](const fs::path& dir) {
                    fs::create_directory_symlink(dir / "models" / "ckpt", dir / "link");
                  }),
      export_case("output_user_folder", "--output {dir}/mine",
                  "already holds files that perpo did not write",
                  [](const fs::path& dir) { write_text(dir / "mine" / "thesis.tex", "work"); }),
      export_case("output_user_folder_hint", "--output {dir}/mine", "--force",
                  [](const fs::path& dir) { write_text(dir / "mine" / ".hidden", "work"); }),
      export_case("output_regular_file", "--output {dir}/notes.txt",
                  "is a regular file, not a folder",
                  [](const fs::path& dir) { write_text(dir / "notes.txt", "mine"); }),
      export_case("output_regular_file_forced", "--output {dir}/notes.txt --force",
                  "is a regular file, not a folder",
                  [](const fs::path& dir) { write_text(dir / "notes.txt", "mine"); }),
      export_case("output_below_a_file", "--output {dir}/notes.txt/out",
                  "is a regular file, not a folder",
                  [](const fs::path& dir) { write_text(dir / "notes.txt", "mine"); }),
      export_case("output_fifo", "--output {dir}/pipe --force", "is a FIFO, not a folder",
                  [](const fs::path& dir) { make_fifo(dir / "pipe"); }),
      {"run_checkpoint_output_onto_base_model",
       "export --checkpoint {dir}/run/step-1 --output {dir}/base --force",
       write_run_checkpoint_stub, 2, "is the input"},
      {"run_checkpoint_output_above_tokenizer",
       "export --checkpoint {dir}/run/step-1 --output {dir}/tok --force", write_run_checkpoint_stub,
       2, "above the input"},
      // Issue 21: a perpo folder of another kind was replaced without --force.
      export_case("output_is_a_training_run", "--output {dir}/runs/x",
                  "holds a run folder (perpo sample, train or eval), not an export",
                  [](const fs::path& dir) {
                    write_text(dir / "runs" / "x" / ".perpo-output", "perpo\nkind: run\n");
                    write_text(dir / "runs" / "x" / "metrics.jsonl", "{\"step\": 1}\n");
                  }),
      export_case("output_is_a_dataset", "--output {dir}/data",
                  "holds a dataset (perpo data synth), not an export",
                  [](const fs::path& dir) {
                    write_text(dir / "data" / ".perpo-output", "perpo\nkind: dataset\n");
                    write_text(dir / "data" / "records.jsonl", "{}\n");
                  }),
      export_case("bad_layout", "--output {dir}/out --layout newest", "'newest'"),
      export_case("bad_dtype", "--output {dir}/out --dtype fp8", "unknown export dtype 'fp8'"),
  };
}

}  // namespace perpo::robustness
