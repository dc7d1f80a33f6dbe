// The prefix-sharing forward (prompt once, N answers against its keys/values) must equal N plain
// forwards of prompt + answer: per-token log-probs within 1e-5, parameter gradients within 1e-4
// relative, with and without LoRA, with and without gradient checkpointing.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "model_reference.h"
#include "perpo/model/llava.h"
#include "small_llava.h"

namespace perpo {
namespace {

constexpr int kImageToken = test::kSmallImageToken;

ModelConfig small_config() { return test::small_llava_config(); }

/// Order-one random weights so log-probs and gradients are far from trivial.
LlavaModel make_model(std::uint64_t seed) { return test::make_small_llava(seed, small_config()); }

struct Batch {
  torch::Tensor prompt_ids, pixel_values, answer_ids, answer_mask, weights;
};

Batch make_batch() {
  torch::manual_seed(7);
  Batch b;
  // prompt: 3 text tokens, the image's 4 tokens, 2 text tokens -> P = 9
  b.prompt_ids = torch::tensor(
      {{1, 5, 9, kImageToken, kImageToken, kImageToken, kImageToken, 12, 30}}, torch::kInt64);
  b.pixel_values = torch::randn({1, 3, 16, 16});
  b.answer_ids = torch::randint(0, kImageToken, {3, 5}, torch::kInt64);  // N = 3, T = 5
  // right padding: lengths 5, 3, 4
  b.answer_mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {1, 1, 1, 1, 0}}, torch::kInt64);
  b.weights = torch::randn({3, 5});  // a loss that weighs every token differently
  return b;
}

std::map<std::string, torch::Tensor> gradients(LlavaModel& model) {
  std::map<std::string, torch::Tensor> grads;
  for (auto& item : model->named_parameters()) {
    if (item.value().requires_grad() && item.value().grad().defined()) {
      grads[item.key()] = item.value().grad().clone();
    }
  }
  return grads;
}

void zero_grads(LlavaModel& model) {
  for (auto& p : model->parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

void enable_adapters(LlavaModel& model) {
  torch::manual_seed(11);
  for (auto& p : model->parameters()) p.requires_grad_(false);  // LoRA: only adapters train
  auto adapt = [](LoraLinear& layer) {
    layer->enable_lora(2, 4.0, 0.0);
    torch::NoGradGuard no_grad;
    layer->lora_B.copy_(torch::randn_like(layer->lora_B) * 0.3);  // a fresh B = 0 would hide bugs
  };
  for (auto& layer : model->language_model->typed_layers) {
    adapt(layer->self_attn->q_proj);
    adapt(layer->self_attn->v_proj);
    adapt(layer->mlp->down_proj);
  }
  adapt(model->multi_modal_projector->linear_1);
  adapt(model->vision_tower->vision_model->encoder->typed_layers[0]->self_attn->q_proj);
}

struct Case {
  bool lora;
  bool checkpointing;
};

class PrefixSharing : public ::testing::TestWithParam<Case> {};

TEST_P(PrefixSharing, EqualsRepeatedPrefix) {
  const Case c = GetParam();
  LlavaModel model = make_model(3);
  if (c.lora) enable_adapters(model);
  model->train();
  const Batch b = make_batch();

  // Reference: the prompt repeated for every answer, no checkpointing.
  model->set_gradient_checkpointing(false);
  torch::Tensor ref = test::answer_logps_repeated(
      *model, b.prompt_ids, b.pixel_values, b.answer_ids, b.answer_mask, /*chunk=*/16);  // (N, T)
  (ref * b.weights).sum().backward();
  auto ref_grads = gradients(model);
  zero_grads(model);

  // Prefix once, answers against its keys/values; chunk 2 splits T = 5 into 2 + 2 + 1.
  model->set_gradient_checkpointing(c.checkpointing);
  PrefixState prefix = model->encode_prefix(b.prompt_ids, b.pixel_values);
  EXPECT_EQ(prefix.kv.batch(), 1);  // shared, not repeated
  torch::Tensor shared = model->answer_logps(prefix, b.answer_ids, b.answer_mask, /*chunk=*/2);
  (shared * b.weights).sum().backward();
  auto shared_grads = gradients(model);

  ASSERT_EQ(shared.sizes(), ref.sizes());
  EXPECT_LT((shared - ref).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(shared.masked_select(b.answer_mask == 0).abs().sum().item<double>(), 0.0);
  EXPECT_LT(ref.masked_select(b.answer_mask == 1).max().item<double>(), 0.0);  // real log-probs

  ASSERT_EQ(shared_grads.size(), ref_grads.size());
  ASSERT_FALSE(ref_grads.empty());
  for (const auto& [name, ref_grad] : ref_grads) {
    ASSERT_TRUE(shared_grads.count(name)) << name;
    const double scale = ref_grad.norm().item<double>();
    const double diff = (shared_grads[name] - ref_grad).norm().item<double>();
    EXPECT_GT(scale, 0.0) << name << " got no gradient";
    // 1e-7 absolute floor: CLIP's k_proj.bias has an exactly-zero true gradient (a shift of every
    // key adds the same constant to a query's scores), so both sides are float rounding noise.
    EXPECT_LT(diff, 1e-4 * scale + 1e-7) << name;
  }
  // The image reaches the answers only through the prefix keys/values: its gradient proves the
  // backward pass runs through the shared prefix.
  const std::string vision_param =
      c.lora ? "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.lora_B"
             : "vision_tower.vision_model.embeddings.patch_embedding.weight";
  ASSERT_TRUE(shared_grads.count(vision_param));
  EXPECT_GT(shared_grads[vision_param].abs().max().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Variants, PrefixSharing,
                         ::testing::Values(Case{false, false}, Case{false, true}, Case{true, false},
                                           Case{true, true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.lora ? "Lora" : "Full") +
                                  (info.param.checkpointing ? "Checkpointed" : "Plain");
                         });

TEST(PrefixSharing, RepeatedPathEqualsLogSoftmaxOfForwardLogits) {
  LlavaModel model = make_model(5);
  model->eval();
  const Batch b = make_batch();
  torch::NoGradGuard no_grad;
  torch::Tensor logps = test::answer_logps_repeated(*model, b.prompt_ids, b.pixel_values,
                                                    b.answer_ids, b.answer_mask, 3);  // (N, T)
  const auto P = b.prompt_ids.size(1);
  for (std::int64_t n = 0; n < 3; ++n) {
    torch::Tensor ids = torch::cat({b.prompt_ids, b.answer_ids.narrow(0, n, 1)}, 1);  // (1, P+T)
    torch::Tensor logits = model->forward(ids, b.pixel_values);                       // (1, P+T, V)
    torch::Tensor all = torch::log_softmax(logits[0], -1);                            // (P+T, V)
    for (std::int64_t t = 0; t < 5; ++t) {
      // position P - 1 + t predicts answer token t
      double expected = b.answer_mask[n][t].item<int64_t>()
                            ? all[P - 1 + t][b.answer_ids[n][t].item<int64_t>()].item<double>()
                            : 0.0;
      EXPECT_NEAR(logps[n][t].item<double>(), expected, 1e-5) << "answer " << n << " token " << t;
    }
  }
}

TEST(PrefixSharing, WorksUnderNoGrad) {
  LlavaModel model = make_model(9);
  model->eval();
  const Batch b = make_batch();
  torch::NoGradGuard no_grad;
  PrefixState prefix = model->encode_prefix(b.prompt_ids, b.pixel_values);
  torch::Tensor shared = model->answer_logps(prefix, b.answer_ids, b.answer_mask, 4);
  torch::Tensor ref = test::answer_logps_repeated(*model, b.prompt_ids, b.pixel_values,
                                                  b.answer_ids, b.answer_mask, 4);
  EXPECT_FALSE(shared.requires_grad());
  EXPECT_LT((shared - ref).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace perpo
