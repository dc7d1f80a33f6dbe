// QwenVisionConfig <- the vision_config of a Qwen2.5-VL config.json (see the header for why every
// key is required). Sizes are integers from 1 to kMaxSize (depth to kMaxDepth), so no product of
// them overflows; the checks that follow are what the tower needs to be well formed:
//   hidden_size % num_heads == 0 and head_dim % 4 == 0 (the 2-D rotary gives head_dim / 4
//   frequencies to the row and as many to the column, each used twice: rotate_half);
//   window_size >= spatial_merge_size * patch_size (a window of at least one merged token; a
//   size that is not a multiple is floored, as transformers' integer division does);
//   fullatt_block_indexes: distinct block indexes in [0, depth).
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/activations.h"
#include "perpo/model/qwen_vision_config.h"

#include "config_fields.h"

namespace perpo {
namespace fs = std::filesystem;
using json = nlohmann::json;
using model_detail::FieldReader;

namespace {

constexpr int kMaxSize = 1 << 24;   // widths and heads: 16,777,216
constexpr int kMaxDepth = 1 << 12;  // blocks
constexpr int kMaxPixels = 1 << 14;

constexpr const char* kMissingHint =
    "a Qwen2.5-VL config.json lists every vision_config key; copy it from the checkpoint's "
    "original config.json";

// Every key of vision_config is required; errors name the file and `vision_config.<key>`.
int required_size(const FieldReader& f, const char* key, int max = kMaxSize) {
  return f.required_size(key, kMissingHint, max);
}

std::string required_string(const FieldReader& f, const char* key) {
  f.require(key, kMissingHint);
  return f.get_string(key, "");
}

std::vector<int> read_full_attention_blocks(const FieldReader& f, int depth) {
  const char* key = "fullatt_block_indexes";
  const json& list = f.require(key, kMissingHint);
  const std::string expected = "a list of block indexes from 0 to " + std::to_string(depth - 1);
  if (!list.is_array()) throw f.wrong_type(key, expected, list);
  std::vector<int> blocks;
  std::set<int> seen;
  for (const json& item : list) {
    const bool in_range = item.is_number_unsigned()
                              ? item.get<std::uint64_t>() < static_cast<std::uint64_t>(depth)
                              : item.is_number_integer() && item.get<std::int64_t>() >= 0 &&
                                    item.get<std::int64_t>() < depth;
    if (!in_range) {
      throw f.wrong_type(key, "an integer from 0 to " + std::to_string(depth - 1), item);
    }
    const int block = item.get<int>();
    if (!seen.insert(block).second) throw f.wrong_type(key, "without repeats", list);
    blocks.push_back(block);
  }
  return blocks;
}

}  // namespace

bool QwenVisionConfig::full_attention(int block) const {
  return std::find(fullatt_block_indexes.begin(), fullatt_block_indexes.end(), block) !=
         fullatt_block_indexes.end();
}

QwenVisionConfig parse_qwen_vision_config(const std::string& json_text, const std::string& source) {
  const json root = model_detail::parse_json_object(json_text, source);
  auto type = root.find("model_type");
  if (type == root.end() || !type->is_string() || *type != "qwen2_5_vl") {
    throw input_error(source, ": model_type is ",
                      type == root.end() ? std::string("missing") : type->dump(),
                      "; the Qwen2.5-VL vision tower needs \"qwen2_5_vl\"");
  }
  auto vision = root.find("vision_config");
  if (vision == root.end() || !vision->is_object()) {
    throw input_error(source, ": vision_config is ",
                      vision == root.end() ? std::string("missing") : "not an object")
        .hint("a Qwen2.5-VL config.json holds the vision tower's settings in vision_config");
  }
  const FieldReader f(*vision, source, "vision_config.");
  QwenVisionConfig v;
  v.depth = required_size(f, "depth", kMaxDepth);
  v.hidden_size = required_size(f, "hidden_size");
  v.intermediate_size = required_size(f, "intermediate_size");
  v.num_heads = required_size(f, "num_heads");
  // transformers 4.57 writes in_channels; the Hub's files (written by older versions) in_chans.
  const char* channels_key = f.find("in_channels") != nullptr ? "in_channels" : "in_chans";
  if (f.find(channels_key) == nullptr) throw f.error("in_channels", "(or in_chans) is missing");
  v.in_channels = required_size(f, channels_key, 64);
  v.patch_size = required_size(f, "patch_size", kMaxPixels);
  v.spatial_merge_size = required_size(f, "spatial_merge_size", kMaxPixels);
  v.temporal_patch_size = required_size(f, "temporal_patch_size", kMaxPixels);
  v.window_size = required_size(f, "window_size", kMaxPixels);
  v.out_hidden_size = required_size(f, "out_hidden_size");
  v.fullatt_block_indexes = read_full_attention_blocks(f, v.depth);
  v.hidden_act = required_string(f, "hidden_act");
  v.tokens_per_second = f.get_size("tokens_per_second", 4, kMaxPixels);
  try {
    check_activation(v.hidden_act, "vision_config.hidden_act");
  } catch (Error& e) {
    throw e.context(source + ": ");
  }

  if (v.hidden_size % v.num_heads != 0 || v.head_dim() % 4 != 0) {
    throw f.error("num_heads", "(" + std::to_string(v.num_heads) + ") must divide hidden_size (" +
                                   std::to_string(v.hidden_size) +
                                   ") into heads of a multiple of 4 values (2-D rotary)");
  }
  if (v.merged_window() < 1) {
    throw f.error("window_size", "(" + std::to_string(v.window_size) +
                                     ") must be at least spatial_merge_size * patch_size (" +
                                     std::to_string(v.spatial_merge_size * v.patch_size) + ")");
  }
  return v;
}

QwenVisionConfig load_qwen_vision_config(const fs::path& dir) {
  return model_detail::parse_config_json(dir, "a Qwen2.5-VL checkpoint folder holds config.json",
                                         parse_qwen_vision_config);
}

}  // namespace perpo
