// Stage 1 of the demo: the tiny model trained from scratch on the ground truths of the sft split,
// in padded batches (one forward over B whole sequences per step). perpo train's sft mode runs
// each record as its own list (prefix + one answer), which at this model size is bound by
// per-call overhead; a batch of 32 sequences in one forward is several times faster here.
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/progress.h"
#include "perpo/core/signals.h"
#include "perpo/data/collate.h"
#include "perpo/data/examples.h"
#include "perpo/demo/pipeline_stages.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/load.h"
#include "perpo/runtime/runtime.h"
#include "perpo/train/optimizer.h"
#include "perpo/train/schedule.h"

namespace perpo {
namespace fs = std::filesystem;

double run_sft_stage(DemoContext& c) {
  const auto start = std::chrono::steady_clock::now();
  const DemoPlan& plan = c.options.plan;
  const fs::path dir = c.options.out / "sft";
  Config config = c.base;
  config.tokenizer.path = (c.options.out / "data" / "tokenizer.model").string();
  config.data.train = mixed_records(c.options.out, "sft").string();
  config.loss.name = "sft";
  config.train.max_steps = plan.sft_steps;
  config.train.lists_per_step = plan.sft_batch;
  config.optim.lr = plan.sft_lr;
  config.optim.warmup_steps = std::min(100, plan.sft_steps / 10);
  // Stage 1 does not sample: its stamp must not change with the arms' sampling temperature.
  config.sampling.temperature = 1.0;
  StageMark mark(dir, {{"config", dump_config(config)}});
  if (mark.done()) {
    stage_line("sft", "reused " + (dir / "model").string());
    return mark.saved().value("seconds", 0.0);
  }
  fs::create_directories(dir);
  stage_line("sft", "stage 1 from scratch: " + std::to_string(plan.sft_steps) + " steps x " +
                        std::to_string(plan.sft_batch) + " records");
  set_threads(config.run.threads);
  LoadedModel model = load_model(config);  // random init from run.seed
  const auto records = read_records(config.data.train);
  ChatTemplate chat(*model.tokenizer, config.tokenizer);
  ExampleEncoder encoder(chat, config.data, model.config.image_tokens());
  std::vector<SftExample> examples;
  examples.reserve(records.size());
  for (const auto& record : records) examples.push_back(encoder.encode_sft(record));
  const int pad_id = std::max(model.tokenizer->pad_id(), 0);

  AdamW optim(model.model->named_parameters(), config.optim);
  std::mt19937_64 rng(config.run.seed);
  std::vector<std::size_t> order(examples.size());
  std::size_t cursor = order.size();
  std::string metrics;
  double loss_sum = 0;
  int loss_count = 0;
  model.model->train();
  Progress bar(plan.sft_steps, "sft", "steps");
  for (int step = 0; step < plan.sft_steps; ++step) {
    std::vector<SftExample> batch;
    std::vector<PixelValues> pixels;
    for (int i = 0; i < plan.sft_batch; ++i) {
      if (cursor == order.size()) {  // a new epoch: a new permutation
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      const std::size_t index = order[cursor++];
      batch.push_back(examples[index]);
      pixels.push_back(load_pixels(records[index], config.image));
    }
    const SftBatch b = collate_sft(batch, pixels, pad_id);
    const at::Tensor logits =
        model.model->forward(b.input_ids, b.pixel_values, b.attention_mask);  // (B, T, V)
    const auto vocab = logits.size(2);
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        logits.slice(1, 0, -1).reshape({-1, vocab}),  // (B * (T - 1), V)
        b.labels.slice(1, 1).reshape({-1}),           // (B * (T - 1))
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreLabel));
    loss.backward();
    const double grad_norm = clip_grad_norm(optim.params(), config.optim.max_grad_norm);
    optim.set_lr_multiplier(lr_multiplier(step, plan.sft_steps, config.optim));
    optim.step();
    optim.zero_grad();
    loss_sum += loss.item<double>();
    ++loss_count;
    if ((step + 1) % 25 == 0 || step + 1 == plan.sft_steps) {
      metrics += nlohmann::json{{"step", step + 1},
                                {"loss", loss_sum / loss_count},
                                {"grad_norm", grad_norm},
                                {"lr", optim.current_lr()}}
                     .dump() +
                 "\n";
      bar.set_note("loss " + std::to_string(loss_sum / loss_count).substr(0, 6));
      if (!bar.enabled() && (step + 1) % std::max(25, plan.sft_steps / 10 / 25 * 25) == 0) {
        stage_line("sft", "step " + std::to_string(step + 1) + "/" +
                              std::to_string(plan.sft_steps) + ", loss " +
                              std::to_string(loss_sum / loss_count) + ", " +
                              std::to_string(static_cast<int>(seconds_since(start))) + " s");
      }
      loss_sum = 0;
      loss_count = 0;
    }
    bar.advance();
    PERPO_CHECK(!stop_requested(), "stopped by a signal at stage-1 step ", step + 1,
                "; run the demo again to redo stage 1");
  }
  bar.finish();
  write_file_atomic(dir / "metrics.jsonl", metrics);
  model.model->eval();
  ExportOptions export_options;
  export_options.tokenizer_dir = c.options.out / "data";
  export_checkpoint(*model.model, model.config, dir / "model", export_options);
  const double seconds = seconds_since(start);
  mark.finish(seconds);
  stage_line("sft", "done in " + std::to_string(static_cast<int>(seconds)) + " s");
  return seconds;
}

}  // namespace perpo
