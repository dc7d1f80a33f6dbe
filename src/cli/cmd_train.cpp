// perpo train --config F [--resume] [k.k=v ...]: SFT / PerPO / DPO / LiPO / ranking training.
// The work is perpo::run_training (train/trainer.h); this file maps flags and signals onto it.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "perpo/config/config_io.h"
#include "perpo/core/log.h"
#include "perpo/core/signals.h"
#include "perpo/eval/train_eval.h"
#include "perpo/train/trainer.h"

namespace perpo::cli {

void register_train(CLI::App& app, CommandRegistry& registry) {
  auto* command =
      app.add_subcommand("train", "Train with SFT / PerPO / DPO / LiPO / GRPO (loss.name)");
  command->footer(
      "Reads data.train (preference lists for perpo | dpo | lipo | ranking | grpo, dataset "
      "records\n"
      "for sft; grpo on offline lists needs their sample_token_logps) and writes run.dir: "
      "config.yaml, log.txt, metrics.jsonl, tensorboard/ "
      "(run.tensorboard),\n"
      "reference_logps.json (when lists lack ref_logps), checkpoints/step-N/. SIGINT/SIGTERM\n"
      "finish the current step, save a checkpoint and exit 0; --resume continues from the newest\n"
      "checkpoint exactly. train.eval_every=K evaluates data.eval every K steps (greedy, the\n"
      "first eval.limit records if > 0) into metrics.jsonl as eval/<task>/<metric>. Export a\n"
      "checkpoint with `perpo export --checkpoint DIR/checkpoints/step-N`.");
  struct Options {
    std::string config;
    bool resume = false;
    bool force = false;
    std::vector<std::string> overrides;
  };
  auto options = std::make_shared<Options>();
  command->add_option("--config,-c", options->config, "YAML config")->check(CLI::ExistingFile);
  command->add_flag("--resume", options->resume,
                    "continue from the newest checkpoint in run.dir/checkpoints");
  command->add_flag("--force", options->force,
                    "write into run.dir even if it holds files perpo did not write");
  command->add_option("overrides", options->overrides,
                      "key=value config overrides, e.g. optim.lr=1e-5 train.max_steps=100");

  registry.add(command, [options] {
    Config config = load_command_config(options->config, options->overrides);
    // torchrun / srun: this process is one rank of a data-parallel job (dist/process_group.h).
    const ProcessGroup group = join_job(config);
    if (!group.writer()) apply_log_level("warn");  // rank 0 reports; the others warn and fail
    // First SIGINT/SIGTERM: finish the step, save, exit 0; a second one ends perpo at once (the
    // checkpoint being written is a registered temporary folder and is removed).
    install_signal_handlers(StopMode::kFlag);
    TrainerHooks hooks;
    hooks.stop_requested = [] { return stop_requested(); };
    if (config.train.eval_every > 0) hooks.evaluate = training_evaluator(config);  // data.eval
    TrainSummary summary = run_training(config,
                                        {.resume = options->resume,
                                         .force = options->force,
                                         .config_file = options->config,
                                         .group = &group},
                                        hooks);
    if (!group.writer()) return 0;  // rank 0 prints the summary
    std::printf("steps: %lld of %lld%s\n", static_cast<long long>(summary.steps),
                static_cast<long long>(summary.total_steps),
                summary.stopped ? " (stopped by signal; continue with --resume)" : "");
    std::printf("last loss: %.6f\n", summary.last_loss);
    std::printf("reference log-probs: %s\n", summary.reference_source.c_str());
    if (summary.skipped_steps > 0) {
      std::printf("skipped steps (non-finite): %lld\n",
                  static_cast<long long>(summary.skipped_steps));
    }
    if (summary.truncated_answers > 0) {
      std::printf("answers truncated: %zu\n", summary.truncated_answers);
    }
    std::printf("checkpoint: %s\n", summary.last_checkpoint.string().c_str());
    return 0;
  });
}

}  // namespace perpo::cli
