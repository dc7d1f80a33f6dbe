// perpo score: read lists with data's readers, score their answers, write them back as lists.
#include "perpo/data/score_lists.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/output_lock.h"
#include "perpo/core/output_paths.h"
#include "perpo/data/jsonl.h"
#include "perpo/data/records.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

/// A positive, finite pixel size from the record's `key`, or `fallback` when absent.
double image_size(const PreferenceList& list, const char* key, double fallback) {
  const nlohmann::json& extra = list.record.extra;
  auto it = extra.find(key);
  if (it == extra.end() || it->is_null()) return fallback;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= 0) {
    throw input_error(list.record.source.to_string(), ": field \"", key,
                      "\" must be a positive number of pixels, got ", it->dump())
        .hint("give the image size in pixels, e.g. 640, or drop the field");
  }
  return it->get<double>();
}

/// Scores the answers of one list in place: rewards, and reward_notes among the extra fields.
void score_list(PreferenceList& list, const RewardSpec& spec, const RewardOptions& base_options,
                ScoreSummary& summary) {
  const std::string where = list.record.source.to_string();
  if (list.record.ground_truth.empty()) {
    throw input_error(where,
                      ": the list has no ground truth (field \"ground_truth\", or \"answer\" "
                      "in the authors' format, is missing or empty)")
        .hint("give the ground truth as a string, e.g. \"[0.61, 0.10, 0.77, 0.54]\"");
  }
  RewardOptions options = base_options;
  options.box_parse.image_width = image_size(list, "image_width", options.box_parse.image_width);
  options.box_parse.image_height = image_size(list, "image_height", options.box_parse.image_height);
  // A list sampled from a family that writes boxes in other units says so (BoxConvention::
  // annotate); reward.box_format other than auto / infer overrides it.
  const auto units = list.record.extra.find("box_units");
  if (units != list.record.extra.end() && options.box_parse.units == BoxUnits::kInfer) {
    PERPO_CHECK_INPUT(units->is_string(), where, ": field \"box_units\" must be a string, got ",
                      units->dump());
    try {
      options.box_parse.units = parse_box_units(units->get<std::string>());
    } catch (const Error& e) {
      throw Error(e.kind(), where + ": field \"box_units\": " + e.message()).hint(e.hint_text());
    }
  }
  list.rewards.clear();
  nlohmann::json notes = nlohmann::json::array();
  for (const std::string& answer : list.answers) {
    RewardResult result = spec.score(answer, list.record.ground_truth, options);
    list.rewards.push_back(result.score);
    notes.push_back(result.note);
    summary.add(result);
  }
  list.record.extra["reward_notes"] = std::move(notes);
  ++summary.records;
}

const char* format_name(ListInputFormat format) {
  switch (format) {
    case ListInputFormat::kOurs:
      return "perpo";
    case ListInputFormat::kAuthors:
      return "authors";
    default:
      return "auto";
  }
}

}  // namespace

ListInputFormat parse_list_input_format(std::string_view name) {
  if (name == "auto") return ListInputFormat::kAuto;
  if (name == "ours" || name == "perpo") return ListInputFormat::kOurs;
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

ScoreSummary score_list_file(const fs::path& input, const fs::path& output,
                             const ScoreFileOptions& options) {
  const RewardSpec& spec = find_reward(options.reward);
  std::vector<fs::path> inputs = options.inputs;
  inputs.push_back(input);
  check_output_file(output, {inputs, options.force});
  ScoreSummary summary;
  summary.reward = spec.name;

  ReadOptions read_options;
  read_options.require_rewards = false;  // they are what score writes
  read_options.require_prompt = false;   // scoring needs answers and the ground truth only
  read_options.image_check = ImageCheck::kNone;
  std::vector<PreferenceList> lists = read_lists(input, format_name(options.format), read_options);
  if (lists.empty()) {
    throw input_error(input.string(), " holds no lists")
        .hint("score reads JSONL preference lists or the authors' JSON list");
  }
  for (PreferenceList& list : lists) {
    score_list(list, spec, options.options, summary);
    rebase_image(list.record, input, output);
  }
  OutputLock lock = OutputLock::file(output);  // one perpo writes this file at a time
  AtomicFileWriter writer(output);
  for (const PreferenceList& list : lists) {
    writer.stream() << to_json(list).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    << '\n';
  }
  writer.commit();
  return summary;
}

}  // namespace perpo
