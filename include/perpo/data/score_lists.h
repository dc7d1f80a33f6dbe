// The work behind `perpo score`: score every answer of every preference list in a file with a
// named reward, write the lists back with `rewards` and `reward_notes`, and summarise.
//
// Input: read by data's list readers (jsonl.h), so `score` accepts exactly what the other
// commands accept, minus what scoring does not need (images are not opened; "image" and "prompt"
// may be absent; "rewards" are replaced):
//   ours     JSONL preference lists: {"answers": [...], "ground_truth": "...", ...}; optional
//            "image_width" / "image_height" (pixels, > 0) let pixel boxes be normalised
//   authors  the authors' JSON list (answers_gen, answer, iou_scores, ...)
//   auto     authors when the input's first non-blank character is '[', else ours
// Each list needs N >= 2 answers and a ground truth; ref_logps (if any) must have N entries.
// The input is read once, so a pipe works (`--input <(zcat lists.jsonl.gz)`).
// Output: perpo's JSONL list format (records.h) whatever the input format, so every perpo reader
// accepts it: each list with "rewards": [0.81, 0.0, ...] and "reward_notes": ["ok", "no_box",
// ...] (one per answer). Relative image paths are rewritten against the output's folder. The
// output follows the output-path rules (core/output_paths.h): never an input, written atomically
// (complete or untouched), FIFOs and devices written in place.
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
#include <vector>

#include "perpo/reward/reward.h"

namespace perpo {

enum class ListInputFormat { kAuto, kOurs, kAuthors };

/// "auto" | "ours" (or "perpo") | "authors"; throws perpo::Error (input) otherwise.
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
  bool force = false;                         // replace an existing output file (refused otherwise)
  std::vector<std::filesystem::path> inputs;  // read besides `input` (the --config file)
};

/// Scores `input` into `output` (see above). Throws perpo::Error (input) naming the file and the
/// line for unreadable files, invalid JSON, bad lists, a bad image size, or an output the rules
/// refuse; nothing is written then.
ScoreSummary score_list_file(const std::filesystem::path& input,
                             const std::filesystem::path& output, const ScoreFileOptions& options);

}  // namespace perpo
