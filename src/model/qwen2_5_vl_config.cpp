// Qwen2_5VLConfig <- a Qwen2.5-VL config.json (see the header for where each key may live). The
// vision tower's keys are read by parse_qwen_vision_config; this file reads the decoder's and the
// token ids, and checks what the decoder needs to be well formed: hidden_size a multiple of
// num_attention_heads, num_attention_heads a multiple of num_key_value_heads, mrope_section three
// non-negative integers summing to head_dim / 2, the vision tower's out_hidden_size equal to
// hidden_size, the token ids inside the vocabulary.
#include "perpo/model/qwen2_5_vl_config.h"

#include <nlohmann/json.hpp>

#include "perpo/core/error.h"
#include "perpo/model/activations.h"

#include "config_fields.h"

namespace perpo {
namespace fs = std::filesystem;
using json = nlohmann::json;
using model_detail::FieldReader;

namespace {

constexpr int kMaxSize = 1 << 24;
constexpr int kMaxLayers = 1 << 12;

constexpr const char* kMissingHint =
    "a Qwen2.5-VL config.json lists every text_config key; copy it from the checkpoint's original "
    "config.json";

int required_size(const FieldReader& f, const char* key, int max = kMaxSize) {
  return f.required_size(key, kMissingHint, max);
}

/// The rope settings object: rope_scaling (Hub, transformers 4) or rope_parameters
/// (transformers 5); the key it was found under in `where`.
const json* rope_object(const FieldReader& f, std::string& where) {
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const json* value = f.find(key);
    if (value == nullptr) continue;
    if (!value->is_object()) throw f.wrong_type(key, "an object", *value);
    if (value->contains("mrope_section")) {
      where = key;
      return value;
    }
  }
  return nullptr;
}

std::vector<int> read_mrope_section(const FieldReader& rope, int head_dim) {
  const json& list = rope.require("mrope_section", kMissingHint);
  const std::string expected =
      "three non-negative integers summing to head_dim / 2 = " + std::to_string(head_dim / 2);
  if (!list.is_array() || list.size() != 3) throw rope.wrong_type("mrope_section", expected, list);
  std::vector<int> section;
  int sum = 0;
  for (const json& item : list) {
    if (!item.is_number_integer() || item.get<std::int64_t>() < 0 ||
        item.get<std::int64_t>() > head_dim) {
      throw rope.wrong_type("mrope_section", expected, list);
    }
    section.push_back(item.get<int>());
    sum += section.back();
  }
  if (2 * sum != head_dim) throw rope.wrong_type("mrope_section", expected, list);
  return section;
}

std::int64_t token_id(const FieldReader& f, const char* key, std::int64_t fallback, int vocab,
                      bool required) {
  if (required) f.require(key, "a Qwen2.5-VL config.json names its special token ids");
  const std::int64_t id = f.get_int64(key, fallback);
  if (f.has(key) && (id < 0 || id >= vocab)) {
    throw f.wrong_type(key, "a token id below vocab_size " + std::to_string(vocab), *f.find(key));
  }
  return id;
}

}  // namespace

Qwen2_5VLConfig parse_qwen2_5_vl_config(const std::string& json_text, const std::string& source) {
  Qwen2_5VLConfig c;
  c.vision = parse_qwen_vision_config(json_text, source);  // also checks model_type and the JSON
  const json root = json::parse(json_text);
  const FieldReader top(root, source, "");
  const bool nested = top.has("text_config");
  const FieldReader f = nested ? top.child("text_config") : top;

  TextConfig& t = c.text;
  t.vocab_size = required_size(f, "vocab_size");
  t.hidden_size = required_size(f, "hidden_size");
  t.intermediate_size = required_size(f, "intermediate_size");
  t.num_hidden_layers = required_size(f, "num_hidden_layers", kMaxLayers);
  t.num_attention_heads = required_size(f, "num_attention_heads");
  t.num_key_value_heads = required_size(f, "num_key_value_heads");
  f.require("rms_norm_eps", kMissingHint);
  t.rms_norm_eps = f.get_positive("rms_norm_eps", 1e-6);
  f.require("hidden_act", kMissingHint);
  t.hidden_act = f.get_string("hidden_act", "");
  try {
    check_activation(t.hidden_act, f.prefix_ + "hidden_act");
  } catch (Error& e) {
    throw e.context(source + ": ");
  }
  t.max_position_embeddings = f.get_size("max_position_embeddings", 128000, 1 << 30);
  t.qkv_bias = true;
  t.attention_bias = false;
  t.mlp_bias = false;
  // embed_tokens' padding_idx, as Qwen2_5_VLTextModel (none in the Hub's files: -1)
  t.pad_token_id = f.get_int("pad_token_id", -1);
  if (t.pad_token_id < -1 || t.pad_token_id >= t.vocab_size) {
    throw f.wrong_type("pad_token_id",
                       "a token id below vocab_size " + std::to_string(t.vocab_size),
                       *f.find("pad_token_id"));
  }
  t.rope_scaling_type = "";

  if (t.hidden_size % t.num_attention_heads != 0) {
    throw f.error("num_attention_heads", "(" + std::to_string(t.num_attention_heads) +
                                             ") must divide hidden_size (" +
                                             std::to_string(t.hidden_size) + ")");
  }
  if (t.num_attention_heads % t.num_key_value_heads != 0) {
    throw f.error("num_key_value_heads", "(" + std::to_string(t.num_key_value_heads) +
                                             ") must divide num_attention_heads (" +
                                             std::to_string(t.num_attention_heads) + ")");
  }
  if (f.get_bool("use_sliding_window", false)) {
    throw f.error("use_sliding_window", "is true; perpo's Qwen2.5-VL decoder has no sliding window")
        .hint("every released Qwen2.5-VL checkpoint has use_sliding_window false");
  }

  std::string rope_key;
  const json* rope = rope_object(f, rope_key);
  if (rope == nullptr) {
    throw f.error("rope_scaling", "holds no mrope_section (nor does rope_parameters)")
        .hint(
            "Qwen2.5-VL's config.json has rope_scaling: {\"type\": \"mrope\", \"mrope_section\": "
            "[16, 24, 24]}");
  }
  const FieldReader r(*rope, source, f.prefix_ + rope_key + ".");
  const std::string type = r.get_string("rope_type", r.get_string("type", "default"));
  if (type != "default" && type != "mrope") {
    throw r.error("rope_type", "'" + type + "' is not supported")
        .hint("perpo's multimodal rotary is the default (\"mrope\") one, without scaling");
  }
  c.mrope_section = read_mrope_section(r, t.effective_head_dim());
  if (f.has("rope_theta")) {
    t.rope_theta = f.get_positive("rope_theta", 1e6);
  } else if (r.has("rope_theta")) {  // transformers 5 keeps it in rope_parameters
    t.rope_theta = r.get_positive("rope_theta", 1e6);
  } else {
    throw f.error("rope_theta", "is missing (nor is it in " + rope_key + ")").hint(kMissingHint);
  }

  c.tie_word_embeddings = f.has("tie_word_embeddings") ? f.get_bool("tie_word_embeddings", false)
                                                       : top.get_bool("tie_word_embeddings", false);
  c.image_token_id = token_id(top, "image_token_id", c.image_token_id, t.vocab_size, true);
  c.vision_start_token_id =
      token_id(top, "vision_start_token_id", c.vision_start_token_id, t.vocab_size, true);
  c.video_token_id = token_id(top, "video_token_id", c.video_token_id, t.vocab_size, false);
  c.vision_end_token_id =
      token_id(top, "vision_end_token_id", c.vision_end_token_id, t.vocab_size, false);

  if (c.vision.out_hidden_size != t.hidden_size) {
    throw input_error(source, ": vision_config.out_hidden_size (", c.vision.out_hidden_size,
                      ") must equal the decoder's hidden_size (", t.hidden_size, ")");
  }
  return c;
}

std::string qwen2_5_vl_config_json(const Qwen2_5VLConfig& c, const std::string& layout,
                                   const std::string& dtype) {
  if (layout != "old" && layout != "new") {
    throw input_error("unknown Qwen2.5-VL config.json layout '", layout, "'")
        .hint("use 'new' (text_config, transformers >= 4.52) or 'old' (the Hub's flat keys)");
  }
  if (dtype != "float32" && dtype != "bfloat16") {
    throw input_error("unknown torch_dtype '", dtype, "'").hint("use 'float32' or 'bfloat16'");
  }
  const QwenVisionConfig& v = c.vision;
  json vision = {{"model_type", "qwen2_5_vl"},
                 {"depth", v.depth},
                 {"hidden_size", v.hidden_size},
                 {"intermediate_size", v.intermediate_size},
                 {"num_heads", v.num_heads},
                 {"in_channels", v.in_channels},
                 {"patch_size", v.patch_size},
                 {"spatial_merge_size", v.spatial_merge_size},
                 {"temporal_patch_size", v.temporal_patch_size},
                 {"window_size", v.window_size},
                 {"out_hidden_size", v.out_hidden_size},
                 {"fullatt_block_indexes", v.fullatt_block_indexes},
                 {"hidden_act", v.hidden_act},
                 {"tokens_per_second", v.tokens_per_second}};
  const TextConfig& t = c.text;
  // transformers 4.57 turns type "mrope" into "default"; both are what perpo reads back.
  json text = {{"vocab_size", t.vocab_size},
               {"hidden_size", t.hidden_size},
               {"intermediate_size", t.intermediate_size},
               {"num_hidden_layers", t.num_hidden_layers},
               {"num_attention_heads", t.num_attention_heads},
               {"num_key_value_heads", t.num_key_value_heads},
               {"rms_norm_eps", t.rms_norm_eps},
               {"rope_theta", t.rope_theta},
               {"rope_scaling", {{"type", "mrope"}, {"mrope_section", c.mrope_section}}},
               {"max_position_embeddings", t.max_position_embeddings},
               {"hidden_act", t.hidden_act},
               {"attention_dropout", 0.0},
               {"use_sliding_window", false},
               {"tie_word_embeddings", c.tie_word_embeddings}};
  if (t.pad_token_id >= 0) text["pad_token_id"] = t.pad_token_id;
  json root = {{"architectures", {"Qwen2_5_VLForConditionalGeneration"}},
               {"model_type", "qwen2_5_vl"},
               {"torch_dtype", dtype},
               {"image_token_id", c.image_token_id},
               {"video_token_id", c.video_token_id},
               {"vision_start_token_id", c.vision_start_token_id},
               {"vision_end_token_id", c.vision_end_token_id},
               {"tie_word_embeddings", c.tie_word_embeddings},
               {"vision_config", vision}};
  if (layout == "new") {
    text["model_type"] = "qwen2_5_vl_text";
    root["text_config"] = text;
  } else {
    for (auto& [key, value] : text.items()) root[key] = value;
  }
  return root.dump(2) + "\n";
}

Qwen2_5VLConfig load_qwen2_5_vl_config(const fs::path& dir) {
  return model_detail::parse_config_json(dir, "a Qwen2.5-VL checkpoint folder holds config.json",
                                         parse_qwen2_5_vl_config);
}

}  // namespace perpo
