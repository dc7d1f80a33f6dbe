// perpo eval --config F [--checkpoint C]: greedy answers on data.eval, predictions.jsonl and
// metrics.json. The work is perpo::evaluate (eval/evaluate.h).
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "model_command.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/output_paths.h"
#include "perpo/data/jsonl.h"
#include "perpo/eval/eval_model.h"
#include "perpo/eval/evaluate.h"
#include "perpo/reward/reward_config.h"

namespace perpo::cli {

namespace {
/// The resolved config of an evaluation, beside its predictions (a training run's own
/// config.yaml may share the folder).
constexpr const char* kEvalConfigName = "eval-config.yaml";
}  // namespace

void register_eval(CLI::App& app, CommandRegistry& registry) {
  auto* eval = app.add_subcommand(
      "eval", "Greedy answers on an evaluation set: per-record predictions and metrics");
  eval->footer(
      "Reads the dataset records of data.eval (or --input), decodes greedy answers\n"
      "(eval.max_new_tokens, eval.batch_size records at a time, the first eval.limit if > 0)\n"
      "and writes to run.dir (or --out): predictions.jsonl (id, task, answer, ground_truth,\n"
      "reward, notes), eval-config.yaml (the resolved config) and metrics.json, per task:\n"
      "grounding acc@0.5 (eval.iou_threshold), mean_iou, unparsable; ocr edit_distance, f1,\n"
      "precision, recall, bleu; each with its count. Records whose ground truth the reward\n"
      "cannot use are bad records (refused, or skipped and counted with on_bad_record=skip).\n"
      "The run folder of the evaluated checkpoint may be the output folder. --checkpoint takes a "
      "Hugging Face LLaVA folder or a perpo training checkpoint\n"
      "(runs/x/checkpoints/step-N).");
  auto options = std::make_shared<ModelCommandOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  add_model_command_options(eval, *options);
  eval->add_option("--checkpoint", *checkpoint,
                   "Hugging Face LLaVA folder or perpo training checkpoint (default: model.path)")
      ->check(CLI::ExistingDirectory);
  eval->add_option("--input,-i", *input, "dataset records JSONL (default: data.eval)");
  eval->add_option("--out,-o", *out, "output folder (default: run.dir)");

  registry.add(eval, [options, checkpoint, input, out] {
    Config config = load_command_config(options->config, options->overrides);
    // torchrun / srun: one rank of a data-parallel job (evaluate deals out the batches).
    const ProcessGroup group = join_job(config);
    if (!group.writer()) apply_log_level("warn");
    const std::filesystem::path data = input->empty() ? config.data.eval : *input;
    if (data.empty()) {
      throw input_error("perpo eval needs dataset records")
          .hint("set data.eval in the config or pass --input FILE");
    }
    const std::filesystem::path dir = out->empty() ? config.run.dir : *out;
    ReadReport report;
    std::vector<DatasetRecord> records =
        read_dataset(data, ReadOptions::from(config.data), &report);
    // Inputs: the records, their images, the checkpoint, the config file, model and tokenizer.
    std::vector<std::filesystem::path> inputs = config_inputs(config, options->config);
    inputs.push_back(data);
    if (!checkpoint->empty()) inputs.push_back(*checkpoint);
    add_image_inputs(inputs, records);
    OutputPolicy policy{inputs, options->force};
    // Filled, not replaced: the run folder of the checkpoint being evaluated is a fine place.
    policy.writes = {kEvalConfigName, "predictions.jsonl", "metrics.json"};
    // Nothing is written before the inputs check out; rank 0 alone checks and writes `dir`.
    if (group.writer()) check_output_dir(dir, policy);
    set_threads(config.run.threads);
    LoadedModel loaded = load_eval_model(config, *checkpoint);
    RecordPrompts prompts(*loaded.model, *loaded.tokenizer, config);
    const std::vector<DatasetRecord> evaluated =
        config.eval.limit > 0 && static_cast<std::size_t>(config.eval.limit) < records.size()
            ? std::vector<DatasetRecord>(records.begin(), records.begin() + config.eval.limit)
            : records;
    RecordCheck check;
    check.reward_name = config.reward.name;
    check.reward_options = reward_options_from(config.reward);
    check.max_new_tokens = config.eval.max_new_tokens;
    check.context = static_cast<int>(loaded.model->context_length());
    check.skip_bad = config.data.on_bad_record == "skip";
    check.hint = "lower eval.max_new_tokens, or skip such records with data.on_bad_record=skip";
    check_records(evaluated, prompts, check);  // every record, before anything is written
    OutputLock lock;
    if (group.writer()) lock = prepare_output_dir(dir, policy);
    EvalResult result = evaluate(*loaded.model, prompts, records, config,
                                 /*show_progress=*/group.writer(), &group);
    if (!group.writer()) return 0;  // rank 0 writes and reports
    result.metrics["skipped"] = result.metrics["skipped"].get<std::size_t>() + report.skipped;
    result.metrics["records"] = result.metrics["records"].get<std::size_t>() + report.skipped;
    write_file_atomic(dir / kEvalConfigName, dump_config(config));
    write_eval_outputs(result, dir);
    std::fputs(eval_summary_text(result).c_str(), stdout);
    std::printf("wrote %s and %s\n", (dir / "predictions.jsonl").string().c_str(),
                (dir / "metrics.json").string().c_str());
    return 0;
  });
}

}  // namespace perpo::cli
