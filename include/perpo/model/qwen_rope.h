// Qwen2.5-VL's multimodal rotary position embedding (mRoPE) and its position ids, as transformers
// 4.57 computes them: Qwen2_5_VLRotaryEmbedding + apply_multimodal_rotary_pos_emb (the tables) and
// Qwen2_5_VLModel.get_rope_index (the positions of a prompt with images; no video).
//
// Every token has three positions (temporal, height, width). A text token has the same value on
// all three; the merged tokens of an image starting at position s (after the text before it) get
// (s, s + row, s + column) over its merged grid (grid_h / merge x grid_w / merge; a still image's
// temporal index is s for every token), and the text after it continues at s + max(rows, columns).
// The rotary's head_dim / 2 frequencies are split by mrope_section [t, h, w]: the first t
// frequencies turn with the temporal position, the next h with the height, the last w with the
// width (the same split on both halves of rotate_half's layout).
//
//   MultimodalRotary rotary(config.text, config.mrope_section);
//   RopeIndex index = qwen_rope_index(ids, grid_thw, attention_mask, config);  // the prompt
//   auto [cos, sin] = rotary.cos_sin(index.positions, torch::kFloat);          // (B, 1, T, D)
//   torch::Tensor next = qwen_continuation_positions(P, 1, index.deltas);      // (3, B, 1)
//
// Shape legend: B = batch, T = tokens, D = head dim, I = images.
#pragma once

#include <torch/types.h>

#include <mutex>
#include <utility>
#include <vector>

#include "perpo/model/model_config.h"
#include "perpo/model/qwen2_5_vl_config.h"

namespace perpo {

/// The rotary tables of multimodal positions. inv_freq[i] = 1 / theta^(2i / D) as in
/// RotaryEmbedding (llama.h); frequency i turns with position row row_of[i] (mrope_section).
class MultimodalRotary {
 public:
  /// Throws perpo::Error (input) when mrope_section is not 3 values summing to head_dim / 2.
  MultimodalRotary(const TextConfig& text, const std::vector<int>& mrope_section);
  /// positions (3, B, T) int64 -> cos, sin each (B, 1, T, D) in `dtype` (angles in fp32).
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& positions,
                                                  torch::ScalarType dtype) const;

 private:
  mutable torch::Tensor inv_freq_;  // (D/2) fp32, on the device of the last positions seen
  mutable torch::Tensor row_of_;    // (D/2) int64: the position row of each frequency
  mutable std::mutex move_;         // guards the one-time move to another device
};

/// get_rope_index's result.
struct RopeIndex {
  torch::Tensor positions;  // (3, B, T) int64; 1 at padding
  /// (B,) int64: the largest position + 1 - T (T counts padding too). The tokens that continue
  /// the prompt (KV cache of P tokens) are at P + t + deltas[b] on all three rows.
  torch::Tensor deltas;
};

/// The positions of input_ids (B, T) int64 with images: each image is a run of image_token_id
/// tokens (one per merged token, t * h * w / merge^2 of image_grid_thw's row) announced by
/// vision_start_token_id; images take the rows of image_grid_thw (I, 3) in order, row by row of
/// the batch. attention_mask (B, T) (1 = real token; padding anywhere) or undefined: positions
/// count the real tokens only, padding gets 1. image_grid_thw may be undefined when no row holds
/// an image. Throws perpo::Error (input) when an announced image has no or too few image tokens,
/// or when the images found and image_grid_thw's rows differ in number. (One difference from
/// transformers: without images it takes the text-only branch, whose delta counts the padding's
/// position 1 in the maximum; the two differ only for a row of one real token with padding.)
RopeIndex qwen_rope_index(const torch::Tensor& input_ids, const torch::Tensor& image_grid_thw,
                          const torch::Tensor& attention_mask, const Qwen2_5VLConfig& config);

/// Positions (3, B, T) of T tokens after a cache of past_len tokens: past_len + t + deltas[b] on
/// all three rows (transformers' decoding positions: cache_position + rope_deltas).
torch::Tensor qwen_continuation_positions(std::int64_t past_len, std::int64_t new_len,
                                          const torch::Tensor& deltas);

}  // namespace perpo
