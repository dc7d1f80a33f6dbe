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
       "unknown key 'colour'"},
      {"ocr_max_words_out_of_range", "demo --quick --out {dir}/out --set ocr_max_words=9", nullptr,
       2, "key 'demo.ocr_max_words' must be in [1, 8]"},
      {"warmup_share_above_one", "demo --quick --out {dir}/out --set warmup_share=1.5", nullptr, 2,
       "key 'demo.warmup_share' must be in [0, 1]"},
      {"ocr_lexicon_too_large", "demo --quick --out {dir}/out --set ocr_lexicon=141", nullptr, 2,
       "key 'demo.ocr_lexicon' must be in [0, 140]"},
      {"ocr_lexicon_one_word", "demo --quick --out {dir}/out --set tasks=ocr --set ocr_lexicon=1",
       nullptr, 2, "key 'demo.ocr_lexicon' must be 0 (all words) or at least 2"},
      {"ocr_text_heights_crossed",
       "demo --quick --out {dir}/out --set ocr_min_text_height=0.5 --set ocr_max_text_height=0.4",
       nullptr, 2, "must be at most demo.ocr_max_text_height"},
      {"ocr_inverted_above_one", "demo --quick --out {dir}/out --set ocr_inverted=2", nullptr, 2,
       "key 'demo.ocr_inverted' must be in [0, 1]"},
      // Every chain's settings are checked before the first chain writes anything.
      {"ocr_chain_bad_lexicon", "demo --quick --out {dir}/out --set ocr.ocr_lexicon=1", nullptr, 2,
       "the ocr chain: key 'demo.ocr_lexicon' must be 0 (all words) or at least 2"},
      {"task_named_twice", "demo --quick --out {dir}/out --set tasks=ocr,ocr", nullptr, 2,
       "named twice"},
      {"chain_task_changed", "demo --quick --out {dir}/out --set ocr.tasks=grounding", nullptr, 2,
       "a chain's task is its name"},
      {"vocab_size_too_small", "demo --quick --out {dir}/out --set vocab_size=10", nullptr, 2,
       "key 'demo.vocab_size' must be in [64, 32000]"},
      // Issue 21: each of these was accepted, or refused only after stage 1 had run.
      {"arm_lr_unknown_arm", "demo --quick --out {dir}/out --set arm_lr.ppo=1e-4", nullptr, 2,
       "unknown key 'arm_lr.ppo'"},
      {"one_answer", "demo --quick --out {dir}/out --set answers=1", nullptr, 2,
       "key 'demo.answers' must be in [2, 4096]; got 1"},
      {"negative_temperature", "demo --quick --out {dir}/out --set temperature=-1", nullptr, 2,
       "key 'demo.temperature' must be in [0, 100]; got -1"},
      {"sft_lr_nan", "demo --quick --out {dir}/out --set sft_lr=nan", nullptr, 2,
       "key 'demo.sft_lr' must be in (0, 10]; got nan"},
      {"chain_setting_names_the_chain", "demo --quick --out {dir}/out --set ocr.answers=1", nullptr,
       2, "the ocr chain: key 'demo.answers' must be in [2, 4096]"},
      {"chain_setting_named_as_typed", "demo --quick --out {dir}/out --set ocr.answers=two",
       nullptr, 2, "--set ocr.answers=two: key 'demo.answers' must be an integer"},
      {"arms_unknown", "demo --quick --out {dir}/out --set arms=sft,ppo", nullptr, 2,
       "key 'demo.arms': 'ppo' is not sft or dpo or perpo"},
      {"config_key_out_of_range", "demo --quick --out {dir}/out --set optim.max_grad_norm=-1",
       nullptr, 2, "key 'optim.max_grad_norm' must be in [0, 1000000]"},
      {"negative_seed", "demo --quick --seed -1 --out {dir}/out", nullptr, 2,
       "--seed: must be a whole number >= 0, got '-1'"},
      {"negative_jobs", "demo --quick --jobs -1 --out {dir}/out", nullptr, 2, "--jobs"},
      // The option perpo demo starts its child stages with refuses a process it did not start.
      {"run_stage_without_its_parent",
       "demo --out {dir}/out --run-stage grounding/sft --parent-pid 1", nullptr, 2,
       "is not this process's parent"},
  };
}

}  // namespace perpo::robustness
