#include "perpo/model/lora.h"

#include <algorithm>
#include <set>

#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/model/lora_linear.h"

namespace perpo {
namespace {

constexpr const char* kAllLinear = "all-linear";
constexpr const char* kLanguageModel = "language_model.";

struct NamedLoraLayer {
  std::string name;  // "language_model.layers.0.self_attn.q_proj"
  std::string leaf;  // "q_proj"
  LoraLinearImpl* layer;
};

/// The vision tower's layers: LLaVA's vision_tower., Qwen2.5-VL's visual. without its merger
/// (the projector, trained whole unless model.freeze_projector).
bool in_vision_tower(const std::string& name) {
  return starts_with(name, "vision_tower.") ||
         (starts_with(name, "visual.") && !starts_with(name, "visual.merger."));
}

/// The LoraLinear layers of the language model, and of the vision tower when `vision`.
std::vector<NamedLoraLayer> lora_layers(torch::nn::Module& model, bool vision) {
  std::vector<NamedLoraLayer> layers;
  for (const auto& item : model.named_modules()) {
    auto* layer = dynamic_cast<LoraLinearImpl*>(item.value().get());
    if (layer == nullptr) continue;
    if (!starts_with(item.key(), kLanguageModel) && !(vision && in_vision_tower(item.key()))) {
      continue;
    }
    std::size_t dot = item.key().rfind('.');
    layers.push_back(
        {item.key(), item.key().substr(dot == std::string::npos ? 0 : dot + 1), layer});
  }
  return layers;
}

bool is_adapter(const std::string& name) {
  return ends_with(name, "lora_A") || ends_with(name, "lora_B");
}

}  // namespace

std::vector<std::string> lora_target_names(torch::nn::Module& model, bool vision) {
  std::set<std::string> names;
  for (const NamedLoraLayer& layer : lora_layers(model, vision)) names.insert(layer.leaf);
  return {names.begin(), names.end()};
}

int apply_lora(torch::nn::Module& model, const LoraConfig& config) {
  PERPO_CHECK_INPUT(config.r > 0, "model.lora.r must be > 0, got ", config.r);
  PERPO_CHECK_INPUT(config.dropout >= 0 && config.dropout < 1,
                    "model.lora.dropout must be in [0, 1), got ", config.dropout);
  PERPO_CHECK_INPUT(!config.targets.empty(), "model.lora.targets is empty");
  std::vector<NamedLoraLayer> layers = lora_layers(model, config.vision);
  std::vector<std::string> valid = lora_target_names(model, config.vision);
  bool all_linear = false;
  std::set<std::string> targets;
  for (const std::string& target : config.targets) {
    if (target == kAllLinear) {
      all_linear = true;
    } else if (std::find(valid.begin(), valid.end(), target) != valid.end()) {
      targets.insert(target);
    } else {
      Error error = input_error("model.lora.targets: '", target,
                                "' names no linear layer of the language model",
                                config.vision ? " or the vision tower" : "",
                                "; valid: ", kAllLinear, ", ", join(valid, ", "));
      if (auto guess = closest_match(target, valid)) error.hint("did you mean '" + *guess + "'?");
      throw error;
    }
  }
  for (auto& param : model.parameters()) param.set_requires_grad(false);
  int adapted = 0;
  for (const NamedLoraLayer& layer : layers) {
    if (!all_linear && !targets.count(layer.leaf)) continue;
    layer.layer->enable_lora(config.r, config.alpha, config.dropout);
    layer.layer->lora_A.set_requires_grad(true);
    layer.layer->lora_B.set_requires_grad(true);
    ++adapted;
  }
  PERPO_CHECK_INPUT(adapted > 0,
                    "model.lora.targets matched no layer: the model has no LoraLinear ",
                    "layers under language_model.");
  return adapted;
}

int merge_lora(torch::nn::Module& model) {
  int merged = 0;
  for (const auto& item : model.named_modules()) {
    auto* layer = dynamic_cast<LoraLinearImpl*>(item.value().get());
    if (layer == nullptr || !layer->lora_enabled()) continue;
    layer->merge();
    ++merged;
  }
  return merged;
}

void set_trainable(torch::nn::Module& model, bool vision, bool projector, bool llm) {
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    if (is_adapter(name)) continue;
    bool train;
    // LLaVA: vision_tower. / multi_modal_projector.; Qwen2.5-VL: visual. with its merger (the
    // 2x2 patch merger is its projector).
    if (starts_with(name, "multi_modal_projector.") || starts_with(name, "visual.merger.")) {
      train = projector;
    } else if (starts_with(name, "vision_tower.") || starts_with(name, "visual.")) {
      train = vision;
    } else if (starts_with(name, kLanguageModel) || starts_with(name, "lm_head.")) {
      train = llm;
    } else {
      throw runtime_error("parameter '", name, "' belongs to no part (vision / projector / llm)")
          .hint(
              "canonical names start with vision_tower., multi_modal_projector., visual., "
              "language_model. or lm_head.");
    }
    item.value().set_requires_grad(train);
  }
}

ParameterCounts count_parameters(torch::nn::Module& model) {
  ParameterCounts counts;
  for (const auto& param : model.parameters()) {
    counts.total += param.numel();
    if (param.requires_grad()) counts.trainable += param.numel();
  }
  return counts;
}

}  // namespace perpo
