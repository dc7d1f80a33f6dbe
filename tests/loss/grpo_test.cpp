// loss.name grpo: hand-worked cases, and every variant against an independent implementation of
// the published formulas (tools/make_grpo_fixtures.py -> tests/fixtures/loss/grpo_cases.json:
// loops over lists, answers and tokens in Python, gradients by autograd).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "perpo/core/error.h"
#include "perpo/loss/objectives.h"
#include "test_paths.h"

namespace perpo {
namespace {

torch::Tensor doubles(const nlohmann::json& values) {
  // Nested lists of numbers -> a float64 tensor of their shape.
  std::vector<std::int64_t> shape;
  const nlohmann::json* level = &values;
  while (level->is_array()) {
    shape.push_back(static_cast<std::int64_t>(level->size()));
    if (level->empty()) break;
    level = &(*level)[0];
  }
  std::vector<double> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& v) {
    if (v.is_array()) {
      for (const auto& item : v) walk(item);
    } else {
      flat.push_back(v.get<double>());
    }
  };
  walk(values);
  return torch::tensor(flat, torch::kDouble).reshape(shape);
}

LossConfig grpo_config(const std::string& variant) {
  LossConfig config;
  config.name = "grpo";
  config.grpo.variant = variant;
  return config;
}

// One list of two answers, rewards [1, 0]: mean 0.5, std (N - 1) = sqrt(0.5) = 0.70710678, so
// A = +-0.5 / (0.70710678 + 1e-4) = +-0.70700680.
constexpr double kAdvantage = 0.5 / (0.70710678118654752 + 1e-4);

TEST(Grpo, OnPolicyTheRatioIsOneAndTheLossIsThePolicyGradient) {
  // Answer 0 has 2 tokens, answer 1 one token (then padding). Without old log-probs rho = 1:
  // l = -A per token; grpo's list loss = 1/2 (-A + A) = 0, and the gradient of a token of answer i
  // is -A_i / (|o_i| N): -0.70700680 / 4 = -0.17675170 and +0.70700680 / 2 = +0.35350340.
  ListwiseInputs in;
  in.token_logps =
      torch::tensor({-0.5, -1.0, -0.7, -9.0}, torch::kDouble).reshape({1, 2, 2}).requires_grad_();
  in.token_mask = torch::tensor({1.0, 1.0, 1.0, 0.0}, torch::kDouble).reshape({1, 2, 2});
  in.rewards = torch::tensor({1.0, 0.0}, torch::kDouble).reshape({1, 2});
  LossOutput out = compute_loss(in, grpo_config("grpo"));
  EXPECT_NEAR(out.loss.item<double>(), 0.0, 1e-12);
  out.loss.backward();
  auto g = in.token_logps.grad().reshape({4});
  EXPECT_NEAR(g[0].item<double>(), -kAdvantage / 4, 1e-12);
  EXPECT_NEAR(g[1].item<double>(), -kAdvantage / 4, 1e-12);
  EXPECT_NEAR(g[2].item<double>(), kAdvantage / 2, 1e-12);
  EXPECT_EQ(g[3].item<double>(), 0.0);  // padding
  EXPECT_EQ(out.metrics.clipped_low.item<double>(), 0);
  EXPECT_EQ(out.metrics.clipped_high.item<double>(), 0);
  EXPECT_EQ(out.metrics.tokens.item<double>(), 3);
  EXPECT_NEAR(out.metrics.mean_reward.item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(out.metrics.reward_std.item<double>(), std::sqrt(0.5), 1e-12);
}

TEST(Grpo, ClippedTokensOnBothSidesCarryNoGradient) {
  // rho = [1.5, 0.5] (logp - old = ln 1.5, ln 0.5), one token each, eps 0.2 / 0.2.
  // Answer 0: A > 0, rho > 1.2: clipped high, l = -1.2 A = -0.84840816.
  // Answer 1: A < 0, rho < 0.8: clipped low, l = -min(0.5 (-A), 0.8 (-A)) = 0.8 A = 0.56560544.
  // List loss = (-0.84840816 + 0.56560544) / 2 = -0.14140136; both gradients 0.
  ListwiseInputs in;
  in.token_logps = torch::tensor({-1.0, -1.0}, torch::kDouble).reshape({1, 2, 1}).requires_grad_();
  in.token_mask = torch::ones({1, 2, 1}, torch::kDouble);
  in.old_token_logps = torch::tensor({-1.0 - std::log(1.5), -1.0 - std::log(0.5)}, torch::kDouble)
                           .reshape({1, 2, 1});
  in.rewards = torch::tensor({1.0, 0.0}, torch::kDouble).reshape({1, 2});
  LossOutput out = compute_loss(in, grpo_config("grpo"));
  EXPECT_NEAR(out.loss.item<double>(), (-1.2 * kAdvantage + 0.8 * kAdvantage) / 2, 1e-12);
  out.loss.backward();
  EXPECT_EQ(in.token_logps.grad().abs().sum().item<double>(), 0.0);
  EXPECT_EQ(out.metrics.clipped_low.item<double>(), 1);
  EXPECT_EQ(out.metrics.clipped_high.item<double>(), 1);
  // Inside the range the ratio is not clipped: eps_high 0.6 lets rho = 1.5 through, and the
  // gradient of answer 0 is -rho A / 2 = -0.53025510.
  LossConfig wide = grpo_config("grpo");
  wide.grpo.eps_high = 0.6;
  in.token_logps.mutable_grad() = torch::Tensor();
  LossOutput wider = compute_loss(in, wide);
  wider.loss.backward();
  EXPECT_NEAR(in.token_logps.grad().reshape({2})[0].item<double>(), -1.5 * kAdvantage / 2, 1e-12);
  EXPECT_EQ(wider.metrics.clipped_high.item<double>(), 0);
}

TEST(Grpo, EveryVariantEqualsTheIndependentImplementation) {
  const auto path = std::filesystem::path(test::kTestsDir) / "fixtures/loss/grpo_cases.json";
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << path;
  const nlohmann::json cases = nlohmann::json::parse(file);
  ASSERT_EQ(cases.size(), 5u);
  for (const auto& [name, c] : cases.items()) {
    SCOPED_TRACE(name);
    const auto& s = c.at("settings");
    LossConfig config = grpo_config(s.at("variant"));
    config.grpo.eps_low = s.at("eps_low");
    config.grpo.eps_high = s.at("eps_high");
    config.grpo.kl_beta = s.at("kl_beta");
    config.grpo.std_eps = s.at("std_eps");
    config.grpo.max_tokens = s.at("max_tokens");
    config.grpo.drop_all_equal = s.at("drop_all_equal");
    ListwiseInputs in;
    in.token_logps = doubles(c.at("token_logps")).requires_grad_();
    in.token_mask = doubles(c.at("token_mask"));
    in.rewards = doubles(c.at("rewards"));
    if (!c.at("old_token_logps").is_null()) in.old_token_logps = doubles(c.at("old_token_logps"));
    if (!c.at("ref_token_logps").is_null()) in.ref_token_logps = doubles(c.at("ref_token_logps"));
    LossOutput out = compute_loss(in, config);
    const auto& e = c.at("expected");
    EXPECT_NEAR(out.loss.item<double>(), e.at("loss").get<double>(), 1e-12);
    if (out.loss.requires_grad()) out.loss.backward();
    const at::Tensor grad =
        in.token_logps.grad().defined() ? in.token_logps.grad() : torch::zeros_like(in.token_logps);
    EXPECT_LT((grad - doubles(e.at("grad"))).abs().max().item<double>(), 1e-12);
    EXPECT_EQ(out.metrics.tokens.item<double>(), e.at("tokens").get<double>());
    EXPECT_EQ(out.metrics.clipped_low.item<double>(), e.at("clipped_low").get<double>());
    EXPECT_EQ(out.metrics.clipped_high.item<double>(), e.at("clipped_high").get<double>());
    EXPECT_NEAR(out.metrics.kl_sum.item<double>(), e.at("kl_sum").get<double>(), 1e-12);
    EXPECT_EQ(out.metrics.lists_dropped.item<std::int64_t>(), e.at("lists_dropped").get<int>());
  }
}

TEST(Grpo, AListOfEqualRewardsHasNoAdvantageButCountsUnlessDropped) {
  // Two lists: rewards [1, 0] (on-policy: list loss 0) and [0.5, 0.5] (A = 0: list loss 0). With
  // kl_beta 0 both give 0; the batch gradient of list 0 is halved by the mean over 2 lists
  // (-A / (1 * 2) / 2), and doubled back when the equal list is dropped.
  ListwiseInputs in;
  in.token_logps = torch::full({2, 2, 1}, -1.0, torch::kDouble).requires_grad_();
  in.token_mask = torch::ones({2, 2, 1}, torch::kDouble);
  in.rewards = torch::tensor({1.0, 0.0, 0.5, 0.5}, torch::kDouble).reshape({2, 2});
  LossOutput kept = compute_loss(in, grpo_config("dapo"));
  kept.loss.backward();
  EXPECT_NEAR(in.token_logps.grad()[0][0][0].item<double>(), -kAdvantage / 4, 1e-12);
  EXPECT_EQ(in.token_logps.grad()[1].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(kept.metrics.lists_dropped.item<std::int64_t>(), 0);
  EXPECT_EQ(kept.metrics.lists_without_signal.item<std::int64_t>(), 1);
  in.token_logps.mutable_grad() = torch::Tensor();
  LossConfig drop = grpo_config("dapo");
  drop.grpo.drop_all_equal = true;
  LossOutput dropped = compute_loss(in, drop);
  dropped.loss.backward();
  EXPECT_NEAR(in.token_logps.grad()[0][0][0].item<double>(), -kAdvantage / 2, 1e-12);
  EXPECT_EQ(dropped.metrics.lists_dropped.item<std::int64_t>(), 1);
  EXPECT_EQ(dropped.metrics.tokens.item<double>(), 2);  // the dropped list's tokens not counted
}

TEST(Grpo, BadInputsAndSettingsAreInputErrors) {
  ListwiseInputs in;
  in.token_logps = torch::full({1, 2, 1}, -1.0, torch::kDouble).requires_grad_();
  in.token_mask = torch::ones({1, 2, 1}, torch::kDouble);
  in.rewards = torch::tensor({1.0, 0.0}, torch::kDouble).reshape({1, 2});
  auto expect_input_error = [](const ListwiseInputs& inputs, const LossConfig& config,
                               const std::string& needle) {
    try {
      compute_loss(inputs, config);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_TRUE(e.is_input_error());
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  LossConfig variant = grpo_config("ppo");
  expect_input_error(in, variant, "unknown loss.grpo.variant 'ppo'");
  LossConfig eps = grpo_config("grpo");
  eps.grpo.eps_low = 1.0;
  expect_input_error(in, eps, "loss.grpo.eps_low must be in [0, 1)");
  LossConfig kl = grpo_config("grpo");
  kl.grpo.kl_beta = 0.1;
  expect_input_error(in, kl, "'ref_token_logps'");
  expect_input_error(in, grpo_config("dr_grpo"), "loss.grpo.max_tokens must be > 0");
  ListwiseInputs short_old = in;
  short_old.old_token_logps = torch::zeros({1, 2, 2}, torch::kDouble);
  expect_input_error(short_old, grpo_config("grpo"), "'old_token_logps' is [1, 2, 2]");
  ListwiseInputs sums_only;
  sums_only.policy_logps = torch::zeros({1, 2}, torch::kDouble);
  sums_only.rewards = in.rewards;
  expect_input_error(sums_only, grpo_config("grpo"), "needs the loss input 'token_logps'");
  // grpo reads a reference only for its KL term.
  EXPECT_FALSE(loss_needs_reference(grpo_config("grpo")));
  EXPECT_TRUE(loss_needs_reference(kl));
  EXPECT_TRUE(loss_needs_token_reference(kl));
}

}  // namespace
}  // namespace perpo
