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

namespace perpo {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kMaxSize = 1 << 24;   // widths and heads: 16,777,216
constexpr int kMaxDepth = 1 << 12;  // blocks
constexpr int kMaxPixels = 1 << 14;

// Required keys of vision_config; errors name the file and `vision_config.<key>`.
class VisionReader {
 public:
  VisionReader(const json& object, std::string source)
      : object_(object), source_(std::move(source)) {}

  const json* find(const char* key) const {
    auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& require(const char* key) const {
    const json* value = find(key);
    if (value == nullptr) {
      throw error(key, "is missing")
          .hint(
              "a Qwen2.5-VL config.json lists every vision_config key; copy it from the "
              "checkpoint's original config.json");
    }
    return *value;
  }
  /// An integer from `min` to `max`.
  int integer(const char* key, const json& value, int min, int max) const {
    bool in_range = false;
    if (value.is_number_unsigned()) {
      const auto number = value.get<std::uint64_t>();
      in_range =
          number <= static_cast<std::uint64_t>(max) && static_cast<std::int64_t>(number) >= min;
    } else if (value.is_number_integer()) {
      const auto number = value.get<std::int64_t>();
      in_range = number >= min && number <= max;
    }
    if (!in_range) {
      throw wrong(key, "an integer from " + std::to_string(min) + " to " + std::to_string(max),
                  value);
    }
    return value.get<int>();
  }
  int size(const char* key, int max = kMaxSize) const { return integer(key, require(key), 1, max); }
  std::string string(const char* key) const {
    const json& value = require(key);
    if (!value.is_string()) throw wrong(key, "a string", value);
    return value.get<std::string>();
  }
  Error error(const std::string& key, const std::string& what) const {
    return input_error(source_, ": vision_config.", key, " ", what);
  }
  Error wrong(const std::string& key, const std::string& expected, const json& value) const {
    return error(key, "must be " + expected + ", got " + value.dump())
        .hint("fix the value in config.json");
  }

 private:
  const json& object_;
  std::string source_;
};

std::vector<int> read_full_attention_blocks(const VisionReader& f, int depth) {
  const char* key = "fullatt_block_indexes";
  const json& list = f.require(key);
  const std::string expected = "a list of block indexes from 0 to " + std::to_string(depth - 1);
  if (!list.is_array()) throw f.wrong(key, expected, list);
  std::vector<int> blocks;
  std::set<int> seen;
  for (const json& item : list) {
    int block = f.integer(key, item, 0, depth - 1);
    if (!seen.insert(block).second) throw f.wrong(key, "without repeats", list);
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
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
    throw input_error(source, " is not valid JSON (", e.what(), ")");
  }
  if (!root.is_object()) throw input_error(source, " does not hold a JSON object");
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
  VisionReader f(*vision, source);
  QwenVisionConfig v;
  v.depth = f.size("depth", kMaxDepth);
  v.hidden_size = f.size("hidden_size");
  v.intermediate_size = f.size("intermediate_size");
  v.num_heads = f.size("num_heads");
  // transformers 4.57 writes in_channels; the Hub's files (written by older versions) in_chans.
  const char* channels_key = f.find("in_channels") != nullptr ? "in_channels" : "in_chans";
  if (f.find(channels_key) == nullptr) throw f.error("in_channels", "(or in_chans) is missing");
  v.in_channels = f.size(channels_key, 64);
  v.patch_size = f.size("patch_size", kMaxPixels);
  v.spatial_merge_size = f.size("spatial_merge_size", kMaxPixels);
  v.temporal_patch_size = f.size("temporal_patch_size", kMaxPixels);
  v.window_size = f.size("window_size", kMaxPixels);
  v.out_hidden_size = f.size("out_hidden_size");
  v.fullatt_block_indexes = read_full_attention_blocks(f, v.depth);
  v.hidden_act = f.string("hidden_act");
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
  fs::path path = dir / "config.json";
  if (!fs::exists(path)) {
    throw input_error(path.string(), " does not exist")
        .hint("a Qwen2.5-VL checkpoint folder holds config.json");
  }
  return parse_qwen_vision_config(read_file(path), path.string());
}

}  // namespace perpo
