// Qwen2.5-VL's decoder with multimodal rotary positions and the whole model: parity with
// transformers' Qwen2_5_VLForConditionalGeneration on the tiny random models of
// tools/make_qwen2_5_vl_fixtures.py ("batch": two images of different sizes in one row and a left
// padded second row, untied head, 2 key/value heads for 4 query heads; "tied": one image, tied
// head, another mrope_section): get_rope_index's positions and rope deltas, logits, answer
// log-probs, the fp32 gradient of every parameter, and greedy generation through the KV cache.
// Then the rotary and the position ids worked by hand, and the config reader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/hf_names.h"
#include "perpo/model/llama.h"
#include "perpo/model/qwen2_5_vl.h"
#include "perpo/model/qwen_checkpoint.h"
#include "perpo/model/qwen_rope.h"
#include "perpo/model/safetensors.h"
#include "perpo/model/token_logps.h"
#include "qwen_fixture.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

using test::fixture_dir;
using Fixture = test::QwenFixture;
Fixture load(const std::string& name) { return test::load_qwen_fixture(name); }

/// max |actual - expected| / max(1, max |expected|).
double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  return (actual - expected).abs().max().item<double>() / scale;
}

/// Largest |a - b| over the tokens where mask (B, T) is 1; a, b (B, T, V).
double max_diff_at_real_tokens(const torch::Tensor& a, const torch::Tensor& b,
                               const torch::Tensor& mask) {
  torch::Tensor real = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(real).max().item<double>();
}

class QwenVLParity : public ::testing::TestWithParam<std::string> {};

TEST_P(QwenVLParity, RopeIndexEqualsTransformers) {
  Fixture f = load(GetParam());
  RopeIndex index = qwen_rope_index(f.ids, f.grid, f.mask, f.config);
  EXPECT_TRUE(torch::equal(index.positions, f.get("position_ids")));
  EXPECT_TRUE(torch::equal(index.deltas, f.get("rope_deltas")));
}

TEST_P(QwenVLParity, LogitsEqualTransformers) {
  Fixture f = load(GetParam());
  f.model->eval();
  torch::NoGradGuard no_grad;
  Qwen2_5VLOutput out = f.model->forward(f.ids, f.pixels, f.grid, f.mask);
  torch::Tensor want = f.get("logits");
  ASSERT_EQ(out.logits.sizes(), want.sizes());
  ASSERT_GT(want.std().item<double>(), 0.5);
  EXPECT_LT(max_diff_at_real_tokens(out.logits, want, f.mask), 1e-4);
  EXPECT_TRUE(torch::equal(out.positions, f.get("position_ids")));
  EXPECT_TRUE(torch::equal(out.rope_deltas, f.get("rope_deltas")));
}

TEST_P(QwenVLParity, AnswerLogProbsEqualTransformers) {
  Fixture f = load(GetParam());
  f.model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor logits = f.model->forward(f.ids, f.pixels, f.grid, f.mask).logits;
  const auto T = f.ids.size(1);
  torch::Tensor next =
      token_logps_from_logits(logits.narrow(1, 0, T - 1), f.ids.narrow(1, 1, T - 1));
  torch::Tensor logps = torch::cat({torch::zeros({f.ids.size(0), 1}), next}, 1) *
                        f.get("answer_mask").to(torch::kFloat);  // (B, T)
  torch::Tensor want = f.get("answer_logps");
  ASSERT_GT(want.abs().sum().item<double>(), 1.0);
  EXPECT_LT((logps - want).abs().max().item<double>(), 1e-4);
  EXPECT_LT((logps.sum(1) - want.sum(1)).abs().max().item<double>(), 1e-4);
}

/// sum(logits * g) backward: every parameter's gradient against transformers' (1e-4 relative to
/// the gradient's largest value when above 1).
void check_gradients(const std::string& name, bool checkpointing) {
  Fixture f = load(name);
  f.model->train();
  f.model->set_gradient_checkpointing(checkpointing);
  Qwen2_5VLOutput out = f.model->forward(f.ids, f.pixels, f.grid, f.mask);
  (out.logits * f.get("grad_logits").to(torch::kFloat)).sum().backward();
  int compared = 0, stored = 0;
  for (const std::string& key : f.expected->names()) stored += key.rfind("grad.", 0) == 0;
  for (const auto& item : f.model->named_parameters()) {
    const std::string key = "grad." + canonical_to_hf(item.key(), HfLayout::kOld,
                                                      HfFamily::kQwen2_5VL);  // the Hub's name
    ASSERT_TRUE(item.value().grad().defined()) << key;
    if (!f.expected->contains(key)) {
      EXPECT_EQ(key, "grad.visual.patch_embed.proj.weight");  // "batch" leaves it out (size)
      continue;
    }
    EXPECT_LT(relative_error(item.value().grad(), f.expected->tensor(key)), 1e-4) << key;
    ++compared;
  }
  EXPECT_EQ(compared, stored);
  EXPECT_GE(compared, 12 * f.config.text.num_hidden_layers + 2);  // 12 per layer, embed, norm
}

TEST_P(QwenVLParity, GradientsEqualTransformers) { check_gradients(GetParam(), false); }

TEST_P(QwenVLParity, GradientCheckpointingGivesTheSameGradients) {
  check_gradients(GetParam(), true);
}

struct Greedy {
  torch::Tensor ids;        // (B, steps)
  torch::Tensor logits;     // (B, steps, V): the logits each token was picked from
  torch::Tensor positions;  // (3, B, steps - 1): the positions of the decoded tokens
};

/// Greedy decoding over the forward and the KV cache: the prompt once, then one token at a time
/// at P + rope_deltas.
Greedy greedy(Qwen2_5VLModel& model, const torch::Tensor& ids, const torch::Tensor& pixels,
              const torch::Tensor& grid, const torch::Tensor& mask, int steps) {
  torch::NoGradGuard no_grad;
  Qwen2_5VLOutput prompt = model->forward(ids, pixels, grid, mask);
  KVCache cache = prompt.present;
  torch::Tensor key_mask = mask;
  torch::Tensor last = prompt.logits.select(1, -1);  // (B, V)
  std::vector<torch::Tensor> tokens, logits, positions;
  for (int step = 0; step < steps; ++step) {
    torch::Tensor next = last.argmax(-1);  // (B)
    tokens.push_back(next);
    logits.push_back(last);
    if (step + 1 == steps) break;
    key_mask = torch::cat({key_mask, torch::ones({ids.size(0), 1}, key_mask.options())}, 1);
    Qwen2_5VLOutput out = model->decode(next.unsqueeze(1), prompt.rope_deltas, cache, key_mask);
    cache = cache.appended(out.present);
    positions.push_back(out.positions);
    last = out.logits.select(1, 0);
  }
  return {torch::stack(tokens, 1), torch::stack(logits, 1), torch::cat(positions, 2)};
}

TEST_P(QwenVLParity, GreedyGenerationThroughTheCacheEqualsTransformers) {
  Fixture f = load(GetParam());
  f.model->eval();
  torch::Tensor want = f.get("generated_batch");
  const int steps = static_cast<int>(want.size(1));
  Greedy got = greedy(f.model, f.ids, f.pixels, f.grid, f.mask, steps);
  EXPECT_TRUE(torch::equal(got.ids, want)) << got.ids << want;
  EXPECT_LT((got.logits - f.get("generated_batch_logits")).abs().max().item<double>(), 1e-4);

  // The decoded tokens' positions are get_rope_index's over the prompt and the tokens before.
  torch::Tensor ids = torch::cat({f.ids, got.ids.narrow(1, 0, steps - 1)}, 1);
  torch::Tensor mask =
      torch::cat({f.mask, torch::ones({f.ids.size(0), steps - 1}, f.mask.options())}, 1);
  RopeIndex index = qwen_rope_index(ids, f.grid, mask, f.config);
  EXPECT_TRUE(torch::equal(got.positions, index.positions.narrow(2, f.ids.size(1), steps - 1)));

  // Row 0 alone (no padding) generates what transformers generates for it alone.
  torch::Tensor first_want = f.get("generated_first");
  const std::int64_t real = f.mask[0].sum().item<std::int64_t>();
  ASSERT_EQ(real, f.ids.size(1));  // row 0 is the longest: no padding
  std::int64_t images = 0, patches = 0;
  for (std::int64_t s = 0; s < real - 1; ++s) {
    if (f.ids[0][s].item<std::int64_t>() == f.config.vision_start_token_id &&
        f.ids[0][s + 1].item<std::int64_t>() == f.config.image_token_id) {
      patches += f.grid[images++].prod().item<std::int64_t>();
    }
  }
  Greedy first = greedy(f.model, f.ids.narrow(0, 0, 1), f.pixels.narrow(0, 0, patches),
                        f.grid.narrow(0, 0, images), torch::ones({1, real}, torch::kLong), steps);
  EXPECT_TRUE(torch::equal(first.ids, first_want)) << first.ids << first_want;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QwenVLParity, ::testing::Values("batch", "tied"));

TEST(QwenVLModel, ImageTokensAndFeaturesMustAgree) {
  Fixture f = load("tied");
  torch::NoGradGuard no_grad;
  torch::Tensor ids = f.ids.clone();
  torch::Tensor image_at = ids.eq(f.config.image_token_id).nonzero();
  ids.index_put_({image_at[0][0], image_at[0][1]}, 7);  // one image token fewer
  EXPECT_THROW(f.model->embed(ids, f.pixels, f.grid), Error);
  EXPECT_THROW(f.model->embed(f.ids, torch::Tensor(), torch::Tensor()), Error);  // no pixels
  torch::Tensor two_grids = torch::cat({f.grid, f.grid});
  EXPECT_THROW(qwen_rope_index(f.ids, two_grids, f.mask, f.config), Error);  // one image, 2 rows
}

// --- the rotary and the position ids by hand --------------------------------------------------

TEST(QwenRope, EqualRowsGiveTheOneDimensionalRotary) {
  TextConfig text;
  text.hidden_size = 64;
  text.num_attention_heads = 4;  // head dim 16: 8 frequencies
  text.rope_theta = 100.0;
  MultimodalRotary rotary(text, {2, 3, 3});
  RotaryEmbedding plain(text);
  torch::Tensor rows = torch::tensor({{0, 3, 7, 40}, {5, 6, 7, 8}}, torch::kLong);  // (B, T)
  auto [cos, sin] = rotary.cos_sin(rows.unsqueeze(0).expand({3, -1, -1}), torch::kFloat);
  auto [cos1, sin1] = plain.cos_sin(rows, torch::kFloat);
  EXPECT_TRUE(torch::equal(cos, cos1));
  EXPECT_TRUE(torch::equal(sin, sin1));

  // Changing the height row moves frequencies 2..4 (and 10..12 of the second half) only.
  torch::Tensor moved = rows.unsqueeze(0).repeat({3, 1, 1});
  moved[1] += 5;
  auto [cos2, sin2] = rotary.cos_sin(moved, torch::kFloat);
  torch::Tensor changed = (cos2 - cos).abs().amax({0, 1, 2}).gt(1e-6);  // (D)
  std::vector<bool> want = {false, false, true, true, true, false, false, false};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(changed[i].item<bool>(), want[i % 8]) << i;
  EXPECT_THROW(MultimodalRotary(text, {2, 3, 4}), Error);  // sums to 9, not 8
}

Qwen2_5VLConfig small_config() {
  Qwen2_5VLConfig config;
  config.image_token_id = 9;
  config.vision_start_token_id = 8;
  config.vision.spatial_merge_size = 2;
  return config;
}

TEST(QwenRope, AnImageTakesRowsAndColumnsAndTheTextContinuesAfterIt) {
  // text, text, <vision_start>, a (1, 4, 6) image = 2 x 3 merged tokens, <vision_end>, text
  torch::Tensor ids = torch::tensor({{1, 2, 8, 9, 9, 9, 9, 9, 9, 5, 3}});
  RopeIndex index = qwen_rope_index(ids, torch::tensor({{1, 4, 6}}), {}, small_config());
  auto row = [&](int r) {
    torch::Tensor v = index.positions[r][0];
    return std::vector<std::int64_t>(v.data_ptr<std::int64_t>(), v.data_ptr<std::int64_t>() + 11);
  };
  EXPECT_THAT(row(0), ElementsAre(0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7));
  EXPECT_THAT(row(1), ElementsAre(0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7));
  EXPECT_THAT(row(2), ElementsAre(0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7));
  EXPECT_EQ(index.deltas.item<std::int64_t>(), 8 - 11);
  EXPECT_TRUE(torch::equal(qwen_continuation_positions(11, 2, index.deltas),
                           torch::tensor({8, 9}, torch::kLong).view({1, 1, 2}).expand({3, 1, 2})));
}

TEST(QwenRope, TextOnlyPositionsCountRealTokensAndPaddingGetsOne) {
  torch::Tensor ids = torch::tensor({{4, 4, 1, 2, 3}, {1, 2, 3, 4, 5}});
  torch::Tensor mask = torch::tensor({{0, 0, 1, 1, 1}, {1, 1, 1, 1, 1}});
  RopeIndex index = qwen_rope_index(ids, {}, mask, small_config());
  torch::Tensor want = torch::tensor({{1, 1, 0, 1, 2}, {0, 1, 2, 3, 4}}, torch::kLong);
  EXPECT_TRUE(torch::equal(index.positions, want.unsqueeze(0).expand({3, 2, 5})));
  EXPECT_TRUE(torch::equal(index.deltas, torch::tensor({-2, 0}, torch::kLong)));
}

// --- config.json ------------------------------------------------------------------------------

json fixture_config(const std::string& name) {
  return json::parse(read_file(fixture_dir(name) / "config.json"));
}

std::string config_error(const json& config) {
  return perpo::test::input_error_of(
      [&] { parse_qwen2_5_vl_config(config.dump(), "ckpt/config.json"); });
}

TEST(QwenVLConfigTest, ReadsTheFixtures) {
  Qwen2_5VLConfig c = load_qwen2_5_vl_config(fixture_dir("batch"));
  EXPECT_EQ(c.text.vocab_size, 160);
  EXPECT_EQ(c.text.hidden_size, 64);
  EXPECT_EQ(c.text.num_hidden_layers, 2);
  EXPECT_EQ(c.text.num_attention_heads, 4);
  EXPECT_EQ(c.text.num_key_value_heads, 2);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 100.0);
  EXPECT_DOUBLE_EQ(c.text.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.text.qkv_bias);
  EXPECT_FALSE(c.text.attention_bias);
  EXPECT_THAT(c.mrope_section, ElementsAre(2, 3, 3));
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.image_token_id, 150);
  EXPECT_EQ(c.vision_start_token_id, 148);
  EXPECT_EQ(c.vision.depth, 2);
  Qwen2_5VLConfig tied = load_qwen2_5_vl_config(fixture_dir("tied"));
  EXPECT_TRUE(tied.tie_word_embeddings);
  EXPECT_THAT(tied.mrope_section, ElementsAre(1, 1, 2));
  EXPECT_EQ(tied.text.num_attention_heads, 6);
}

TEST(QwenVLConfigTest, PadTokenIdIsTheEmbeddingsPaddingRow) {
  EXPECT_EQ(load_qwen2_5_vl_config(fixture_dir("batch")).text.pad_token_id, -1);
  json config = fixture_config("tied");
  config["text_config"]["pad_token_id"] = 5;
  Qwen2_5VLConfig c = parse_qwen2_5_vl_config(config.dump(), "c");
  EXPECT_EQ(c.text.pad_token_id, 5);
  Qwen2_5VLModel model(c);
  EXPECT_EQ(model->language_model->embed_tokens->options.padding_idx(), 5);
  config["text_config"]["pad_token_id"] = 160;
  EXPECT_THAT(config_error(config), HasSubstr("text_config.pad_token_id"));
}

TEST(QwenVLConfigTest, TransformersFiveRopeParametersAreRead) {
  json config = fixture_config("batch");
  json& text = config["text_config"];
  text["rope_parameters"] = {
      {"rope_type", "default"}, {"mrope_section", json::array({2, 3, 3})}, {"rope_theta", 100.0}};
  text.erase("rope_scaling");
  text.erase("rope_theta");
  Qwen2_5VLConfig c = parse_qwen2_5_vl_config(config.dump(), "c");
  EXPECT_THAT(c.mrope_section, ElementsAre(2, 3, 3));
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 100.0);
}

TEST(QwenVLConfigTest, TheHubsTopLevelTextKeysAreRead) {
  json config = fixture_config("batch");
  json text = config["text_config"];
  config.erase("text_config");
  for (auto& [key, value] : text.items()) {
    if (key != "model_type") config[key] = value;  // the file's model_type stays qwen2_5_vl
  }
  config["rope_scaling"] = {{"type", "mrope"}, {"mrope_section", json::array({4, 2, 2})}};
  config["tie_word_embeddings"] = true;
  Qwen2_5VLConfig c = parse_qwen2_5_vl_config(config.dump(), "c");
  EXPECT_THAT(c.mrope_section, ElementsAre(4, 2, 2));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.text.hidden_size, 64);
}

TEST(QwenVLConfigTest, BadValuesAreRefusedByName) {
  auto with_text = [](const char* key, const json& value) {
    json config = fixture_config("batch");
    config["text_config"][key] = value;
    return config_error(config);
  };
  EXPECT_THAT(with_text("rope_scaling", {{"type", "mrope"}, {"mrope_section", {2, 3, 4}}}),
              HasSubstr("text_config.rope_scaling.mrope_section must be"));
  EXPECT_THAT(with_text("rope_scaling", {{"rope_type", "yarn"}, {"mrope_section", {2, 3, 3}}}),
              HasSubstr("'yarn' is not supported"));
  EXPECT_THAT(with_text("rope_scaling", nullptr), HasSubstr("mrope_section"));
  EXPECT_THAT(with_text("num_key_value_heads", 3), HasSubstr("text_config.num_key_value_heads"));
  json other_width = fixture_config("batch");
  other_width["vision_config"]["out_hidden_size"] = 48;
  EXPECT_THAT(config_error(other_width), HasSubstr("out_hidden_size"));
  EXPECT_THAT(with_text("use_sliding_window", true), HasSubstr("use_sliding_window"));
  for (const char* key : {"vocab_size", "num_hidden_layers", "num_key_value_heads", "rms_norm_eps",
                          "rope_theta", "hidden_act"}) {
    json config = fixture_config("batch");
    config["text_config"].erase(key);
    EXPECT_THAT(config_error(config), HasSubstr("text_config." + std::string(key) + " is missing"));
  }
  json config = fixture_config("batch");
  config["image_token_id"] = 160;  // outside the vocabulary
  EXPECT_THAT(config_error(config), HasSubstr("image_token_id"));
}

}  // namespace
}  // namespace perpo
