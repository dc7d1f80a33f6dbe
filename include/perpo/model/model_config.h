// ModelConfig: the architecture of a LLaVA-style model, read from a Hugging Face checkpoint's
// config.json (model_config.cpp) or built for the tiny built-in model.
//
// Parameter names inside perpo (the canonical names, used by checkpoints, LoRA and export):
//   vision_tower.vision_model.embeddings.patch_embedding.weight, ...   (CLIP, as in HF)
//   multi_modal_projector.linear_1.weight, multi_modal_projector.linear_2.weight, ...
//   language_model.embed_tokens.weight, language_model.layers.N.self_attn.q_proj.weight, ...,
//   language_model.norm.weight
//   lm_head.weight                                  (absent when tie_word_embeddings)
// HF's older layout prefixes the decoder with "language_model.model." and keeps the head at
// "language_model.lm_head.weight"; the newer one uses "model.language_model.",
// "model.vision_tower.", "model.multi_modal_projector." and "lm_head.weight". hf_names.h maps both
// ways.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace perpo {

struct TinyModelConfig;  // perpo/config/config.h

struct VisionConfig {
  int hidden_size = 1024;        // CLIP ViT-L/14-336: 1024
  int intermediate_size = 4096;  // 4096
  int num_hidden_layers = 24;    // 24
  int num_attention_heads = 16;  // 16
  int image_size = 336;          // 336
  int patch_size = 14;           // 14 -> (336/14)^2 = 576 patches
  int num_channels = 3;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";  // quick_gelu | gelu

  int num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

struct TextConfig {
  int vocab_size = 32064;  // llava-1.5-7b-hf: 32064
  int hidden_size = 4096;
  int intermediate_size = 11008;
  int num_hidden_layers = 32;
  int num_attention_heads = 32;
  int num_key_value_heads = 32;  // < num_attention_heads: grouped-query attention
  int head_dim = 0;              // 0 = hidden_size / num_attention_heads
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  std::string rope_scaling_type;  // "" (none) | linear | dynamic | llama3 (see model_config.cpp)
  double rope_scaling_factor = 1.0;
  int max_position_embeddings = 4096;
  std::string hidden_act = "silu";
  bool attention_bias = false;  // a bias on q/k/v/o_proj
  bool qkv_bias = false;        // a bias on q/k/v_proj only, none on o_proj (Qwen2's attention)
  bool mlp_bias = false;
  int pad_token_id = -1;  // -1 = none in config.json
  int bos_token_id = 1;
  int eos_token_id = 2;

  int effective_head_dim() const {
    return head_dim > 0 ? head_dim : hidden_size / num_attention_heads;
  }
};

struct ModelConfig {
  VisionConfig vision;
  TextConfig text;
  std::string projector_hidden_act = "gelu";  // gelu (LLaVA-1.5)
  int vision_feature_layer = -2;              // hidden state taken from this CLIP layer
  std::string vision_feature_select_strategy = "default";  // default (drop CLS) | full
  std::int64_t image_token_index = 32000;                  // id of <image> in the tokenizer
  bool tie_word_embeddings = false;                        // lm_head shares embed_tokens' weight
  bool multimodal_projector_bias = true;
  std::string key_layout = "new";  // layout found on load: old | new

  /// Image tokens one image becomes in the decoder: 576 for LLaVA-1.5 (CLS dropped).
  int image_tokens() const {
    return vision.num_patches() + (vision_feature_select_strategy == "full" ? 1 : 0);
  }
};

/// Reads `dir`/config.json of a Hugging Face LLaVA checkpoint (model_config.cpp). model_type must
/// be "llava"; fields absent from vision_config / text_config take transformers' CLIPVisionConfig /
/// LlamaConfig defaults, as transformers does. A field of the wrong type, an unknown architecture
/// or a missing model_type throws perpo::Error (input) naming the file and the field.
ModelConfig load_model_config(const std::filesystem::path& dir);

/// config.json's model_type in `dir` ("llava", "qwen2_5_vl", ...). Throws perpo::Error (input)
/// naming the file when it is missing, not JSON, or has no model_type.
std::string read_model_type(const std::filesystem::path& dir);

/// Parses config.json text; `source` names it in error messages.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

/// The built-in tiny model's architecture from perpo's `model.tiny` settings.
ModelConfig tiny_model_config(const TinyModelConfig& tiny, int vocab_size,
                              std::int64_t image_token_id);

/// config.json text that transformers' LlavaForConditionalGeneration loads.
std::string model_config_json(const ModelConfig& config);
/// Writes model_config_json(config) to `path` atomically.
void save_model_config(const ModelConfig& config, const std::filesystem::path& path);

}  // namespace perpo
