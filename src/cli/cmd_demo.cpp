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
      "-> arms sft / dpo / perpo / grpo (same start, prompts and steps) -> eval (held-out) ->\n"
      "summary.json, report.md, plots/. One model per task (a chain each, in <out>/<task>/):\n"
      "grounding, one shape per image, and OCR in the reduced regime that the tiny model learns\n"
      "in minutes (one word of a 16-word lexicon in a large font; docs/demo-study.md).\n"
      "--quick: a small run for CI (minutes). --jobs N: N stages at once (the chains' stages\n"
      "after their data, each arm on its own; default: the cores over run.threads, 2 on a\n"
      "2-core machine), each in a perpo process of its own; the results are the same.\n"
      "Each chain's config is configs/demo/base.yaml <- configs/demo/<task>.yaml (<- quick.yaml),\n"
      "compiled in, written to <out>/<task>/chain.yaml; its demo: section is the plan (perpo\n"
      "config show lists every demo.* key). --set key=value sets a config key of every chain\n"
      "(demo.* keys also without 'demo.': pref_steps=200, arm_lr.dpo=3e-5, arms=dpo,perpo),\n"
      "--set ocr.key=value or grounding.key=value one chain's; tasks=grounding,ocr chooses the\n"
      "chains.");
  auto options = std::make_shared<DemoSuiteOptions>();
  auto quick = std::make_shared<bool>(false);
  auto sets = std::make_shared<std::vector<std::string>>();
  demo->add_option("--out,-o", options->out, "output folder")->capture_default_str();
  demo->add_flag("--quick", *quick, "small sizes (CI): a few minutes on 2 cores");
  demo->add_option("--seed,-s", options->seed, "seed of data, model and sampling (>= 0)")
      ->capture_default_str()
      ->check(whole_number_validator());
  demo->add_option("--set", *sets, "chain config key=value (repeatable), e.g. pref_steps=200");
  demo->add_flag("--force", options->force, "write into a folder perpo did not make");
  demo->add_option("--jobs,-j", options->jobs,
                   "stages run at once, each in its own process (0 = the cores / run.threads); "
                   "the results do not depend on it")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  // perpo demo's own: how it starts one stage in a child process (pipeline.h run_demo_stage).
  auto run_stage = std::make_shared<std::string>();
  auto parent_pid = std::make_shared<long>(0);
  demo->add_option("--run-stage", *run_stage)->group("");
  demo->add_option("--parent-pid", *parent_pid)->group("");
  registry.add(demo, [options, quick, sets, run_stage, parent_pid] {
    // The demo prints a line per stage and the progress bars; the stages' info lines go to their
    // runs' log.txt (--log-level info shows them here too).
    apply_log_level("warn");
    install_signal_handlers();
    if (!run_stage->empty()) {
      run_demo_stage(options->out, options->seed, *run_stage, *parent_pid);
      return 0;
    }
    options->suite = *quick ? DemoSuite::quick() : DemoSuite::full();
    for (const auto& assignment : *sets) options->suite.set(assignment);
    run_demo(*options);
    return 0;
  });
}

}  // namespace perpo::cli
