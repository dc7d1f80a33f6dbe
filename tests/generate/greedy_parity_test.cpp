// Greedy decoding equals transformers' generate(do_sample=False) token for token on the tiny
// parity checkpoints (tools/make_generate_fixtures.py): prompts alone, and the three prompts of
// different lengths decoded together; without a stop token, and with one that ends an answer early.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "generate_test_util.h"

namespace perpo {
namespace {

struct GreedyFixture {
  LlavaModel model{nullptr};
  std::vector<GenerationPrompt> prompts;
  torch::Tensor greedy, greedy_eos;  // (3, 12) int64, -1 padded
  int eos_id = -1;
};

GreedyFixture load(const std::string& name) {
  GreedyFixture f;
  f.model = test::load_fixture_model(name);
  SafetensorsFile file(std::filesystem::path(test::kTestsDir) / "fixtures" / "generate" /
                       (name + ".safetensors"));
  torch::Tensor pixels = file.tensor("pixel_values").clone();
  for (int r = 0; r < 3; ++r) {
    torch::Tensor ids = file.tensor("prompt_" + std::to_string(r)).contiguous();
    GenerationPrompt prompt;
    prompt.prompt_ids.assign(ids.data_ptr<std::int64_t>(),
                             ids.data_ptr<std::int64_t>() + ids.numel());
    prompt.pixel_values = pixels[r];
    prompt.seeds = {0};
    prompt.name = name + " prompt " + std::to_string(r);
    f.prompts.push_back(prompt);
  }
  f.greedy = file.tensor("greedy").clone();
  f.greedy_eos = file.tensor("greedy_eos").clone();
  f.eos_id = static_cast<int>(file.tensor("eos_id").item<std::int64_t>());
  return f;
}

/// Expected tokens of row r, -1 padding dropped.
std::vector<int> expected_row(const torch::Tensor& table, int r) {
  std::vector<int> ids;
  for (int t = 0; t < table.size(1); ++t) {
    const auto id = table[r][t].item<std::int64_t>();
    if (id >= 0) ids.push_back(static_cast<int>(id));
  }
  return ids;
}

/// Our answer as transformers writes it: the tokens, then the stop token when it stopped.
std::vector<int> as_written(const GeneratedAnswer& answer, int eos_id) {
  std::vector<int> ids = answer.ids;
  if (answer.stopped) ids.push_back(eos_id);
  return ids;
}

class GreedyParity : public ::testing::TestWithParam<std::string> {};

TEST_P(GreedyParity, AloneAndBatchedMatchTransformers) {
  GreedyFixture f = load(GetParam());
  for (bool with_eos : {false, true}) {
    GenerationOptions options;
    options.max_new_tokens = 12;
    options.sampler = SamplerOptions::greedy_decoding();
    if (with_eos) options.stop_ids = {f.eos_id};
    const torch::Tensor& expected = with_eos ? f.greedy_eos : f.greedy;
    SCOPED_TRACE(with_eos ? "with stop token" : "without stop token");

    auto batched = generate(*f.model, f.prompts, options);
    ASSERT_EQ(batched.size(), 3u);
    bool some_stopped = false;
    for (int r = 0; r < 3; ++r) {
      ASSERT_EQ(batched[r].size(), 1u);
      EXPECT_EQ(as_written(batched[r][0], f.eos_id), expected_row(expected, r))
          << "batched row " << r;
      some_stopped |= batched[r][0].stopped;
      auto alone = generate(*f.model, {f.prompts[r]}, options);
      EXPECT_EQ(as_written(alone[0][0], f.eos_id), expected_row(expected, r)) << "alone row " << r;
    }
    EXPECT_EQ(some_stopped, with_eos);  // the fixture's stop token ends one answer early
  }
}

TEST_P(GreedyParity, ReorderedBatchGivesTheSameAnswers) {
  GreedyFixture f = load(GetParam());
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.sampler = SamplerOptions::greedy_decoding();
  options.stop_ids = {f.eos_id};
  auto reordered = generate(*f.model, {f.prompts[2], f.prompts[0], f.prompts[1]}, options);
  EXPECT_EQ(as_written(reordered[0][0], f.eos_id), expected_row(f.greedy_eos, 2));
  EXPECT_EQ(as_written(reordered[1][0], f.eos_id), expected_row(f.greedy_eos, 0));
  EXPECT_EQ(as_written(reordered[2][0], f.eos_id), expected_row(f.greedy_eos, 1));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GreedyParity,
                         ::testing::Values("tiny_old_untied_gqa", "tiny_new_tied"));

}  // namespace
}  // namespace perpo
