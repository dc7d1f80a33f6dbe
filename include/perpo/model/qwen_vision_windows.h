// The token layout of Qwen2.5-VL's vision tower, as transformers' modeling_qwen2_5_vl.py builds it:
// the 2-D rotary angles of each patch (rot_pos_emb), the window order of the merged tokens
// (get_window_index), and attention over variable-length segments of one packed sequence (the
// windows, or whole frames in the full-attention blocks; transformers' cu_seqlens).
//
// Shape legend: S = patches of all images of a call (sum of t * h * w), M = merged tokens
// (S / merge^2), H = heads, D = head dim. grid_thw gives each image's (t, h, w) in patches;
// pixel_values rows come in transformers' order: per image, per frame, per merge block (row-major
// over the merged grid), the merge^2 patches of the block row-major.
//
// Windows: a window is W x W merged tokens, W = window_size / merge / patch. Each frame's merged
// grid (h / merge, w / merge) is padded at the bottom and right by W - (side % W), so a side that W
// divides gets a whole row or column of empty windows; windows are visited row-major and their
// tokens row-major, empty ones dropped. Example, W = 3, a 4 x 6 merged grid: windows of 9, 9, 3
// and 3 tokens (a fifth row of padding windows dropped; the last window column too).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "perpo/model/qwen_vision_config.h"

namespace perpo {

/// One image's (or video's) grid in patches: frames t, rows h, columns w.
struct VisionGrid {
  std::int64_t t = 1, h = 0, w = 0;
  std::int64_t patches() const { return t * h * w; }
};

/// Reads grid_thw (I, 3) (any integer dtype, any device). Throws perpo::Error (input) unless every
/// value is >= 1 and h, w are multiples of spatial_merge_size.
std::vector<VisionGrid> read_grid_thw(const torch::Tensor& grid_thw,
                                      const QwenVisionConfig& config);

/// get_window_index: merged tokens in window order and the windows' lengths in patches.
struct WindowLayout {
  std::vector<std::int64_t> window_index;    // (M): window_index[j] = merged token at place j
  std::vector<std::int64_t> window_patches;  // patches per non-empty window, in window order
};
WindowLayout window_layout(const std::vector<VisionGrid>& grids, const QwenVisionConfig& config);

/// The full-attention segments: h * w patches per frame of every image.
std::vector<std::int64_t> frame_patches(const std::vector<VisionGrid>& grids);

/// rot_pos_emb: (S, D / 2) float angles in pixel_values' patch order, [row angles | column
/// angles], angle = position * inv_freq with inv_freq = 10000^(-2i / (D / 2)), i < D / 4.
torch::Tensor vision_rotary_angles(const std::vector<VisionGrid>& grids,
                                   const QwenVisionConfig& config, const torch::Device& device);

/// A packed sequence cut into consecutive segments, grouped by length so that each group attends
/// in one batched call: groups[g] (n_g, len_g) holds the token positions of its n_g segments.
/// restore (S) puts the concatenated groups' rows back in sequence order.
struct AttentionSegments {
  std::vector<torch::Tensor> groups;  // int64, each (n_g, len_g)
  torch::Tensor restore;              // int64 (S); undefined when groups is one segment in order
};
AttentionSegments make_segments(const std::vector<std::int64_t>& lengths,
                                const torch::Device& device);

/// Attention within each segment (no mask, no causality): q, k, v (S, H, D) -> (S, H, D). Uses
/// the process-wide implementation (attention.h): at::scaled_dot_product_attention or the
/// reference, whose fp32 softmax equals transformers' eager path.
torch::Tensor segment_attention(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const AttentionSegments& segments,
                                double scale);

}  // namespace perpo
