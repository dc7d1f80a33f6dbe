// perpo export --checkpoint C --output DIR: writes a checkpoint as a Hugging Face LLaVA folder.
// The work is perpo::export_hf_checkpoint (model/convert.h); this file only maps flags onto it.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "perpo/core/output_lock.h"
#include "perpo/core/output_paths.h"
#include "perpo/model/convert.h"
#include "perpo/model/run_checkpoint.h"

namespace perpo::cli {

void register_export(CLI::App& app, CommandRegistry& registry) {
  auto* command = app.add_subcommand(
      "export", "Write a checkpoint as a Hugging Face LLaVA folder (weights, config, tokenizer)");
  command->footer(
      "Weights (LoRA merged) as safetensors, config.json, and the tokenizer / processor files "
      "found beside the weights. The checkpoint\n"
      "is loaded strictly first. C: a Hugging Face LLaVA folder (config.json + safetensors), or\n"
      "a perpo training checkpoint run.dir/checkpoints/step-N (its base model + trained weights\n"
      "or adapters, merged; its tokenizer written as tokenizer.model). DIR must be new, empty,\n"
      "or an earlier perpo export (its .perpo-output marker says so); it is then replaced\n"
      "atomically. Any other folder (a training run, a dataset, ...) is refused unless --force\n"
      "(which replaces it, removing what it held). DIR may never be C, inside C or above "
      "C,\nnor (for a training checkpoint) its base model or tokenizer folder, inside or above "
      "them.");
  struct Options {
    std::string checkpoint;
    std::string output;
    ConvertOptions convert;
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  command
      ->add_option("--checkpoint", options->checkpoint,
                   "C: a Hugging Face LLaVA folder, or run.dir/checkpoints/step-N of perpo train")
      ->required();
  command->add_option("--output,-o", options->output, "DIR: the folder to write")->required();
  command
      ->add_option("--layout", options->convert.layout,
                   "HF key layout: new (transformers >= 4.52) | old")
      ->capture_default_str();
  command->add_option("--dtype", options->convert.dtype, "stored weights: fp32 | bf16")
      ->capture_default_str();
  command->add_flag("--force", options->force,
                    "replace DIR even when it holds files perpo did not write");

  registry.add(command, [options] {
    // Checked before the model is loaded; the folder itself is swapped in by the export. A
    // training checkpoint also reads its base model and tokenizer: the output may not touch them.
    const bool run_checkpoint = is_run_checkpoint(options->checkpoint);
    std::vector<std::filesystem::path> inputs = {options->checkpoint};
    if (run_checkpoint) inputs = training_checkpoint_inputs(options->checkpoint);
    OutputPolicy policy{inputs, options->force};
    policy.kind = OutputPolicy::kOutputKindExport;  // an export replaces only an export
    check_output_dir(options->output, policy);
    // One export into DIR at a time (the lock sits beside DIR: DIR itself is swapped).
    OutputLock lock = OutputLock::file(options->output, "export output");
    check_output_dir(options->output, policy);  // again, under the lock
    ConvertSummary summary =
        run_checkpoint
            ? export_training_checkpoint(options->checkpoint, options->output, options->convert)
            : export_hf_checkpoint(options->checkpoint, options->output, options->convert);
    write_output_marker(options->output, OutputPolicy::kOutputKindExport);
    std::fputs(summary.to_text().c_str(), stdout);
    std::printf("wrote %s\n", options->output.c_str());
    return 0;
  });
}

}  // namespace perpo::cli
