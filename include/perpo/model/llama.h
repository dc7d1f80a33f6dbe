// LLaMA decoder as in transformers' LlamaModel: token embedding, pre-norm blocks with RMSNorm,
// rotary position embeddings (rotate_half convention), grouped-query attention and a SwiGLU MLP,
// final RMSNorm. The LM head lives in LlavaModel (it may be tied to embed_tokens).
//
// Shape legend: B = batch, T = new tokens, P = cached (past) tokens, C = hidden size,
// H = query heads, Hkv = key/value heads, D = head dim.
// Parameter names (under "language_model."): embed_tokens.weight, norm.weight,
// layers.N.{input_layernorm, post_attention_layernorm}.weight,
// layers.N.self_attn.{q,k,v,o}_proj.weight, layers.N.mlp.{gate,up,down}_proj.weight.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "perpo/model/attention.h"
#include "perpo/model/kv_cache.h"
#include "perpo/model/lora_linear.h"
#include "perpo/model/model_config.h"

namespace perpo {

/// x / sqrt(mean(x^2) + eps) * weight, computed in fp32 and cast back as in HF.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(std::int64_t size, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RmsNorm);

/// Rotary position embedding tables. inv_freq is a plain member (not a parameter or buffer), so
/// checkpoints never see it; it moves to the positions' device at the first use there and stays
/// (no host-to-device copy per forward). Supports rope_scaling_type "" / "default" and "linear".
class RotaryEmbedding {
 public:
  explicit RotaryEmbedding(const TextConfig& config);
  /// positions (B or 1, T) int64 -> cos, sin each (B or 1, 1, T, D) in `dtype`.
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& positions,
                                                  torch::ScalarType dtype) const;

 private:
  mutable torch::Tensor inv_freq_;  // (D/2) fp32, on the device of the last positions seen
  mutable std::mutex move_;         // guards the one-time move of inv_freq_ to another device
};

/// x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1). x (B, heads, T, D).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin);

/// Attention supplied by the caller, for caches the decoder does not manage itself (the
/// generate module's segmented cache): q (B, H, T, D) and this call's k, v (B, Hkv, T, D), after
/// rotary, and the softmax scale -> attention output (B, H, T, D). `layer` is the layer's index.
using AttentionCore =
    std::function<torch::Tensor(std::size_t layer, const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, double scale)>;

/// What one decoder layer returns: its output and the keys/values of the tokens it processed.
struct LayerOutput {
  torch::Tensor hidden;  // (B, T, C)
  torch::Tensor key;     // (B, Hkv, T, D), after rotary
  torch::Tensor value;   // (B, Hkv, T, D)
};

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const TextConfig& config);
  /// x (B, T, C); cos/sin (B or 1, 1, T, D); mask from make_attention_mask for this call;
  /// past_k/past_v (B or 1, Hkv, P, D) or undefined.
  LayerOutput forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                      const AttentionMask& mask, const torch::Tensor& past_k,
                      const torch::Tensor& past_v);
  /// Same projections and rotary, attention computed by `core` (called with `layer`).
  LayerOutput forward_with(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin, std::size_t layer, const AttentionCore& core);

  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  std::int64_t heads, kv_heads, head_dim;
};
TORCH_MODULE(LlamaAttention);

/// down(act(gate(x)) * up(x))
class LlamaMlpImpl : public torch::nn::Module {
 public:
  explicit LlamaMlpImpl(const TextConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, C) -> (B, T, C)

  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::string activation;
};
TORCH_MODULE(LlamaMlp);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const TextConfig& config);
  /// Arguments as LlamaAttentionImpl::forward; hidden (B, T, C).
  LayerOutput forward(const torch::Tensor& hidden, const torch::Tensor& cos,
                      const torch::Tensor& sin, const AttentionMask& mask,
                      const torch::Tensor& past_k, const torch::Tensor& past_v);
  /// Same block, attention computed by `core` (LlamaAttentionImpl::forward_with).
  LayerOutput forward_with(const torch::Tensor& hidden, const torch::Tensor& cos,
                           const torch::Tensor& sin, std::size_t layer, const AttentionCore& core);

  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  LlamaMlp mlp{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

/// The decoder's output: final-normed hidden states and this call's keys/values per layer.
struct DecoderOutput {
  torch::Tensor hidden;  // (B, T, C), after the final norm
  KVCache present;       // keys/values of the T new tokens only (append to a cache yourself)
};

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const TextConfig& config);

  /// embeds (B, T, C); positions (B or 1, T) int64; key_mask (B, P+T) (true/1 = real token) or
  /// undefined; past: cached keys/values of P earlier tokens, batch B or 1 (shared prefix), or
  /// null. Works with autograd (gradients flow into `past`) and under no-grad.
  DecoderOutput forward(const torch::Tensor& embeds, const torch::Tensor& positions,
                        const torch::Tensor& key_mask = {}, const KVCache* past = nullptr);

  /// The decoder with each layer's attention computed by `core` over a cache the caller keeps
  /// (incremental decoding in the generate module; no gradient checkpointing here).
  /// embeds (B, T, C), positions (B or 1, T) -> final-normed hidden states (B, T, C).
  torch::Tensor forward_with(const torch::Tensor& embeds, const torch::Tensor& positions,
                             const AttentionCore& core);

  /// forward and forward_with with the rotary tables given instead of positions: cos, sin
  /// (B or 1, 1, T, D) in embeds' dtype. For decoders whose rotary angles are not one position
  /// per token times inv_freq (Qwen2.5-VL's multimodal rotary, qwen_rope.h).
  DecoderOutput forward_rotated(const torch::Tensor& embeds, const torch::Tensor& cos,
                                const torch::Tensor& sin, const torch::Tensor& key_mask = {},
                                const KVCache* past = nullptr);
  torch::Tensor forward_with_rotated(const torch::Tensor& embeds, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const AttentionCore& core);

  /// Recompute each layer in backward instead of keeping its activations (training only).
  void set_gradient_checkpointing(bool enabled) { gradient_checkpointing_ = enabled; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::vector<LlamaDecoderLayer> typed_layers;  // the same modules, typed
  RmsNorm norm{nullptr};
  TextConfig config;

 private:
  RotaryEmbedding rotary_;
  bool gradient_checkpointing_ = false;
};
TORCH_MODULE(LlamaModel);

}  // namespace perpo
