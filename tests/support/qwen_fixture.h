// The tiny random Qwen2.5-VL models of tools/make_qwen2_5_vl_fixtures.py ("batch", "tied"): the
// model with the fixture's weights, its prompts (input_ids, attention_mask, image_grid_thw, the
// patches from their formula) and transformers' expected outputs.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/load.h"
#include "perpo/model/qwen2_5_vl.h"
#include "perpo/model/qwen_checkpoint.h"
#include "perpo/model/safetensors.h"
#include "qwen_fixture_pixels.h"
#include "test_paths.h"

namespace perpo::test {

inline std::filesystem::path fixture_dir(const std::string& name) {
  return std::filesystem::path(test::kTestsDir) / "fixtures" / "model" / "qwen2_5_vl" / name;
}

struct QwenFixture {
  Qwen2_5VLConfig config;
  Qwen2_5VLModel model{nullptr};
  std::shared_ptr<SafetensorsFile> expected;
  torch::Tensor ids, mask, grid, pixels;

  torch::Tensor get(const std::string& key) const { return expected->tensor(key).clone(); }
};

inline QwenFixture load_qwen_fixture(const std::string& name) {
  QwenFixture f;
  f.config = load_qwen2_5_vl_config(fixture_dir(name));
  f.model = Qwen2_5VLModel(f.config);
  // The strict loader (qwen_checkpoint.h): every parameter from the file (F16 widened), none left.
  LoadReport report = load_qwen2_5_vl_weights(*f.model, fixture_dir(name));
  EXPECT_EQ(report.layout, "old");
  EXPECT_TRUE(report.skipped.empty());
  f.expected = std::make_shared<SafetensorsFile>(fixture_dir(name) / "expected.safetensors");
  f.ids = f.get("input_ids");
  f.mask = f.get("attention_mask");
  f.grid = f.get("image_grid_thw");
  torch::Tensor salts = f.get("image_salts");
  std::vector<torch::Tensor> images;
  for (std::int64_t i = 0; i < f.grid.size(0); ++i) {
    images.push_back(test::fixture_pixels(f.grid[i].prod().item<std::int64_t>(),
                                          f.config.vision.patch_values(),
                                          salts[i].item<std::int64_t>()));
  }
  f.pixels = torch::cat(images);  // (S, 1176)
  return f;
}

/// A Hugging Face Qwen2.5-VL folder at `dir` for the commands' tests: the "batch" fixture's
/// sizes, the Qwen2 tokenizer fixture's vocabulary (800 pieces + added tokens) and special-token
/// ids, weights drawn from `seed` (init_weights), written by perpo's exporter in the Hub's layout.
inline void write_tiny_qwen(const std::filesystem::path& dir, std::uint64_t seed) {
  const std::filesystem::path fixtures = std::filesystem::path(kTestsDir) / "fixtures";
  nlohmann::json config =
      nlohmann::json::parse(read_file(fixtures / "model/qwen2_5_vl/batch/config.json"));
  config["text_config"]["vocab_size"] = 832;
  config["vision_start_token_id"] = 809;
  config["vision_end_token_id"] = 810;
  config["image_token_id"] = 812;
  config["video_token_id"] = 813;
  const std::filesystem::path staging = dir.string() + ".config";
  std::filesystem::create_directories(staging);
  write_file_atomic(staging / "config.json", config.dump(2));
  Qwen2_5VLModel model(load_qwen2_5_vl_config(staging));
  torch::manual_seed(seed);
  init_weights(*model);
  ExportOptions options;
  options.layout = "old";  // the Hub's names
  options.tokenizer_dir = fixtures / "tokenizer" / "qwen2";
  export_qwen2_5_vl(*model, dir, options);
  std::filesystem::remove_all(staging);
}

}  // namespace perpo::test
