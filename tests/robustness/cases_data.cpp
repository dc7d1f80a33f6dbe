// Robustness rows for `perpo data synth`.
#include "harness.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(data) {
  return {
      {"unknown_task", "data synth --task vqa --n 2 --out {dir}/out", nullptr, 2, "vqa"},
      {"zero_records", "data synth --task grounding --n 0 --out {dir}/out", nullptr, 2,
       "must be >= 1"},
      {"no_out_flag", "data synth --task grounding --n 2", nullptr, 2, "--out"},
      {"out_is_user_folder", "data synth --task grounding --n 2 --out {dir}/mine",
       [](const fs::path& dir) { write_text(dir / "mine" / "notes.txt", "mine"); }, 2, "--force"},
      {"out_is_a_file", "data synth --task ocr --n 2 --out {dir}/notes.txt",
       [](const fs::path& dir) { write_text(dir / "notes.txt", "mine"); }, 2, "not a folder"},
      {"missing_font", "data synth --task ocr --n 2 --out {dir}/out --font {dir}/none.ttf", nullptr,
       2, "none.ttf"},
      {"max_shapes_zero", "data synth --task grounding --n 2 --max-shapes 0 --out {dir}/out",
       nullptr, 2, "max_shapes"},
      {"lexicon_of_one", "data synth --task ocr --n 2 --lexicon 1 --out {dir}/out", nullptr, 2,
       "lexicon must be 0 (all words) or in [2, 140]"},
      {"text_heights_crossed",
       "data synth --task ocr --n 2 --min-text-height 0.5 --max-text-height 0.4 --out {dir}/out",
       nullptr, 2, "0.1 <= min <= max <= 0.9"},
      {"inverted_negative", "data synth --task ocr --n 2 --inverted -0.5 --out {dir}/out", nullptr,
       2, "inverted lines must be in [0, 1]"},
      {"max_words_too_many", "data synth --task ocr --n 2 --max-words 9 --out {dir}/out", nullptr,
       2, "max_words"},
      // Issue 21: a dataset perpo wrote earlier (someone's input) was replaced silently.
      {"out_holds_another_dataset", "data synth --task grounding --n 2 --out {dir}/out",
       [](const fs::path& dir) {
         write_text(dir / "out" / ".perpo-output", "perpo\nkind: dataset\n");
         write_text(dir / "out" / "records.jsonl", "{}\n");
         write_text(dir / "out" / "synth.json", "{\"count\": 7}\n");
       },
       2, "holds a dataset written with other options"},
      {"out_is_a_training_run", "data synth --task grounding --n 2 --out {dir}/out",
       [](const fs::path& dir) {
         write_text(dir / "out" / ".perpo-output", "perpo\nkind: run\n");
         write_text(dir / "out" / "metrics.jsonl", "{}\n");
       },
       2, "holds a run folder"},
      // CLI11 reads "-1" into an unsigned seed as 2^64 - 1 (issue 21).
      {"negative_seed", "data synth --task grounding --n 2 --seed -1 --out {dir}/out", nullptr, 2,
       "--seed: must be a whole number >= 0, got '-1'"},
      {"negative_first_index", "data synth --task grounding --n 2 --first-index -5 --out {dir}/out",
       nullptr, 2, "--first-index: must be a whole number >= 0, got '-5'"},
  };
}

}  // namespace perpo::robustness
