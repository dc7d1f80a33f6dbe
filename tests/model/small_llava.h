// A small LlavaModel for the model tests that need real forwards and gradients: CLIP of 2 layers,
// a 2-layer LLaMA with grouped-query attention, order-one random weights (so log-probs and
// gradients are far from trivial).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "perpo/model/llava.h"

namespace perpo::test {

inline constexpr int kSmallImageToken = 49;

inline ModelConfig small_llava_config() {
  ModelConfig config;
  config.vision.hidden_size = 16;
  config.vision.intermediate_size = 32;
  config.vision.num_hidden_layers = 2;
  config.vision.num_attention_heads = 2;
  config.vision.image_size = 16;
  config.vision.patch_size = 8;  // 4 patches
  config.text.vocab_size = 50;
  config.text.hidden_size = 32;
  config.text.intermediate_size = 48;
  config.text.num_hidden_layers = 2;
  config.text.num_attention_heads = 4;
  config.text.num_key_value_heads = 2;  // grouped-query attention
  config.image_token_index = kSmallImageToken;
  return config;
}

inline LlavaModel make_small_llava(std::uint64_t seed, const ModelConfig& config) {
  torch::manual_seed(seed);
  LlavaModel model(config);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.copy_(torch::randn_like(p) * 0.3);
  return model;
}

/// A prompt of 3 text tokens, the image's 4 tokens and 2 text tokens (P = 9) with its image.
inline torch::Tensor small_prompt_ids() {
  const int i = kSmallImageToken;
  return torch::tensor({{1, 5, 9, i, i, i, i, 12, 30}}, torch::kInt64);  // (1, P)
}

/// Copies of the gradients of the parameters that have one.
inline std::map<std::string, torch::Tensor> parameter_gradients(torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> grads;
  for (auto& item : model.named_parameters()) {
    if (item.value().grad().defined()) grads[item.key()] = item.value().grad().clone();
  }
  return grads;
}

inline void clear_gradients(torch::nn::Module& model) {
  for (auto& p : model.parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

/// Largest relative difference (norm of difference / norm of b) over the gradients of b.
inline double max_relative_difference(const std::map<std::string, torch::Tensor>& a,
                                      const std::map<std::string, torch::Tensor>& b) {
  double worst = 0.0;
  for (const auto& [name, grad] : b) {
    auto it = a.find(name);
    if (it == a.end()) return INFINITY;
    const double scale = grad.norm().item<double>();
    const double diff = (it->second - grad).norm().item<double>();
    worst = std::max(worst, diff / std::max(scale, 1e-12));
  }
  return worst;
}

}  // namespace perpo::test
