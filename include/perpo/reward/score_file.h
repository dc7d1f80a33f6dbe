// The work behind `perpo score`: score every answer of every list record in a file with a named
// reward, write the records back with `rewards` and `reward_notes` added, and summarise.
//
// Input formats (interfaces.md):
//   ours     JSONL, one record per line: {"answers": [...], "ground_truth": "...", ...}
//            optional "image_width" / "image_height" (pixels) let pixel boxes be normalised
//   authors  one JSON list (the released code's format) whose items have "answers_gen" (the
//            sampled answers) and "answer" (the ground truth)
//   auto     authors when the file's first non-blank character is '[', else ours
// The output is always JSONL: each input record / item, unchanged, plus
//   "rewards": [0.81, 0.0, ...], "reward_notes": ["ok", "no_box", ...]   (one per answer).
// The output file is written atomically: complete or untouched.
//
//   perpo::ScoreSummary summary = perpo::score_list_file("lists.jsonl", "scored.jsonl", {"iou"});
//   std::cout << summary.to_text();
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "perpo/reward/reward.h"

namespace perpo {

enum class ListInputFormat { kAuto, kOurs, kAuthors };

/// "auto" | "ours" | "authors"; throws perpo::Error (input) otherwise.
ListInputFormat parse_list_input_format(std::string_view name);

/// Counts over all scored answers.
struct ScoreSummary {
  std::string reward;       // name of the reward used
  std::size_t records = 0;  // list records read
  std::size_t answers = 0;  // answers scored
  double reward_sum = 0;
  std::array<std::size_t, 10> histogram{};   // bin k holds scores in [k/10, (k+1)/10); 1.0 in bin 9
  std::map<std::string, std::size_t> notes;  // note -> how many answers got it

  void add(const RewardResult& result);
  double mean_reward() const { return answers ? reward_sum / static_cast<double>(answers) : 0.0; }
  /// A few lines for the terminal: counts, mean reward, a histogram with bars, notes counted.
  std::string to_text() const;
};

struct ScoreFileOptions {
  std::string reward = "iou";  // a registered reward name (reward.h)
  RewardOptions options;       // box selection, normalisations, default image size
  ListInputFormat format = ListInputFormat::kAuto;
};

/// Scores `input` into `output` (see above). Throws perpo::Error (input) naming the file and the
/// line (or list item) for unreadable files, invalid JSON, or records without answers / truth.
ScoreSummary score_list_file(const std::filesystem::path& input,
                             const std::filesystem::path& output, const ScoreFileOptions& options);

}  // namespace perpo
