// perpo sample --config F: N answers per dataset record, scored, with reference log-probs, as
// preference lists. The work is perpo::sample_to_file (generate/sample_run.h).
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "model_command.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/output_lock.h"
#include "perpo/core/output_paths.h"
#include "perpo/core/signals.h"
#include "perpo/data/jsonl.h"
#include "perpo/generate/sample_run.h"
#include "perpo/reward/reward_config.h"

namespace perpo::cli {

namespace {
/// The resolved config of a sampling run, beside its lists (train's config.yaml is its own).
constexpr const char* kSampleConfigName = "sample-config.yaml";
}  // namespace

void register_sample(CLI::App& app, CommandRegistry& registry) {
  auto* sample = app.add_subcommand(
      "sample", "Sample N answers per dataset record, score them, add reference log-probs");
  sample->footer(
      "Reads the dataset records of data.train (or --input) and writes preference lists JSONL to\n"
      "sampling.output (default <run.dir>/lists.jsonl): each record plus 'answers' (N sampled by\n"
      "the model: sampling.num_answers, temperature, top_k, top_p, max_new_tokens), 'rewards'\n"
      "and 'reward_notes' (reward.name, or by task: grounding iou, ocr ocr_edit) and 'ref_logps'\n"
      "(summed log-prob of each answer under the sampling model; sampling.reference_logps).\n"
      "sampling.unique_answers drops repeated answers and samples again (at most\n"
      "sampling.max_samples draws); sampling.add_ground_truth adds the truth as an answer.\n"
      "Relative image paths are written relative to the output's folder. With the default\n"
      "output, run.dir also gets sample-config.yaml (the resolved config).\n"
      "Answer n of a record depends only on run.seed, the record id and n, not on the batch.\n"
      "Lists are appended as they are made: a killed or interrupted run, started again with\n"
      "the same command, continues after the last complete list (refused when the sampling\n"
      "settings differ from the run that wrote it). Prints a summary at the end.");
  auto options = std::make_shared<ModelCommandOptions>();
  auto input = std::make_shared<std::string>();
  add_model_command_options(sample, *options);
  sample->add_option("--input,-i", *input, "dataset records JSONL (default: data.train)");

  registry.add(sample, [options, input] {
    Config config = load_command_config(options->config, options->overrides);
    // torchrun / srun: one rank of a data-parallel job (sample_to_file_sharded).
    const ProcessGroup group = join_job(config);
    if (!group.writer()) apply_log_level("warn");
    const std::filesystem::path data = input->empty() ? config.data.train : *input;
    if (data.empty()) {
      throw input_error("perpo sample needs dataset records")
          .hint("set data.train in the config or pass --input FILE");
    }
    ReadReport report;
    std::vector<DatasetRecord> records =
        read_dataset(data, ReadOptions::from(config.data), &report);
    // Inputs: the records, their images, the config file, the model and the tokenizer.
    std::vector<std::filesystem::path> inputs = config_inputs(config, options->config);
    inputs.push_back(data);
    add_image_inputs(inputs, records);
    OutputPolicy policy{inputs, options->force};
    std::filesystem::path output = config.sampling.output;
    const bool in_run_dir = output.empty();
    if (in_run_dir) {
      policy.writes = {kSampleConfigName, "lists.jsonl"};
      // Nothing is written before the inputs check out; rank 0 alone checks and writes run.dir.
      if (group.writer()) check_output_dir(config.run.dir, policy);
      output = std::filesystem::path(config.run.dir) / "lists.jsonl";
    }
    OutputPolicy file_policy = policy;
    file_policy.continue_existing = true;  // resumed if it holds this dataset's lists (below)
    if (group.writer()) check_output_file(output, file_policy);
    check_sample_output(output, records, options->force, sample_stamp(config));  // before the model
    install_signal_handlers(StopMode::kFlag);
    ModelSession session = open_model(config);
    RecordCheck check;
    check.reward_name = config.reward.name;
    check.reward_options = reward_options_from(config.reward);
    check.max_new_tokens = config.sampling.max_new_tokens;
    check.context = static_cast<int>(session.loaded.model->context_length());
    check.skip_bad = config.data.on_bad_record == "skip";
    check.hint = "lower sampling.max_new_tokens, or skip such records with data.on_bad_record=skip";
    check_records(records, *session.prompts, check);  // every record, before anything is written
    OutputLock dir_lock, file_lock;
    if (group.writer()) {
      if (in_run_dir) {
        dir_lock = prepare_output_dir(config.run.dir, policy);  // created, or reused if ours
        write_file_atomic(std::filesystem::path(config.run.dir) / kSampleConfigName,
                          dump_config(config));
      }
      file_lock = OutputLock::file(output);  // one perpo sample per output file
    }
    group.barrier();  // the other ranks write their parts beside the output once it is checked
    ListSampler sampler(*session.loaded.model, *session.prompts, config);
    SampleSummary summary =
        sample_to_file_sharded(sampler, records, output, config.sampling.lists_per_batch,
                               options->force, sample_stamp(config), group);
    if (!group.writer()) return summary.stopped ? 130 : 0;  // rank 0 reports
    summary.skipped += report.skipped;
    for (const std::string& message : report.skip_messages) {
      if (summary.skip_messages.size() < 20) summary.skip_messages.push_back(message);
    }
    std::fputs(summary.to_text().c_str(), stdout);
    std::printf("wrote %s\n", output.string().c_str());
    return summary.stopped ? 130 : 0;
  });
}

}  // namespace perpo::cli
