// Qwen2.5-VL through the family interface (vlm.h), on the tiny random models of
// tools/make_qwen2_5_vl_fixtures.py: perpo's batched generator (right padding, one prompt run,
// the segmented decoding cache, positions continued at length + offset) decodes greedily what
// transformers' generate(do_sample=False) decodes; the shared-prefix answer log-probs, the
// decoder's prefix (prompt_prefix) and sequence_answer_logps equal the plain forward's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "perpo/generate/generator.h"
#include "perpo/model/token_logps.h"
#include "qwen_fixture.h"

namespace perpo {
namespace {

/// The fixture's rows as perpo's prompts: the real tokens of each row (the fixture pads on the
/// left), its images' patches and grid rows.
std::vector<GenerationPrompt> prompts_of(const test::QwenFixture& f) {
  std::vector<GenerationPrompt> prompts;
  std::int64_t image = 0, patch = 0;
  for (std::int64_t b = 0; b < f.ids.size(0); ++b) {
    GenerationPrompt prompt;
    std::int64_t first_image = image, first_patch = patch;
    for (std::int64_t s = 0; s < f.ids.size(1); ++s) {
      if (f.mask[b][s].item<std::int64_t>() == 0) continue;
      const std::int64_t id = f.ids[b][s].item<std::int64_t>();
      prompt.prompt_ids.push_back(static_cast<int>(id));
      const bool starts_image = s + 1 < f.ids.size(1) && id == f.config.vision_start_token_id &&
                                f.ids[b][s + 1].item<std::int64_t>() == f.config.image_token_id;
      if (starts_image) patch += f.grid[image++].prod().item<std::int64_t>();
    }
    if (image > first_image) {
      prompt.pixel_values = f.pixels.narrow(0, first_patch, patch - first_patch);
      prompt.grid_thw = f.grid.narrow(0, first_image, image - first_image);
    }
    prompt.seeds = {0};
    prompt.name = "row " + std::to_string(b);
    prompts.push_back(prompt);
  }
  EXPECT_EQ(patch, f.pixels.size(0));
  return prompts;
}

/// Per-token log-probs of `answer` after `prompt` by the plain forward of the whole sequence.
torch::Tensor plain_logps(test::QwenFixture& f, const GenerationPrompt& prompt,
                          const std::vector<std::int64_t>& answer) {
  std::vector<std::int64_t> ids(prompt.prompt_ids.begin(), prompt.prompt_ids.end());
  ids.insert(ids.end(), answer.begin(), answer.end());
  torch::Tensor logits =
      f.model->forward(torch::tensor(ids).unsqueeze(0), prompt.pixel_values, prompt.grid_thw)
          .logits[0];  // (S, V)
  const auto P = static_cast<std::int64_t>(prompt.prompt_ids.size());
  const auto T = static_cast<std::int64_t>(answer.size());
  return token_logps_from_logits(logits.narrow(0, P - 1, T).unsqueeze(0),
                                 torch::tensor(answer).unsqueeze(0))[0];  // (T)
}

class QwenFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(QwenFamily, PerposGeneratorDecodesWhatTransformersGenerates) {
  test::QwenFixture f = test::load_qwen_fixture(GetParam());
  f.model->eval();
  torch::Tensor want = f.get("generated_batch");  // (B, steps), transformers, left padding
  std::vector<GenerationPrompt> prompts = prompts_of(f);
  GenerationOptions options;
  options.max_new_tokens = static_cast<int>(want.size(1));
  options.sampler = SamplerOptions::greedy_decoding();  // no stop ids: every step is decoded
  std::vector<std::vector<GeneratedAnswer>> got = generate(*f.model, prompts, options);
  ASSERT_EQ(got.size(), prompts.size());
  for (std::size_t b = 0; b < got.size(); ++b) {
    std::vector<std::int64_t> ids(got[b][0].ids.begin(), got[b][0].ids.end());
    EXPECT_TRUE(torch::equal(torch::tensor(ids), want[static_cast<std::int64_t>(b)]))
        << "row " << b << ": " << torch::tensor(ids) << want[static_cast<std::int64_t>(b)];
  }
  // Alone, row 0 decodes the same.
  std::vector<std::vector<GeneratedAnswer>> alone = generate(*f.model, {prompts[0]}, options);
  EXPECT_EQ(alone[0][0].ids, got[0][0].ids);
}

TEST_P(QwenFamily, SharedPrefixLogProbsEqualThePlainForward) {
  test::QwenFixture f = test::load_qwen_fixture(GetParam());
  f.model->eval();
  torch::NoGradGuard no_grad;
  std::vector<GenerationPrompt> prompts = prompts_of(f);
  const std::vector<std::vector<std::int64_t>> answers = {{5, 9, 2, 7}, {11, 3}, {1, 1, 4}};
  torch::Tensor ids = torch::zeros({3, 4}, torch::kInt64), mask = torch::zeros({3, 4});
  for (std::int64_t n = 0; n < 3; ++n) {
    for (std::size_t t = 0; t < answers[n].size(); ++t) {
      ids[n][static_cast<std::int64_t>(t)] = answers[n][t];
      mask[n][static_cast<std::int64_t>(t)] = 1;
    }
  }
  GenerationOptions options;
  options.max_new_tokens = 4;
  EncodedPrompts encoded = encode_prompts(*f.model, prompts, options);  // right-padded batch
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const GenerationPrompt& prompt = prompts[r];
    std::vector<std::int64_t> prompt_ids(prompt.prompt_ids.begin(), prompt.prompt_ids.end());
    PrefixState alone = f.model->encode_prefix(torch::tensor(prompt_ids).unsqueeze(0),
                                               ModelImage(prompt.pixel_values, prompt.grid_thw));
    PrefixState batched = prompt_prefix(encoded, static_cast<std::int64_t>(r));
    EXPECT_EQ(alone.position_offset, batched.position_offset) << "row " << r;
    torch::Tensor shared = f.model->answer_logps(alone, ids, mask);     // (3, 4)
    torch::Tensor decoded = f.model->answer_logps(batched, ids, mask);  // (3, 4)
    for (std::int64_t n = 0; n < 3; ++n) {
      torch::Tensor plain = plain_logps(f, prompt, answers[n]);
      const auto T = static_cast<std::int64_t>(answers[n].size());
      EXPECT_LT((shared[n].narrow(0, 0, T) - plain).abs().max().item<double>(), 1e-5)
          << "row " << r << " answer " << n;
      EXPECT_LT((decoded[n].narrow(0, 0, T) - plain).abs().max().item<double>(), 1e-5)
          << "row " << r << " answer " << n;
    }
  }

  // sequence_answer_logps: every prompt with answer 0 in one right-padded batch.
  std::vector<std::vector<std::int64_t>> rows;
  std::vector<ModelImage> images;
  std::int64_t longest = 0;
  for (const GenerationPrompt& prompt : prompts) {
    std::vector<std::int64_t> row(prompt.prompt_ids.begin(), prompt.prompt_ids.end());
    row.insert(row.end(), answers[0].begin(), answers[0].end());
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(row.size()));
    rows.push_back(row);
    images.emplace_back(prompt.pixel_values, prompt.grid_thw);
  }
  const auto B = static_cast<std::int64_t>(rows.size());
  torch::Tensor seq = torch::zeros({B, longest}, torch::kInt64);
  torch::Tensor seq_mask = torch::zeros({B, longest}, torch::kInt64);
  torch::Tensor start = torch::zeros({B}, torch::kInt64);
  for (std::int64_t b = 0; b < B; ++b) {
    const auto length = static_cast<std::int64_t>(rows[b].size());
    seq[b].narrow(0, 0, length).copy_(torch::tensor(rows[b]));
    seq_mask[b].narrow(0, 0, length).fill_(1);
    start[b] = static_cast<std::int64_t>(prompts[b].prompt_ids.size());
  }
  torch::Tensor answer_mask = torch::ones({B, 4}, torch::kInt64);
  torch::Tensor sequences = f.model->sequence_answer_logps(seq, f.model->join_images(images),
                                                           seq_mask, start, answer_mask);
  for (std::int64_t b = 0; b < B; ++b) {
    torch::Tensor plain = plain_logps(f, prompts[b], answers[0]);
    EXPECT_LT((sequences[b] - plain).abs().max().item<double>(), 1e-5) << "row " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QwenFamily, ::testing::Values("batch", "tied"));

}  // namespace
}  // namespace perpo
