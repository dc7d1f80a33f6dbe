// Gradient checkpointing with random ops: the recomputation in backward must draw the same random
// numbers as the forward (LoRA dropout masks), or the gradients belong to another network.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "perpo/config/config.h"
#include "perpo/model/llava.h"
#include "perpo/model/lora.h"
#include "perpo/model/recompute.h"
#include "small_llava.h"

namespace perpo {
namespace {

// y = dropout(x * w, 0.5): with fresh masks in the recomputation, d(sum y)/dw would use a mask the
// forward never saw.
struct DropoutRun {
  torch::Tensor grad;        // d(sum y)/dw
  double next_random = 0.0;  // the generator's next draw after backward
};

DropoutRun dropout_run(bool recompute) {
  torch::manual_seed(21);
  torch::Tensor w = torch::ones({64}).requires_grad_(true);
  torch::Tensor x = torch::linspace(1.0, 2.0, 64);
  auto fn = [&w](const std::vector<torch::Tensor>& in) {
    return std::vector<torch::Tensor>{torch::dropout(in[0] * w, 0.5, /*train=*/true)};
  };
  torch::Tensor y = recompute ? recompute_in_backward(fn, {x}, {w})[0] : fn({x})[0];
  y.sum().backward();
  return {w.grad().clone(), torch::rand({1}).item<double>()};
}

TEST(RecomputeRng, DropoutMasksAreReplayedAndTheStreamIsLeftAsFound) {
  DropoutRun plain = dropout_run(false);
  DropoutRun recomputed = dropout_run(true);
  // The gradient is 2 * x where the mask kept an element, 0 elsewhere: the same mask, the same
  // gradient.
  const auto kept = (plain.grad != 0).sum().item<std::int64_t>();
  EXPECT_GT(kept, 10);  // dropout really dropped some and kept some
  EXPECT_LT(kept, 54);
  EXPECT_TRUE(torch::equal(recomputed.grad, plain.grad));
  // Replaying restored the caller's stream: the next draw is the same as without recomputation.
  EXPECT_EQ(recomputed.next_random, plain.next_random);
}

LoraConfig recipe_lora() {
  // configs/llava-1.5-7b-grounding.yaml: all-linear adapters with dropout 0.05.
  LoraConfig lora;
  lora.enabled = true;
  lora.r = 4;
  lora.alpha = 8;
  lora.dropout = 0.05;
  lora.targets = {"all-linear"};
  return lora;
}

/// Gradients of a weighted sum of answer log-probs, LoRA dropout on, training mode.
std::map<std::string, torch::Tensor> lora_gradients(bool checkpointing, std::uint64_t seed) {
  LlavaModel model = test::make_small_llava(3, test::small_llava_config());
  apply_lora(*model, recipe_lora());
  {
    torch::NoGradGuard no_grad;  // B != 0, so the adapters (and their dropout) shape the output
    torch::manual_seed(4);
    for (auto& item : model->named_parameters()) {
      if (item.key().find("lora_B") != std::string::npos)
        item.value().copy_(torch::randn_like(item.value()) * 0.5);
    }
  }
  model->train();
  model->set_gradient_checkpointing(checkpointing);
  torch::manual_seed(7);
  torch::Tensor pixels = torch::randn({1, 3, 16, 16});
  torch::Tensor answers = torch::randint(0, test::kSmallImageToken, {3, 6}, torch::kInt64);
  torch::Tensor mask = torch::tensor({{1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 0}});
  torch::Tensor weights = torch::randn({3, 6});

  torch::manual_seed(seed);  // the dropout masks come from here
  PrefixState prefix = model->encode_prefix(test::small_prompt_ids(), pixels);
  torch::Tensor logps = model->answer_logps(prefix, answers, mask, /*chunk=*/4);  // (N, T)
  (logps * weights).sum().backward();
  return test::parameter_gradients(*model);
}

TEST(RecomputeRng, CheckpointingWithLoraDropoutGivesTheGradientsOfThePlainForward) {
  auto plain = lora_gradients(/*checkpointing=*/false, /*seed=*/100);
  auto checkpointed = lora_gradients(/*checkpointing=*/true, /*seed=*/100);
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(checkpointed.size(), plain.size());
  for (const auto& [name, grad] : plain) EXPECT_GT(grad.abs().max().item<double>(), 0.0) << name;
  // Before the RNG replay, the recomputed layers drew fresh masks: about 60% relative error.
  EXPECT_LT(test::max_relative_difference(checkpointed, plain), 1e-5);
  // The comparison can fail: another seed (other masks) gives clearly other gradients.
  auto other_masks = lora_gradients(/*checkpointing=*/false, /*seed=*/101);
  EXPECT_GT(test::max_relative_difference(other_masks, plain), 1e-2);
}

}  // namespace
}  // namespace perpo
