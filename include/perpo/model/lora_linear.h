// LoraLinear: a linear layer y = x W^T + b that can carry a low-rank adapter
//   y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,   A: (r, in), B: (out, r), B starts at 0,
// so a freshly enabled adapter leaves the output unchanged. Every linear layer of perpo's models is
// a LoraLinear; apply_lora (lora.h) enables adapters on the configured ones.
//
// Parameter names: "weight", "bias" (as torch::nn::Linear, so HF names map 1:1), and when enabled
// "lora_A", "lora_B" (never written to HF exports: merge() folds them into weight first).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace perpo {

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(std::int64_t in_features, std::int64_t out_features, bool with_bias);

  /// (..., in) -> (..., out)
  torch::Tensor forward(const torch::Tensor& x);

  /// Adds A (r, in) ~ kaiming-uniform and B (out, r) = 0. Throws if already enabled.
  void enable_lora(int r, double alpha, double dropout);
  bool lora_enabled() const { return lora_A.defined(); }
  /// Folds the adapter into weight (W += (alpha/r) B A) and removes it.
  void merge();
  /// W + (alpha/r) B A without changing the module (for export of an unmerged model).
  torch::Tensor merged_weight() const;

  std::int64_t in_features, out_features;
  torch::Tensor weight;  // (out, in)
  torch::Tensor bias;    // (out) or undefined
  torch::Tensor lora_A;  // (r, in) or undefined
  torch::Tensor lora_B;  // (out, r) or undefined
  double lora_scale = 0.0;
  double lora_dropout = 0.0;
};
TORCH_MODULE(LoraLinear);

}  // namespace perpo
