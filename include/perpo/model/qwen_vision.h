// Qwen2.5-VL's vision tower as transformers' Qwen2_5_VisionTransformerPretrainedModel (4.57):
// Conv3d patch embedding, blocks of RMSNorm + attention with 2-D rotary positions (window
// attention, full attention in fullatt_block_indexes) and RMSNorm + SwiGLU MLP, then the patch
// merger (merge^2 patches -> one token of out_hidden_size), in the images' own token order.
//
//   perpo::Qwen2_5VisionTransformer visual(perpo::load_qwen_vision_config(dir));
//   torch::Tensor tokens = visual(pixel_values, grid_thw);  // (M, out_hidden_size)
//
// Shape legend: I = images, S = patches of all images (sum of t * h * w), M = S / merge^2 merged
// tokens, C = hidden_size, H = heads, D = head dim, P = values per patch (1176).
// Parameter names, as in HF under "visual." (Hub layout) or "model.visual." (transformers >= 4.52):
//   patch_embed.proj.weight (C, in_channels, temporal_patch_size, patch, patch)
//   blocks.N.{norm1,norm2}.weight, blocks.N.attn.{qkv,proj}.{weight,bias},
//   blocks.N.mlp.{gate_proj,up_proj,down_proj}.{weight,bias}
//   merger.ln_q.weight, merger.mlp.0.{weight,bias}, merger.mlp.2.{weight,bias}
// Every linear layer is a LoraLinear (lora.h can put adapters on them). The window layout, the
// rotary angles and the attention over segments are in qwen_vision_windows.h.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "perpo/model/llama.h"  // RmsNorm
#include "perpo/model/lora_linear.h"
#include "perpo/model/qwen_vision_config.h"
#include "perpo/model/qwen_vision_windows.h"

namespace perpo {

/// Conv3d with kernel = stride = (temporal_patch_size, patch, patch) and no bias, applied to rows
/// of P values: one matmul with the kernel flattened.
class QwenPatchEmbedImpl : public torch::nn::Module {
 public:
  explicit QwenPatchEmbedImpl(const QwenVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& pixel_values);  // (S, P) -> (S, C)

  torch::nn::Conv3d proj{nullptr};  // holds weight (C, in_channels, t, patch, patch)
};
TORCH_MODULE(QwenPatchEmbed);

class QwenVisionAttentionImpl : public torch::nn::Module {
 public:
  explicit QwenVisionAttentionImpl(const QwenVisionConfig& config);
  /// x (S, C), cos/sin (S, D) -> (S, C): attention within each segment.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionSegments& segments);

  LoraLinear qkv{nullptr}, proj{nullptr};
  std::int64_t heads, head_dim;
};
TORCH_MODULE(QwenVisionAttention);

/// SwiGLU with biases: down(act(gate(x)) * up(x)).
class QwenVisionMlpImpl : public torch::nn::Module {
 public:
  explicit QwenVisionMlpImpl(const QwenVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (S, C) -> (S, C)

  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::string activation;
};
TORCH_MODULE(QwenVisionMlp);

/// x + attn(norm1(x)), then + mlp(norm2(.)); RMSNorm eps 1e-6.
class QwenVisionBlockImpl : public torch::nn::Module {
 public:
  explicit QwenVisionBlockImpl(const QwenVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionSegments& segments);  // (S, C) -> (S, C)

  RmsNorm norm1{nullptr}, norm2{nullptr};
  QwenVisionAttention attn{nullptr};
  QwenVisionMlp mlp{nullptr};
};
TORCH_MODULE(QwenVisionBlock);

/// The merger's MLP under HF's nn.Sequential names: "0" Linear, (1: GELU), "2" Linear.
class QwenMergerMlpImpl : public torch::nn::Module {
 public:
  QwenMergerMlpImpl(std::int64_t in_features, std::int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x);  // (M, 4C) -> (M, out)

  LoraLinear fc_in{nullptr}, fc_out{nullptr};  // registered as "0" and "2"
};
TORCH_MODULE(QwenMergerMlp);

/// RMSNorm (eps 1e-6) of each patch, then the merge^2 patches of a merged token side by side
/// through Linear -> GELU (erf) -> Linear.
class QwenPatchMergerImpl : public torch::nn::Module {
 public:
  explicit QwenPatchMergerImpl(const QwenVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (S, C) -> (M, out_hidden_size)

  RmsNorm ln_q{nullptr};
  QwenMergerMlp mlp{nullptr};
  std::int64_t merged_width;  // C * merge^2
};
TORCH_MODULE(QwenPatchMerger);

class Qwen2_5VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit Qwen2_5VisionTransformerImpl(const QwenVisionConfig& config);

  /// pixel_values (S, P) (as the image processor returns them, any float dtype; cast to the
  /// weights' dtype), grid_thw (I, 3) -> (M, out_hidden_size), each image's merged tokens in its
  /// row-major merged-grid order, images one after the other. Throws perpo::Error (input) when
  /// grid_thw is malformed or does not account for every row of pixel_values.
  torch::Tensor forward(const torch::Tensor& pixel_values, const torch::Tensor& grid_thw);

  QwenVisionConfig config;
  /// Recompute each block's activations in backward instead of keeping them (recompute.h).
  bool gradient_checkpointing = false;

  QwenPatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  std::vector<QwenVisionBlock> typed_blocks;  // the same modules, typed
  QwenPatchMerger merger{nullptr};
};
TORCH_MODULE(Qwen2_5VisionTransformer);

}  // namespace perpo
