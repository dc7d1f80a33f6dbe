// Records perpo reads and writes (interfaces.md): dataset records (input of sample, eval, SFT)
// and preference lists (output of sample, input of train). Plain C++, no LibTorch.
//
//   dataset record:  {"id": "refcoco-val-17", "task": "grounding", "image": "images/17.jpg",
//                     "prompt": "Please provide the bounding box ...", "ground_truth": "[0.61,
//                     ...]"}
//   preference list: a dataset record plus
//                    {"answers": ["[0.61, ...]", "[0.1, ...]"], "rewards": [0.8, 0.0],
//                     "ref_logps": [-3.21, -9.7]}            (ref_logps may be absent)
//
// Fields perpo does not know (e.g. "reward_notes") are kept in `extra` and written back unchanged.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace perpo {

/// Where a record came from, for error messages: "lists.jsonl:12".
struct RecordSource {
  std::filesystem::path file;
  std::size_t line = 0;  // 1-based; 0 = not from a file

  std::string to_string() const;
};

struct DatasetRecord {
  std::string id;                    // e.g. "refcoco-val-17"; default "<file stem>-<line>"
  std::string task;                  // grounding | ocr | ..., picks reward and metric; may be ""
  std::string image;                 // as written in the file, e.g. "images/000000580344.jpg"
  std::filesystem::path image_path;  // `image` resolved against the file's folder
  std::string prompt;                // the user's instruction, without chat template
  std::string ground_truth;          // e.g. "[0.61, 0.1, 0.77, 0.54]"; may be "" in a list
  nlohmann::json extra = nlohmann::json::object();  // unknown fields, kept for writing back
  RecordSource source;
};

struct PreferenceList {
  DatasetRecord record;
  std::vector<std::string> answers;  // N >= 2 sampled answers, in no particular order
  std::vector<double> rewards;       // N rewards (empty only before `perpo score`)
  std::vector<double> ref_logps;     // N summed reference log-probs; empty = not computed yet
  // N rows, each the sampling model's log-prob of every token of that answer (EOS included) as
  // the training template tokenizes it; empty = not kept (sampling.token_logps). loss.name grpo
  // reads them as the old policy of its importance ratios.
  std::vector<std::vector<double>> sample_token_logps;

  std::size_t size() const { return answers.size(); }
  bool has_rewards() const { return !rewards.empty(); }
  bool has_ref_logps() const { return !ref_logps.empty(); }
  bool has_sample_token_logps() const { return !sample_token_logps.empty(); }
};

/// JSON of a record: its known fields, then `extra`. `image` is written as it was read.
nlohmann::json to_json(const DatasetRecord& record);
nlohmann::json to_json(const PreferenceList& list);

/// Re-writes a relative `image` so that it resolves from the folder of `output` (a file written
/// from records read in `input`): lists written in one folder are read from another
/// (interfaces.md: image is relative to the JSONL file's folder). Absolute paths, an output in the
/// input's folder, and pipes or devices on either side keep the image as read.
void rebase_image(DatasetRecord& record, const std::filesystem::path& input,
                  const std::filesystem::path& output);

/// Bounds of the numbers in a list (validate_list): rewards within +-kMaxAbsReward, ref_logps in
/// [-kMaxAbsRefLogp, kMaxRefLogp] (a little above 0 for rounding in bf16).
inline constexpr double kMaxAbsReward = 1e6;
inline constexpr double kMaxAbsRefLogp = 1e9;
inline constexpr double kMaxRefLogp = 1.0;

/// Checks N >= 2, that rewards / ref_logps / sample_token_logps (when present) have N entries and
/// lie in the bounds above (each token log-prob finite and <= kMaxRefLogp). Throws perpo::Error
/// (input) naming `list.record.source` and saying which counts differ.
void validate_list(const PreferenceList& list, bool require_rewards = true);

}  // namespace perpo
