// perpo score: read list records, score their answers, write them back with rewards and notes.
#include "perpo/reward/score_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"

namespace perpo {
namespace {

using nlohmann::json;

/// Field names of one input format.
struct RecordKeys {
  const char* answers;
  const char* truth;
};
constexpr RecordKeys kOurKeys{"answers", "ground_truth"};
constexpr RecordKeys kAuthorsKeys{"answers_gen", "answer"};

/// Text of a ground truth given as a string, a number or a list of numbers (a box).
std::string truth_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();  // 42 -> "42", [0.1, 0.2, 0.3, 0.4] -> "[0.1,0.2,0.3,0.4]"
}

/// Scores one record in place. `where` is "file:line" or "file: item K" for error messages.
void score_record(json& record, const RecordKeys& keys, const RewardSpec& spec,
                  const RewardOptions& base_options, const std::string& where,
                  ScoreSummary& summary) {
  const char* other_format = std::string_view(keys.answers) == kOurKeys.answers
                                 ? "--input-format authors"
                                 : "--input-format ours";
  if (!record.is_object()) {
    throw input_error(where, ": expected a JSON object (a list record), got ", record.type_name());
  }
  auto answers = record.find(keys.answers);
  if (answers == record.end() || !answers->is_array()) {
    throw input_error(where, ": record has no '", keys.answers, "' list")
        .hint(std::string("each record needs '") + keys.answers + "' (a list of strings) and '" +
              keys.truth + "'; for the other format use " + other_format);
  }
  auto truth = record.find(keys.truth);
  if (truth == record.end() || truth->is_null() || truth->is_object() || truth->is_boolean()) {
    throw input_error(where, ": record has no usable '", keys.truth, "' (ground truth)")
        .hint("give the ground truth as a string, e.g. \"[0.61, 0.10, 0.77, 0.54]\"");
  }
  RewardOptions options = base_options;
  if (record.contains("image_width") && record["image_width"].is_number()) {
    options.box_parse.image_width = record["image_width"].get<double>();
  }
  if (record.contains("image_height") && record["image_height"].is_number()) {
    options.box_parse.image_height = record["image_height"].get<double>();
  }
  std::string truth_string = truth_text(*truth);
  json rewards = json::array();
  json notes = json::array();
  std::size_t index = 0;
  for (const auto& answer : *answers) {
    if (!answer.is_string()) {
      throw input_error(where, ": answer ", index, " of '", keys.answers, "' is ",
                        answer.type_name(), ", not a string");
    }
    RewardResult result = spec.score(answer.get_ref<const std::string&>(), truth_string, options);
    rewards.push_back(result.score);
    notes.push_back(result.note);
    summary.add(result);
    ++index;
  }
  record["rewards"] = std::move(rewards);
  record["reward_notes"] = std::move(notes);
  ++summary.records;
}

/// One line of output JSON (invalid UTF-8 cannot come from the parser, but never throw on it).
std::string dump_record(const json& record) {
  return record.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// First non-blank character of the file, or 0 for an empty / blank file.
char first_non_blank(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char c = 0;
  while (in.get(c)) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c;
  }
  return 0;
}

}  // namespace

ListInputFormat parse_list_input_format(std::string_view name) {
  if (name == "auto") return ListInputFormat::kAuto;
  if (name == "ours") return ListInputFormat::kOurs;
  if (name == "authors") return ListInputFormat::kAuthors;
  throw input_error("unknown input format '", name, "'").hint("use auto, ours or authors");
}

void ScoreSummary::add(const RewardResult& result) {
  ++answers;
  reward_sum += result.score;
  double clamped = std::clamp(result.score, 0.0, 1.0);
  histogram[std::min<std::size_t>(9, static_cast<std::size_t>(clamped * 10.0))] += 1;
  ++notes[result.note];
}

std::string ScoreSummary::to_text() const {
  std::ostringstream out;
  char line[160];
  out << "scored " << answers << " answers in " << records << " records with reward '" << reward
      << "'\n";
  std::snprintf(line, sizeof(line), "mean reward %.4f\n", mean_reward());
  out << line;
  std::size_t peak =
      std::max<std::size_t>(1, *std::max_element(histogram.begin(), histogram.end()));
  for (std::size_t bin = 0; bin < histogram.size(); ++bin) {
    std::size_t bar = histogram[bin] * 40 / peak;
    std::snprintf(line, sizeof(line), "  [%.1f, %.1f%c %8zu  ", bin / 10.0, (bin + 1) / 10.0,
                  bin == 9 ? ']' : ')', histogram[bin]);
    out << line << std::string(bar, '#') << '\n';
  }
  out << "notes:";
  for (const auto& [note, count] : notes) out << ' ' << note << ' ' << count;
  out << (notes.empty() ? " none\n" : "\n");
  return out.str();
}

ScoreSummary score_list_file(const std::filesystem::path& input,
                             const std::filesystem::path& output, const ScoreFileOptions& options) {
  const RewardSpec& spec = find_reward(options.reward);
  ScoreSummary summary;
  summary.reward = spec.name;
  std::ifstream in(input, std::ios::binary);
  if (!in) {
    throw input_error("cannot read ", input.string()).hint("check the path given to --input");
  }
  ListInputFormat format = options.format;
  if (format == ListInputFormat::kAuto) {
    format = first_non_blank(input) == '[' ? ListInputFormat::kAuthors : ListInputFormat::kOurs;
  }
  AtomicFileWriter writer(output);
  const std::string file = input.string();
  if (format == ListInputFormat::kAuthors) {
    json items;
    try {
      items = json::parse(in);
    } catch (const json::exception& e) {
      throw input_error(file, ": not valid JSON (authors' format is one JSON list): ", e.what());
    }
    if (!items.is_array()) {
      throw input_error(file, ": the authors' format is one JSON list, got ", items.type_name());
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      score_record(items[i], kAuthorsKeys, spec, options.options,
                   file + ": item " + std::to_string(i), summary);
      writer.stream() << dump_record(items[i]) << '\n';
    }
  } else {
    std::string text;
    std::size_t line_number = 0;
    while (std::getline(in, text)) {
      ++line_number;
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
      const std::string where = file + ":" + std::to_string(line_number);
      json record;
      try {
        record = json::parse(text);
      } catch (const json::exception& e) {
        throw input_error(where, ": not valid JSON: ", e.what())
            .hint("each line must be one JSON object (JSONL)");
      }
      score_record(record, kOurKeys, spec, options.options, where, summary);
      writer.stream() << dump_record(record) << '\n';
    }
  }
  writer.commit();
  return summary;
}

}  // namespace perpo
