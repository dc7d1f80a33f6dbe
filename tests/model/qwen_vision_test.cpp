// Qwen2.5-VL's vision tower: parity with transformers' Qwen2_5_VisionTransformerPretrainedModel on
// the tiny random tower of tools/make_qwen_vision_fixtures.py (output and the fp32 gradient of
// every parameter, two images of different sizes in one call and one image alone), the window
// layout worked by hand, and the vision_config reader's errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/attention.h"
#include "perpo/model/qwen_vision.h"
#include "perpo/model/safetensors.h"
#include "qwen_fixture_pixels.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

const fs::path kFixture = fs::path(test::kTestsDir) / "fixtures" / "model" / "qwen_vision";

using test::fixture_pixels;

/// Copies every parameter from `prefix` + its name in the file (cast to float32): every parameter
/// present with its shape, no tensor of the file left over.
void load_strict(torch::nn::Module& module, const SafetensorsFile& file,
                 const std::string& prefix) {
  std::set<std::string> unused(file.names().begin(), file.names().end());
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const std::string name = prefix + item.key();
    ASSERT_TRUE(file.contains(name)) << name;
    torch::Tensor stored = file.tensor(name);
    ASSERT_EQ(stored.sizes(), item.value().sizes()) << name;
    item.value().copy_(stored.to(torch::kFloat));
    unused.erase(name);
  }
  EXPECT_TRUE(unused.empty()) << *unused.begin();
}

struct Tower {
  QwenVisionConfig config;
  Qwen2_5VisionTransformer model{nullptr};
};

Tower load_tower() {
  Tower tower;
  tower.config = load_qwen_vision_config(kFixture);
  tower.model = Qwen2_5VisionTransformer(tower.config);
  load_strict(*tower.model, SafetensorsFile(kFixture / "model.safetensors"), "visual.");
  return tower;
}

// The salts of the fixture images' pixels per case, as in the script's CASES.
std::vector<std::uint64_t> case_salts(const std::string& name) {
  return name == "pair" ? std::vector<std::uint64_t>{1, 2} : std::vector<std::uint64_t>{3};
}

struct CaseInputs {
  torch::Tensor grid_thw, pixel_values;
};

CaseInputs case_inputs(const SafetensorsFile& expected, const std::string& name, int patch_values) {
  CaseInputs in;
  in.grid_thw = expected.tensor(name + ".grid_thw").clone();  // (I, 3)
  std::vector<std::uint64_t> salts = case_salts(name);
  EXPECT_EQ(in.grid_thw.size(0), static_cast<std::int64_t>(salts.size()));
  std::vector<torch::Tensor> images;
  for (std::int64_t i = 0; i < in.grid_thw.size(0); ++i) {
    images.push_back(
        fixture_pixels(in.grid_thw[i].prod().item<std::int64_t>(), patch_values, salts[i]));
  }
  in.pixel_values = torch::cat(images);  // (S, P)
  return in;
}

/// max |actual - expected| / max(1, max |expected|).
double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  return (actual - expected).abs().max().item<double>() / scale;
}

/// Runs one case of the fixture forward and backward; checks the output (1e-5) and the gradient
/// of every parameter (1e-4, relative to the gradient's largest value when above 1).
void check_case(const std::string& name, bool gradient_checkpointing) {
  Tower tower = load_tower();
  tower.model->gradient_checkpointing = gradient_checkpointing;
  tower.model->train();
  SafetensorsFile expected(kFixture / "expected.safetensors");
  CaseInputs in = case_inputs(expected, name, tower.config.patch_values());
  torch::Tensor output = tower.model->forward(in.pixel_values, in.grid_thw);  // (M, out)
  torch::Tensor want = expected.tensor(name + ".output");
  ASSERT_EQ(output.sizes(), want.sizes());
  ASSERT_GT(want.std().item<double>(), 0.3);  // spread out: a wrong order cannot hide
  EXPECT_LT((output - want).abs().max().item<double>(), 1e-5) << name;

  (output * expected.tensor(name + ".grad_output")).sum().backward();
  int compared = 0;
  for (const auto& item : tower.model->named_parameters()) {
    const std::string key = name + ".grad." + item.key();
    ASSERT_TRUE(expected.contains(key)) << key;
    ASSERT_TRUE(item.value().grad().defined()) << key;
    EXPECT_LT(relative_error(item.value().grad(), expected.tensor(key)), 1e-4) << key;
    ++compared;
  }
  EXPECT_EQ(compared, 1 + 12 * tower.config.depth + 5);  // embed; 12 per block; merger 5
}

TEST(QwenVisionParity, TwoImagesOfDifferentSizesInOneCall) { check_case("pair", false); }

TEST(QwenVisionParity, OneImageAlone) { check_case("single", false); }

TEST(QwenVisionParity, GradientCheckpointingGivesTheSameGradients) { check_case("pair", true); }

TEST(QwenVisionParity, ImagesOfOneCallDoNotSeeEachOther) {
  Tower tower = load_tower();
  torch::NoGradGuard no_grad;
  SafetensorsFile expected(kFixture / "expected.safetensors");
  CaseInputs pair = case_inputs(expected, "pair", tower.config.patch_values());
  const std::int64_t first_patches = pair.grid_thw[0].prod().item<std::int64_t>();
  torch::Tensor alone = tower.model->forward(pair.pixel_values.narrow(0, 0, first_patches),
                                             pair.grid_thw[0].view({1, 3}));
  torch::Tensor both = tower.model->forward(pair.pixel_values, pair.grid_thw);
  EXPECT_LT((both.narrow(0, 0, alone.size(0)) - alone).abs().max().item<double>(), 1e-5);
}

TEST(QwenVisionParity, PatchEmbeddingEqualsTheConv3d) {
  Tower tower = load_tower();
  torch::NoGradGuard no_grad;
  const auto& c = tower.config;
  torch::Tensor pixels = fixture_pixels(8, c.patch_values(), 7);  // (8, P)
  torch::Tensor conv = torch::conv3d(
      pixels.view({-1, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size}),
      tower.model->patch_embed->proj->weight, {},
      {c.temporal_patch_size, c.patch_size, c.patch_size});  // (8, C, 1, 1, 1)
  EXPECT_LT((tower.model->patch_embed(pixels) - conv.view({8, -1})).abs().max().item<double>(),
            1e-5);
}

TEST(QwenVisionWindows, PaddedWindowsAreDroppedAndTokensGoWindowByWindow) {
  QwenVisionConfig config;
  config.window_size = 84;  // 84 / 2 / 14 = 3 x 3 merged tokens per window
  // 4 x 6 merged: windows (0,0) (0,1) full, (0,2) empty; (1,0) (1,1) one row, (1,2) empty; then
  // 6 x 4 merged (tokens 24..47): (0,0) full, (0,1) one column, (1,0) full, (1,1), a third row
  // of empty windows.
  WindowLayout layout = window_layout({{1, 8, 12}, {1, 12, 8}}, config);
  EXPECT_THAT(layout.window_patches, ElementsAre(36, 36, 12, 12, 36, 12, 36, 12));
  ASSERT_EQ(layout.window_index.size(), 48u);
  const std::vector<std::int64_t> first_window = {0, 1, 2, 6, 7, 8, 12, 13, 14};
  EXPECT_EQ(std::vector<std::int64_t>(layout.window_index.begin(), layout.window_index.begin() + 9),
            first_window);
  const std::vector<std::int64_t> third_window = {18, 19, 20};  // the last merged row, x 0..2
  EXPECT_EQ(
      std::vector<std::int64_t>(layout.window_index.begin() + 18, layout.window_index.begin() + 21),
      third_window);
  const std::vector<std::int64_t> sixth_window = {24 + 3, 24 + 7, 24 + 11};  // 6 x 4: column 3
  EXPECT_EQ(
      std::vector<std::int64_t>(layout.window_index.begin() + 33, layout.window_index.begin() + 36),
      sixth_window);
  EXPECT_THAT(frame_patches({{2, 4, 6}, {1, 2, 2}}), ElementsAre(24, 24, 4));
}

TEST(QwenVisionWindows, SegmentAttentionEqualsOneSegmentAtATime) {
  torch::manual_seed(3);
  torch::Tensor q = torch::randn({11, 2, 4}), k = torch::randn({11, 2, 4}),
                v = torch::randn({11, 2, 4});
  const std::vector<std::int64_t> lengths = {4, 2, 4, 1};
  torch::Tensor packed = segment_attention(q, k, v, make_segments(lengths, torch::kCPU), 0.5);
  std::int64_t start = 0;
  for (std::int64_t length : lengths) {
    auto piece = [&](const torch::Tensor& t) { return t.narrow(0, start, length).transpose(0, 1); };
    torch::Tensor probs =
        torch::softmax(torch::matmul(piece(q), piece(k).transpose(1, 2)) * 0.5, -1);
    torch::Tensor want = torch::matmul(probs, piece(v)).transpose(0, 1);  // (len, H, D)
    EXPECT_LT((packed.narrow(0, start, length) - want).abs().max().item<double>(), 1e-6);
    start += length;
  }
}

TEST(QwenVisionWindows, MalformedGridsAreRefused) {
  Tower tower = load_tower();
  torch::Tensor pixels = torch::zeros({24, tower.config.patch_values()});
  EXPECT_THROW(tower.model->forward(pixels, torch::tensor({{1, 4, 5}})), Error);  // odd w
  EXPECT_THROW(tower.model->forward(pixels, torch::tensor({{1, 4, 4}})), Error);  // 16 != 24 rows
  EXPECT_THROW(tower.model->forward(pixels, torch::tensor({1, 4, 6})), Error);    // not (I, 3)
}

// --- vision_config ---------------------------------------------------------------------------

json fixture_config() { return json::parse(read_file(kFixture / "config.json")); }

std::string config_error(const json& config) {
  return perpo::test::input_error_of(
      [&] { parse_qwen_vision_config(config.dump(), "ckpt/config.json"); });
}

TEST(QwenVisionConfigTest, ReadsTheFixture) {
  QwenVisionConfig c = load_qwen_vision_config(kFixture);
  EXPECT_EQ(c.depth, 4);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.intermediate_size, 48);
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_EQ(c.out_hidden_size, 24);
  EXPECT_EQ(c.window_size, 84);
  EXPECT_EQ(c.merged_window(), 3);
  EXPECT_THAT(c.fullatt_block_indexes, ElementsAre(1, 3));
  EXPECT_TRUE(c.full_attention(1));
  EXPECT_FALSE(c.full_attention(2));
  EXPECT_EQ(c.patch_values(), 1176);
}

TEST(QwenVisionConfigTest, TheHubsInChansIsRead) {
  json config = fixture_config();
  config["vision_config"].erase("in_channels");
  config["vision_config"]["in_chans"] = 3;
  EXPECT_EQ(parse_qwen_vision_config(config.dump(), "c").in_channels, 3);
}

TEST(QwenVisionConfigTest, MissingKeysAreRefusedByName) {
  for (const char* key : {"depth", "hidden_size", "intermediate_size", "num_heads", "patch_size",
                          "spatial_merge_size", "temporal_patch_size", "window_size",
                          "out_hidden_size", "fullatt_block_indexes", "hidden_act"}) {
    json config = fixture_config();
    config["vision_config"].erase(key);
    std::string message = config_error(config);
    EXPECT_THAT(message, HasSubstr("vision_config." + std::string(key) + " is missing"));
    EXPECT_THAT(message, HasSubstr("ckpt/config.json"));
  }
  json config = fixture_config();
  config["vision_config"].erase("in_channels");
  EXPECT_THAT(config_error(config), HasSubstr("vision_config.in_channels (or in_chans)"));
  config = fixture_config();
  config.erase("vision_config");
  EXPECT_THAT(config_error(config), HasSubstr("vision_config is missing"));
}

TEST(QwenVisionConfigTest, InvalidValuesAreRefusedByName) {
  auto with = [](const char* key, const json& value) {
    json config = fixture_config();
    config["vision_config"][key] = value;
    return config_error(config);
  };
  EXPECT_THAT(with("depth", 0), HasSubstr("vision_config.depth must be an integer from 1"));
  EXPECT_THAT(with("hidden_size", "32"), HasSubstr("vision_config.hidden_size must be"));
  EXPECT_THAT(with("num_heads", 3), HasSubstr("vision_config.num_heads"));
  EXPECT_THAT(with("num_heads", 16), HasSubstr("multiple of 4"));  // head dim 2: rotary needs 4k
  EXPECT_THAT(with("window_size", 27), HasSubstr("vision_config.window_size"));
  EXPECT_THAT(with("fullatt_block_indexes", json::array({1, 4})),
              HasSubstr("vision_config.fullatt_block_indexes must be"));
  EXPECT_THAT(with("fullatt_block_indexes", 1), HasSubstr("fullatt_block_indexes"));
  EXPECT_THAT(with("hidden_act", "swish7"), HasSubstr("swish7"));
  json config = fixture_config();
  config["model_type"] = "llava";
  EXPECT_THAT(config_error(config), HasSubstr("model_type"));
}

}  // namespace
}  // namespace perpo
