// Qwen2_5VLConfig: the architecture of a whole Qwen2.5-VL model (model_type "qwen2_5_vl"): the
// Qwen2 decoder's text_config, its multimodal rotary sections, the vision tower's vision_config
// (qwen_vision_config.h) and the special token ids, as transformers' Qwen2_5_VLConfig and
// Qwen2_5_VLTextConfig (4.57) hold them. The values in the comments are Qwen2.5-VL-7B-Instruct's.
//
//   perpo::Qwen2_5VLConfig config = perpo::load_qwen2_5_vl_config("Qwen2.5-VL-7B-Instruct/");
//
// Where the keys live: the text keys in the `text_config` object (transformers >= 4.52 writes
// them there) or, without one, at the top level (the Hub's original config.json files).
// `mrope_section` in `rope_scaling` (type "mrope" or "default") or in `rope_parameters`
// (transformers 5, which also moves rope_theta there). tie_word_embeddings in the text keys, else
// at the top level, else false (Qwen2_5_VLTextConfig's default). The token ids at the top level.
// Every architecture key is required (no silent 72B defaults); a missing or invalid key throws
// perpo::Error (input) naming the file and the key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "perpo/model/model_config.h"  // TextConfig
#include "perpo/model/qwen_vision_config.h"

namespace perpo {

struct Qwen2_5VLConfig {
  /// The decoder in LLaMA's terms: qkv_bias true (Qwen2's q/k/v_proj have a bias, o_proj none),
  /// pad_token_id the text keys' (embed_tokens' padding row; -1 when absent, as in the Hub's
  /// files), rope_scaling_type "" (the rotary is MultimodalRotary's, qwen_rope.h).
  /// vocab 152064, hidden 3584, intermediate 18944, 28 layers, 28 heads, 4 key/value heads,
  /// rms_norm_eps 1e-6, rope_theta 1e6.
  TextConfig text;
  /// Rotary frequencies per position row [temporal, height, width]; sums to head_dim / 2.
  std::vector<int> mrope_section = {16, 24, 24};
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens' weight (the 3B: true)
  QwenVisionConfig vision;
  std::int64_t image_token_id = 151655;         // <|image_pad|>
  std::int64_t video_token_id = 151656;         // <|video_pad|>
  std::int64_t vision_start_token_id = 151652;  // <|vision_start|>
  std::int64_t vision_end_token_id = 151653;    // <|vision_end|>
};

/// Reads `dir`/config.json (see the file comment).
Qwen2_5VLConfig load_qwen2_5_vl_config(const std::filesystem::path& dir);

/// Parses config.json text; `source` names it in error messages.
Qwen2_5VLConfig parse_qwen2_5_vl_config(const std::string& json_text, const std::string& source);

/// config.json text that transformers' Qwen2_5_VLForConditionalGeneration loads (4.57, checked
/// by tools/check_qwen_export_in_transformers.py) and parse_qwen2_5_vl_config reads back: the
/// text keys in `text_config` for `layout` "new" (transformers >= 4.52), at the top level for
/// "old" (the Hub's files); rope_scaling {"type": "mrope", "mrope_section"}; tie_word_embeddings
/// in both places; `dtype` ("float32" | "bfloat16") as torch_dtype. Keys perpo does not keep
/// (bos / eos ids, sliding_window) are left to transformers' defaults: generation_config.json
/// carries the ids generation uses.
std::string qwen2_5_vl_config_json(const Qwen2_5VLConfig& config, const std::string& layout = "new",
                                   const std::string& dtype = "float32");

}  // namespace perpo
