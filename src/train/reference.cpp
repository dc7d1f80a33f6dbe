// Reference log-probs: lists, cached pre-pass, or live (reference.h).
#include "perpo/train/reference.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/progress.h"
#include "perpo/loss/objectives.h"
#include "perpo/model/lora_linear.h"
#include "perpo/runtime/runtime.h"
#include "perpo/train/train_data.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

// FNV-1a over what determines the values: the model's identity and every list's token ids.
std::string cache_key(const TrainData& data, const Config& config) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const void* bytes, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(bytes);
    for (std::size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  };
  Config model_only;  // the settings that decide the initial weights and the scores
  model_only.model = config.model;
  model_only.tokenizer = config.tokenizer;
  model_only.image = config.image;
  model_only.run.seed = config.run.seed;
  model_only.run.dtype = config.run.dtype;
  std::string identity = dump_config(model_only);
  mix(identity.data(), identity.size());
  for (const TrainExample& example : data.examples) {
    mix(example.list.prompt_ids.data(), example.list.prompt_ids.size() * sizeof(int));
    for (const auto& answer : example.list.answer_ids) {
      mix(answer.data(), answer.size() * sizeof(int));
    }
    mix(example.record.image_path.string().data(), example.record.image_path.string().size());
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(h));
  return text;
}

bool read_cache(const fs::path& path, const std::string& key, TrainData& data) {
  if (!fs::exists(path)) return false;
  nlohmann::json cache;
  try {
    cache = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw input_error("reference cache ", path.string(), " is not valid JSON: ", e.what())
        .hint("delete it; it is recomputed from the initial weights on a fresh run");
  }
  if (cache.value("key", "") != key) return false;
  const auto& values = cache.at("ref_logps");
  PERPO_CHECK(values.size() == data.examples.size(), path.string(), " holds ", values.size(),
              " lists, the data ", data.examples.size());
  for (std::size_t i = 0; i < data.examples.size(); ++i) {
    data.examples[i].list.ref_logps = values[i].get<std::vector<double>>();
  }
  return true;
}

}  // namespace

fs::path reference_cache_path(const fs::path& run_dir) { return run_dir / "reference_logps.json"; }

namespace {

/// The N answers of `example` scored by `model` in eval mode without gradients.
/// The N answers of `tensors` (a ground-truth row left out) scored by `model` in eval mode
/// without gradients.
ListLogps score_answers_without_grad(VisionLanguageModel& model, ListTensors tensors) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  tensors.has_target = false;  // only the N answers
  tensors.answer_ids = tensors.answer_ids.narrow(0, 0, tensors.answers);
  tensors.answer_mask = tensors.answer_mask.narrow(0, 0, tensors.answers);
  ListLogps out = score_list(model, tensors);
  if (was_training) model.train();
  return out;
}

/// The same for `example`, its tensors made on the model's device and dtype.
ListLogps score_without_grad(VisionLanguageModel& model, const TrainExample& example,
                             const Config& config) {
  const auto param = model.parameters().front();
  return score_answers_without_grad(
      model, list_tensors(example, config, model, param.device(), param.scalar_type(), 0));
}

}  // namespace

std::vector<double> reference_logps(VisionLanguageModel& model, const TrainExample& example,
                                    const Config& config) {
  at::Tensor values =
      score_without_grad(model, example, config).answers.to(torch::kFloat64).cpu();  // (N)
  return std::vector<double>(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
}

namespace {

std::vector<LoraLinearImpl*> adapted_layers(torch::nn::Module& model) {
  std::vector<LoraLinearImpl*> layers;
  for (const auto& module : model.modules(/*include_self=*/false)) {
    auto* layer = dynamic_cast<LoraLinearImpl*>(module.get());
    if (layer != nullptr && layer->lora_enabled()) layers.push_back(layer);
  }
  return layers;
}

}  // namespace

bool adapters_are_all_that_trains(torch::nn::Module& model) {
  const std::vector<LoraLinearImpl*> layers = adapted_layers(model);
  if (layers.empty()) return false;
  std::set<const void*> adapters;
  for (LoraLinearImpl* layer : layers) {
    adapters.insert(layer->lora_A.unsafeGetTensorImpl());
    adapters.insert(layer->lora_B.unsafeGetTensorImpl());
  }
  for (const at::Tensor& p : model.parameters()) {
    if (p.requires_grad() && adapters.count(p.unsafeGetTensorImpl()) == 0) return false;
  }
  return true;
}

namespace {

/// Every LoRA adapter of the model switched off (scale 0) for the object's lifetime. y = W x +
/// scale * B A x: with scale 0 the adapter adds exactly (+-)0 to every output.
class AdaptersOff {
 public:
  explicit AdaptersOff(VisionLanguageModel& model) {
    PERPO_CHECK(adapters_are_all_that_trains(model),
                "the frozen start needs a model whose LoRA adapters are all that trains");
    for (LoraLinearImpl* layer : adapted_layers(model)) {
      saved_.emplace_back(layer, layer->lora_scale);
      layer->lora_scale = 0.0;
    }
  }
  ~AdaptersOff() {
    for (auto& [layer, scale] : saved_) layer->lora_scale = scale;
  }
  AdaptersOff(const AdaptersOff&) = delete;
  AdaptersOff& operator=(const AdaptersOff&) = delete;

 private:
  std::vector<std::pair<LoraLinearImpl*, double>> saved_;
};

}  // namespace

std::vector<double> frozen_start_logps(VisionLanguageModel& model, const TrainExample& example,
                                       const Config& config) {
  AdaptersOff off(model);
  return reference_logps(model, example, config);
}

at::Tensor reference_token_logps(VisionLanguageModel& model, const ListTensors& tensors,
                                 bool adapters_off) {
  std::optional<AdaptersOff> off;
  if (adapters_off) off.emplace(model);
  return score_answers_without_grad(model, tensors).token_logps;  // (N, A)
}

std::string token_reference_source(const Config& config, VisionLanguageModel& policy) {
  const std::string& reference = config.loss.reference;
  if (reference == "live") return "live";
  if (reference == "auto" && adapters_are_all_that_trains(policy)) return "adapters-off";
  throw input_error(
      "loss.grpo.kl_beta > 0 reads the reference token by token at every step: it needs key "
      "'loss.reference' = live (a frozen copy), or auto with LoRA adapters as the only trained "
      "part; got loss.reference = ",
      reference, (reference == "auto" ? " with more than LoRA adapters trained" : ""))
      .hint("set loss.reference=live, train LoRA adapters alone, or loss.grpo.kl_beta=0");
}

ReferencePlan prepare_reference(TrainData& data, LoadedModel& model, const Config& config,
                                const fs::path& run_dir, bool resuming) {
  ReferencePlan plan;
  plan.cache = reference_cache_path(run_dir);
  if (!loss_needs_reference(config.loss)) {
    plan.source = "none";
    return plan;
  }
  if (loss_needs_token_reference(config.loss)) {  // grpo's KL: read at every step, nothing stored
    plan.source = token_reference_source(config, *model.model);
    return plan;
  }
  if (config.loss.reference == "live") {
    plan.source = "live";
    return plan;
  }
  bool all_present = true;
  for (const auto& example : data.examples) all_present &= !example.list.ref_logps.empty();
  if (all_present && (config.loss.reference == "auto" || config.loss.reference == "sampler")) {
    plan.source = "lists";
    return plan;
  }
  const std::string key = cache_key(data, config);
  if (read_cache(plan.cache, key, data)) {
    plan.source = "cache";
    return plan;
  }
  if (resuming) {
    throw input_error("the run's reference log-probs cache ", plan.cache.string(),
                      " is missing or was made for other lists or another model")
        .hint(
            "the pre-pass needs the initial weights: start the run afresh, or give lists "
            "that carry ref_logps");
  }
  PERPO_LOG_INFO("reference log-probs: computing them for ", data.examples.size(),
                 " lists with the initial weights (cached in ", plan.cache.string(), ")");
  Progress bar(static_cast<std::int64_t>(data.examples.size()), "reference", "lists");
  nlohmann::json values = nlohmann::json::array();
  for (TrainExample& example : data.examples) {
    if (config.loss.reference == "precompute" || example.list.ref_logps.empty()) {
      example.list.ref_logps = reference_logps(*model.model, example, config);
      ++plan.computed;
    }
    values.push_back(example.list.ref_logps);
    bar.advance();
  }
  bar.finish();
  nlohmann::json cache = {{"key", key}, {"lists", data.examples.size()}, {"ref_logps", values}};
  write_file_atomic(plan.cache, cache.dump());
  plan.source = "computed";
  return plan;
}

void ReferenceSource::check_online(const Config& config, VisionLanguageModel& policy) {
  // grpo's token-level reference is checked by prepare_reference, the same offline and online.
  if (!loss_needs_reference(config.loss) || loss_needs_token_reference(config.loss) ||
      config.loss.reference == "live" || config.loss.reference == "sampler") {
    return;
  }
  // Under LoRA with nothing else trained, the policy with its adapters off is the frozen start.
  if (!adapters_are_all_that_trains(policy)) {
    throw input_error(
        "train.online_resample_every > 0 scores the re-sampled answers with the frozen initial "
        "model: it needs key 'loss.reference' = live, or LoRA (model.lora.enabled) as the only "
        "trained part (model.freeze_vision and model.freeze_projector true)")
        .hint("add loss.reference=live, or train LoRA adapters alone (or loss.reference_free)");
  }
  PERPO_LOG_INFO(
      "online mode: reference log-probs of re-sampled lists from the policy with "
      "its LoRA adapters off (the frozen start)");
}

ReferenceSource::ReferenceSource(TrainData& data, LoadedModel& policy, const Config& config,
                                 const fs::path& run_dir, bool resuming)
    : config_(config), plan_(prepare_reference(data, policy, config, run_dir, resuming)) {
  if (plan_.source == "live") {
    live_ = load_model(config);  // the initial weights, frozen
    for (auto& p : live_->model->parameters()) p.set_requires_grad(false);
    live_->model->eval();
  }
}

at::Tensor ReferenceSource::step_logps(const TrainExample& example, const at::Tensor& stored,
                                       const c10::Device& device, bool resampled) {
  if (live_ && !(resampled && stored.defined())) {
    return torch::tensor(reference_logps(*live_->model, example, config_), torch::kFloat64)
        .to(torch::kFloat32)
        .to(device);
  }
  PERPO_CHECK(stored.defined(), example.list.source.to_string(), ": no reference log-probs");
  return stored;
}

at::Tensor ReferenceSource::step_token_logps(const ListTensors& tensors,
                                             VisionLanguageModel& policy) {
  if (live_) return reference_token_logps(*live_->model, tensors);
  PERPO_CHECK(plan_.source == "adapters-off", "no token-level reference for this run");
  return reference_token_logps(policy, tensors, /*adapters_off=*/true);
}

void ReferenceSource::fill_resampled(std::vector<PreferenceList>& lists, LoadedModel& policy) {
  if (!needed() || loss_needs_token_reference(config_.loss)) return;
  if (live_) {
    for (PreferenceList& list : lists) list.ref_logps.clear();  // all from the live reference
  }
  const bool sampler = config_.loss.reference == "sampler";
  const bool adapters_off = !live_ && !sampler && adapters_are_all_that_trains(*policy.model);
  TrainData encoded = encode_lists(lists, config_, policy);
  for (std::size_t i = 0; i < lists.size(); ++i) {
    if (!lists[i].ref_logps.empty()) continue;
    const TrainExample& example = encoded.examples[i];
    if (live_) {
      lists[i].ref_logps = reference_logps(*live_->model, example, config_);
    } else if (sampler) {
      lists[i].ref_logps = reference_logps(*policy.model, example, config_);
    } else if (adapters_off) {
      lists[i].ref_logps = frozen_start_logps(*policy.model, example, config_);
    } else {
      throw input_error(example.list.source.to_string(), ": a re-sampled list has no ref_logps")
          .hint(
              "online mode needs loss.reference=live or sampler, LoRA alone trained, or a "
              "sampler that fills ref_logps");
    }
  }
}

}  // namespace perpo
