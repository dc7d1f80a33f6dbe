// The demo's data stage (see demo_data.h).
#include "perpo/demo/demo_data.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/data/jsonl.h"
#include "perpo/synth/synth.h"

namespace perpo {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Reads <dir>/synth.json; null when it is missing or unreadable.
nlohmann::json read_stamp(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(file));
  } catch (const std::exception&) {
    return nullptr;
  }
}

// FNV-1a over the texts and the options: what the tokenizer was trained from.
std::string tokenizer_digest(const std::vector<std::string>& texts,
                             const TokenizerTrainOptions& options) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto add = [&](const std::string& text) {
    for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;  // separator
  };
  for (const std::string& text : texts) add(text);
  add(std::to_string(options.vocab_size) + options.model_type +
      std::to_string(options.split_digits) + std::to_string(options.byte_fallback) +
      std::to_string(options.hard_vocab_limit) + std::to_string(options.character_coverage));
  for (const std::string& symbol : options.user_symbols) add(symbol);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

}  // namespace

const DemoDataSet* DemoData::find(const std::string& task, const std::string& split) const {
  for (const DemoDataSet& set : sets) {
    if (set.task == task && set.split == split) return &set;
  }
  return nullptr;
}

std::vector<std::string> tokenizer_texts(const fs::path& records_file) {
  ReadOptions options;
  options.image_check = ImageCheck::kNone;
  std::vector<std::string> texts;
  for (const DatasetRecord& record : read_dataset(records_file, options)) {
    texts.push_back("\n" + record.prompt);  // the plain template: "<image>\n<prompt>"
    texts.push_back(record.ground_truth);
  }
  return texts;
}

DemoData prepare_demo_data(const fs::path& dir, const DemoDataPlan& plan) {
  PERPO_CHECK_INPUT(!plan.tasks.empty() && !plan.splits.empty(),
                    "the demo's data plan needs at least one task and one split");
  const auto start = std::chrono::steady_clock::now();
  DemoData data;
  for (const std::string& task : plan.tasks) {
    std::uint64_t first = 0;
    for (const DemoSplit& split : plan.splits) {
      SynthOptions options = plan.synth;
      options.task = task;
      options.count = split.count;
      options.seed = plan.seed;
      options.first_index = first;
      first += static_cast<std::uint64_t>(split.count);
      validate_synth_options(options);

      DemoDataSet set{task, split.name, dir / (task + "-" + split.name) / "records.jsonl",
                      split.count, false};
      const fs::path folder = set.records.parent_path();
      const nlohmann::json stamp = read_stamp(folder / "synth.json");
      std::error_code ec;
      if (stamp == synth_options_json(options) && fs::is_regular_file(set.records, ec)) {
        set.reused = true;
        PERPO_LOG_INFO("[data] ", task, "-", split.name, ": ", split.count, " records (reused)");
      } else {
        // A folder perpo wrote (its marker) is written again; anything else in the way is
        // refused by the output-path rules.
        options.replace_own = true;  // the demo's own folder, written before with other settings
        const SynthSummary done = write_synth_dataset(folder, options);
        PERPO_LOG_INFO("[data] ", task, "-", split.name, ": ", done.records, " records written in ",
                       done.seconds, " s");
      }
      data.sets.push_back(set);
    }
  }

  std::vector<std::string> texts;
  for (const std::string& task : plan.tasks) {
    const DemoDataSet* set = data.find(task, plan.tokenizer_split);
    PERPO_CHECK_INPUT(set != nullptr, "the demo's tokenizer split '", plan.tokenizer_split,
                      "' is not among the data splits");
    const std::vector<std::string> more = tokenizer_texts(set->records);
    texts.insert(texts.end(), more.begin(), more.end());
  }
  const nlohmann::json stamp = {{"digest", tokenizer_digest(texts, plan.tokenizer)},
                                {"texts", texts.size()},
                                {"vocab_size_limit", plan.tokenizer.vocab_size}};
  data.tokenizer = dir / "tokenizer.model";
  std::error_code ec;
  if (read_stamp(dir / "tokenizer.json") == stamp && fs::is_regular_file(data.tokenizer, ec)) {
    data.tokenizer_reused = true;
    PERPO_LOG_INFO("[data] tokenizer: ", data.tokenizer.string(), " (reused)");
  } else {
    const auto tokenizer_start = std::chrono::steady_clock::now();
    train_tokenizer(texts, dir / "tokenizer", plan.tokenizer);
    write_file_atomic(dir / "tokenizer.json", stamp.dump(2) + "\n");
    PERPO_LOG_INFO("[data] tokenizer: ", data.tokenizer.string(), " trained on ", texts.size(),
                   " texts in ", seconds_since(tokenizer_start), " s");
  }
  data.seconds = seconds_since(start);
  return data;
}

}  // namespace perpo
