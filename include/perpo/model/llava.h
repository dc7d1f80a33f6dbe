// LLaVA: CLIP vision tower -> 2-layer projector -> LLaMA decoder, with projected image features
// spliced in at the image-token positions of the prompt (transformers'
// LlavaForConditionalGeneration).
//
// Shape legend: B = batch, S = sequence, I = images, V = vocab, C = text hidden size,
// P = prefix (prompt) tokens, N = answers sharing one prefix, T = answer tokens.
//
//   LlavaModel model(config);
//   torch::Tensor logits = model->forward(ids, pixel_values);                       // (B, S, V)
//   PrefixState prefix = model->encode_prefix(prompt_ids, pixel_values);  // once per list
//   torch::Tensor logps = model->answer_logps(prefix, answer_ids, answer_mask);  // (N, T)
//   logps.sum().backward();   // gradients flow through the answers into the shared prefix
//
// The family interface (vlm.h) is implemented here; prefix sharing and answer log-probs live
// there, written once for every family.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "perpo/model/clip.h"
#include "perpo/model/kv_cache.h"
#include "perpo/model/llama.h"
#include "perpo/model/lora_linear.h"
#include "perpo/model/model_config.h"
#include "perpo/model/vlm.h"

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

class LlavaModelImpl : public VisionLanguageModel {
 public:
  explicit LlavaModelImpl(const ModelConfig& config);

  /// Projected image features: pixel_values (I, 3, H, W) -> (I, image_tokens(), C).
  torch::Tensor image_features(const torch::Tensor& pixel_values);
  /// Token embeddings with image features spliced at ids == image_token_index, in order (image 0
  /// fills the first image_tokens() image positions, ...). ids (B, S) int64; pixel_values
  /// (I, 3, H, W) or undefined when ids hold no image token. -> (B, S, C)
  torch::Tensor embed(const torch::Tensor& ids, const torch::Tensor& pixel_values);

  /// Full forward: ids (B, S), pixel_values (I, 3, H, W) or undefined, attention_mask (B, S)
  /// (1 = real token) or undefined, positions (B or 1, S) or undefined (= 0..S-1, as transformers
  /// without position_ids). -> logits (B, S, V)
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& pixel_values = {},
                        const torch::Tensor& attention_mask = {},
                        const torch::Tensor& positions = {});

  const ModelConfig& config() const { return config_; }

  // VisionLanguageModel (vlm.h): pixel values (I, 3, H, W), 1-D positions, offsets 0.
  std::string model_type() const override { return "llava"; }
  std::int64_t image_token_id() const override { return config_.image_token_index; }
  std::int64_t context_length() const override { return config_.text.max_position_embeddings; }
  int image_tokens(const std::filesystem::path& image) const override;
  ModelImage prepare_image(const RgbImage& image, const ImageConfig& config) const override;
  void check_image_config(const ImageConfig& config) const override;
  BoxUnits box_units() const override { return BoxUnits::kNormalized; }
  PromptRun run_prompts(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                        const ModelImage& images) override;
  DecoderOutput run_text(const torch::Tensor& embeds, const torch::Tensor& positions,
                         const torch::Tensor& key_mask = {},
                         const KVCache* past = nullptr) override;
  torch::Tensor run_text_with(const torch::Tensor& embeds, const torch::Tensor& positions,
                              const AttentionCore& core) override;
  ModelImage join_images(const std::vector<ModelImage>& images) const override;
  /// Recompute each decoder layer in backward (saves activation memory in training).
  void set_gradient_checkpointing(bool enabled) override {
    language_model->set_gradient_checkpointing(enabled);
  }
  LlamaModelImpl& decoder() override { return *language_model; }
  LoraLinearImpl* head() override { return lm_head ? lm_head.get() : nullptr; }
  void export_hf(const std::filesystem::path& out_dir, const ExportOptions& options) override;

  ClipVisionTower vision_tower{nullptr};
  MultiModalProjector multi_modal_projector{nullptr};
  LlamaModel language_model{nullptr};
  LoraLinear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  /// Checks that `is_image` (B, S) marks `expected` positions; `what` says what gave them.
  void check_image_positions(const torch::Tensor& is_image, std::int64_t expected,
                             const std::string& what) const;

  ModelConfig config_;
};
TORCH_MODULE(LlavaModel);

}  // namespace perpo
