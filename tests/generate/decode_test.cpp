// Batched decoding on the segmented cache: the attention over (shared prompt, row buffer) equals
// plain attention over copied keys; sampled tokens are what the full forward's logits give with
// the same random draws; answers do not depend on which other prompts or answers share the batch;
// stop tokens end answers (rows are dropped from the batch) without changing the others.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "generate_test_util.h"
#include "perpo/generate/segment_cache.h"
#include "perpo/model/attention.h"
#include "test_util.h"

namespace perpo {
namespace {

TEST(SegmentAttention, EqualsPlainAttentionOverCopiedKeys) {
  torch::manual_seed(3);
  const int64_t R = 2, N = 3, H = 4, Hkv = 2, P = 5, L = 4, D = 8;
  torch::Tensor q = torch::randn({R * N, H, 1, D});
  torch::Tensor prefix_k = torch::randn({R, Hkv, P, D}), prefix_v = torch::randn({R, Hkv, P, D});
  torch::Tensor row_k = torch::randn({R * N, Hkv, L, D}), row_v = torch::randn({R * N, Hkv, L, D});
  // prompt 0 has 5 real tokens, prompt 1 has 3 (right padding)
  torch::Tensor mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}).to(torch::kBool);
  // Both implementations (the packed SDPA call and the folded matmuls)
  torch::Tensor got_reference;
  {
    AttentionImplGuard guard(AttentionImpl::reference);
    got_reference = grouped_segment_attention(q, prefix_k, prefix_v, mask, row_k, row_v, 0.35);
    // The mask as its additive fp32 bias (what the cache keeps): the same bits.
    EXPECT_TRUE(torch::equal(
        grouped_segment_attention(q, prefix_k, prefix_v, attention_bias(mask), row_k, row_v, 0.35),
        got_reference));
  }
  AttentionImplGuard guard(AttentionImpl::sdpa);
  torch::Tensor got =
      grouped_segment_attention(q, prefix_k, prefix_v, mask, row_k, row_v, 0.35);  // (6,4,1,8)
  EXPECT_LT((got - got_reference).abs().max().item<double>(), 1e-6);
  EXPECT_TRUE(torch::equal(
      grouped_segment_attention(q, prefix_k, prefix_v, attention_bias(mask), row_k, row_v, 0.35),
      got));

  // Reference: each row's keys copied out: prompt (its record's) then its own row keys.
  torch::Tensor record = torch::tensor({0, 0, 0, 1, 1, 1});
  torch::Tensor keys = torch::cat({prefix_k.index_select(0, record), row_k}, 2);    // (6,2,9,8)
  torch::Tensor values = torch::cat({prefix_v.index_select(0, record), row_v}, 2);  // (6,2,9,8)
  torch::Tensor key_mask =
      torch::cat({mask.index_select(0, record), torch::ones({R * N, L}, torch::kBool)}, 1);
  torch::Tensor allowed = key_mask.view({R * N, 1, 1, P + L});
  torch::Tensor expected =
      attend(q, keys, values, keys.narrow(2, 0, 0), values.narrow(2, 0, 0), allowed, 0.35);
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-6);
  // The padded prompt keys carry no weight: changing them changes nothing.
  prefix_k[1].narrow(1, 3, 2).fill_(100.0);
  torch::Tensor again = grouped_segment_attention(q, prefix_k, prefix_v, mask, row_k, row_v, 0.35);
  EXPECT_LT((again - got).abs().max().item<double>(), 1e-6);
}

/// Generated token t of an answer is what select_tokens picks from the full forward's logits at
/// the position before it, with the answer's uniform of step t.
void expect_consistent_with_full_forward(LlavaModel& model, const GenerationPrompt& prompt,
                                         const GeneratedAnswer& answer, std::uint64_t seed,
                                         const SamplerOptions& sampler) {
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> ids(prompt.prompt_ids.begin(), prompt.prompt_ids.end());
  const auto P = static_cast<std::int64_t>(ids.size());
  ids.insert(ids.end(), answer.ids.begin(), answer.ids.end());
  torch::Tensor logits =
      model->forward(torch::tensor(ids).unsqueeze(0), prompt.pixel_values.unsqueeze(0))[0];
  for (std::size_t t = 0; t < answer.ids.size(); ++t) {
    torch::Tensor u =
        torch::tensor({uniform_at(seed, static_cast<std::int64_t>(t))}, torch::kDouble);
    const auto picked =
        select_tokens(logits[P - 1 + t].unsqueeze(0), u, sampler)[0].item<std::int64_t>();
    ASSERT_EQ(picked, answer.ids[t]) << prompt.name << " step " << t;
  }
}

TEST(Decode, SampledTokensFollowTheFullForwardLogits) {
  LlavaModel model = test::random_model(5);
  std::vector<GenerationPrompt> prompts = {test::random_prompt(2, 3, 1, 4),
                                           test::random_prompt(7, 1, 2, 4),
                                           test::random_prompt(4, 6, 3, 4)};
  for (SamplerOptions sampler : {SamplerOptions{}, SamplerOptions{.temperature = 0.7, .top_k = 10},
                                 SamplerOptions{.top_p = 0.8}}) {
    GenerationOptions options = test::decoding(8, sampler);
    auto answers = generate(*model, prompts, options);
    int distinct_first = 0;
    for (std::size_t r = 0; r < prompts.size(); ++r) {
      ASSERT_EQ(answers[r].size(), 4u);
      for (std::size_t n = 0; n < 4; ++n) {
        ASSERT_EQ(answers[r][n].ids.size(), 8u);  // no stop token: max_new_tokens each
        expect_consistent_with_full_forward(model, prompts[r], answers[r][n], prompts[r].seeds[n],
                                            sampler);
        distinct_first += answers[r][n].ids != answers[r][0].ids;
      }
    }
    EXPECT_GT(distinct_first, 0);  // sampling does vary between answers
  }
}

TEST(Decode, AnswersDoNotDependOnTheBatch) {
  LlavaModel model = test::random_model(6);
  GenerationPrompt a = test::random_prompt(3, 2, 11, 4), b = test::random_prompt(6, 4, 12, 2);
  GenerationOptions options = test::decoding(10);
  auto together = generate(*model, {a, b}, options);
  auto a_alone = generate(*model, {a}, options);
  auto b_first = generate(*model, {b, a}, options);
  GenerationPrompt a_part = a;  // answers 2 and 3 of a, on their own
  a_part.seeds = {a.seeds[2], a.seeds[3]};
  auto part = generate(*model, {a_part}, options);
  for (int n = 0; n < 4; ++n) {
    EXPECT_EQ(together[0][n].ids, a_alone[0][n].ids);
    EXPECT_EQ(together[0][n].ids, b_first[1][n].ids);
  }
  EXPECT_EQ(part[0][0].ids, together[0][2].ids);
  EXPECT_EQ(part[0][1].ids, together[0][3].ids);
  EXPECT_EQ(together[1][1].ids, b_first[0][1].ids);
}

TEST(Decode, StopTokensEndAnswersAndLeaveTheOthersAlone) {
  LlavaModel model = test::random_model(7);
  std::vector<GenerationPrompt> prompts = {test::random_prompt(2, 2, 21, 5),
                                           test::random_prompt(5, 3, 22, 3)};
  GenerationOptions options = test::decoding(12);
  auto free_run = generate(*model, prompts, options);
  // Stop at the second token of answer 0: answers stop where that token first appears.
  const int stop = free_run[0][0].ids[1];
  options.stop_ids = {stop};
  GenerationStats stats;
  auto stopped = generate(*model, prompts, options, &stats);
  int ended_early = 0;
  std::int64_t tokens = 0;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    for (std::size_t n = 0; n < prompts[r].seeds.size(); ++n) {
      const std::vector<int>& full = free_run[r][n].ids;
      auto at = std::find(full.begin(), full.end(), stop);
      std::vector<int> expected(full.begin(), at);
      EXPECT_EQ(stopped[r][n].ids, expected) << "prompt " << r << " answer " << n;
      EXPECT_EQ(stopped[r][n].stopped, at != full.end());
      ended_early += at != full.end();
      tokens += static_cast<std::int64_t>(expected.size()) + (at != full.end());
    }
  }
  EXPECT_GE(ended_early, 1);
  EXPECT_EQ(stats.generated_tokens, tokens);
  EXPECT_EQ(stats.prompt_tokens,
            static_cast<std::int64_t>(prompts[0].prompt_ids.size() + prompts[1].prompt_ids.size()));
  EXPECT_LE(stats.steps, 11);
}

TEST(Decode, PromptBeyondTheContextIsAnInputErrorNamingIt) {
  LlavaModel model = test::random_model(8);                  // max_position_embeddings 64
  GenerationPrompt prompt = test::random_prompt(50, 5, 31);  // 60 tokens
  prompt.name = "data.jsonl:7 (id long-one)";
  GenerationOptions options = test::decoding(8);
  const std::string message = test::error_of([&] { generate(*model, {prompt}, options); });
  EXPECT_NE(message.find("data.jsonl:7 (id long-one)"), std::string::npos) << message;
  EXPECT_NE(message.find("context of 64"), std::string::npos) << message;
  options.max_new_tokens = 4;  // 60 + 4 fits
  EXPECT_NO_THROW(generate(*model, {prompt}, options));
}

TEST(Decode, LeavesTrainingModeAsItWas) {
  LlavaModel model = test::random_model(9);
  model->train();
  generate(*model, {test::random_prompt(1, 1, 41)}, test::decoding(2));
  EXPECT_TRUE(model->is_training());
}

}  // namespace
}  // namespace perpo
