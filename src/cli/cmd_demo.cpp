// perpo demo [--out DIR] [--quick] [--seed S] [--set key=value ...]: the whole chain on the
// built-in synthetic tasks. The work is perpo::run_demo (demo/pipeline.h).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "perpo/core/log.h"
#include "perpo/core/signals.h"
#include "perpo/demo/pipeline.h"

namespace perpo::cli {

void register_demo(CLI::App& app, CommandRegistry& registry) {
  auto* demo = app.add_subcommand(
      "demo", "The whole chain on synthetic grounding and OCR with tiny models, on CPU");
  demo->footer(
      "Stages (each reused when run again on the same folder): data (synthetic splits + tiny\n"
      "tokenizer) -> sft (stage 1, from scratch) -> sample (N answers per fresh prompt, scored)\n"
      "-> arms sft / dpo / perpo (same start, prompts and steps) -> eval (held-out split) ->\n"
      "summary.json, report.md, plots/. One model per task (a chain each, in <out>/<task>/):\n"
      "grounding, one shape per image, and OCR in the reduced regime that the tiny model learns\n"
      "in minutes (one word of a 16-word lexicon in a large font; docs/demo-study.md).\n"
      "--quick: a small run for CI (minutes).\n"
      "Settings (--set key=value for every chain, --set ocr.key=value or grounding.key=value for\n"
      "one; tasks=grounding,ocr chooses the chains): sft_steps, sft_batch, sft_lr, pref_steps,\n"
      "lists_per_step, answers, ground_truth_in_list, resample_every (0 = offline lists),\n"
      "temperature, beta, gamma, warmup_share, arm_lr.<arm>, arms, eval_split (val to tune),\n"
      "reference (start = the frozen stage-1 model, sampler = the policy that re-sampled),\n"
      "sft_records, pref_records, val_records, test_records, max_shapes (grounding),\n"
      "ocr_max_words, ocr_lexicon, ocr_min_text_height, ocr_max_text_height, ocr_inverted\n"
      "(perpo data synth's OCR options), vocab_size (tokenizer pieces), curve_points,\n"
      "curve_records, threads.");
  auto options = std::make_shared<DemoSuiteOptions>();
  auto quick = std::make_shared<bool>(false);
  auto sets = std::make_shared<std::vector<std::string>>();
  demo->add_option("--out,-o", options->out, "output folder")->capture_default_str();
  demo->add_flag("--quick", *quick, "small sizes (CI): a few minutes on 2 cores");
  demo->add_option("--seed,-s", options->seed, "seed of data, model and sampling (>= 0)")
      ->capture_default_str()
      ->check(whole_number_validator());
  demo->add_option("--set", *sets, "demo setting key=value (repeatable)");
  demo->add_flag("--force", options->force, "write into a folder perpo did not make");
  registry.add(demo, [options, quick, sets] {
    install_signal_handlers();
    options->suite = *quick ? DemoSuite::quick() : DemoSuite::full();
    for (const auto& assignment : *sets) options->suite.set(assignment);
    run_demo(*options);
    return 0;
  });
}

}  // namespace perpo::cli
