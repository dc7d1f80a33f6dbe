// LoRA on a LLaVA model, and which parameters train.
//
//   int adapted = perpo::apply_lora(*model, config.model.lora);   // adapters on, the rest frozen
//   ...
//   perpo::set_trainable(*model, /*vision=*/false, /*projector=*/true, /*llm=*/true);  // no LoRA
//
// Adapters go on the language model's LoraLinear layers only (`language_model.*`): `all-linear`
// is every one of them (q/k/v/o_proj, gate/up/down_proj) and a list of names picks layers by the
// last component of their name. This matches PEFT's all-linear on LLaVA, which the authors' script
// uses through its LLM target list; the vision tower, the projector and lm_head get no adapters,
// unless model.lora.vision puts them on the vision tower's layers too (LLaVA's vision_tower.*:
// q/k/v/out_proj, fc1/fc2; Qwen2.5-VL's visual.blocks.*: qkv, proj, gate/up/down_proj; the
// merger is the projector and gets none), with the same targets.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <vector>

#include "perpo/config/config.h"

namespace perpo {

/// Enables adapters (rank r, alpha, dropout) on the targeted LoraLinear layers of the language
/// model and freezes every other parameter (requires_grad false); the adapters train. Returns the
/// number of adapted layers. Ignores `config.enabled` (callers decide). Throws perpo::Error (input)
/// for target names that match no layer, listing the valid ones, and when nothing is targeted.
int apply_lora(torch::nn::Module& model, const LoraConfig& config);

/// Target names valid for `model`: the distinct last name components of its language-model
/// LoraLinear layers (and its vision tower's with `vision`), sorted (e.g. down_proj, gate_proj,
/// k_proj, o_proj, q_proj, up_proj, v_proj).
std::vector<std::string> lora_target_names(torch::nn::Module& model, bool vision = false);

/// Folds every enabled adapter into its weight and removes it (the model then has no lora_*
/// parameters). Returns the number of merged layers.
int merge_lora(torch::nn::Module& model);

/// Sets requires_grad of the non-adapter parameters by part, from their canonical name prefix:
/// vision_tower.* and Qwen2.5-VL's visual.* (vision), multi_modal_projector.* and visual.merger.*
/// (projector), language_model.* and lm_head.* (llm). Adapter parameters keep their setting. Throws
/// for a parameter outside these parts.
void set_trainable(torch::nn::Module& model, bool vision, bool projector, bool llm);

struct ParameterCounts {
  std::int64_t total = 0;      // elements of all parameters
  std::int64_t trainable = 0;  // elements with requires_grad
};
ParameterCounts count_parameters(torch::nn::Module& model);

}  // namespace perpo
