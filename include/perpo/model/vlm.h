// VisionLanguageModel: what the rest of perpo asks of a model family. generate, train, eval,
// bench and the demo hold a VisionLanguageModel& and never name a family; LLaVA-1.5 (llava.h)
// and Qwen2.5-VL (qwen2_5_vl.h) implement it.
//
// A family answers a few questions, and perpo's shared algorithms are written once on top:
//   run_prompts     prompts (ids right-padded, with their images) through the decoder: final
//                   hidden states, keys/values, and each row's position offset;
//   run_text        text tokens continuing cached keys/values at given 1-D positions;
//   run_text_with   the same with attention supplied by the caller (the segmented decoding cache);
//   join_images     one prompt's image tensors -> the batch form run_prompts takes;
//   decoder         the text decoder (embedding table, layers, final norm);
//   head            the LM head layer (null when tied to the embedding).
// On top: encode_prefix (a prompt once, shared by N continuations), answer_logps (N answers on a
// shared prefix), sequence_answer_logps (answers inside whole sequences, batched SFT), lm_logits.
//
// Positions. A continuation of a prompt of P real tokens puts its token t at P + t + offset, with
// the offset from run_prompts: 0 for LLaVA (1-D positions), rope_deltas for Qwen2.5-VL, whose
// image tokens take fewer positions than tokens (multimodal rotary, qwen_rope.h). Decoding steps
// and every answer of a list continue there.
//
// Images. Each family keeps its own form: LLaVA a (3, H, W) float image of the vision tower's
// size (batched (I, 3, H, W)); Qwen2.5-VL its processor's patches (S, 1176) with image_grid_thw
// (1, 3) (batched (sum S, 1176) and (I, 3)). A prompt with no image has an undefined tensor.
//
// Boxes. Each family answers grounding prompts in its own units (box_units: LLaVA-1.5
// normalised, Qwen2.5-VL pixels of its resized image, box_frame); generate's BoxConvention reads
// answers and writes SFT targets in them (config reward.box_format overrides).
//
// Shape legend: B = rows, P = prompt tokens, N = answers sharing one prefix, T = answer tokens,
// C = hidden size, V = vocabulary.
//
//   VisionLanguageModel& model = *loaded.model;                         // load.h
//   PrefixState prefix = model.encode_prefix(prompt_ids, model.join_images({image}));
//   torch::Tensor logps = model.answer_logps(prefix, answer_ids, answer_mask);   // (N, T)
//
// Adding a family: a module deriving from this class (its own files in model/), its config
// reader, checkpoint names, and one line in load.cpp's registry of config.json model_type.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/image/image.h"
#include "perpo/model/kv_cache.h"
#include "perpo/model/llama.h"
#include "perpo/model/lora_linear.h"
#include "perpo/reward/box.h"

namespace perpo {

struct ExportOptions;  // checkpoint.h

/// One prompt's image in its family's form (file comment), or undefined tensors for none.
/// Converts from a tensor, so a LLaVA caller passes its pixel values as they are.
struct ModelImage {
  ModelImage() = default;
  ModelImage(torch::Tensor pixels, torch::Tensor grid = {})  // NOLINT: implicit on purpose
      : pixel_values(std::move(pixels)), grid_thw(std::move(grid)) {}

  torch::Tensor pixel_values;  // LLaVA (3, H, W) or (I, 3, H, W); Qwen2.5-VL (S, 1176)
  torch::Tensor grid_thw;      // Qwen2.5-VL (I, 3) int64; LLaVA undefined
  bool defined() const { return pixel_values.defined(); }
  /// Pixel values in `options` (the model's dtype and device), the grid on its device.
  ModelImage to(const torch::TensorOptions& options) const;
};

/// A prompt (with its image) run once through the decoder, shared by N continuations.
struct PrefixState {
  KVCache kv;                        // per layer keys/values (1, Hkv, P, D), with autograd history
  torch::Tensor last_hidden;         // (1, C) final-normed hidden state of the last prompt token
  std::int64_t length = 0;           // P
  std::int64_t position_offset = 0;  // continuation token t sits at position P + t + offset
};

/// run_prompts' result.
struct PromptRun {
  torch::Tensor hidden;                        // (B, P, C) final-normed
  KVCache present;                             // keys/values of the P tokens
  std::vector<std::int64_t> position_offsets;  // B: see the file comment
};

class VisionLanguageModel : public torch::nn::Module {
 public:
  ~VisionLanguageModel() override = default;

  // ---- what each family implements ----

  /// config.json's model_type: "llava" | "qwen2_5_vl".
  virtual std::string model_type() const = 0;
  /// The id the prompt's image placeholder tokens carry.
  virtual std::int64_t image_token_id() const = 0;
  /// Positions the decoder may use (max_position_embeddings).
  virtual std::int64_t context_length() const = 0;

  /// Placeholder tokens a prompt holds for the image file `image` (LLaVA: a constant, the file is
  /// not read; Qwen2.5-VL: its merged patch count, from the file's header). Throws perpo::Error
  /// (input) naming the file when it cannot be read.
  virtual int image_tokens(const std::filesystem::path& image) const = 0;
  /// A decoded image in the family's form (CPU, float32), the family's preprocessing applied
  /// with `config` (LLaVA: pad or crop to image.size, CLIP normalisation; Qwen2.5-VL: smart
  /// resize within image.min_pixels / max_pixels, the patch layout).
  virtual ModelImage prepare_image(const RgbImage& image, const ImageConfig& config) const = 0;
  /// Throws perpo::Error (input) naming the image.* key that does not fit the model.
  virtual void check_image_config(const ImageConfig& config) const = 0;
  /// The units the family writes boxes in (LLaVA-1.5 kNormalized, Qwen2.5-VL kPixels).
  virtual BoxUnits box_units() const = 0;
  /// The size pixel boxes of the image file `image` are measured in: the image as the model
  /// sees it (LLaVA: the file's size; Qwen2.5-VL: its smart_resize size), from the file's
  /// header. Throws perpo::Error (input) naming the file when it cannot be read.
  virtual ImageDims box_frame(const std::filesystem::path& image) const {
    return read_image_dims(image);
  }

  /// Prompts ids (B, P) right-padded, attention_mask (B, P) (1 = real token) or undefined (no
  /// padding), their images joined by join_images (undefined when none has one).
  virtual PromptRun run_prompts(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                const ModelImage& images) = 0;
  /// Text embeddings (B, T, C) at 1-D positions (B or 1, T) (offsets included), continuing
  /// `past` (or nothing); key_mask (B, P + T) or undefined.
  virtual DecoderOutput run_text(const torch::Tensor& embeds, const torch::Tensor& positions,
                                 const torch::Tensor& key_mask = {},
                                 const KVCache* past = nullptr) = 0;
  /// run_text with attention computed by `core` -> final-normed hidden (B, T, C).
  virtual torch::Tensor run_text_with(const torch::Tensor& embeds, const torch::Tensor& positions,
                                      const AttentionCore& core) = 0;
  /// The images of several prompts (each from the family's preprocessing, undefined ones
  /// skipped) in the batch form run_prompts takes, in order.
  virtual ModelImage join_images(const std::vector<ModelImage>& images) const = 0;
  /// Recompute decoder layers (and vision blocks where the family can) in backward.
  virtual void set_gradient_checkpointing(bool enabled) = 0;
  /// The text decoder: embedding table, layers, final norm.
  virtual LlamaModelImpl& decoder() = 0;
  /// The LM head layer, or nullptr when the head is tied to the embedding.
  virtual LoraLinearImpl* head() = 0;
  /// Writes the model as a Hugging Face folder of its family (merged weights, config.json, the
  /// tokenizer files of options.tokenizer_dir), replacing `out_dir` atomically.
  virtual void export_hf(const std::filesystem::path& out_dir, const ExportOptions& options) = 0;

  // ---- written once, for every family ----

  /// Vocabulary rows of the embedding table.
  std::int64_t vocab_size();
  /// Options (dtype, device) of the embedding weight: what inputs are built with.
  torch::TensorOptions weight_options();
  /// Token embeddings of text ids (B, T) -> (B, T, C).
  torch::Tensor embed_text(const torch::Tensor& ids);
  /// hidden (..., C) -> logits (..., V) through the head (with its adapter) or the tied embedding.
  torch::Tensor lm_logits(const torch::Tensor& hidden);

  /// Runs prompt_ids (1, P) with `image` (join_images of one, or undefined) once.
  PrefixState encode_prefix(const torch::Tensor& prompt_ids, const ModelImage& image = {});

  /// Per-token log-probs (N, T) of N answers continuing `prefix`: entry (n, t) is
  /// log p(answer_ids[n, t] | prefix, answer_ids[n, :t]), 0 where answer_mask is 0 (right padding).
  /// The prefix keys/values are broadcast (not copied) to the N answers. Logits are computed
  /// `chunk` answer positions at a time and recomputed in backward (only their logsumexp is
  /// kept), so (N, T, V) is never held at once.
  torch::Tensor answer_logps(const PrefixState& prefix, const torch::Tensor& answer_ids,
                             const torch::Tensor& answer_mask, std::int64_t chunk = 16);

  /// Per-token log-probs (B, A) of the answers inside whole sequences, in one plain forward:
  /// ids (B, S) right-padded with attention_mask (B, S), images joined or undefined; answer b
  /// starts at answer_start[b] (B, int64, >= 1) and covers answer_mask[b] (B, A, right padding).
  /// Entry (b, t) is log p(ids[b, start_b + t] | ids[b, :start_b + t]), 0 where the mask is 0.
  /// Batched SFT runs on it; with one prompt repeated it equals answer_logps.
  torch::Tensor sequence_answer_logps(const torch::Tensor& ids, const ModelImage& images,
                                      const torch::Tensor& attention_mask,
                                      const torch::Tensor& answer_start,
                                      const torch::Tensor& answer_mask, std::int64_t chunk = 16);

  /// The LM head as one (V, C) weight: the head's (merged with its adapter if any), or the tied
  /// embedding.
  torch::Tensor lm_head_weight();

 private:
  /// (N, T, C) hidden states predicting targets (N, T) -> masked log-probs (N, T) through
  /// token_logps_from_hidden, `chunk` answer positions (chunk * N rows) at a time.
  torch::Tensor chunked_token_logps(const torch::Tensor& hidden, const torch::Tensor& targets,
                                    const torch::Tensor& mask, std::int64_t chunk);
};

}  // namespace perpo
