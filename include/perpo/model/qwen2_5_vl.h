// Qwen2.5-VL: the vision tower (qwen_vision.h), whose merged tokens replace the prompt's
// <|image_pad|> tokens, and the Qwen2 decoder with multimodal rotary positions (qwen_rope.h), as
// transformers' Qwen2_5_VLForConditionalGeneration (4.57): Qwen2_5_VLModel.forward (image features
// scattered into the embeddings with masked_scatter, positions from get_rope_index) and
// Qwen2_5_VLTextModel (RMSNorm pre-norm blocks, grouped-query attention with q/k/v biases, SwiGLU
// MLP, final RMSNorm), then lm_head (untied, or embed_tokens' weight when tie_word_embeddings).
//
//   Qwen2_5VLModel model(load_qwen2_5_vl_config(dir));
//   Qwen2_5VLOutput out = model->forward(ids, pixel_values, grid_thw, attention_mask);  // prompt
//   // one greedy step: the next token continues at P + rope_deltas on all three position rows
//   Qwen2_5VLOutput step = model->decode(next_ids, out.rope_deltas, out.present, key_mask);
//
// Shape legend: B = batch, T = new tokens, P = cached tokens, C = hidden size, V = vocab,
// S = image patches, M = merged image tokens (S / merge^2), I = images.
// Parameter names (perpo's): visual.* (qwen_vision.h), language_model.* (llama.h's decoder names,
// plus layers.N.self_attn.{q,k,v}_proj.bias), lm_head.weight (absent when tied). The Hub's files
// name the decoder "model.*" and transformers >= 4.52 "model.language_model.*" (and the tower
// "model.visual.*").
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "perpo/image/qwen_vl_preprocess.h"
#include "perpo/model/kv_cache.h"
#include "perpo/model/llama.h"
#include "perpo/model/lora_linear.h"
#include "perpo/model/qwen2_5_vl_config.h"
#include "perpo/model/qwen_rope.h"
#include "perpo/model/qwen_vision.h"
#include "perpo/model/vlm.h"

namespace perpo {

/// The Qwen2 decoder: LLaMA's (llama.h) with q/k/v biases and the multimodal rotary. The
/// positions are (3, B, T) (qwen_rope.h); everything else is LlamaModelImpl's (KV cache, padding
/// mask, both attention implementations, gradient checkpointing).
class Qwen2_5TextModelImpl : public LlamaModelImpl {
 public:
  explicit Qwen2_5TextModelImpl(const Qwen2_5VLConfig& config);

  /// embeds (B, T, C); positions (3, B, T) int64; key_mask (B, P+T) (1 = real token) or
  /// undefined; past: keys/values of P earlier tokens or null. As LlamaModelImpl::forward.
  DecoderOutput forward(const torch::Tensor& embeds, const torch::Tensor& positions,
                        const torch::Tensor& key_mask = {}, const KVCache* past = nullptr);
  /// Attention computed by `core` (LlamaModelImpl::forward_with), positions (3, B, T).
  torch::Tensor forward_with(const torch::Tensor& embeds, const torch::Tensor& positions,
                             const AttentionCore& core);

  MultimodalRotary rotary;
};
TORCH_MODULE(Qwen2_5TextModel);

/// A forward's result.
struct Qwen2_5VLOutput {
  torch::Tensor logits;       // (B, T, V)
  KVCache present;            // keys/values of the T tokens (append to a cache yourself)
  torch::Tensor positions;    // (3, B, T) the positions used
  torch::Tensor rope_deltas;  // (B,) the prompt's: continuation t is at P + t + rope_deltas
};

class Qwen2_5VLModelImpl : public VisionLanguageModel {
 public:
  explicit Qwen2_5VLModelImpl(const Qwen2_5VLConfig& config);

  /// The vision tower's merged tokens: pixel_values (S, 1176), grid_thw (I, 3) -> (M, C).
  torch::Tensor image_features(const torch::Tensor& pixel_values, const torch::Tensor& grid_thw);
  /// Token embeddings with image_features scattered over the image_token_id positions in order
  /// (row by row). pixel_values/grid_thw undefined for text only. Throws perpo::Error (input)
  /// when the image tokens and the merged tokens differ in number. -> (B, T, C)
  torch::Tensor embed(const torch::Tensor& input_ids, const torch::Tensor& pixel_values,
                      const torch::Tensor& grid_thw);
  /// A prompt: input_ids (B, T), pixel_values (S, 1176) and grid_thw (I, 3) (undefined for text
  /// only), attention_mask (B, T) (1 = real token, any padding) or undefined. Positions from
  /// qwen_rope_index. Gradients flow into every parameter, the tower's included.
  Qwen2_5VLOutput forward(const torch::Tensor& input_ids, const torch::Tensor& pixel_values = {},
                          const torch::Tensor& grid_thw = {},
                          const torch::Tensor& attention_mask = {});
  /// Text tokens continuing a cache: input_ids (B, T) after past's P tokens, at positions
  /// P + t + rope_deltas (the prompt's forward's); key_mask (B, P + T) or undefined.
  Qwen2_5VLOutput decode(const torch::Tensor& input_ids, const torch::Tensor& rope_deltas,
                         const KVCache& past, const torch::Tensor& key_mask = {});
  /// Embeddings (B, T, C) at positions (3, B, T): the decoder and the head (callers that build
  /// their own embeddings or positions).
  Qwen2_5VLOutput forward_embeds(const torch::Tensor& embeds, const torch::Tensor& positions,
                                 const torch::Tensor& key_mask = {}, const KVCache* past = nullptr);

  const Qwen2_5VLConfig& config() const { return config_; }

  // VisionLanguageModel (vlm.h): images as patches (S, 1176) with grid_thw (I, 3); positions from
  // qwen_rope_index, offsets = rope_deltas; 1-D text positions become three equal rows.
  std::string model_type() const override { return "qwen2_5_vl"; }
  std::int64_t image_token_id() const override { return config_.image_token_id; }
  std::int64_t context_length() const override { return config_.text.max_position_embeddings; }
  /// The merged patch count of the file's smart_resize size under image_options.
  int image_tokens(const std::filesystem::path& image) const override;
  /// preprocess_qwen_vl_image with image_options: patches (S, 1176), grid_thw (1, 3). load_model
  /// fills image_options from preprocessor_config.json and image.min_pixels / max_pixels;
  /// `config`'s other keys (size, aspect, mean, std) are LLaVA's and do not apply.
  ModelImage prepare_image(const RgbImage& image, const ImageConfig& config) const override;
  void check_image_config(const ImageConfig& config) const override;
  BoxUnits box_units() const override { return BoxUnits::kPixels; }
  ImageDims box_frame(const std::filesystem::path& image) const override;
  PromptRun run_prompts(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                        const ModelImage& images) override;
  DecoderOutput run_text(const torch::Tensor& embeds, const torch::Tensor& positions,
                         const torch::Tensor& key_mask = {},
                         const KVCache* past = nullptr) override;
  torch::Tensor run_text_with(const torch::Tensor& embeds, const torch::Tensor& positions,
                              const AttentionCore& core) override;
  ModelImage join_images(const std::vector<ModelImage>& images) const override;
  /// Recompute each decoder layer and each vision block in backward.
  void set_gradient_checkpointing(bool enabled) override {
    language_model->set_gradient_checkpointing(enabled);
    visual->gradient_checkpointing = enabled;
  }
  LlamaModelImpl& decoder() override { return *language_model; }
  LoraLinearImpl* head() override { return lm_head ? lm_head.get() : nullptr; }
  void export_hf(const std::filesystem::path& out_dir, const ExportOptions& options) override;

  /// The image processor's settings: patch, merge and temporal sizes from vision_config; min /
  /// max pixels, mean and std from the checkpoint's preprocessor_config.json, min / max pixels
  /// overridden by image.min_pixels / max_pixels (load.h).
  QwenVlImageOptions image_options;

  Qwen2_5VisionTransformer visual{nullptr};
  Qwen2_5TextModel language_model{nullptr};
  LoraLinear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  Qwen2_5VLConfig config_;
};
TORCH_MODULE(Qwen2_5VLModel);

}  // namespace perpo
