// FieldReader: typed access to one object of a checkpoint's config.json, errors naming the file
// and the dotted field ("config.json: vision_config.depth must be ..."). Internal to the model
// module: LLaVA's config (model_config.cpp) and Qwen2.5-VL's vision config read through it.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"

namespace perpo::model_detail {

using json = nlohmann::json;

// Typed access to one JSON object; errors name the source file and the dotted field.
class FieldReader {
 public:
  FieldReader(const json& object, std::string source, std::string prefix)
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  bool has(const char* key) const {
    auto it = object_.find(key);
    return it != object_.end() && !it->is_null();
  }
  const json* find(const char* key) const {
    auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  int get_int(const char* key, int fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number_integer()) throw wrong_type(key, "an integer", *value);
    const bool fits = value->is_number_unsigned()
                          ? value->get<std::uint64_t>() <= std::numeric_limits<int>::max()
                          : value->get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                value->get<std::int64_t>() <= std::numeric_limits<int>::max();
    if (!fits) throw wrong_type(key, "an integer of 32 bits", *value);
    return value->get<int>();
  }
  /// A size: an integer from 1 to `max` (checked before anything is allocated from it).
  int get_size(const char* key, int fallback, int max) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    const bool in_range = value->is_number_unsigned()
                              ? value->get<std::uint64_t>() >= 1 &&
                                    value->get<std::uint64_t>() <= static_cast<std::uint64_t>(max)
                              : value->is_number_integer() && value->get<std::int64_t>() >= 1 &&
                                    value->get<std::int64_t>() <= max;
    if (!in_range) {
      throw wrong_type(key, "an integer from 1 to " + std::to_string(max), *value);
    }
    return value->get<int>();
  }
  /// A number > 0 and finite (epsilons, rope theta, scaling factors).
  double get_positive(const char* key, double fallback) const {
    double number = get_double(key, fallback);
    if (!(number > 0.0) || !std::isfinite(number)) {
      throw wrong_type(key, "a positive number", *find(key));
    }
    return number;
  }
  std::int64_t get_int64(const char* key, std::int64_t fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number_integer()) throw wrong_type(key, "an integer", *value);
    return value->get<std::int64_t>();
  }
  double get_double(const char* key, double fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number()) throw wrong_type(key, "a number", *value);
    return value->get<double>();
  }
  /// `count` finite numbers (e.g. image_mean: [0.48, 0.46, 0.41]); absent: `fallback`.
  std::vector<double> get_doubles(const char* key, std::size_t count,
                                  const std::vector<double>& fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    const std::string expected = "a list of " + std::to_string(count) + " numbers";
    if (!value->is_array() || value->size() != count) throw wrong_type(key, expected, *value);
    std::vector<double> numbers;
    for (const json& item : *value) {
      if (!item.is_number() || !std::isfinite(item.get<double>())) {
        throw wrong_type(key, expected, *value);
      }
      numbers.push_back(item.get<double>());
    }
    return numbers;
  }
  bool get_bool(const char* key, bool fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) throw wrong_type(key, "true or false", *value);
    return value->get<bool>();
  }
  std::string get_string(const char* key, const std::string& fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) throw wrong_type(key, "a string", *value);
    return value->get<std::string>();
  }
  /// A token id that may be given as a list (e.g. eos_token_id: [2, 32000]): the first one.
  int get_token_id(const char* key, int fallback) const {
    const json* value = find(key);
    if (value != nullptr && value->is_array() && !value->empty()) {
      json first = {{key, (*value)[0]}};
      return FieldReader(first, source_, prefix_).get_int(key, fallback);
    }
    return get_int(key, fallback);
  }
  FieldReader child(const char* key) const {
    const json* value = find(key);
    if (value != nullptr && !value->is_object()) throw wrong_type(key, "an object", *value);
    static const json empty = json::object();
    return FieldReader(value == nullptr ? empty : *value, source_, prefix_ + key + ".");
  }

  /// The value of a key that must be there (no default), else error(key, "is missing").
  const json& require(const char* key, const std::string& hint) const {
    const json* value = find(key);
    if (value == nullptr) throw error(key, "is missing").hint(hint);
    return *value;
  }

  /// A size that must be there: require(key, hint), then get_size(key, 0, max).
  int required_size(const char* key, const std::string& hint, int max) const {
    require(key, hint);
    return get_size(key, 0, max);
  }

  Error error(const char* key, const std::string& what) const {
    return input_error(source_, ": ", prefix_, key, " ", what);
  }
  Error wrong_type(const char* key, const std::string& expected, const json& value) const {
    return input_error(source_, ": ", prefix_, key, " must be ", expected, ", got ", value.dump())
        .hint("fix the value in config.json");
  }

  const json& object_;
  std::string source_;
  std::string prefix_;
};

/// The JSON object of a config.json's text; not JSON or not an object: an input error naming
/// `source`.
inline json parse_json_object(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
    throw input_error(source, " is not valid JSON (", e.what(), ")");
  }
  if (!root.is_object()) throw input_error(source, " does not hold a JSON object");
  return root;
}

/// `parse(text, source)` of <dir>/config.json; a missing file is an input error with `hint`.
template <typename Parse>
auto parse_config_json(const std::filesystem::path& dir, const char* hint, Parse parse) {
  const std::filesystem::path path = dir / "config.json";
  if (!std::filesystem::exists(path)) {
    throw input_error(path.string(), " does not exist").hint(hint);
  }
  return parse(read_file(path), path.string());
}

}  // namespace perpo::model_detail
