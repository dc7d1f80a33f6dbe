// LoRA: LoraLinear's adapter arithmetic, apply_lora's targeting and freezing, set_trainable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io_test_model.h"
#include "perpo/core/error.h"
#include "perpo/model/lora.h"
#include "perpo/model/lora_linear.h"

namespace perpo {
namespace {
using test::make_mini_llava;
using ::testing::HasSubstr;

LoraConfig lora_config(std::vector<std::string> targets, int r = 4, double alpha = 8,
                       double dropout = 0) {
  LoraConfig config;
  config.enabled = true;
  config.r = r;
  config.alpha = alpha;
  config.dropout = dropout;
  config.targets = std::move(targets);
  return config;
}

TEST(LoraLinear, FreshAdapterLeavesTheOutputUnchanged) {
  torch::manual_seed(0);
  LoraLinear layer(6, 5, true);
  torch::Tensor x = torch::randn({3, 4, 6});  // (B, T, in)
  torch::Tensor before = layer->forward(x);   // (B, T, out)
  layer->enable_lora(2, 4.0, 0.0);
  EXPECT_TRUE(torch::equal(layer->forward(x), before));  // B = 0: the adapter adds exactly 0
  EXPECT_EQ(layer->lora_A.sizes(), (c10::IntArrayRef{2, 6}));
  EXPECT_EQ(layer->lora_B.sizes(), (c10::IntArrayRef{5, 2}));
  EXPECT_THROW(layer->enable_lora(2, 4.0, 0.0), Error);
}

TEST(LoraLinear, HandWorkedAdapterOutput) {
  // in 2, out 1, r 1, alpha 3 -> scale 3.  W = [1, 2], b = 0.5, A = [1, -1], B = [2], x = [3, 1]
  // y = x W^T + b + scale * (x A^T) B^T = (3 + 2) + 0.5 + 3 * (3 - 1) * 2 = 5.5 + 12 = 17.5
  LoraLinear layer(2, 1, true);
  layer->enable_lora(1, 3.0, 0.0);
  torch::NoGradGuard no_grad;
  layer->weight.copy_(torch::tensor({{1.0f, 2.0f}}));
  layer->bias.copy_(torch::tensor({0.5f}));
  layer->lora_A.copy_(torch::tensor({{1.0f, -1.0f}}));
  layer->lora_B.copy_(torch::tensor({{2.0f}}));
  EXPECT_FLOAT_EQ(layer->forward(torch::tensor({{3.0f, 1.0f}})).item<float>(), 17.5f);
  // merged W' = W + scale B A = [1, 2] + 3 * [2, -2] = [7, -4]; x W'^T + b = 21 - 4 + 0.5 = 17.5
  EXPECT_TRUE(torch::equal(layer->merged_weight(), torch::tensor({{7.0f, -4.0f}})));
}

TEST(LoraLinear, MergedOutputEqualsUnmerged) {
  torch::manual_seed(1);
  LoraLinear layer(32, 24, true);
  layer->enable_lora(8, 16.0, 0.1);
  layer->eval();  // dropout off
  {
    torch::NoGradGuard no_grad;
    layer->lora_B.normal_();
  }
  torch::Tensor x = torch::randn({5, 32});
  torch::Tensor unmerged = layer->forward(x).detach();
  layer->merge();
  EXPECT_FALSE(layer->lora_enabled());
  EXPECT_EQ(layer->parameters().size(), 2u);  // weight, bias: the adapter is gone
  EXPECT_TRUE(torch::allclose(layer->forward(x), unmerged, 1e-5, 1e-5));
}

TEST(ApplyLora, AllLinearAdaptsTheLanguageModelOnlyAndFreezesTheRest) {
  auto model = make_mini_llava();  // 2 decoder layers x 7 linears; vision, projector, lm_head too
  int adapted = apply_lora(*model, lora_config({"all-linear"}));
  EXPECT_EQ(adapted, 2 * 7);
  int adapters = 0;
  for (const auto& item : model->named_parameters()) {
    bool adapter = item.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(item.value().requires_grad(), adapter) << item.key();
    if (adapter) {
      ++adapters;
      EXPECT_EQ(item.key().rfind("language_model.layers.", 0), 0u) << item.key();
    }
  }
  EXPECT_EQ(adapters, 2 * adapted);
  ParameterCounts counts = count_parameters(*model);
  // Per layer, r = 4: q (16 -> 16), k, v (16 -> 8), o (16 -> 16), gate, up (16 -> 24), down (24 ->
  // 16); A + B = r (in + out): 4 * (32 + 24 + 24 + 32 + 40 + 40 + 40) = 4 * 232 = 928; two layers
  // 1856.
  EXPECT_EQ(counts.trainable, 1856);
  EXPECT_GT(counts.total, counts.trainable);
}

TEST(ApplyLora, NamedTargets) {
  auto model = make_mini_llava();
  EXPECT_EQ(lora_target_names(*model),
            (std::vector<std::string>{"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj",
                                      "up_proj", "v_proj"}));
  EXPECT_EQ(apply_lora(*model, lora_config({"q_proj", "v_proj"})), 4);
  auto* q =
      model->named_modules()["language_model.layers.1.self_attn.q_proj"]->as<LoraLinearImpl>();
  auto* k =
      model->named_modules()["language_model.layers.1.self_attn.k_proj"]->as<LoraLinearImpl>();
  EXPECT_TRUE(q->lora_enabled());
  EXPECT_FALSE(k->lora_enabled());
  EXPECT_DOUBLE_EQ(q->lora_scale, 2.0);  // alpha 8 / r 4
  // The vision tower's q_proj stays without an adapter.
  auto* vision_q =
      model->named_modules()["vision_tower.vision_model.encoder.layers.0.self_attn.q_proj"]
          ->as<LoraLinearImpl>();
  EXPECT_FALSE(vision_q->lora_enabled());
}

TEST(ApplyLora, VisionAdaptersOnlyWhenAskedWithTheSameTargets) {
  auto model = make_mini_llava();
  LoraConfig config = lora_config({"all-linear"});
  config.vision = true;
  const int adapted = apply_lora(*model, config);
  int vision = 0, vision_layers = 0;
  for (const auto& item : model->named_modules()) {
    auto* layer = dynamic_cast<LoraLinearImpl*>(item.value().get());
    if (layer == nullptr) continue;
    const std::string& name = item.key();
    const bool is_vision = name.rfind("vision_tower.", 0) == 0;
    const std::string q = ".self_attn.q_proj";
    if (is_vision && name.size() > q.size() && name.substr(name.size() - q.size()) == q) {
      ++vision_layers;
    }
    // The projector and lm_head get none.
    EXPECT_EQ(layer->lora_enabled(), is_vision || name.rfind("language_model.", 0) == 0) << name;
    if (is_vision && layer->lora_enabled()) {
      ++vision;
      EXPECT_TRUE(layer->lora_B.requires_grad()) << item.key();
      EXPECT_FALSE(layer->weight.requires_grad()) << item.key();  // the tower itself is frozen
    }
  }
  // mini LLaVA (io_test_model.h): 4 linears per vision layer (q, k, v, out_proj), 2 x 7 in the
  // decoder.
  ASSERT_EQ(vision_layers, 2);
  EXPECT_EQ(vision, 4 * vision_layers);
  EXPECT_EQ(adapted, vision + 14);
  // Named targets reach the tower's layers of that name too: out_proj is the tower's only.
  auto named = make_mini_llava();
  config.targets = {"out_proj"};
  EXPECT_EQ(apply_lora(*named, config), vision_layers);
  EXPECT_EQ(lora_target_names(*named, /*vision=*/true).size(), 8u);  // the decoder's 7 + out_proj
  config.vision = false;
  EXPECT_THROW(apply_lora(*make_mini_llava(), config), Error);  // the decoder has no out_proj
}

TEST(ApplyLora, UnknownTargetListsTheValidNames) {
  auto model = make_mini_llava();
  try {
    apply_lora(*model, lora_config({"q_prj"}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_THAT(e.what(), HasSubstr("'q_prj' names no linear layer"));
    EXPECT_THAT(
        e.what(),
        HasSubstr(
            "valid: all-linear, down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj"));
    EXPECT_THAT(e.what(), HasSubstr("did you mean 'q_proj'?"));
  }
  // Nothing was changed by the failed call.
  for (const auto& param : model->parameters()) EXPECT_TRUE(param.requires_grad());
}

TEST(ApplyLora, GradientsReachOnlyAdapters) {
  torch::manual_seed(2);
  auto model = make_mini_llava();
  apply_lora(*model, lora_config({"all-linear"}));
  auto* up = model->named_modules()["language_model.layers.0.mlp.up_proj"]->as<LoraLinearImpl>();
  torch::Tensor loss = up->forward(torch::randn({3, 16})).pow(2).sum();
  loss.backward();
  EXPECT_FALSE(up->weight.grad().defined());
  EXPECT_TRUE(up->lora_B.grad().defined());
  EXPECT_GT(up->lora_B.grad().abs().sum().item<float>(), 0.0f);  // dL/dB = scale * h^T (x A^T) != 0
  EXPECT_EQ(merge_lora(*model), 14);
  EXPECT_EQ(count_parameters(*model).trainable, 0);  // merged: adapters gone, the rest frozen
}

TEST(SetTrainable, ByCanonicalPrefix) {
  auto model = make_mini_llava();
  set_trainable(*model, /*vision=*/false, /*projector=*/true, /*llm=*/false);
  for (const auto& item : model->named_parameters()) {
    bool projector = item.key().rfind("multi_modal_projector.", 0) == 0;
    EXPECT_EQ(item.value().requires_grad(), projector) << item.key();
  }
  set_trainable(*model, true, false, true);
  EXPECT_TRUE(model->named_parameters()["lm_head.weight"].requires_grad());
  EXPECT_TRUE(
      model->named_parameters()["vision_tower.vision_model.pre_layrnorm.weight"].requires_grad());
  EXPECT_FALSE(model->named_parameters()["multi_modal_projector.linear_1.bias"].requires_grad());

  auto stray = std::make_shared<torch::nn::Module>();
  stray->register_parameter("decoder_weight", torch::ones({1}));
  EXPECT_THROW(set_trainable(*stray, true, true, true), Error);
}

}  // namespace
}  // namespace perpo
