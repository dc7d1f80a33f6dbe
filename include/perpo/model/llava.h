// LLaVA: CLIP vision tower -> 2-layer projector -> LLaMA decoder, with projected image features
// spliced in at the image-token positions of the prompt (transformers'
// LlavaForConditionalGeneration).
//
// Shape legend: B = batch, S = sequence, I = images, V = vocab, C = text hidden size,
// P = prefix (prompt) tokens, N = answers sharing one prefix, T = answer tokens.
//
//   LlavaModel model(config);
//   torch::Tensor logits = model->forward(ids, pixel_values);                       // (B, S, V)
//   PrefixState prefix = model->encode_prefix(prompt_ids, pixel_values);            // once per
//   list torch::Tensor logps = model->answer_logps(prefix, answer_ids, answer_mask);     // (N, T)
//   logps.sum().backward();   // gradients flow through the answers into the shared prefix
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "perpo/model/clip.h"
#include "perpo/model/kv_cache.h"
#include "perpo/model/llama.h"
#include "perpo/model/lora_linear.h"
#include "perpo/model/model_config.h"

namespace perpo {

/// linear_2(act(linear_1(image features))): vision hidden -> text hidden.
class MultiModalProjectorImpl : public torch::nn::Module {
 public:
  explicit MultiModalProjectorImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& features);  // (I, Ni, Cv) -> (I, Ni, C)

  LoraLinear linear_1{nullptr}, linear_2{nullptr};
  std::string activation;
};
TORCH_MODULE(MultiModalProjector);

/// A prompt (with its image) run once through the decoder, shared by N continuations.
struct PrefixState {
  KVCache kv;                 // per layer keys/values (1, Hkv, P, D), with autograd history
  torch::Tensor last_hidden;  // (1, C) final-normed hidden state of the last prompt token
  std::int64_t length = 0;    // P
};

class LlavaModelImpl : public torch::nn::Module {
 public:
  explicit LlavaModelImpl(const ModelConfig& config);

  /// Projected image features: pixel_values (I, 3, H, W) -> (I, image_tokens(), C).
  torch::Tensor image_features(const torch::Tensor& pixel_values);
  /// Token embeddings with image features spliced at ids == image_token_index, in order (image 0
  /// fills the first image_tokens() image positions, ...). ids (B, S) int64; pixel_values
  /// (I, 3, H, W) or undefined when ids hold no image token. -> (B, S, C)
  torch::Tensor embed(const torch::Tensor& ids, const torch::Tensor& pixel_values);
  /// hidden (..., C) -> logits (..., V) through lm_head (embed_tokens' weight when tied).
  torch::Tensor lm_logits(const torch::Tensor& hidden);

  /// Full forward: ids (B, S), pixel_values (I, 3, H, W) or undefined, attention_mask (B, S)
  /// (1 = real token) or undefined, positions (B or 1, S) or undefined (= 0..S-1, as transformers
  /// without position_ids). -> logits (B, S, V)
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& pixel_values = {},
                        const torch::Tensor& attention_mask = {},
                        const torch::Tensor& positions = {});

  /// Runs prompt_ids (1, P) (with pixel_values (1, 3, H, W), or undefined for text only) once.
  PrefixState encode_prefix(const torch::Tensor& prompt_ids, const torch::Tensor& pixel_values);

  /// Per-token log-probs (N, T) of N answers continuing `prefix`: entry (n, t) is
  /// log p(answer_ids[n, t] | prefix, answer_ids[n, :t]), 0 where answer_mask is 0 (right padding).
  /// The prefix keys/values are broadcast (not copied) to the N answers; positions continue at P.
  /// Logits are computed `chunk` answer positions at a time and recomputed in backward (only
  /// their logsumexp is kept), so (N, T, V) is never held at once.
  torch::Tensor answer_logps(const PrefixState& prefix, const torch::Tensor& answer_ids,
                             const torch::Tensor& answer_mask, std::int64_t chunk = 16);

  /// Per-token log-probs (B, A) of the answers inside whole sequences, in one plain forward:
  /// ids (B, S) right-padded with attention_mask (B, S), pixel_values (I, 3, H, W) or undefined;
  /// answer b starts at answer_start[b] (B, int64, >= 1) and covers answer_mask[b] (B, A, right
  /// padding). Entry (b, t) is log p(ids[b, start_b + t] | ids[b, :start_b + t]), 0 where the
  /// mask is 0. Batched SFT runs on it (B records with different prompts); with one prompt
  /// repeated it equals answer_logps (tests/support/model_reference.h).
  torch::Tensor sequence_answer_logps(const torch::Tensor& ids, const torch::Tensor& pixel_values,
                                      const torch::Tensor& attention_mask,
                                      const torch::Tensor& answer_start,
                                      const torch::Tensor& answer_mask, std::int64_t chunk = 16);

  /// Recompute each decoder layer in backward (saves activation memory in training).
  void set_gradient_checkpointing(bool enabled) {
    language_model->set_gradient_checkpointing(enabled);
  }
  const ModelConfig& config() const { return config_; }

  ClipVisionTower vision_tower{nullptr};
  MultiModalProjector multi_modal_projector{nullptr};
  LlamaModel language_model{nullptr};
  LoraLinear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  /// The LM head as one (V, C) weight: lm_head's (merged with its adapter if any), or the tied
  /// embedding.
  torch::Tensor lm_head_weight() const;
  /// (N, T, C) hidden states predicting targets (N, T) -> masked log-probs (N, T) through
  /// token_logps_from_hidden, `chunk` answer positions (chunk * N rows) at a time.
  torch::Tensor chunked_token_logps(const torch::Tensor& hidden, const torch::Tensor& targets,
                                    const torch::Tensor& mask, std::int64_t chunk);

  /// Checks that `is_image` (B, S) marks `expected` positions; `what` says what gave them.
  void check_image_positions(const torch::Tensor& is_image, std::int64_t expected,
                             const std::string& what) const;

  ModelConfig config_;
};
TORCH_MODULE(LlavaModel);

}  // namespace perpo
