// Records to JSON, list validation, and the typed field access the readers share.
#include "perpo/data/records.h"

#include <cmath>

#include "json_fields.h"
#include "perpo/core/error.h"
#include "perpo/core/output_paths.h"

namespace perpo {
namespace fs = std::filesystem;

void rebase_image(DatasetRecord& record, const fs::path& input, const fs::path& output) {
  if (record.image.empty() || fs::path(record.image).is_absolute()) return;
  std::error_code error;
  const bool regular_output = !fs::exists(output, error) || fs::is_regular_file(output, error);
  if (!fs::is_regular_file(input, error) || !regular_output) return;  // pipes, devices: as read
  const fs::path out_dir = resolved_path(output).parent_path();
  if (out_dir == resolved_path(input).parent_path()) return;
  const fs::path relative = resolved_path(record.image_path).lexically_relative(out_dir);
  record.image = relative.empty() ? resolved_path(record.image_path).string() : relative.string();
}

std::string RecordSource::to_string() const {
  if (line == 0) return file.string();
  return file.string() + ":" + std::to_string(line);
}

nlohmann::json to_json(const DatasetRecord& record) {
  nlohmann::json json = nlohmann::json::object();
  json["id"] = record.id;
  json["task"] = record.task;
  json["image"] = record.image;
  json["prompt"] = record.prompt;
  json["ground_truth"] = record.ground_truth;
  for (const auto& [key, value] : record.extra.items()) {
    if (!json.contains(key)) json[key] = value;
  }
  return json;
}

nlohmann::json to_json(const PreferenceList& list) {
  nlohmann::json json = to_json(list.record);
  json["answers"] = list.answers;
  if (list.has_rewards()) json["rewards"] = list.rewards;
  if (list.has_ref_logps()) json["ref_logps"] = list.ref_logps;
  if (list.has_sample_token_logps()) json["sample_token_logps"] = list.sample_token_logps;
  return json;
}

void validate_list(const PreferenceList& list, bool require_rewards) {
  const std::string where = list.record.source.to_string();
  const std::size_t n = list.answers.size();
  if (n < 2) {
    throw input_error(where, ": a preference list needs at least 2 answers, got ", n)
        .hint("sample more answers per prompt (sampling.num_answers >= 2)");
  }
  if (require_rewards && list.rewards.empty()) {
    throw input_error(where, ": field \"rewards\" is missing")
        .hint("score the answers first: perpo score --reward NAME --input ... --output ...");
  }
  if (!list.rewards.empty() && list.rewards.size() != n) {
    throw input_error(where, ": field \"rewards\" has ", list.rewards.size(),
                      " entries but \"answers\" has ", n)
        .hint("answers, rewards and ref_logps need one entry per answer");
  }
  if (!list.ref_logps.empty() && list.ref_logps.size() != n) {
    throw input_error(where, ": field \"ref_logps\" has ", list.ref_logps.size(),
                      " entries but \"answers\" has ", n)
        .hint("drop ref_logps to have them recomputed (perpo logps)");
  }
  if (!list.sample_token_logps.empty() && list.sample_token_logps.size() != n) {
    throw input_error(where, ": field \"sample_token_logps\" has ", list.sample_token_logps.size(),
                      " rows but \"answers\" has ", n)
        .hint(
            "one row of per-token log-probs per answer; sample the lists again with "
            "sampling.token_logps=true");
  }
  for (std::size_t i = 0; i < list.sample_token_logps.size(); ++i) {
    for (double logp : list.sample_token_logps[i]) {
      if (!std::isfinite(logp) || logp > kMaxRefLogp || logp < -kMaxAbsRefLogp) {
        throw input_error(where, ": sample_token_logps row ", i, " holds ", logp,
                          "; a token log-probability is a finite number <= 0")
            .hint("sample the lists again with sampling.token_logps=true");
      }
    }
  }
  // Values a loss can use: reward gaps are raised to gamma and log-ratios scaled by beta, so an
  // absurd number (1e300) would turn every step into NaN far from where it came from.
  for (std::size_t i = 0; i < list.rewards.size(); ++i) {
    const double reward = list.rewards[i];
    if (!std::isfinite(reward) || std::fabs(reward) > kMaxAbsReward) {
      throw input_error(where, ": reward ", i, " is ", reward,
                        "; rewards must be finite and within ", "[-", kMaxAbsReward, ", ",
                        kMaxAbsReward, "]")
          .hint(
              "perpo's rewards lie in [0, 1]; rescale custom rewards, or re-score the answers "
              "with perpo score");
    }
  }
  for (std::size_t i = 0; i < list.ref_logps.size(); ++i) {
    const double logp = list.ref_logps[i];
    if (!std::isfinite(logp) || logp > kMaxRefLogp || logp < -kMaxAbsRefLogp) {
      throw input_error(where, ": ref_logps ", i, " is ", logp,
                        "; a summed log-probability is a finite number <= 0 (down to -",
                        kMaxAbsRefLogp, ")")
          .hint("drop ref_logps to have them recomputed (perpo logps)");
    }
  }
}

namespace data_detail {

std::string describe_type(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

const nlohmann::json* field(const nlohmann::json& object, std::string_view key,
                            const RecordSource& source, bool required) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) throw input_error(source.to_string(), ": field \"", key, "\" is missing");
    return nullptr;
  }
  return &*it;
}

std::string string_field(const nlohmann::json& object, std::string_view key,
                         const RecordSource& source, bool required, std::string fallback,
                         bool allow_number) {
  const nlohmann::json* value = field(object, key, source, required);
  if (!value) return fallback;
  if (value->is_string()) return value->get<std::string>();
  if (allow_number && value->is_number() && std::isfinite(value->get<double>())) {
    return value->dump();  // 17 -> "17", 2.5 -> "2.5"
  }
  throw input_error(source.to_string(), ": field \"", key, "\" must be a string",
                    allow_number ? " or a number" : "", ", got ", describe_type(*value));
}

std::vector<std::string> strings_field(const nlohmann::json& object, std::string_view key,
                                       const RecordSource& source, bool required) {
  const nlohmann::json* value = field(object, key, source, required);
  if (!value) return {};
  if (!value->is_array()) {
    throw input_error(source.to_string(), ": field \"", key, "\" must be an array of strings, got ",
                      describe_type(*value));
  }
  std::vector<std::string> strings;
  for (std::size_t i = 0; i < value->size(); ++i) {
    const nlohmann::json& item = (*value)[i];
    if (!item.is_string()) {
      throw input_error(source.to_string(), ": field \"", key, "\" must be an array of strings, ",
                        "but entry ", i, " is ", describe_type(item));
    }
    strings.push_back(item.get<std::string>());
  }
  return strings;
}

std::vector<double> numbers_field(const nlohmann::json& object, std::string_view key,
                                  const RecordSource& source, bool required) {
  const nlohmann::json* value = field(object, key, source, required);
  if (!value) return {};
  if (!value->is_array()) {
    throw input_error(source.to_string(), ": field \"", key, "\" must be an array of numbers, got ",
                      describe_type(*value));
  }
  std::vector<double> numbers;
  for (std::size_t i = 0; i < value->size(); ++i) {
    const nlohmann::json& item = (*value)[i];
    if (!item.is_number() || !std::isfinite(item.get<double>())) {
      throw input_error(source.to_string(), ": field \"", key, "\" must be an array of finite ",
                        "numbers, but entry ", i, " is ",
                        item.is_number() ? "not finite" : describe_type(item));
    }
    numbers.push_back(item.get<double>());
  }
  return numbers;
}

std::vector<std::vector<double>> number_rows_field(const nlohmann::json& object,
                                                   std::string_view key, const RecordSource& source,
                                                   bool required) {
  const nlohmann::json* value = field(object, key, source, required);
  if (!value) return {};
  if (!value->is_array()) {
    throw input_error(source.to_string(), ": field \"", key,
                      "\" must be an array of arrays of numbers (one per answer), got ",
                      describe_type(*value));
  }
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < value->size(); ++i) {
    const std::string row_key = std::string(key) + "[" + std::to_string(i) + "]";
    const nlohmann::json row = {{row_key, (*value)[i]}};
    rows.push_back(numbers_field(row, row_key, source, true));
  }
  return rows;
}

}  // namespace data_detail
}  // namespace perpo
