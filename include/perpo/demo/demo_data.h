// The demo's data stage: synthetic splits for every task, and the tiny tokenizer trained on them.
//
//   perpo::DemoDataPlan plan;                     // grounding + ocr; sft/pref/val/test splits
//   perpo::DemoData data = perpo::prepare_demo_data("runs/demo/data", plan);
//   data.find("grounding", "sft")->records        // runs/demo/data/grounding-sft/records.jsonl
//   data.tokenizer                                // runs/demo/data/tokenizer.model
//
// Splits are consecutive index ranges of one seed's stream (synth.h: record i depends only on
// seed, task and i), so they never share a record: with sft 4096, pref 2048, val 500, test 2000,
// "pref" holds records 4096..6143, and so on. The demo-study's findings behind the default split:
// stage 2 needs fresh labelled prompts ("pref"); validation picks settings, test reports them.
//
// Re-running reuses what is there: a split folder whose synth.json equals the options it would be
// written with is kept as it is; one with other options is written again when perpo wrote it
// (core/output_paths.h marker); any other folder in the way that holds files is refused.
// The tokenizer is trained on the texts of the "sft" splits (prompts as the plain chat template
// shows them, and answers) and kept when tokenizer.json (its inputs' digest) matches.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "perpo/synth/synth.h"
#include "perpo/tokenizer/trainer.h"

namespace perpo {

struct DemoSplit {
  std::string name;  // e.g. "sft"
  int count = 0;     // records, e.g. 4096
};

struct DemoDataPlan {
  std::vector<std::string> tasks = {"grounding", "ocr"};
  std::vector<DemoSplit> splits = {{"sft", 4096}, {"pref", 2048}, {"val", 500}, {"test", 2000}};
  std::string tokenizer_split = "sft";  // the split whose texts train the tokenizer
  std::uint64_t seed = 1;
  // Generator options of every split (image size, shapes, words, ...); task, count, seed and
  // first_index are set per task and split.
  SynthOptions synth;
  TokenizerTrainOptions tokenizer;
};

struct DemoDataSet {
  std::string task, split;
  std::filesystem::path records;  // <dir>/<task>-<split>/records.jsonl
  int count = 0;
  bool reused = false;
};

struct DemoData {
  std::vector<DemoDataSet> sets;
  std::filesystem::path tokenizer;  // <dir>/tokenizer.model
  bool tokenizer_reused = false;
  double seconds = 0;

  const DemoDataSet* find(const std::string& task, const std::string& split) const;
};

/// Writes (or reuses) every task's splits and the tokenizer under `dir` (see the file comment).
/// Prints one progress line per split to stderr. Throws perpo::Error (input) for a bad plan or a
/// foreign folder in the way.
DemoData prepare_demo_data(const std::filesystem::path& dir, const DemoDataPlan& plan);

/// The texts the tokenizer learns from, for records of `records_file`: each prompt as the plain
/// template puts it after the image ("\n" + prompt) and each ground truth.
std::vector<std::string> tokenizer_texts(const std::filesystem::path& records_file);

}  // namespace perpo
