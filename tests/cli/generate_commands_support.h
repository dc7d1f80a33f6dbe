// Shared set-up of the sample / logps / eval command tests: a tiny model (model.path empty, the
// committed tiny tokenizer), a small grounding dataset and a config file, in a scratch folder.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test_paths.h"
#include "test_util.h"

namespace perpo::test {

inline std::string slurp_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

/// Writes <dir>/data.jsonl (`count` grounding records, ids r0...) and <dir>/config.yaml for the
/// tiny model; returns the config path. run.dir is <dir>/run.
inline std::filesystem::path write_tiny_setup(const std::filesystem::path& dir, int count) {
  const auto fixtures = std::filesystem::path(kTestsDir) / "fixtures";
  const auto image = fixtures / "data" / "images" / "gradient_8x6.png";
  std::ofstream data(dir / "data.jsonl");
  const char* things[] = {"red box", "left cat", "tall tree", "small dog", "blue car"};
  for (int i = 0; i < count; ++i) {
    nlohmann::json record = {{"id", "r" + std::to_string(i)},
                             {"task", "grounding"},
                             {"image", image.string()},
                             {"prompt", std::string("Where is the ") + things[i % 5] + "?"},
                             {"ground_truth", "[0.1, 0.2, 0.5, 0.6]"}};
    data << record.dump() << "\n";
  }
  std::ofstream config(dir / "config.yaml");
  config << "model:\n  path: \"\"\n  tiny: {vision_hidden: 16, vision_layers: 1, vision_heads: 2,"
            " image_size: 16, patch_size: 8, hidden: 32, layers: 2, heads: 4, kv_heads: 2,"
            " intermediate: 48}\n"
         << "tokenizer:\n  path: " << (fixtures / "tokenizer" / "tiny.model").string()
         << "\n  chat_template: plain\n"
         << "image:\n  size: 16\n"
         << "data:\n  train: " << (dir / "data.jsonl").string()
         << "\n  eval: " << (dir / "data.jsonl").string() << "\n"
         << "sampling:\n  num_answers: 4\n  max_new_tokens: 6\n  lists_per_batch: 2\n"
         << "eval:\n  max_new_tokens: 6\n  batch_size: 3\n"
         << "run:\n  dir: " << (dir / "run").string() << "\n  seed: 5\n  threads: 1\n";
  return dir / "config.yaml";
}

}  // namespace perpo::test
