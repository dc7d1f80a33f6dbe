#include "perpo/model/clip.h"

#include <torch/torch.h>

#include <cmath>

#include "perpo/core/error.h"
#include "perpo/model/activations.h"
#include "perpo/model/attention.h"

namespace perpo {
namespace {
torch::nn::LayerNorm layer_norm(const VisionConfig& config) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps));
}
}  // namespace

ClipEmbeddingsImpl::ClipEmbeddingsImpl(const VisionConfig& config_) : config(config_) {
  PERPO_CHECK_INPUT(config.patch_size > 0 && config.image_size % config.patch_size == 0,
                    "vision_config: image_size ", config.image_size,
                    " must be a multiple of patch_size ", config.patch_size);
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(config.num_channels, config.hidden_size, config.patch_size)
              .stride(config.patch_size)
              .bias(false)));
  class_embedding = register_parameter("class_embedding", torch::randn({config.hidden_size}));
  position_embedding = register_module(
      "position_embedding", torch::nn::Embedding(config.num_patches() + 1, config.hidden_size));
}

torch::Tensor ClipEmbeddingsImpl::forward(const torch::Tensor& pixel_values) {
  PERPO_CHECK(pixel_values.dim() == 4 && pixel_values.size(1) == config.num_channels &&
                  pixel_values.size(2) == config.image_size &&
                  pixel_values.size(3) == config.image_size,
              "pixel_values must be (I, ", config.num_channels, ", ", config.image_size, ", ",
              config.image_size, "), got ", pixel_values.sizes());
  const auto images = pixel_values.size(0);
  torch::Tensor pixels = pixel_values.to(patch_embedding->weight.scalar_type());
  torch::Tensor patches = patch_embedding(pixels).flatten(2).transpose(1, 2);    // (I, Np, C)
  torch::Tensor cls = class_embedding.view({1, 1, -1}).expand({images, 1, -1});  // (I, 1, C)
  torch::Tensor tokens = torch::cat({cls, patches}, 1);                          // (I, 1+Np, C)
  return tokens + position_embedding->weight.unsqueeze(0);                       // (I, 1+Np, C)
}

ClipAttentionImpl::ClipAttentionImpl(const VisionConfig& config)
    : heads(config.num_attention_heads), head_dim(config.hidden_size / config.num_attention_heads) {
  PERPO_CHECK_INPUT(config.hidden_size % config.num_attention_heads == 0,
                    "vision_config: hidden_size ", config.hidden_size,
                    " is not divisible by num_attention_heads ", config.num_attention_heads);
  const auto C = config.hidden_size;
  q_proj = register_module("q_proj", LoraLinear(C, C, true));
  k_proj = register_module("k_proj", LoraLinear(C, C, true));
  v_proj = register_module("v_proj", LoraLinear(C, C, true));
  out_proj = register_module("out_proj", LoraLinear(C, C, true));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
  const auto I = x.size(0), S = x.size(1);
  auto split_heads = [&](const torch::Tensor& t) {
    return t.view({I, S, heads, head_dim}).transpose(1, 2);  // (I, heads, S, d)
  };
  torch::Tensor q = split_heads(q_proj(x)), k = split_heads(k_proj(x)), v = split_heads(v_proj(x));
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  torch::Tensor out = attention_impl() == AttentionImpl::sdpa
                          ? sdpa(q, k, v, {}, /*causal=*/false, scale)
                          : attend(q, {}, {}, k, v, {}, scale);            // (I, heads, S, d)
  return out_proj(out.transpose(1, 2).reshape({I, S, heads * head_dim}));  // (I, S, C)
}

ClipMlpImpl::ClipMlpImpl(const VisionConfig& config) : activation(config.hidden_act) {
  check_activation(activation, "vision_config.hidden_act");
  fc1 = register_module("fc1", LoraLinear(config.hidden_size, config.intermediate_size, true));
  fc2 = register_module("fc2", LoraLinear(config.intermediate_size, config.hidden_size, true));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  return fc2(apply_activation(activation, fc1(x)));
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const VisionConfig& config) {
  layer_norm1 = register_module("layer_norm1", layer_norm(config));
  self_attn = register_module("self_attn", ClipAttention(config));
  layer_norm2 = register_module("layer_norm2", layer_norm(config));
  mlp = register_module("mlp", ClipMlp(config));
}

torch::Tensor ClipEncoderLayerImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x + self_attn(layer_norm1(x));  // (I, S, C)
  return h + mlp(layer_norm2(h));
}

ClipEncoderImpl::ClipEncoderImpl(const VisionConfig& config) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    typed_layers.push_back(ClipEncoderLayer(config));
    layers->push_back(typed_layers.back());
  }
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const VisionConfig& config) {
  embeddings = register_module("embeddings", ClipEmbeddings(config));
  pre_layrnorm = register_module("pre_layrnorm", layer_norm(config));
  encoder = register_module("encoder", ClipEncoder(config));
  post_layernorm = register_module("post_layernorm", layer_norm(config));
}

torch::Tensor ClipVisionTransformerImpl::hidden_state(const torch::Tensor& pixel_values,
                                                      int layer) {
  const int layers = static_cast<int>(encoder->typed_layers.size());
  const int index = layer < 0 ? layers + 1 + layer : layer;
  PERPO_CHECK_INPUT(index >= 0 && index <= layers, "vision_feature_layer ", layer,
                    " is outside the ", layers + 1, " hidden states of a ", layers,
                    "-layer vision tower");
  torch::Tensor h = pre_layrnorm(embeddings(pixel_values));  // (I, 1+Np, C) = hidden_states[0]
  for (int i = 0; i < index; ++i) h = encoder->typed_layers[i](h);
  return h;
}

ClipVisionTowerImpl::ClipVisionTowerImpl(const VisionConfig& config) {
  vision_model = register_module("vision_model", ClipVisionTransformer(config));
}

}  // namespace perpo
