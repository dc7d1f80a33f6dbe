// Hand-worked values of every objective (arithmetic in the comments), metrics, the selector and
// its errors. sp(x) = softplus(x) = ln(1 + e^x): sp(-4) = 0.0181499, sp(-2) = 0.1269280,
// sp(-1) = 0.3132617, sp(0) = ln 2 = 0.6931472, sp(1) = 1.3132617, sp(2) = 2.1269280.
#include "perpo/loss/objectives.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "perpo/core/error.h"
#include "perpo/loss/pair_weights.h"

namespace perpo {
namespace {

double sp(double x) { return std::log1p(std::exp(x)); }

torch::Tensor lists(std::vector<double> values, std::int64_t n) {
  return torch::tensor(values, torch::kDouble).reshape({-1, n});
}

/// Reference-free inputs: the policy log-probs are the scores s themselves.
ListwiseInputs scores_only(std::vector<double> s, std::vector<double> r, std::int64_t n) {
  ListwiseInputs in;
  in.policy_logps = lists(s, n).requires_grad_(true);
  in.rewards = lists(r, n);
  return in;
}

LossConfig config_for(const std::string& name, double beta, double gamma = 0.5) {
  LossConfig c;
  c.name = name;
  c.beta = beta;
  c.gamma = gamma;
  c.reference_free = true;
  return c;
}

TEST(Objectives, PerpoTwoAnswersWithReference) {
  // policy [-5, -3], reference [-4, -4] -> s = [-1, 1]; rewards [0.2, 0.8]: answer 1 is better,
  // one pair, weight 1. beta = 0.1: L = sp(-0.1 * (1 - (-1))) = sp(-0.2) = 0.5981389.
  ListwiseInputs in;
  in.policy_logps = lists({-5, -3}, 2).requires_grad_(true);
  in.ref_logps = lists({-4, -4}, 2);
  in.rewards = lists({0.2, 0.8}, 2);
  LossConfig config;  // perpo, beta 0.1, gamma 0.5, with reference
  LossOutput out = compute_loss(in, config);
  EXPECT_NEAR(out.loss.item<double>(), 0.5981389, 1e-7);
  EXPECT_NEAR(out.loss.item<double>(), sp(-0.2), 1e-12);
}

TEST(Objectives, PerpoThreeAnswersWithATie) {
  // rewards [0.5, 1.0, 0.5], s = [0, 2, -2], beta 0.5, gamma 0.5.
  // Better pairs: (1,0) gap 0.5, (1,2) gap 0.5; (0,2) tie -> weight 0.
  // w = sqrt(0.5) / (2 sqrt(0.5)) = 0.5 each.
  // L = 0.5 sp(-0.5 * 2) + 0.5 sp(-0.5 * 4) = 0.5 * 0.3132617 + 0.5 * 0.1269280 = 0.2200948.
  LossOutput out =
      perpo_loss(scores_only({0, 2, -2}, {0.5, 1.0, 0.5}, 3), config_for("perpo", 0.5));
  EXPECT_NEAR(out.loss.item<double>(), 0.2200948, 1e-7);
  EXPECT_NEAR(out.loss.item<double>(), 0.5 * sp(-1) + 0.5 * sp(-2), 1e-12);
}

TEST(Objectives, PerpoFourAnswersWithATieAndMetrics) {
  // rewards [0.9, 0.1, 0.5, 0.1], s = [1, 0, 0, -1], beta 1, gamma 1.
  // Better pairs and gaps: (0,1) 0.8, (0,2) 0.4, (0,3) 0.8, (2,1) 0.4, (2,3) 0.4; (1,3) tie.
  // Sum of gaps 2.8. Margins s_i - s_j: 1, 1, 2, 0, 1.
  // L = (0.8 sp(-1) + 0.4 sp(-1) + 0.8 sp(-2) + 0.4 sp(0) + 0.4 sp(-1)) / 2.8
  //   = (0.2506094 + 0.1253047 + 0.1015424 + 0.2772589 + 0.1253047) / 2.8 = 0.3142929.
  ListwiseInputs in = scores_only({1, 0, 0, -1}, {0.9, 0.1, 0.5, 0.1}, 4);
  LossOutput out = perpo_loss(in, config_for("perpo", 1.0, 1.0));
  EXPECT_NEAR(out.loss.item<double>(), 0.3142929, 1e-7);
  EXPECT_NEAR(out.loss.item<double>(),
              (0.8 * sp(-1) + 0.4 * sp(-1) + 0.8 * sp(-2) + 0.4 * sp(0) + 0.4 * sp(-1)) / 2.8,
              1e-12);
  // Metrics over the 5 pairs: s_i > s_j for 4 of them ((2,1) is a tie in s) -> accuracy 0.8;
  // mean margin (1+1+2+0+1)/5 = 1; chosen s: (1+1+1+0+0)/5 = 0.6; rejected (0+0-1+0-1)/5 = -0.4.
  EXPECT_EQ(out.metrics.pairs.item<std::int64_t>(), 5);
  EXPECT_NEAR(out.metrics.pair_accuracy.item<double>(), 0.8, 1e-12);
  EXPECT_NEAR(out.metrics.mean_margin.item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(out.metrics.chosen_logratio.item<double>(), 0.6, 1e-12);
  EXPECT_NEAR(out.metrics.rejected_logratio.item<double>(), -0.4, 1e-12);
  EXPECT_EQ(out.metrics.lists_without_signal.item<std::int64_t>(), 0);
  auto logged = out.metrics.to_map();
  EXPECT_NEAR(logged.at("pair_accuracy"), 0.8, 1e-12);
}

TEST(Objectives, AllEqualListContributesZeroAndIsCounted) {
  // List 0: the N = 2 case of PerpoTwoAnswers in score form, s = [-1, 1], r = [0.2, 0.8], beta 0.1
  //         -> sp(-0.2) = 0.5981389.
  // List 1: rewards all 0.3 -> no pair, contributes 0, and still counts: mean = 0.5981389 / 2.
  for (const char* name : {"perpo", "ranking", "dpo", "lipo"}) {
    SCOPED_TRACE(name);
    ListwiseInputs in = scores_only({-1, 1, 4, -7}, {0.2, 0.8, 0.3, 0.3}, 2);
    LossOutput out = compute_loss(in, config_for(name, 0.1));
    if (std::string(name) == "lipo") {
      // LiPO weight of the pair: |G_1 - G_0| * |1/D(1) - 1/D(2)|, tau = [2, 1] from s = [-1, 1]:
      // (2^0.8 - 2^0.2) * (1 - 1/log2(3)) = (1.7411011 - 1.1486984) * 0.3690702 = 0.2186410.
      const double delta = (std::pow(2.0, 0.8) - std::pow(2.0, 0.2)) * (1 - 1 / std::log2(3.0));
      EXPECT_NEAR(out.loss.item<double>(), delta * sp(-0.2) / 2, 1e-12);
    } else {
      EXPECT_NEAR(out.loss.item<double>(), sp(-0.2) / 2, 1e-12);
    }
    EXPECT_EQ(out.per_list[1].item<double>(), 0.0);
    EXPECT_EQ(out.metrics.lists_without_signal.item<std::int64_t>(), 1);
    out.loss.backward();
    auto grad = in.policy_logps.grad();
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>());
    EXPECT_EQ(grad[1][0].item<double>(), 0.0);
    EXPECT_EQ(grad[1][1].item<double>(), 0.0);
  }
}

TEST(Objectives, BatchOfOnlySignalFreeListsIsZeroNotNaN) {
  LossOutput out = perpo_loss(scores_only({1, 2, 3, 4}, {1, 1, 0, 0}, 2), config_for("perpo", 0.1));
  EXPECT_EQ(out.loss.item<double>(), 0.0);
  EXPECT_EQ(out.metrics.lists_without_signal.item<std::int64_t>(), 2);
  EXPECT_EQ(out.metrics.pairs.item<std::int64_t>(), 0);
  EXPECT_EQ(out.metrics.pair_accuracy.item<double>(), 0.0);
}

TEST(Objectives, DpoSpreadsOverTiedBestAnswers) {
  // rewards [1, 1, 0, 0.5], s = [1, 3, -1, 0], beta 1: best {0, 1}, worst {2}, weight 1/2 each.
  // L = 0.5 sp(-(1 + 1)) + 0.5 sp(-(3 + 1)) = 0.5 * 0.1269280 + 0.5 * 0.0181499 = 0.0725390.
  LossOutput out = dpo_loss(scores_only({1, 3, -1, 0}, {1, 1, 0, 0.5}, 4), config_for("dpo", 1));
  EXPECT_NEAR(out.loss.item<double>(), 0.0725390, 1e-7);
  EXPECT_NEAR(out.loss.item<double>(), 0.5 * sp(-2) + 0.5 * sp(-4), 1e-12);
}

TEST(Objectives, RankingWeighsEveryBetterPairEqually) {
  // rewards [0.2, 0.9, 0.5], s = [0, 1, 2], beta 1: pairs (1,0), (1,2), (2,0), 1/3 each.
  // L = (sp(-1) + sp(1) + sp(-2)) / 3 = (0.3132617 + 1.3132617 + 0.1269280) / 3 = 0.5844838.
  LossOutput out =
      ranking_loss(scores_only({0, 1, 2}, {0.2, 0.9, 0.5}, 3), config_for("ranking", 1));
  EXPECT_NEAR(out.loss.item<double>(), 0.5844838, 1e-7);
  // PerPO with gamma = 0 is the same objective.
  LossOutput flat =
      perpo_loss(scores_only({0, 1, 2}, {0.2, 0.9, 0.5}, 3), config_for("perpo", 1, 0));
  EXPECT_NEAR(flat.loss.item<double>(), out.loss.item<double>(), 1e-12);
}

TEST(Objectives, LipoLambdaWeights) {
  // rewards [0, 1, 0.5], s = [2, 1, 0], beta 1. Ranks under s: tau = [1, 2, 3].
  // G = 2^r - 1 = [0, 1, 0.4142136]; 1/D(tau) = 1/log2(1 + tau) = [1, 0.6309298, 0.5].
  // (1,0): |1 - 0| * |0.6309298 - 1| = 0.3690702, sp(-(1 - 2)) = sp(1) = 1.3132617
  // (1,2): |1 - 0.4142136| * |0.6309298 - 0.5| = 0.0766970, sp(-(1 - 0)) = sp(-1) = 0.3132617
  // (2,0): |0.4142136 - 0| * |0.5 - 1| = 0.2071068, sp(-(0 - 2)) = sp(2) = 2.1269280
  // L = 0.4846877 + 0.0240262 + 0.4405013 = 0.9492132 (weights not normalised, as in LiPO).
  LossOutput out = lipo_loss(scores_only({2, 1, 0}, {0, 1, 0.5}, 3), config_for("lipo", 1));
  EXPECT_NEAR(out.loss.item<double>(), 0.9492132, 1e-7);
}

TEST(Objectives, LipoRanksBreakScoreTiesByReward) {
  // All scores equal (policy == reference at step 0): ranks follow the rewards, so the lambda
  // weights are not all zero and LiPO can start learning. rewards [0.1, 0.7, 0.7, 0.4]:
  // tau = [4, 1, 1, 3] (the two 0.7 answers share rank 1).
  auto s = lists({0, 0, 0, 0}, 4);
  auto r = lists({0.1, 0.7, 0.7, 0.4}, 4);
  auto ranks = score_ranks(s, r);
  EXPECT_TRUE(torch::equal(ranks, lists({4, 1, 1, 3}, 4)));
  EXPECT_GT(lipo_pair_weights(r, s).sum().item<double>(), 0.0);
}

TEST(Objectives, SftIsTheTokenMeanNll) {
  // log-probs [-6, -2] over 3 and 1 tokens: NLL = (6 + 2) / (3 + 1) = 2.
  ListwiseInputs in;
  in.policy_logps = lists({-6, -2}, 2).requires_grad_(true);
  in.answer_tokens = lists({3, 1}, 2);
  LossConfig config;
  config.name = "sft";
  LossOutput out = compute_loss(in, config);
  EXPECT_NEAR(out.loss.item<double>(), 2.0, 1e-12);
  out.loss.backward();  // d/d logp = -1 / 4 for each
  EXPECT_TRUE(torch::allclose(in.policy_logps.grad(), lists({-0.25, -0.25}, 2)));
}

TEST(Objectives, LengthNormalizeDividesByAnswerTokens) {
  // policy [-6, -2] over [3, 1] tokens, reference [-3, -3] over the same: s = [-2 + 1, -2 + 3]
  // = [-1, 1]; rewards [0.2, 0.8], beta 0.1 -> sp(-0.2), like PerpoTwoAnswersWithReference.
  ListwiseInputs in;
  in.policy_logps = lists({-6, -2}, 2);
  in.ref_logps = lists({-3, -3}, 2);
  in.rewards = lists({0.2, 0.8}, 2);
  in.answer_tokens = lists({3, 1}, 2);
  LossConfig config;
  config.length_normalize = true;
  EXPECT_NEAR(compute_loss(in, config).loss.item<double>(), sp(-0.2), 1e-12);
}

TEST(Objectives, NllTermIsAddedWithItsWeight) {
  // Two copies of the N = 2 case (PerPO sp(-0.2) each, mean sp(-0.2)), per-list NLL [2, 4]:
  // loss = sp(-0.2) + 0.5 * mean([2, 4]) = sp(-0.2) + 1.5; d loss / d nll_b = 0.5 / 2 = 0.25.
  ListwiseInputs in = scores_only({-1, 1, -1, 1}, {0.2, 0.8, 0.2, 0.8}, 2);
  in.nll = torch::tensor({2.0, 4.0}, torch::kDouble).requires_grad_(true);
  LossConfig config = config_for("perpo", 0.1);
  config.nll_weight = 0.5;
  LossOutput out = compute_loss(in, config);
  EXPECT_NEAR(out.loss.item<double>(), sp(-0.2) + 1.5, 1e-12);
  EXPECT_NEAR(out.objective.item<double>(), sp(-0.2), 1e-12);
  EXPECT_NEAR(out.nll_term.item<double>(), 3.0, 1e-12);
  out.loss.backward();
  EXPECT_TRUE(torch::allclose(in.nll.grad(), torch::tensor({0.25, 0.25}, torch::kDouble)));
}

TEST(Objectives, SelectorDispatchesByName) {
  ListwiseInputs in = scores_only({0.3, -1.2, 2.0, 0.1}, {0.6, 0.2, 0.9, 0.2}, 4);
  for (const char* name : {"perpo", "ranking", "dpo", "lipo"}) {
    LossConfig config = config_for(name, 0.7);
    const double selected = compute_loss(in, config).loss.item<double>();
    double direct = 0;
    if (std::string(name) == "perpo") direct = perpo_loss(in, config).loss.item<double>();
    if (std::string(name) == "ranking") direct = ranking_loss(in, config).loss.item<double>();
    if (std::string(name) == "dpo") direct = dpo_loss(in, config).loss.item<double>();
    if (std::string(name) == "lipo") direct = lipo_loss(in, config).loss.item<double>();
    EXPECT_EQ(selected, direct) << name;
  }
  EXPECT_FALSE(loss_needs_reference(config_for("perpo", 0.1)));
  LossConfig with_reference;
  EXPECT_TRUE(loss_needs_reference(with_reference));
  with_reference.name = "sft";
  EXPECT_FALSE(loss_needs_reference(with_reference));
}

TEST(Objectives, BadSettingsAreInputErrorsWithHints) {
  ListwiseInputs in = scores_only({0, 1}, {0, 1}, 2);
  auto expect_input_error = [&](const LossConfig& config, const std::string& needle) {
    try {
      compute_loss(in, config);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_TRUE(e.is_input_error());
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  LossConfig unknown = config_for("lipo-lambda", 0.1);
  expect_input_error(unknown, "unknown loss.name 'lipo-lambda'");
  expect_input_error(unknown, "hint: use one of: perpo, dpo, lipo, ranking, sft");
  expect_input_error(config_for("perpo", 0.0), "loss.beta");
  expect_input_error(config_for("perpo", 0.1, -1.0), "loss.gamma");
  LossConfig needs_nll = config_for("perpo", 0.1);
  needs_nll.nll_weight = 1.0;
  expect_input_error(needs_nll, "'nll'");
  LossConfig needs_ref = config_for("perpo", 0.1);
  needs_ref.reference_free = false;
  expect_input_error(needs_ref, "reference_free=true");
  ListwiseInputs nan_reward = scores_only({0, 1}, {0, std::nan("")}, 2);
  EXPECT_THROW(perpo_loss(nan_reward, config_for("perpo", 0.1)), Error);
  ListwiseInputs single = scores_only({0, 1}, {0, 1}, 1);  // N = 1: no pairs possible
  EXPECT_THROW(perpo_loss(single, config_for("perpo", 0.1)), Error);
}

}  // namespace
}  // namespace perpo
