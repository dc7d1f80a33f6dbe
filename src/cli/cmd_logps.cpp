// perpo logps --config F --input L --output O: reference log-probs for lists made elsewhere.
// The work is perpo::logps_file (generate/logps_file.h).
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "model_command.h"
#include "perpo/core/output_lock.h"
#include "perpo/core/output_paths.h"
#include "perpo/generate/logps_file.h"

namespace perpo::cli {

void register_logps(CLI::App& app, CommandRegistry& registry) {
  auto* logps = app.add_subcommand(
      "logps", "Compute the model's summed log-prob of every answer of every list (ref_logps)");
  logps->footer(
      "Input: preference lists, our JSONL or the authors' JSON (detected by a leading '[' unless\n"
      "--input-format). Output: JSONL, each list as read plus 'ref_logps' (one per answer: the\n"
      "log-prob of the answer's tokens and EOS given the prompt and image, summed), written\n"
      "atomically. The prompt runs once per list and its answers share it; the numbers equal\n"
      "those `perpo sample` writes for the same model and config. Relative image paths are\n"
      "written relative to the output's folder.");
  auto options = std::make_shared<ModelCommandOptions>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("auto");
  add_model_command_options(logps, *options);
  logps->add_option("--input,-i", *input, "lists to score (JSONL or the authors' JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  logps->add_option("--output,-o", *output, "JSONL to write (lists + ref_logps)")->required();
  logps->add_option("--input-format", *format, "auto | perpo | authors")->capture_default_str();

  registry.add(logps, [options, input, output, format] {
    Config config = load_command_config(options->config, options->overrides);
    // torchrun / srun: one rank of a data-parallel job (logps_file shards the lists).
    const ProcessGroup group = join_job(config);
    if (!group.writer()) apply_log_level("warn");
    std::vector<std::filesystem::path> inputs = config_inputs(config, options->config);
    inputs.push_back(*input);
    if (group.writer()) check_output_file(*output, OutputPolicy{inputs, options->force});
    ModelSession session = open_model(config);
    OutputLock lock;
    if (group.writer()) lock = OutputLock::file(*output);  // one perpo writes this file at a time
    group.barrier();  // the ranks write their parts beside the output once it is checked
    LogpsSummary summary = logps_file(*session.loaded.model, *session.prompts, config, *input,
                                      *output, *format, &group);
    if (!group.writer()) return 0;  // rank 0 reports
    std::fputs(summary.to_text().c_str(), stdout);
    std::printf("wrote %s\n", output->c_str());
    return 0;
  });
}

}  // namespace perpo::cli
