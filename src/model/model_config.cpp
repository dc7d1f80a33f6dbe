// ModelConfig <-> a Hugging Face LLaVA config.json.
//
// transformers fills every field a config.json leaves out from the sub-config classes' defaults,
// and real checkpoints rely on it (llava-hf/llava-1.5-7b-hf's text_config lists little beyond
// vocab_size, rms_norm_eps and max_position_embeddings). The tables of defaults below are
// transformers' own:
//   vision_config absent:  LlavaConfig's CLIP ViT-L/14-336 (1024 wide, 24 layers, 16 heads, 336 px,
//   14 px) vision_config fields:  CLIPVisionConfig (768, 3072, 12 layers, 12 heads, 224 px, 32 px,
//   quick_gelu) text_config fields:    LlamaConfig (vocab 32000, 4096, 11008, 32 layers, 32 heads,
//   rms 1e-6, ...)
// tie_word_embeddings: transformers (4.57) ties lm_head when text_config.tie_word_embeddings is
// true (LlamaConfig default false), through config.get_text_config(decoder=True); the top-level
// key is never read, so perpo ignores it too.
// rope_scaling: "linear" (type or rope_type + factor) is read; "dynamic" (NTK scaling recomputed
// from the longest sequence seen) and llama3/yarn/longrope are refused here, naming the key.
// transformers 5 writes text_config.rope_parameters {rope_type, rope_theta, factor} instead of
// rope_theta + rope_scaling: read the same way (rope_parameters wins when both are present).
// pad_token_id: the embedding row that takes no gradient (nn.Embedding's padding_idx); a negative
// id counts from the end of the vocabulary, as padding_idx does.
// Sizes are checked here: every size a positive integer within kMaxSize (layers within kMaxLayers),
// so no product of them overflows; model_size.h then weighs the whole model against memory.
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "perpo/config/config.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/model_config.h"

#include "config_fields.h"

namespace perpo {
namespace fs = std::filesystem;
using json = nlohmann::json;

using model_detail::FieldReader;

namespace {

constexpr int kMaxSize = 1 << 24;    // widths, vocabulary, heads: 16,777,216
constexpr int kMaxLayers = 1 << 12;  // 4096 layers (the largest public models have ~130)
constexpr int kMaxImageSize = 1 << 14;

VisionConfig read_vision(const FieldReader& top) {
  VisionConfig v;
  if (!top.has("vision_config"))
    return v;  // LlavaConfig's default: CLIP ViT-L/14-336 (the struct's)
  FieldReader f = top.child("vision_config");
  std::string type = f.get_string("model_type", "clip_vision_model");
  if (type != "clip_vision_model") {
    throw f.error("model_type",
                  "is '" + type + "'; perpo's vision tower is CLIP (clip_vision_model)");
  }
  // CLIPVisionConfig defaults.
  v.hidden_size = f.get_size("hidden_size", 768, kMaxSize);
  v.intermediate_size = f.get_size("intermediate_size", 3072, kMaxSize);
  v.num_hidden_layers = f.get_size("num_hidden_layers", 12, kMaxLayers);
  v.num_attention_heads = f.get_size("num_attention_heads", 12, kMaxSize);
  v.num_channels = f.get_size("num_channels", 3, 64);
  v.image_size = f.get_size("image_size", 224, kMaxImageSize);
  v.patch_size = f.get_size("patch_size", 32, kMaxImageSize);
  v.layer_norm_eps = f.get_positive("layer_norm_eps", 1e-5);
  v.hidden_act = f.get_string("hidden_act", "quick_gelu");
  if (v.hidden_act != "quick_gelu" && v.hidden_act != "gelu") {
    throw f.error("hidden_act", "is '" + v.hidden_act + "'; perpo supports quick_gelu and gelu");
  }
  if (v.hidden_size % v.num_attention_heads != 0) {
    throw f.error("hidden_size", "(" + std::to_string(v.hidden_size) +
                                     ") must be divisible by num_attention_heads (" +
                                     std::to_string(v.num_attention_heads) + ")");
  }
  if (v.image_size % v.patch_size != 0) {
    throw f.error("patch_size", "must divide image_size (" + std::to_string(v.image_size) +
                                    "), got " + std::to_string(v.patch_size));
  }
  return v;
}

TextConfig read_text(const FieldReader& top) {
  FieldReader f = top.child("text_config");
  std::string type = f.get_string("model_type", "llama");
  if (type != "llama") {
    throw f.error("model_type", "is '" + type + "'; perpo's language model is LLaMA (llama)");
  }
  TextConfig t;  // LlamaConfig defaults below
  t.vocab_size = f.get_size("vocab_size", 32000, kMaxSize);
  t.hidden_size = f.get_size("hidden_size", 4096, kMaxSize);
  t.intermediate_size = f.get_size("intermediate_size", 11008, kMaxSize);
  t.num_hidden_layers = f.get_size("num_hidden_layers", 32, kMaxLayers);
  t.num_attention_heads = f.get_size("num_attention_heads", 32, kMaxSize);
  t.num_key_value_heads = f.get_size("num_key_value_heads", t.num_attention_heads, kMaxSize);
  t.head_dim = f.has("head_dim") ? f.get_size("head_dim", 0, kMaxSize) : 0;
  t.rms_norm_eps = f.get_positive("rms_norm_eps", 1e-6);
  // transformers 5 writes rope_parameters {rope_type, rope_theta, factor, ...} instead of
  // rope_theta + rope_scaling; both generations are read (rope_parameters wins when present).
  const bool has_parameters = f.has("rope_parameters");
  t.rope_theta = has_parameters && f.child("rope_parameters").has("rope_theta")
                     ? f.child("rope_parameters").get_positive("rope_theta", 10000.0)
                     : f.get_positive("rope_theta", 10000.0);
  t.max_position_embeddings =
      f.get_size("max_position_embeddings", 2048, std::numeric_limits<int>::max());
  t.hidden_act = f.get_string("hidden_act", "silu");
  t.attention_bias = f.get_bool("attention_bias", false);
  t.mlp_bias = f.get_bool("mlp_bias", false);
  t.pad_token_id = f.get_token_id("pad_token_id", -1);
  t.bos_token_id = f.get_token_id("bos_token_id", 1);
  t.eos_token_id = f.get_token_id("eos_token_id", 2);
  if (t.pad_token_id < -t.vocab_size || t.pad_token_id >= t.vocab_size) {
    throw f
        .error("pad_token_id", "(" + std::to_string(t.pad_token_id) +
                                   ") is outside the vocabulary of " + std::to_string(t.vocab_size))
        .hint("set text_config.pad_token_id to a token id below vocab_size, or null");
  }
  if (t.pad_token_id < 0 && f.has("pad_token_id")) t.pad_token_id += t.vocab_size;
  if (t.hidden_act != "silu")
    throw f.error("hidden_act", "is '" + t.hidden_act + "'; perpo supports silu");
  if (t.num_attention_heads % t.num_key_value_heads != 0) {
    throw f.error("num_key_value_heads", "(" + std::to_string(t.num_key_value_heads) +
                                             ") must divide num_attention_heads (" +
                                             std::to_string(t.num_attention_heads) + ")");
  }
  if (t.head_dim == 0 && t.hidden_size % t.num_attention_heads != 0) {
    throw f.error("hidden_size", "must be divisible by num_attention_heads");
  }
  if (has_parameters || f.has("rope_scaling")) {
    FieldReader scaling = f.child(has_parameters ? "rope_parameters" : "rope_scaling");
    const char* kind_key = scaling.has("rope_type") ? "rope_type" : "type";
    std::string kind = scaling.get_string(kind_key, "default");
    if (kind == "linear") {
      if (!scaling.has("factor"))
        throw scaling.error("factor", "is missing (needed by '" + kind + "' scaling)");
      t.rope_scaling_type = kind;
      t.rope_scaling_factor = scaling.get_positive("factor", 1.0);
    } else if (kind != "default") {
      throw scaling.error(kind_key, "is '" + kind + "'; perpo supports 'linear' rope scaling only")
          .hint(kind == "dynamic"
                    ? "dynamic NTK scaling is not implemented; remove rope_scaling to run the "
                      "model unscaled within max_position_embeddings"
                    : "remove rope_scaling or convert the checkpoint to linear scaling");
    }
  }
  return t;
}

}  // namespace

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  const json root = model_detail::parse_json_object(json_text, source);
  FieldReader top(root, source, "");
  if (!top.has("model_type")) {
    throw top.error("model_type", "is missing")
        .hint("a LLaVA checkpoint's config.json has \"model_type\": \"llava\"");
  }
  std::string type = top.get_string("model_type", "");
  if (type != "llava") {
    throw top
        .error("model_type",
               "is '" + type +
                   "': unknown architecture; perpo loads LLaVA (llava) and Qwen2.5-VL "
                   "(qwen2_5_vl) checkpoints")
        .hint("llava-hf/llava-1.5-7b-hf is an example of a supported checkpoint");
  }
  ModelConfig config;
  config.vision = read_vision(top);
  config.text = read_text(top);
  config.projector_hidden_act = top.get_string("projector_hidden_act", "gelu");
  if (const json* layer = top.find("vision_feature_layer"); layer != nullptr && layer->is_array()) {
    throw top.error("vision_feature_layer", "lists several layers; perpo takes features from one");
  }
  config.vision_feature_layer = top.get_int("vision_feature_layer", -2);
  int layers = config.vision.num_hidden_layers;
  if (config.vision_feature_layer < -(layers + 1) || config.vision_feature_layer > layers) {
    throw top.error("vision_feature_layer", "(" + std::to_string(config.vision_feature_layer) +
                                                ") is out of range for a vision tower of " +
                                                std::to_string(layers) + " layers");
  }
  config.vision_feature_select_strategy =
      top.get_string("vision_feature_select_strategy", "default");
  if (config.vision_feature_select_strategy != "default" &&
      config.vision_feature_select_strategy != "full") {
    throw top.error(
        "vision_feature_select_strategy",
        "must be 'default' or 'full', got '" + config.vision_feature_select_strategy + "'");
  }
  config.image_token_index =
      top.get_int64("image_token_index", top.get_int64("image_token_id", 32000));
  top.get_bool("tie_word_embeddings", false);  // type-checked, but transformers never reads it
  config.tie_word_embeddings = top.child("text_config").get_bool("tie_word_embeddings", false);
  config.multimodal_projector_bias = top.get_bool("multimodal_projector_bias", true);
  if (config.projector_hidden_act != "gelu") {
    throw top.error("projector_hidden_act",
                    "is '" + config.projector_hidden_act + "'; perpo supports gelu");
  }
  return config;
}

ModelConfig load_model_config(const fs::path& dir) {
  return model_detail::parse_config_json(
      dir, "model.path must be a Hugging Face checkpoint folder with config.json",
      parse_model_config);
}

std::string read_model_type(const fs::path& dir) {
  return model_detail::parse_config_json(
      dir, "model.path must be a Hugging Face checkpoint folder with config.json",
      [](const std::string& text, const std::string& source) {
        const json root = model_detail::parse_json_object(text, source);
        FieldReader top(root, source, "");
        if (!top.has("model_type")) {
          throw top.error("model_type", "is missing")
              .hint("a checkpoint's config.json names its family: \"llava\" or \"qwen2_5_vl\"");
        }
        return top.get_string("model_type", "");
      });
}

ModelConfig tiny_model_config(const TinyModelConfig& tiny, int vocab_size,
                              std::int64_t image_token_id) {
  PERPO_CHECK_INPUT(vocab_size > 0, "the tiny model needs a vocabulary, got vocab_size ",
                    vocab_size);
  PERPO_CHECK_INPUT(tiny.image_size % tiny.patch_size == 0, "model.tiny.patch_size (",
                    tiny.patch_size, ") must divide model.tiny.image_size (", tiny.image_size, ")");
  PERPO_CHECK_INPUT(tiny.heads % tiny.kv_heads == 0, "model.tiny.kv_heads (", tiny.kv_heads,
                    ") must divide model.tiny.heads (", tiny.heads, ")");
  PERPO_CHECK_INPUT(tiny.hidden % tiny.heads == 0 && tiny.vision_hidden % tiny.vision_heads == 0,
                    "model.tiny.hidden and vision_hidden must be divisible by their head counts");
  PERPO_CHECK_INPUT(image_token_id >= 0 && image_token_id < vocab_size, "the image token id ",
                    image_token_id, " is outside the vocabulary of ", vocab_size);
  ModelConfig config;
  config.vision.hidden_size = tiny.vision_hidden;
  config.vision.intermediate_size = 4 * tiny.vision_hidden;
  config.vision.num_hidden_layers = tiny.vision_layers;
  config.vision.num_attention_heads = tiny.vision_heads;
  config.vision.image_size = tiny.image_size;
  config.vision.patch_size = tiny.patch_size;
  config.text.vocab_size = vocab_size;
  config.text.hidden_size = tiny.hidden;
  config.text.intermediate_size = tiny.intermediate;
  config.text.num_hidden_layers = tiny.layers;
  config.text.num_attention_heads = tiny.heads;
  config.text.num_key_value_heads = tiny.kv_heads;
  config.text.max_position_embeddings = 2048;
  config.image_token_index = image_token_id;
  // vision_feature_layer -2 as LLaVA-1.5: the second-to-last hidden state (with one vision layer,
  // the embeddings' output).
  return config;
}

std::string model_config_json(const ModelConfig& c) {
  json vision = {{"model_type", "clip_vision_model"},
                 {"hidden_size", c.vision.hidden_size},
                 {"intermediate_size", c.vision.intermediate_size},
                 {"num_hidden_layers", c.vision.num_hidden_layers},
                 {"num_attention_heads", c.vision.num_attention_heads},
                 {"num_channels", c.vision.num_channels},
                 {"image_size", c.vision.image_size},
                 {"patch_size", c.vision.patch_size},
                 {"layer_norm_eps", c.vision.layer_norm_eps},
                 {"hidden_act", c.vision.hidden_act}};
  const TextConfig& t = c.text;
  json text = {{"model_type", "llama"},
               {"vocab_size", t.vocab_size},
               {"hidden_size", t.hidden_size},
               {"intermediate_size", t.intermediate_size},
               {"num_hidden_layers", t.num_hidden_layers},
               {"num_attention_heads", t.num_attention_heads},
               {"num_key_value_heads", t.num_key_value_heads},
               {"head_dim", t.effective_head_dim()},
               {"rms_norm_eps", t.rms_norm_eps},
               {"rope_theta", t.rope_theta},
               {"max_position_embeddings", t.max_position_embeddings},
               {"hidden_act", t.hidden_act},
               {"attention_bias", t.attention_bias},
               {"mlp_bias", t.mlp_bias},
               {"bos_token_id", t.bos_token_id},
               {"eos_token_id", t.eos_token_id},
               {"tie_word_embeddings", c.tie_word_embeddings}};
  text["pad_token_id"] = t.pad_token_id >= 0 ? json(t.pad_token_id) : json(nullptr);
  text["rope_scaling"] = t.rope_scaling_type.empty() ? json(nullptr)
                                                     : json{{"rope_type", t.rope_scaling_type},
                                                            {"factor", t.rope_scaling_factor}};
  json root = {{"architectures", {"LlavaForConditionalGeneration"}},
               {"model_type", "llava"},
               {"image_token_index", c.image_token_index},
               {"projector_hidden_act", c.projector_hidden_act},
               {"vision_feature_layer", c.vision_feature_layer},
               {"vision_feature_select_strategy", c.vision_feature_select_strategy},
               {"image_seq_length", c.image_tokens()},
               {"multimodal_projector_bias", c.multimodal_projector_bias},
               {"tie_word_embeddings", c.tie_word_embeddings},
               {"text_config", text},
               {"vision_config", vision}};
  return root.dump(2) + "\n";
}

void save_model_config(const ModelConfig& config, const fs::path& path) {
  write_file_atomic(path, model_config_json(config));
}

}  // namespace perpo
