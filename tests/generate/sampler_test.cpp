// Samplers on hand-worked distributions. Evenly spaced uniforms u_i = (i + 0.5) / M turn the
// inverse-CDF sampler into exact counts: token k is picked M * p_k times.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>

#include "perpo/core/error.h"
#include "perpo/generate/sampler.h"

namespace perpo {
namespace {

/// Counts of each token over M rows of the same logits with evenly spaced uniforms.
std::map<int, int> counts(const std::vector<double>& logits_row, int M, const SamplerOptions& o) {
  torch::Tensor logits =
      torch::tensor(logits_row, torch::kFloat).unsqueeze(0).expand({M, -1}).contiguous();
  std::vector<double> u(M);
  for (int i = 0; i < M; ++i) u[i] = (i + 0.5) / M;
  torch::Tensor tokens = select_tokens(logits, torch::tensor(u, torch::kDouble), o);
  std::map<int, int> result;
  for (int i = 0; i < M; ++i) ++result[static_cast<int>(tokens[i].item<std::int64_t>())];
  return result;
}

// probs (0.5, 0.3, 0.2, 0) from logits log p (token 3: -inf never drawn)
const std::vector<double> kLogits = {std::log(0.5), std::log(0.3), std::log(0.2), -INFINITY};

TEST(Sampler, InverseCdfDrawsEachTokenByItsProbability) {
  SamplerOptions o;
  EXPECT_EQ(counts(kLogits, 10, o), (std::map<int, int>{{0, 5}, {1, 3}, {2, 2}}));
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  // T = 0.5 squares the probabilities: 0.25 : 0.09 : 0.04 over 0.38 -> of 38 draws 25, 9, 4.
  SamplerOptions o;
  o.temperature = 0.5;
  EXPECT_EQ(counts(kLogits, 38, o), (std::map<int, int>{{0, 25}, {1, 9}, {2, 4}}));
  // Logits (0, log 4): T = 2 -> probs proportional to 1 : 2 -> of 30 draws 10, 20.
  o.temperature = 2.0;
  EXPECT_EQ(counts({0.0, std::log(4.0)}, 30, o), (std::map<int, int>{{0, 10}, {1, 20}}));
}

TEST(Sampler, TopKKeepsTheKLargest) {
  SamplerOptions o;
  o.top_k = 2;  // 0.5 : 0.3 renormalised -> 5/8, 3/8
  EXPECT_EQ(counts(kLogits, 8, o), (std::map<int, int>{{0, 5}, {1, 3}}));
  o.top_k = 1;
  EXPECT_EQ(counts(kLogits, 8, o), (std::map<int, int>{{0, 8}}));
}

TEST(Sampler, TopPKeepsTokensWhosePrecedingMassIsBelowP) {
  SamplerOptions o;
  o.top_p = 0.7;  // preceding mass 0, 0.5, 0.8: tokens 0 and 1 stay -> 5/8, 3/8
  EXPECT_EQ(counts(kLogits, 8, o), (std::map<int, int>{{0, 5}, {1, 3}}));
  o.top_p = 0.5;  // token 1's preceding mass 0.5 is not < 0.5: only token 0
  EXPECT_EQ(counts(kLogits, 8, o), (std::map<int, int>{{0, 8}}));
  // Unsorted vocabulary: the sort maps back to the right ids. probs (0.2, 0.5, 0.3): p = 0.5
  // keeps id 1 only; p = 0.75 keeps ids 1 (0.5) and 2 (0.3): of 8 draws 5 and 3.
  EXPECT_EQ(counts({std::log(0.2), std::log(0.5), std::log(0.3)}, 8, o),
            (std::map<int, int>{{1, 8}}));
  o.top_p = 0.75;
  EXPECT_EQ(counts({std::log(0.2), std::log(0.5), std::log(0.3)}, 8, o),
            (std::map<int, int>{{1, 5}, {2, 3}}));
}

TEST(Sampler, GreedyTakesTheArgmaxAndTheLowestIdOnTies) {
  torch::Tensor logits = torch::tensor({{0.1f, 2.0f, 2.0f, -1.0f}, {5.0f, 0.0f, 0.0f, 6.0f}});
  torch::Tensor tokens = select_tokens(logits, torch::Tensor(), SamplerOptions::greedy_decoding());
  EXPECT_EQ(tokens[0].item<std::int64_t>(), 1);
  EXPECT_EQ(tokens[1].item<std::int64_t>(), 3);
}

TEST(Sampler, ExtremeUniformsStayOnTokensWithMass) {
  SamplerOptions o;
  torch::Tensor logits = torch::tensor({{0.0f, 0.0f, -INFINITY}, {0.0f, 0.0f, -INFINITY}});
  torch::Tensor tokens =
      select_tokens(logits, torch::tensor({0.0, std::nextafter(1.0, 0.0)}, torch::kDouble), o);
  EXPECT_EQ(tokens[0].item<std::int64_t>(), 0);
  EXPECT_EQ(tokens[1].item<std::int64_t>(), 1);
}

TEST(Seeds, StreamsArePureFunctionsAndDiffer) {
  const std::uint64_t a = record_seed(42, "refcoco-val-17");
  EXPECT_EQ(a, record_seed(42, "refcoco-val-17"));
  EXPECT_NE(a, record_seed(43, "refcoco-val-17"));
  EXPECT_NE(a, record_seed(42, "refcoco-val-18"));
  EXPECT_NE(answer_seed(a, 0), answer_seed(a, 1));
  std::set<double> draws;
  double sum = 0;
  for (int step = 0; step < 2000; ++step) {
    const double u = uniform_at(answer_seed(a, 0), step);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    EXPECT_EQ(u, uniform_at(answer_seed(a, 0), step));
    draws.insert(u);
    sum += u;
  }
  EXPECT_EQ(draws.size(), 2000u);
  EXPECT_NEAR(sum / 2000, 0.5, 0.03);  // 4.5 standard errors (sd of the mean 0.0065)
}

TEST(Sampler, OptionsValidation) {
  SamplerOptions o;
  o.temperature = -1;
  EXPECT_THROW(o.validate(), Error);
  o = {};
  o.top_p = 0;
  EXPECT_THROW(o.validate(), Error);
  o = SamplerOptions::greedy_decoding();
  o.temperature = -1;  // ignored by greedy
  EXPECT_NO_THROW(o.validate());
}

}  // namespace
}  // namespace perpo
