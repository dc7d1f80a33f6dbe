// The training loop (trainer.h): setup, steps, logging, checkpoints, resume.
#include "perpo/train/trainer.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <map>
#include <optional>

#include "perpo/batch/collate.h"
#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/output_paths.h"
#include "perpo/core/progress.h"
#include "perpo/core/strings.h"
#include "perpo/dist/gradient_reducer.h"
#include "perpo/loss/objectives.h"
#include "perpo/model/lora.h"
#include "perpo/runtime/runtime.h"
#include "perpo/train/data_order.h"
#include "perpo/train/online.h"
#include "perpo/train/optimizer.h"
#include "perpo/train/reference.h"
#include "perpo/train/resume.h"
#include "perpo/train/schedule.h"
#include "perpo/train/train_data.h"

namespace perpo {
namespace fs = std::filesystem;

std::int64_t total_train_steps(const Config& config, std::size_t items) {
  if (config.train.max_steps > 0) return config.train.max_steps;
  const auto per_step =
      static_cast<std::int64_t>(config.train.lists_per_step) * config.train.grad_accum;
  const auto per_epoch = (static_cast<std::int64_t>(items) + per_step - 1) / per_step;
  return per_epoch * config.train.epochs;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One list's (or one SFT batch's) part of the step's StepSums as a detached (kCount) float64
// tensor on the loss's device, in StepSums' order; `lists` weights the means it holds, `answers`
// counts the answers scored. No host sync.
at::Tensor step_sums(const LossOutput& out, double lists, double answers, bool ranked) {
  auto f64 = [](const at::Tensor& t) { return t.detach().to(torch::kFloat64).reshape({}); };
  const at::Tensor zero = torch::zeros({}, out.loss.options().dtype(torch::kFloat64));
  const auto count = [&](double value) { return torch::full({}, value, zero.options()); };
  const LossMetrics& m = out.metrics;
  const at::Tensor pairs = ranked ? f64(m.pairs) : zero;
  const bool rewards = m.mean_reward.defined();
  const bool grpo = m.tokens.defined();
  return torch::stack(
      {f64(out.loss) * lists, f64(out.objective) * lists,
       out.nll_term.defined() ? f64(out.nll_term) * lists : zero, pairs,
       ranked ? f64(m.pair_accuracy) * pairs : zero, ranked ? f64(m.mean_margin) * pairs : zero,
       ranked ? f64(m.lists_without_signal) : zero, count(lists),
       rewards ? f64(m.mean_reward) * lists : zero, rewards ? f64(m.reward_std) * lists : zero,
       count(rewards ? lists : 0.0), count(grpo ? answers : 0.0), grpo ? f64(m.tokens) : zero,
       grpo ? f64(m.clipped_low) : zero, grpo ? f64(m.clipped_high) : zero,
       grpo ? f64(m.kl_sum) : zero, grpo ? f64(m.lists_dropped) : zero});
}

// The StepSums part of a list that loss.grpo.drop_all_equal leaves out before any forward: it
// counts as a list without signal, with its (equal) rewards, and as dropped.
at::Tensor dropped_list_sums(const TrainExample& example, const c10::Device& device) {
  const std::vector<double>& r = example.list.rewards;
  const double mean = r.empty() ? 0.0 : r.front();  // all equal
  StepSums sums;
  sums.lists_without_signal = 1;
  sums.lists = 1;
  sums.rewards = mean;
  sums.reward_lists = 1;
  sums.lists_dropped = 1;
  return torch::tensor(sums.values(), torch::kFloat64).to(device);
}

bool all_rewards_equal(const TrainExample& example) {
  const std::vector<double>& r = example.list.rewards;
  return !r.empty() && std::all_of(r.begin(), r.end(), [&](double v) { return v == r.front(); });
}

class Trainer {
 public:
  Trainer(const Config& config, const TrainOptions& options, const TrainerHooks& hooks)
      : config_(config),
        options_(options),
        hooks_(hooks),
        run_dir_(config.run.dir),
        group_(options.group != nullptr ? *options.group : single_) {}

  TrainSummary run();

 private:
  void prepare_run_dir();  // checks only
  void create_run_dir();   // after the inputs loaded: folder, config.yaml, log.txt
  void restore(const CheckpointContent& content);
  StepMetrics step();
  bool logged(std::int64_t step) const;
  void read_counters();
  void warn_skipped(const StepMetrics& m);
  void check_grpo_lists() const;
  bool on_policy() const;
  // `last`: this rank's last backward of the step, which the gradients' all-reduce overlaps.
  void score_and_backward(const TrainExample& example, double scale, std::int64_t& tokens,
                          bool last);
  void sft_backward(const std::vector<std::size_t>& indices, double scale, std::int64_t& tokens,
                    bool last);
  fs::path save_checkpoint();
  void maybe_resample();
  void use_online_lists(std::vector<PreferenceList> lists, std::int64_t sampled_at);
  void setup_online_mode();
  std::map<std::string, double> evaluate();

  void check_data_parallel() const;

  Config config_;
  TrainOptions options_;
  TrainerHooks hooks_;
  fs::path run_dir_;
  ProcessGroup single_;        // the group of a single process (options.group unset)
  const ProcessGroup& group_;  // data parallel: rank, world, collectives
  fs::path checkpoint_root_;
  LoadedModel model_;
  std::unique_ptr<ReferenceSource> reference_;
  TrainData data_;
  std::string data_fingerprint_;  // of data_ as loaded (checkpointed, checked on --resume)
  OutputPolicy run_dir_policy_;
  OutputLock run_dir_lock_;  // held while training: a second perpo on run.dir is refused
  std::unique_ptr<AdamW> optim_;
  // Data parallel: sums the gradients over ranks while the step's last backward runs (unless
  // ZeRO-1's reduce-scatter does: AdamW::reduces_gradients).
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<DataOrder> order_;
  std::int64_t step_ = 0;
  std::int64_t total_ = 0;
  // Non-finite steps: counted on the device (a skipped update never needs the host), read with
  // the logged steps' metrics and at checkpoints (read_counters).
  std::int64_t nonfinite_in_row_ = 0;
  std::int64_t skipped_ = 0;           // in this call
  std::int64_t skipped_reported_ = 0;  // of those, already warned about
  std::int64_t warned_through_ = 0;    // the last step that warn_skipped covered
  std::int64_t metric_reads_ = 0;
  at::Tensor nonfinite_in_row_device_;  // () float32
  at::Tensor skipped_device_;           // () float32
  std::int64_t resamples_ = 0;
  std::vector<at::Tensor> step_sums_;  // this step's StepSums parts, on the device (step_sums)
  std::vector<PreferenceList> online_lists_;       // online mode: the lists in use (checkpointed)
  std::int64_t online_sampled_at_ = -1;            // the step they were sampled at; -1 = none
  std::shared_ptr<OnlineSampler> online_sampler_;  // the built-in sampler, unless a hook's
  std::map<std::string, double> online_metrics_;   // of the last re-sampling, logged with the
                                                   // next step
  LossConfig loss_;  // config_.loss with loss.grpo.max_tokens 0 resolved (data.max_answer_tokens)
  int pad_id_ = 0;
  c10::Device device_{c10::kCPU};
  c10::ScalarType dtype_ = c10::kFloat;
};

void Trainer::prepare_run_dir() {
  // Created, or reused when empty / written by perpo (its marker), else refused unless --force;
  // never the training data, the model or the tokenizer (or a folder holding them).
  OutputPolicy policy;
  policy.force = options_.force;
  const std::string eval = config_.train.eval_every > 0 ? config_.data.eval : std::string();
  for (const std::string& input : {config_.data.train, eval, config_.model.path,
                                   config_.tokenizer.path, options_.config_file}) {
    if (!input.empty()) policy.inputs.emplace_back(input);
  }
  // The run folder is filled, not replaced: it may hold this run's inputs (the lists that
  // `perpo sample` wrote into it) beside what training writes.
  policy.writes = {"config.yaml",    "log.txt",
                   "metrics.jsonl",  "checkpoints",
                   "tensorboard",    reference_cache_path(run_dir_).filename().string(),
                   kOutputMarkerName};
  // Checked here, written only once the model and the data have loaded (bad input writes nothing).
  // Data parallel: rank 0 alone writes run.dir, and checks it (it holds the run's lock soon).
  if (group_.writer()) check_output_dir(run_dir_, policy);
  run_dir_policy_ = policy;
  checkpoint_root_ = run_dir_ / "checkpoints";
  std::error_code root_error;
  const fs::file_type root_type = fs::symlink_status(checkpoint_root_, root_error).type();
  if (root_type != fs::file_type::not_found && root_type != fs::file_type::directory) {
    throw input_error(checkpoint_root_.string(), " exists and is not a folder")
        .hint(
            "training writes its checkpoints there; remove or rename it, or choose another "
            "run.dir");
  }
  const auto latest = latest_run_checkpoint(checkpoint_root_);
  if (!options_.resume && latest) {
    throw input_error("run.dir ", run_dir_.string(), " already holds checkpoints (newest ",
                      latest->filename().string(), ")")
        .hint("pass --resume to continue that run, or choose another run.dir");
  }
  if (options_.resume && !latest) {
    throw input_error("--resume: no checkpoint in ", checkpoint_root_.string())
        .hint("start the run without --resume");
  }
}

void Trainer::create_run_dir() {
  if (!group_.writer()) return;
  run_dir_lock_ = prepare_output_dir(run_dir_, run_dir_policy_);
  const int removed = remove_partial_checkpoints(checkpoint_root_);
  if (removed > 0) PERPO_LOG_WARN("removed ", removed, " partial checkpoint folder(s)");
  write_file_atomic(run_dir_ / "config.yaml", dump_config(config_));
  add_log_file(run_dir_ / "log.txt");
}

void Trainer::restore(const CheckpointContent& content) {
  torch::NoGradGuard no_grad;
  load_trained_weights(*model_.model, content.weights,
                       "checkpoint step-" + std::to_string(content.step),
                       /*every_trained_parameter=*/true);
  NamedTensors rng, optim;
  for (const auto& entry : content.optimizer) {
    (starts_with(entry.first, "rng.") ? rng : optim).push_back(entry);
  }
  optim_->load_state(optim);
  step_ = content.step;
  const auto& state = content.state;
  // Data changed at the same path (another file sampled into data.train): the data order and
  // position in the checkpoint would point into other lists.
  const std::string saved_data = state.value("data_fingerprint", std::string());
  if (!saved_data.empty() && saved_data != data_fingerprint_) {
    throw input_error("--resume refused: data.train (", config_.data.train,
                      ") is not the data the checkpoint was trained on (fingerprint ",
                      data_fingerprint_, ", the checkpoint's ", saved_data, ")")
        .hint("resume with the data the run started with, or start a new run.dir");
  }
  if (state.contains("online")) {  // the re-sampled lists the interrupted run was training on
    const auto& online = state.at("online");
    use_online_lists(online_lists_from_json(online.at("lists")),
                     online.at("sampled_at").get<std::int64_t>());
  }
  order_->seek(
      {state.at("data_epoch").get<std::int64_t>(), state.at("data_cursor").get<std::int64_t>()});
  nonfinite_in_row_ = state.value("nonfinite_in_row", std::int64_t{0});
  nonfinite_in_row_device_.fill_(static_cast<double>(nonfinite_in_row_));
  restore_rng_states(rng, state.value("host_rng", std::string()));
}

fs::path Trainer::save_checkpoint() {
  read_counters();
  NamedTensors optimizer = optim_->state();  // ZeRO-1: gathered on rank 0 (every rank takes part)
  if (!group_.writer()) return {};           // rank 0 writes the run's checkpoints
  CheckpointContent content;
  content.step = step_;
  const bool everything = config_.model.path.empty();  // tiny model: base weights live nowhere
  for (const auto& item : model_.model->named_parameters()) {
    if (everything || item.value().requires_grad()) {
      content.weights.emplace_back(item.key(), item.value().detach());
    }
  }
  content.optimizer = std::move(optimizer);
  RngStates rng = capture_rng_states(device_.is_cuda());
  content.optimizer.insert(content.optimizer.end(), rng.tensors.begin(), rng.tensors.end());
  content.config_yaml = dump_config(config_);
  content.state = {{"data_epoch", order_->position().epoch},
                   {"data_cursor", order_->position().cursor},
                   {"nonfinite_in_row", nonfinite_in_row_},
                   {"total_steps", total_},
                   {"host_rng", rng.host},
                   {"weights", everything ? "all" : "trained"},
                   {"data_fingerprint", data_fingerprint_}};
  if (online_sampled_at_ >= 0) {
    content.state["online"] = {{"sampled_at", online_sampled_at_},
                               {"lists", online_lists_to_json(online_lists_)}};
  }
  fs::path dir = save_run_checkpoint(checkpoint_root_, content, config_.train.keep_checkpoints,
                                     hooks_.checkpoint_fault);
  PERPO_LOG_INFO("saved checkpoint ", dir.string());
  return dir;
}

// loss.name grpo's importance ratios need the sampling policy's token log-probs, except when
// every list is trained by the weights that sampled it: online mode re-sampling at every step.
bool Trainer::on_policy() const { return config_.train.online_resample_every == 1; }

void Trainer::check_grpo_lists() const {
  if (config_.loss.name != "grpo" || config_.train.online_resample_every > 0) return;
  for (const TrainExample& example : data_.examples) {
    if (example.list.sample_token_logps.empty()) {
      throw input_error(
          "loss.name grpo on offline lists needs each list's field 'sample_token_logps' (the "
          "sampling model's per-token log-probs: the old policy of the importance ratios); ",
          example.list.source.to_string(), " has none")
          .hint(
              "sample the lists with sampling.token_logps=true (perpo sample --set "
              "sampling.token_logps=true), or train online on-policy with "
              "train.online_resample_every=1");
    }
  }
}

void Trainer::score_and_backward(const TrainExample& example, double scale, std::int64_t& tokens,
                                 bool last) {
  ListTensors t;
  {
    RECORD_USER_SCOPE("list_tensors");
    t = list_tensors(example, config_, *model_.model, device_, dtype_, pad_id_);
  }
  ListwiseInputs in;
  const bool grpo = loss_.name == "grpo";
  if (grpo && loss_needs_token_reference(loss_)) {  // before the policy's graph is built
    in.ref_token_logps = reference_->step_token_logps(t, *model_.model).unsqueeze(0);
  }
  ListLogps logps;
  {
    RECORD_USER_SCOPE("score_list");
    logps = score_list(*model_.model, t);
  }
  in.policy_logps = logps.answers.unsqueeze(0);  // (1, N)
  in.answer_tokens = logps.tokens.unsqueeze(0);  // (1, N)
  if (t.rewards.defined()) in.rewards = t.rewards.unsqueeze(0);
  if (grpo) {
    in.token_logps = logps.token_logps.unsqueeze(0);  // (1, N, A)
    in.token_mask = logps.token_mask.unsqueeze(0);    // (1, N, A)
    if (t.sample_token_logps.defined()) {
      in.old_token_logps = t.sample_token_logps.unsqueeze(0);
    } else {
      PERPO_CHECK(on_policy(), example.list.source.to_string(),
                  ": loss.name grpo off-policy without the list's sample_token_logps");
    }
  } else if (reference_->needed()) {
    RECORD_USER_SCOPE("ref_logps");
    const bool resampled = online_sampled_at_ >= 0;  // the lists in use came from fill_resampled
    in.ref_logps = reference_->step_logps(example, t.ref_logps, device_, resampled).unsqueeze(0);
  }
  if (logps.target_nll.defined()) in.nll = logps.target_nll.unsqueeze(0);  // (1)
  LossOutput out;
  {
    RECORD_USER_SCOPE("loss");
    out = compute_loss(in, loss_);
  }
  if (last && reducer_) reducer_->arm();
  {
    RECORD_USER_SCOPE("backward");
    (out.loss * scale).backward();
  }
  RECORD_USER_SCOPE("step_sums");
  step_sums_.push_back(step_sums(out, 1.0, static_cast<double>(t.answers), t.rewards.defined()));
  tokens += t.tokens;
}

// loss.name sft: the micro-batch's records as one padded batch in one forward; the objective is
// the token mean of the answers' NLL over the batch (loss/objectives.h sft).
void Trainer::sft_backward(const std::vector<std::size_t>& indices, double scale,
                           std::int64_t& tokens, bool last) {
  std::vector<SftExample> records;
  std::vector<ModelImage> images;  // of the records that have an image, in order
  VisionLanguageModel& model = *model_.model;
  for (std::size_t index : indices) {
    const TrainExample& example = data_.examples[index];
    records.push_back(
        {example.list.prompt_ids, example.list.answer_ids.front(), example.list.source});
    if (!example.record.image.empty()) {
      images.push_back(model.prepare_image(load_record_image(example.record), config_.image));
    }
  }
  const SftBatch batch = collate_sft(records, {}, pad_id_);
  const ModelImage joined =
      model.join_images(images).to(torch::TensorOptions().device(device_).dtype(dtype_));
  const at::Tensor logps = model.sequence_answer_logps(
      batch.input_ids.to(device_), joined, batch.attention_mask.to(device_), batch.answer_start,
      batch.answer_mask);  // (B, A)
  ListwiseInputs in;
  in.policy_logps = logps.to(torch::kFloat32).sum(1).unsqueeze(1);                        // (B, 1)
  in.answer_tokens = batch.answer_mask.sum(1).to(device_, torch::kFloat32).unsqueeze(1);  // (B, 1)
  LossOutput out = compute_loss(in, config_.loss);
  auto B = static_cast<double>(indices.size());
  if (group_.world() > 1) {
    // The objective is the token mean over the micro-batch of all ranks: this rank's share of it
    // is its token sum over the global token count, and the batch counts as the global batch.
    at::Tensor counts = torch::stack({in.answer_tokens.sum().to(torch::kFloat64),
                                      torch::full({}, B, torch::kFloat64).to(device_)});
    const at::Tensor mine = counts.clone();
    group_.all_reduce_sum(counts);
    const at::Tensor share = (mine[0] / counts[0].clamp_min(1)).to(out.loss.scalar_type());
    const double global_b = counts[1].item<double>();
    out.loss = out.loss * share * (global_b / B);
    out.objective = out.objective * share * (global_b / B);
  }
  if (last && reducer_) reducer_->arm();
  (out.loss * (scale * B)).backward();  // the batch counts as its B records in the step's mean
  step_sums_.push_back(step_sums(out, B, /*answers=*/B, /*ranked=*/false));
  tokens += batch.tokens;
}

bool Trainer::logged(std::int64_t step) const {
  return step % config_.train.log_every == 0 || step == total_;
}

void Trainer::read_counters() {
  const at::Tensor host = torch::stack({nonfinite_in_row_device_, skipped_device_}).cpu();
  nonfinite_in_row_ = static_cast<std::int64_t>(host[0].item<float>());
  skipped_ = static_cast<std::int64_t>(host[1].item<float>());
}

void Trainer::warn_skipped(const StepMetrics& m) {
  const std::int64_t unreported = skipped_ - skipped_reported_;
  const std::int64_t first = warned_through_ + 1;
  warned_through_ = m.step;
  if (unreported <= 0) return;
  skipped_reported_ = skipped_;
  if (unreported == 1 && m.skipped) {
    PERPO_LOG_WARN("step ", m.step, ": non-finite loss (", m.loss, ") or gradient norm (",
                   m.grad_norm, "): update skipped");
  } else {
    PERPO_LOG_WARN(unreported, " of steps ", first, "..", m.step,
                   " had a non-finite loss or gradient: their updates were skipped");
  }
}

StepMetrics Trainer::step() {
  RECORD_USER_SCOPE("step");  // parts of the step for a profiler (runtime/op_profile.h)
  const auto start = std::chrono::steady_clock::now();
  const double comm_start = group_.comm_seconds();
  StepMetrics m;
  m.step = step_ + 1;
  const auto& tr = config_.train;
  const double scale = 1.0 / (static_cast<double>(tr.lists_per_step) * tr.grad_accum);
  std::int64_t tokens = 0;
  step_sums_.clear();
  std::vector<std::vector<std::size_t>> micro_batches;
  for (int micro = 0; micro < tr.grad_accum; ++micro) {
    micro_batches.push_back(order_->take(tr.lists_per_step));
  }
  std::vector<std::vector<std::size_t>> shares;  // this rank's lists of each micro-batch
  for (const auto& indices : micro_batches) {
    shares.push_back(rank_share(indices, group_.rank(), group_.world()));
  }
  // loss.grpo.drop_all_equal: lists whose rewards are all equal are left out before any forward,
  // and the step's loss is the mean over the others (loss/objectives.h).
  const bool drop = loss_.name == "grpo" && loss_.grpo.drop_all_equal;
  double trained = 0;
  for (const auto& indices : micro_batches) {
    for (std::size_t index : indices)
      trained += drop && all_rewards_equal(data_.examples[index]) ? 0 : 1;
  }
  const double list_scale = drop ? 1.0 / std::max(trained, 1.0) : scale;
  // This rank's backward passes in the step (one per list, or per micro-batch for sft): the
  // last one is overlapped with the gradients' all-reduce.
  std::size_t backwards = is_sft(config_) ? shares.size() : 0, done = 0;
  for (const auto& indices : shares) {
    for (std::size_t index : indices) {
      if (!is_sft(config_) && !(drop && all_rewards_equal(data_.examples[index]))) ++backwards;
    }
  }
  for (const auto& indices : shares) {
    if (is_sft(config_)) {
      sft_backward(indices, scale, tokens, ++done == backwards);
      continue;
    }
    for (std::size_t index : indices) {
      const TrainExample& example = data_.examples[index];
      if (drop && all_rewards_equal(example)) {
        step_sums_.push_back(dropped_list_sums(example, device_));
        continue;
      }
      score_and_backward(example, list_scale, tokens, ++done == backwards);
    }
  }
  const std::vector<at::Tensor> params = optim_->params();
  // Data parallel: the step's gradient over all ranks' lists.
  if (optim_->reduces_gradients()) {
    optim_->reduce_gradients();  // ZeRO-1: each rank gets its own parameters' sums
  } else if (reducer_) {
    reducer_->finish();  // the all-reduces the last backward started, and the rest
    m.comm_hidden_s = reducer_->last().hidden_s;
    m.comm_grad_s = reducer_->last().waited_s;
  }
  if (hooks_.reduce_gradients) hooks_.reduce_gradients(params);
  at::Tensor norm;
  {
    RECORD_USER_SCOPE("clip");
    norm = optim_->clip_gradients(config_.optim.max_grad_norm);
  }
  at::Tensor sums = torch::stack(step_sums_).sum(0);
  step_sums_.clear();
  // Data parallel: the sums of all ranks (and the tokens they processed), so that every rank
  // sees the same loss and skips the same steps; one all-reduce, no host read.
  at::Tensor all_tokens = torch::full({1}, static_cast<double>(tokens), sums.options());
  if (group_.world() > 1) {
    at::Tensor both = torch::cat({sums, all_tokens});
    group_.all_reduce_sum(both);
    sums = both.narrow(0, 0, StepSums::kCount);
    all_tokens = both.narrow(0, StepSums::kCount, 1);
  }
  // A non-finite loss or gradient skips the update on the device: no host round trip.
  const at::Tensor found_inf = torch::logical_not(
      torch::logical_and(torch::isfinite(sums[0]), torch::isfinite(norm.to(sums.device()))));
  const at::Tensor skip = found_inf.to(torch::kFloat32);
  optim_->set_lr_multiplier(lr_multiplier(step_, total_, config_.optim));
  m.lr = optim_->current_lr();
  m.grpo = loss_.name == "grpo";
  // Every list dropped: no gradient, no update (and not a non-finite step).
  {
    RECORD_USER_SCOPE("optimizer");
    optim_->step(trained > 0 ? skip : torch::ones_like(skip));
  }
  nonfinite_in_row_device_.add_(skip).mul_(skip);
  skipped_device_.add_(skip);
  if (logged(m.step)) {
    RECORD_USER_SCOPE("read_metrics");
    // The one host synchronisation of a logged step: its sums, the gradient norm and the
    // non-finite counters, read together. Other steps leave them on the device.
    const at::Tensor host =
        torch::cat({sums, norm.to(sums.device()).reshape({1}),
                    torch::stack({nonfinite_in_row_device_, skipped_device_}).to(torch::kFloat64),
                    all_tokens})
            .cpu();
    const double* v = host.data_ptr<double>();
    StepSums::from(v).finish(m);
    m.grad_norm = v[StepSums::kCount];
    nonfinite_in_row_ = static_cast<std::int64_t>(v[StepSums::kCount + 1]);
    skipped_ = static_cast<std::int64_t>(v[StepSums::kCount + 2]);
    m.skipped = nonfinite_in_row_ > 0;
    tokens = static_cast<std::int64_t>(v[StepSums::kCount + 3]);  // of every rank
    ++metric_reads_;
  } else {
    m.measured = false;
  }
  {
    RECORD_USER_SCOPE("zero_grad");
    optim_->zero_grad();
  }
  ++step_;
  const double elapsed = seconds_since(start);
  m.lists_per_s = static_cast<double>(m.lists) / elapsed;
  m.tokens_per_s = static_cast<double>(tokens) / elapsed;
  m.peak_memory_mb = peak_memory_mb(device_);
  if (group_.world() > 1) m.comm_s = group_.comm_seconds() - comm_start;
  return m;
}

void Trainer::maybe_resample() {
  const int every = config_.train.online_resample_every;
  if (every <= 0 || step_ % every != 0) return;
  // grpo trains on the online sampler's lists alone (their token log-probs are the old policy):
  // it samples before the first step too; the other losses start on data.train's lists.
  if (step_ == 0 && (loss_.name != "grpo" || online_sampled_at_ >= 0)) return;
  std::vector<PreferenceList> lists = hooks_.resample(model_, step_);
  ++resamples_;
  reference_->fill_resampled(lists, model_);  // kept with the lists (and checkpointed)
  if (online_sampler_) online_metrics_ = online_sampler_->last_metrics();
  use_online_lists(std::move(lists), step_);
  PERPO_LOG_INFO("online mode: step ", step_, ": ", data_.summary(config_));
}

void Trainer::use_online_lists(std::vector<PreferenceList> lists, std::int64_t sampled_at) {
  data_ = encode_lists(lists, config_, model_);
  PERPO_CHECK_INPUT(!data_.examples.empty(), "online mode: no lists to train on at step ",
                    sampled_at);
  order_ = std::make_unique<DataOrder>(data_.examples.size(), config_.run.seed + sampled_at,
                                       config_.data.shuffle);
  online_lists_ = std::move(lists);
  online_sampled_at_ = sampled_at;
}

void Trainer::setup_online_mode() {
  if (is_sft(config_)) {
    throw input_error(
        "train.online_resample_every applies to the list losses, not to loss.name sft")
        .hint("set train.online_resample_every=0");
  }
  ReferenceSource::check_online(config_, *model_.model);
  if (hooks_.resample) return;  // a caller's sampler
  std::vector<DatasetRecord> records;
  for (const TrainExample& example : data_.examples) records.push_back(example.record);
  const auto per_call = static_cast<std::size_t>(config_.train.lists_per_step) *
                        config_.train.grad_accum * config_.train.online_resample_every;
  online_sampler_ = std::make_shared<OnlineSampler>(config_, std::move(records), per_call);
  online_sampler_->set_group(&group_);  // data parallel: each rank samples its share
  hooks_.resample = [sampler = online_sampler_](LoadedModel& policy, std::int64_t step) {
    return (*sampler)(policy, step);
  };
}

void Trainer::check_data_parallel() const {
  if (group_.world() == 1) return;
  if (config_.train.lists_per_step < group_.world()) {
    throw input_error("train.lists_per_step (", config_.train.lists_per_step,
                      ") is the step's lists over all ranks: fewer than the ", group_.world(),
                      " ranks, so a rank would have none")
        .hint(
            "set train.lists_per_step to at least WORLD_SIZE (a multiple of it balances the "
            "ranks)");
  }
}

std::map<std::string, double> Trainer::evaluate() {
  // Evaluation leaves the run as it was: the RNG streams (dropout, host) are put back, the data
  // order is not touched, and the model returns to train mode.
  RngStates rng = capture_rng_states(device_.is_cuda());
  std::map<std::string, double> values;
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, value] : hooks_.evaluate(model_, step_)) values["eval/" + name] = value;
  }
  restore_rng_states(rng.tensors, rng.host);
  model_.model->train();
  std::string line;
  for (const auto& [name, value] : values) line += " " + name + " " + std::to_string(value);
  PERPO_LOG_INFO("eval at step ", step_, ":", line);
  return values;
}

TrainSummary Trainer::run() {
  check_data_parallel();
  prepare_run_dir();
  set_threads(config_.run.threads);
  std::optional<CheckpointContent> resume_from;
  if (options_.resume) {
    const fs::path latest = *latest_run_checkpoint(checkpoint_root_);
    resume_from = load_run_checkpoint(latest);
    Config saved = config_;
    merge_yaml(saved, resume_from->config_yaml, (latest / "config.yaml").string());
    auto diffs = resume_config_differences(saved, config_);
    if (!diffs.empty()) {
      throw input_error("--resume refused: ", latest.string(),
                        " was written with a different config: ", join(diffs, "; "))
          .hint("resume with the run's own config (" + (latest / "config.yaml").string() +
                "), or start a new run.dir");
    }
  }
  device_ = parse_device(config_.run.device);
  dtype_ = parse_dtype(config_.run.dtype);
  // Every weight in run.dtype (bf16 on CUDA); AdamW keeps fp32 masters of the trained ones.
  model_ = load_model(config_);
  pad_id_ = std::max(model_.tokenizer->pad_id(), 0);
  data_ = load_train_data(config_, model_);
  data_fingerprint_ = data_.fingerprint();
  loss_ = config_.loss;
  if (loss_.grpo.max_tokens == 0) loss_.grpo.max_tokens = config_.data.max_answer_tokens;
  check_grpo_lists();
  if (loss_needs_token_reference(loss_)) token_reference_source(config_, *model_.model);
  if (config_.train.online_resample_every > 0) setup_online_mode();  // checks before any write
  create_run_dir();
  PERPO_LOG_INFO("training data: ", data_.summary(config_));
  if (data_.truncated_answers > 0) {
    PERPO_LOG_WARN(data_.truncated_answers, " answers were longer than data.max_answer_tokens = ",
                   config_.data.max_answer_tokens, " and were truncated");
  }
  // Data parallel: rank 0 computes (and caches) the reference log-probs the lists lack; the
  // other ranks read its cache once it is written.
  if (group_.writer()) {
    reference_ =
        std::make_unique<ReferenceSource>(data_, model_, config_, run_dir_, options_.resume);
  }
  group_.barrier();
  if (!group_.writer()) {
    reference_ =
        std::make_unique<ReferenceSource>(data_, model_, config_, run_dir_, /*resuming=*/true);
  }
  const ReferencePlan& reference = reference_->plan();
  optim_ = std::make_unique<AdamW>(model_.model->named_parameters(), config_.optim);
  if (config_.distributed.zero == 1 && group_.world() > 1) {
    const std::string& scatter = config_.distributed.reduce_scatter;
    optim_->shard(group_, scatter == "true" || (scatter == "auto" && group_.backend() == "nccl"));
    PERPO_LOG_INFO("ZeRO-1: this rank holds ", optim_->state_numel(),
                   " optimizer state elements, its share of ", group_.world(), " ranks; ",
                   optim_->reduces_gradients()
                       ? "gradients reduce-scattered, parameters all-gathered"
                       : "gradients all-reduced, parameters broadcast by their owners");
  }
  if (group_.world() > 1 && !optim_->reduces_gradients()) {
    const auto bucket_bytes = static_cast<std::size_t>(config_.distributed.bucket_mb * (1 << 20));
    reducer_ = std::make_unique<GradientReducer>(group_, optim_->params(),
                                                 std::max<std::size_t>(bucket_bytes, 1),
                                                 config_.distributed.overlap);
  }
  nonfinite_in_row_device_ = torch::zeros({}, torch::dtype(torch::kFloat32).device(device_));
  skipped_device_ = torch::zeros({}, torch::dtype(torch::kFloat32).device(device_));
  order_ =
      std::make_unique<DataOrder>(data_.examples.size(), config_.run.seed, config_.data.shuffle);
  total_ = total_train_steps(config_, data_.examples.size());
  // The training stream (dropout) starts from a known state, another one on each rank.
  seed_all(config_.run.seed + 1 + static_cast<std::uint64_t>(group_.rank()));
  if (resume_from) restore(*resume_from);
  resume_from.reset();

  TrainSummary summary;
  summary.first_step = step_;
  summary.total_steps = total_;
  summary.truncated_answers = data_.truncated_answers;
  summary.reference_source = reference.source;
  // A fresh run starts metrics.jsonl empty (a run killed before its first checkpoint left
  // lines there); a resumed one keeps the lines up to its checkpoint's step.
  std::optional<MetricsLog> metrics;  // rank 0 alone writes metrics.jsonl
  if (group_.writer())
    metrics.emplace(run_dir_, config_.run.tensorboard, options_.resume ? step_ : -1);
  auto counts = count_parameters(*model_.model);
  PERPO_LOG_INFO("training ", counts.trainable, " of ", counts.total, " parameters; loss ",
                 config_.loss.name, "; reference log-probs: ", reference.source, "; steps ", step_,
                 " -> ", total_);
  if (config_.train.eval_every > 0 && !hooks_.evaluate) {
    PERPO_LOG_WARN("train.eval_every = ", config_.train.eval_every,
                   " but no evaluator is connected (TrainerHooks::evaluate): no evaluation");
  }
  model_.model->train();
  std::optional<Progress> bar;  // rank 0's
  if (group_.writer()) {
    bar.emplace(total_, "train", "steps");
    bar->advance(step_);
  }
  warned_through_ = step_;
  std::int64_t saved_at = options_.resume ? step_ : -1;
  // Evaluation runs on rank 0 (the others wait at the next step's all-reduce).
  const bool evaluates = hooks_.evaluate && group_.writer();
  if (step_ == 0 && config_.train.eval_every > 0 && evaluates && hooks_.evaluate_at_start) {
    metrics->write_extra(0, evaluate());
  }
  while (step_ < total_) {
    maybe_resample();
    StepMetrics m = step();
    if (!online_metrics_.empty()) {  // what the lists of this step were sampled with
      if (metrics) metrics->write_extra(m.step, online_metrics_);
      online_metrics_.clear();
    }
    if (m.measured) {  // a logged step (train.log_every): its numbers were read to the host
      summary.last_loss = m.loss;
      if (metrics) {
        warn_skipped(m);
        metrics->write(m);
        bar->set_note(progress_note(m));
      }
    }
    if (hooks_.on_step) hooks_.on_step(m);
    if (bar) bar->advance();
    if (nonfinite_in_row_ >= config_.train.max_nonfinite_steps) {
      throw runtime_error("stopping at step ", m.step, ": ", nonfinite_in_row_,
                          " steps in a row had a non-finite loss or gradient")
          .hint(
              "lower optim.lr, check the lists' ref_logps, or raise "
              "train.max_nonfinite_steps");
    }
    const int every = config_.train.checkpoint_every;
    if (every > 0 && step_ % every == 0) {
      summary.last_checkpoint = save_checkpoint();
      saved_at = step_;
    }
    const int eval_every = config_.train.eval_every;
    if (eval_every > 0 && step_ % eval_every == 0 && evaluates) {
      metrics->write_extra(step_, evaluate());
    }
    // A stop seen by any rank stops every rank after the same step (one all-reduce per step).
    const bool stop_here = hooks_.stop_requested && hooks_.stop_requested();
    if (step_ < total_ && group_.any(stop_here)) {
      summary.stopped = true;
      PERPO_LOG_INFO("stop requested: finished step ", step_, ", saving");
      break;
    }
  }
  if (bar) bar->finish();
  read_counters();
  if (saved_at != step_) summary.last_checkpoint = save_checkpoint();
  const std::int64_t ran = step_ - summary.first_step;
  if (ran > 0 && skipped_ >= ran && !summary.stopped) {
    throw runtime_error("every step of this run (", ran,
                        ") was skipped for a non-finite loss or gradient: nothing was learned")
        .hint("check the lists' rewards and ref_logps and the learning rate; the checkpoint " +
              summary.last_checkpoint.string() + " holds the unchanged weights");
  }
  summary.steps = step_;
  summary.skipped_steps = skipped_;
  summary.metric_reads = metric_reads_;
  summary.resamples = resamples_;
  return summary;
}

}  // namespace

TrainSummary run_training(const Config& config, const TrainOptions& options,
                          const TrainerHooks& hooks) {
  struct LogFileGuard {  // log.txt is flushed and detached however the run ends
    ~LogFileGuard() { close_log_file(); }
  } log_file;
  Trainer trainer(config, options, hooks);
  return trainer.run();
}

}  // namespace perpo
