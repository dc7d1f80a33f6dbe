// Token / sequence log-probs: hand-worked values, masking, and the chunked hidden -> log-prob path
// against the plain (B, T, V) computation and finite differences.
#include "perpo/loss/sequence_logps.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace perpo {
namespace {

constexpr double kLn2 = 0.69314718055994531;
constexpr double kLn3 = 1.09861228866810969;

TEST(SequenceLogps, HandWorkedSumMeanAndMask) {
  // One sequence, T = 3, V = 3.
  //   t=0 logits [0, 0, 0]          -> every token has p = 1/3, target 1: log p = -ln 3
  //   t=1 logits [0, ln 2, ln 3]    -> p = [1/6, 2/6, 3/6], target 2: log p = ln(1/2) = -ln 2
  //   t=2 masked out (target -100, a prompt/padding position): never gathered.
  //   sum = -ln 3 - ln 2 = -1.7917595, mean = sum / 2 = -0.8958797, tokens = 2
  auto logits = torch::tensor({0.0, 0.0, 0.0, 0.0, kLn2, kLn3, 5.0, -5.0, 1.0}, torch::kDouble)
                    .reshape({1, 3, 3});
  auto targets = torch::tensor({1, 2, -100}, torch::kLong).reshape({1, 3});
  auto mask = torch::tensor({1, 1, 0}, torch::kLong).reshape({1, 3});
  SequenceLogps seq = sequence_logps(logits, targets, mask);
  EXPECT_NEAR(seq.sum.item<double>(), -kLn3 - kLn2, 1e-12);
  EXPECT_NEAR(seq.mean.item<double>(), (-kLn3 - kLn2) / 2, 1e-12);
  EXPECT_EQ(seq.tokens.item<double>(), 2.0);
}

TEST(SequenceLogps, EmptyMaskGivesZeroNotNaN) {
  auto tokens = torch::tensor({-1.0, -2.0}).reshape({1, 2});
  auto mask = torch::zeros({1, 2}, torch::kBool);
  SequenceLogps seq = reduce_token_logps(tokens, mask);
  EXPECT_EQ(seq.sum.item<double>(), 0.0);
  EXPECT_EQ(seq.mean.item<double>(), 0.0);
  EXPECT_EQ(seq.tokens.item<double>(), 0.0);
}

TEST(SequenceLogps, NonFinitePaddingDoesNotLeak) {
  // A padding position holding -inf must not turn the sum into NaN/-inf, nor its gradient.
  auto tokens =
      torch::tensor({-1.0, -std::numeric_limits<double>::infinity(), -0.5}, torch::kDouble)
          .reshape({1, 3})
          .requires_grad_(true);
  auto mask = torch::tensor({true, false, true}).reshape({1, 3});
  SequenceLogps seq = reduce_token_logps(tokens, mask);
  EXPECT_DOUBLE_EQ(seq.sum.item<double>(), -1.5);  // -1 + -0.5
  seq.sum.sum().backward();
  auto grad = tokens.grad();
  EXPECT_EQ(grad[0][0].item<double>(), 1.0);
  EXPECT_EQ(grad[0][1].item<double>(), 0.0);
  EXPECT_EQ(grad[0][2].item<double>(), 1.0);
}

TEST(SequenceLogps, MatchesLogSoftmaxAndIsStableForHugeLogits) {
  torch::manual_seed(3);
  auto logits = torch::randn({2, 4, 7}, torch::kDouble) * 1e4;  // naive exp() would overflow
  auto targets = torch::randint(0, 7, {2, 4}, torch::kLong);
  auto expected = torch::log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  auto got = token_logps(logits, targets);
  EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-12, 1e-9));
}

TEST(SequenceLogps, MaskedTokenNllIsTheTokenMean) {
  // tokens [[-1, -2, x], [-3, x, x]] with x masked: NLL = (1 + 2 + 3) / 3 = 2.
  auto tokens = torch::tensor({-1.0, -2.0, -9.0, -3.0, -9.0, -9.0}).reshape({2, 3});
  auto mask = torch::tensor({1, 1, 0, 1, 0, 0}).reshape({2, 3});
  EXPECT_NEAR(masked_token_nll(tokens, mask).item<double>(), 2.0, 1e-6);
}

/// hidden (B, T, H), weight (V, H), targets with some out-of-range ids and a mask hiding them.
struct HiddenCase {
  torch::Tensor hidden, weight, targets, mask;
};

HiddenCase make_hidden_case(torch::Dtype dtype) {
  torch::manual_seed(11);
  HiddenCase c;
  c.hidden = torch::randn({3, 5, 8}, dtype).requires_grad_(true);  // (B, T, H)
  c.weight = torch::randn({11, 8}, dtype).requires_grad_(true);    // (V, H)
  c.targets = torch::randint(0, 11, {3, 5}, torch::kLong);         // (B, T)
  c.mask = torch::rand({3, 5}) > 0.3;                              // (B, T)
  c.targets.masked_fill_(~c.mask, -100);
  return c;
}

TEST(SequenceLogps, ChunkedFromHiddenEqualsUnchunkedValuesAndGradients) {
  for (std::int64_t chunk : {1, 4, 7, 15, 0}) {
    SCOPED_TRACE("chunk_rows = " + std::to_string(chunk));
    HiddenCase plain = make_hidden_case(torch::kDouble);
    auto logits = plain.hidden.matmul(plain.weight.t());  // (B, T, V)
    SequenceLogps expected = sequence_logps(logits, plain.targets, plain.mask);
    (expected.sum.sum() + 0.5 * expected.mean.sum()).backward();

    HiddenCase chunked = make_hidden_case(torch::kDouble);
    auto tokens = token_logps_from_hidden(chunked.hidden, chunked.weight, chunked.targets, chunk);
    SequenceLogps got = reduce_token_logps(tokens, chunked.mask);
    (got.sum.sum() + 0.5 * got.mean.sum()).backward();

    EXPECT_TRUE(torch::allclose(got.sum, expected.sum, 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(got.mean, expected.mean, 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(chunked.hidden.grad(), plain.hidden.grad(), 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(chunked.weight.grad(), plain.weight.grad(), 1e-12, 1e-12));
  }
}

TEST(SequenceLogps, ChunkedFromHiddenMatchesFiniteDifferences) {
  HiddenCase c = make_hidden_case(torch::kDouble);
  auto objective = [&](const torch::Tensor& hidden, const torch::Tensor& weight) {
    auto tokens = token_logps_from_hidden(hidden, weight, c.targets, 4);
    return reduce_token_logps(tokens, c.mask).sum.sum();
  };
  objective(c.hidden, c.weight).backward();
  torch::NoGradGuard no_grad;
  const double eps = 1e-6;
  auto check = [&](torch::Tensor param, const torch::Tensor& grad, const char* name) {
    auto flat = param.view({-1});
    for (std::int64_t k = 0; k < flat.size(0); k += 3) {
      const double saved = flat[k].item<double>();
      flat[k] = saved + eps;
      const double up = objective(c.hidden, c.weight).item<double>();
      flat[k] = saved - eps;
      const double down = objective(c.hidden, c.weight).item<double>();
      flat[k] = saved;
      EXPECT_NEAR(grad.view({-1})[k].item<double>(), (up - down) / (2 * eps), 1e-6)
          << name << "[" << k << "]";
    }
  };
  check(c.hidden, c.hidden.grad(), "hidden");
  check(c.weight, c.weight.grad(), "weight");
}

TEST(SequenceLogps, ChunkedFromHiddenFrozenHeadAndBf16) {
  // LoRA-style: the LM head is frozen, only hidden gets a gradient.
  HiddenCase c = make_hidden_case(torch::kFloat);
  c.weight.requires_grad_(false);
  auto tokens = token_logps_from_hidden(c.hidden, c.weight, c.targets, 4);
  reduce_token_logps(tokens, c.mask).sum.sum().backward();
  EXPECT_TRUE(c.hidden.grad().defined());
  EXPECT_FALSE(c.weight.grad().defined());

  // bf16 inputs: log-probs come out in float32, close to the float32 computation.
  auto hidden16 = c.hidden.detach().to(torch::kBFloat16);
  auto weight16 = c.weight.to(torch::kBFloat16);
  auto got = token_logps_from_hidden(hidden16, weight16, c.targets, 4);
  EXPECT_EQ(got.scalar_type(), torch::kFloat);
  auto reference =
      token_logps(hidden16.to(torch::kFloat).matmul(weight16.to(torch::kFloat).t()), c.targets);
  EXPECT_TRUE(torch::allclose(got, reference, 0.05, 0.1));
}

}  // namespace
}  // namespace perpo
