// A tiny training setup for the train and cli tests: preference lists (and SFT records) over the
// data fixture's image, and a config for the built-in tiny model with the fixture tokenizer.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_paths.h"

namespace perpo::test {

inline std::filesystem::path train_fixture_image() {
  return std::filesystem::path(kTestsDir) / "fixtures" / "data" / "images" / "gradient_8x6.png";
}
inline std::filesystem::path train_fixture_tokenizer() {
  return std::filesystem::path(kTestsDir) / "fixtures" / "tokenizer" / "tiny.model";
}

/// `lists` grounding lists of `n` answers each, rewards falling from 1 to 0 across the answers
/// (list k's answers are boxes shifted by k), with ref_logps when `with_ref`.
inline std::filesystem::path write_train_lists(const std::filesystem::path& dir, int lists, int n,
                                               bool with_ref) {
  std::filesystem::create_directories(dir);
  const auto path = dir / "lists.jsonl";
  std::ofstream out(path);
  for (int k = 0; k < lists; ++k) {
    nlohmann::json record = {
        {"id", "list-" + std::to_string(k)},
        {"task", "grounding"},
        {"image", train_fixture_image().string()},
        {"prompt", "Please provide the bounding box of object " + std::to_string(k)},
        {"ground_truth", "[0.1" + std::to_string(k) + ", 0.2, 0.5, 0.6]"}};
    std::vector<std::string> answers;
    std::vector<double> rewards, ref;
    for (int i = 0; i < n; ++i) {
      answers.push_back("[0." + std::to_string(i + 1) + std::to_string(k) + ", 0." +
                        std::to_string(9 - i) + ", 0.5, 0.6]");
      rewards.push_back(n == 1 ? 1.0 : 1.0 - static_cast<double>(i) / (n - 1));
      ref.push_back(-20.0 - 0.5 * i + 0.25 * k);
    }
    record["answers"] = answers;
    record["rewards"] = rewards;
    if (with_ref) record["ref_logps"] = ref;
    out << record.dump() << "\n";
  }
  return path;
}

/// Dataset records (for sft): the lists' prompts with their ground truth.
inline std::filesystem::path write_train_records(const std::filesystem::path& dir, int records) {
  std::filesystem::create_directories(dir);
  const auto path = dir / "records.jsonl";
  std::ofstream out(path);
  for (int k = 0; k < records; ++k) {
    nlohmann::json record = {
        {"id", "rec-" + std::to_string(k)},
        {"task", "grounding"},
        {"image", train_fixture_image().string()},
        {"prompt", "Please provide the bounding box of object " + std::to_string(k)},
        {"ground_truth", "[0.1" + std::to_string(k) + ", 0.2, 0.5, 0.6]"}};
    out << record.dump() << "\n";
  }
  return path;
}

/// Config overrides (k=v) for a tiny run on `data` into `run_dir`.
inline std::vector<std::string> tiny_train_overrides(const std::filesystem::path& data,
                                                     const std::filesystem::path& run_dir) {
  return {"model.path=",
          "model.freeze_vision=false",
          "model.tiny.vision_hidden=16",
          "model.tiny.vision_layers=1",
          "model.tiny.vision_heads=2",
          "model.tiny.image_size=16",
          "model.tiny.patch_size=8",
          "model.tiny.hidden=32",
          "model.tiny.layers=2",
          "model.tiny.heads=4",
          "model.tiny.kv_heads=2",
          "model.tiny.intermediate=64",
          "tokenizer.path=" + train_fixture_tokenizer().string(),
          "tokenizer.chat_template=plain",
          "image.size=16",
          "data.train=" + data.string(),
          "data.shuffle=false",
          "optim.lr=0.01",
          "optim.schedule=constant",
          "train.lists_per_step=2",
          "train.epochs=1",
          "run.dir=" + run_dir.string(),
          "run.threads=1",
          "run.seed=7"};
}

}  // namespace perpo::test
