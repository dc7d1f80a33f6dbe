// CLIP vision transformer as in transformers' CLIPVisionModel (LLaVA's vision tower).
//
// Shape legend: I = images, C = vision hidden size, Np = patches, L = encoder layers.
// Parameter names follow HF under the tower: vision_model.embeddings.patch_embedding.weight,
// vision_model.embeddings.class_embedding, vision_model.embeddings.position_embedding.weight,
// vision_model.pre_layrnorm.{weight,bias} (HF's spelling), vision_model.encoder.layers.N.
// {layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}.*,
// vision_model.post_layernorm.* (in every HF checkpoint; LLaVA does not use it).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "perpo/model/lora_linear.h"
#include "perpo/model/model_config.h"

namespace perpo {

/// Patch embedding (conv without bias) + class embedding + learned position embedding.
class ClipEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ClipEmbeddingsImpl(const VisionConfig& config);
  /// pixel_values (I, 3, H, W) -> (I, 1 + Np, C)
  torch::Tensor forward(const torch::Tensor& pixel_values);

  torch::nn::Conv2d patch_embedding{nullptr};
  torch::Tensor class_embedding;  // (C)
  torch::nn::Embedding position_embedding{nullptr};
  VisionConfig config;
};
TORCH_MODULE(ClipEmbeddings);

class ClipAttentionImpl : public torch::nn::Module {
 public:
  explicit ClipAttentionImpl(const VisionConfig& config);
  /// (I, S, C) -> (I, S, C), every token attends to every token
  torch::Tensor forward(const torch::Tensor& x);

  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  std::int64_t heads, head_dim;
};
TORCH_MODULE(ClipAttention);

class ClipMlpImpl : public torch::nn::Module {
 public:
  explicit ClipMlpImpl(const VisionConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (I, S, C) -> (I, S, C)

  LoraLinear fc1{nullptr}, fc2{nullptr};
  std::string activation;
};
TORCH_MODULE(ClipMlp);

/// Pre-norm transformer block: x + attn(ln1(x)), then + mlp(ln2(.)).
class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderLayerImpl(const VisionConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (I, S, C) -> (I, S, C)

  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipAttention self_attn{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

class ClipEncoderImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderImpl(const VisionConfig& config);

  torch::nn::ModuleList layers{nullptr};
  std::vector<ClipEncoderLayer> typed_layers;  // the same modules, typed
};
TORCH_MODULE(ClipEncoder);

/// HF's CLIPVisionTransformer ("vision_model").
class ClipVisionTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipVisionTransformerImpl(const VisionConfig& config);

  /// HF's hidden_states[layer]: index 0 is the embeddings after pre_layrnorm, index i the output
  /// of encoder layer i; negative indices count from the end (-1 = last layer, -2 = the one
  /// before). Runs only the layers needed. pixel_values (I, 3, H, W) -> (I, 1 + Np, C)
  torch::Tensor hidden_state(const torch::Tensor& pixel_values, int layer);

  ClipEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};
  ClipEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};  // registered for strict loading; unused by LLaVA
};
TORCH_MODULE(ClipVisionTransformer);

/// HF's CLIPVisionModel: holds "vision_model" (so names read vision_tower.vision_model.*).
class ClipVisionTowerImpl : public torch::nn::Module {
 public:
  explicit ClipVisionTowerImpl(const VisionConfig& config);

  ClipVisionTransformer vision_model{nullptr};
};
TORCH_MODULE(ClipVisionTower);

}  // namespace perpo
