// QwenVisionConfig: the architecture of Qwen2.5-VL's vision tower, read from the `vision_config`
// object of a Qwen2.5-VL config.json (model_type "qwen2_5_vl"), as transformers'
// Qwen2_5_VLVisionConfig holds it. The values in the comments are Qwen2.5-VL-7B-Instruct's.
//
//   perpo::QwenVisionConfig vision = perpo::load_qwen_vision_config("Qwen2.5-VL-7B-Instruct/");
//
// Unlike transformers, which fills a missing key with the 7B's value, every key below must be
// present (the Hub's config.json files and transformers 4.57's save_pretrained list them all): a
// silently defaulted window_size or fullatt_block_indexes would change every output without any
// weight failing to load. A missing or invalid key throws perpo::Error (input) naming the file
// and `vision_config.<key>`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace perpo {

struct QwenVisionConfig {
  int depth = 32;                // vision blocks
  int hidden_size = 1280;        // C
  int intermediate_size = 3420;  // SwiGLU width
  int num_heads = 16;            // head dim = hidden_size / num_heads (80), a multiple of 4
  int in_channels = 3;           // "in_channels" (transformers) or "in_chans" (the Hub's files)
  int patch_size = 14;           // pixels per patch side
  int spatial_merge_size = 2;    // the merger joins merge x merge patches into one token
  int temporal_patch_size = 2;   // frames per patch (a still image is repeated)
  int window_size = 112;         // pixels per window side: 112 / 2 / 14 = 4 x 4 merged tokens
  int out_hidden_size = 3584;    // the merger's output width (the decoder's hidden size)
  std::vector<int> fullatt_block_indexes = {7, 15, 23, 31};  // blocks with full attention
  std::string hidden_act = "silu";                           // the MLP's gate activation
  // Video only (temporal rotary positions per second); optional, transformers' default 4 when
  // absent. Kept so that an export writes the checkpoint's value back.
  int tokens_per_second = 2;

  int head_dim() const { return hidden_size / num_heads; }
  /// Values of one pixel_values row: in_channels * temporal_patch_size * patch_size^2 (1176).
  int patch_values() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
  /// Side of an attention window in merged tokens: window_size / merge / patch (4).
  int merged_window() const { return window_size / spatial_merge_size / patch_size; }
  /// Patches per merged token: merge^2 (4).
  int merge_unit() const { return spatial_merge_size * spatial_merge_size; }
  bool full_attention(int block) const;
};

/// Reads `dir`/config.json (see the file comment).
QwenVisionConfig load_qwen_vision_config(const std::filesystem::path& dir);

/// Parses config.json text; `source` names it in error messages. model_type must be
/// "qwen2_5_vl" and vision_config an object with every key of QwenVisionConfig.
QwenVisionConfig parse_qwen_vision_config(const std::string& json_text, const std::string& source);

}  // namespace perpo
