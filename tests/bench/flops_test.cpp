// FLOP counts of perpo bench (bench_shape.h) against a hand count on a tiny LLaVA shape, and
// against the parameter list of the 7B model; the GPU peak table; option checks. The Qwen2.5-VL
// shapes: qwen_shapes_test.cpp.
#include <gtest/gtest.h>

#include "perpo/bench/bench.h"
#include "perpo/bench/bench_shape.h"
#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/model/model_size.h"

namespace perpo {
namespace {

// Vision: Cv 4, Iv 8, 2 layers (vision_feature_layer -2 runs 1), 4x4 image, patch 2 -> 4
// patches, S = 5 with CLS. Text: C 8, I 16, 1 layer, H 2, Hkv 1, D 4, V 10. P 3, N 2, T 2, G 2.
BenchShape hand_shape() {
  BenchShape shape = bench_shape("tiny");
  ModelConfig& c = shape.llava;
  c.vision.hidden_size = 4;
  c.vision.intermediate_size = 8;
  c.vision.num_hidden_layers = 2;
  c.vision.num_attention_heads = 1;
  c.vision.image_size = 4;
  c.vision.patch_size = 2;
  c.text.hidden_size = 8;
  c.text.intermediate_size = 16;
  c.text.num_hidden_layers = 1;
  c.text.num_attention_heads = 2;
  c.text.num_key_value_heads = 1;
  c.text.vocab_size = 10;
  c.vision_feature_layer = -2;
  shape.prompt_tokens = 3;
  shape.answers = 2;
  shape.answer_tokens = 2;
  shape.sampled_tokens = 2;
  return shape;
}

TEST(BenchFlops, VisionAndProjectorByHand) {
  const BenchShape shape = hand_shape();
  // patch embedding 2 * 4 patches * (3*2*2) * 4 = 384; 1 layer on 5 tokens:
  // 5 * (8*4*4 + 4*4*8) = 5 * 256 = 1280; attention 4 * 4 * 5^2 = 400.  Sum 2064.
  EXPECT_DOUBLE_EQ(vision_forward_flops(shape.llava), 2064);
  // 2 * 4 image tokens * (4*8 + 8*8) = 768
  EXPECT_DOUBLE_EQ(projector_forward_flops(shape.llava), 768);
}

TEST(BenchFlops, DecoderByHand) {
  const BenchShape shape = hand_shape();
  // Per token: 2 * (q 8*8 + k,v 2*8*4 + o 8*8 + MLP 3*8*16) = 2 * 576 = 1152.
  // Per attended pair: 4 * H 2 * D 4 = 32.
  EXPECT_DOUBLE_EQ(decoder_forward_flops(shape.llava.text, 1, 0), 1152);
  EXPECT_DOUBLE_EQ(decoder_forward_flops(shape.llava.text, 0, 1), 32);
  EXPECT_DOUBLE_EQ(lm_head_flops(shape.llava.text, 1), 160);  // 2 * 8 * 10
}

TEST(BenchFlops, TrainingStepByHand) {
  const FlopCount flops = train_step_flops(hand_shape());
  // Tokens: P 3 + N T 4 = 7 -> 7 * 1152 = 8064. Pairs: prefix 1+2+3 = 6; each answer sees
  // 3+1 and 3+2 keys = 9, two answers 18; 24 pairs * 32 = 768. Decoder forward 8832, x3 = 26496.
  EXPECT_DOUBLE_EQ(flops.decoder, 26496);
  // Logits at N T = 4 positions: 4 * 160 = 640, x3 = 1920.
  EXPECT_DOUBLE_EQ(flops.lm_head, 1920);
  EXPECT_DOUBLE_EQ(flops.vision, 2064);     // frozen: forward only
  EXPECT_DOUBLE_EQ(flops.projector, 1536);  // forward + weight gradients: 2 x 768
  EXPECT_DOUBLE_EQ(flops.total(), 2064 + 1536 + 26496 + 1920);
}

TEST(BenchFlops, SamplingByHand) {
  const FlopCount flops = sampling_flops(hand_shape());
  // G 2: one decoding step per answer after the prefix. Tokens 3 + 2 = 5 -> 5760; pairs: prefix
  // 6, each answer's step sees 3 + 1 keys: 6 + 8 = 14 -> 448. Decoder 6208.
  EXPECT_DOUBLE_EQ(flops.decoder, 6208);
  // Logits: the prompt's last token + one per step: 3 * 160 = 480.
  EXPECT_DOUBLE_EQ(flops.lm_head, 480);
  EXPECT_DOUBLE_EQ(flops.total(), 2064 + 768 + 6208 + 480);
}

// Linear FLOPs per token are twice the decoder's matrix parameters, lm_head's twice its weight:
// checked against the parameter list of the real 7B model (model_size.h), not the formula.
TEST(BenchFlops, SevenBillionMatchesTheParameterList) {
  const BenchShape shape = bench_shape("7b");
  double layer_weights = 0, head = 0;
  for (const ParameterShape& p : model_parameter_shapes(shape.llava)) {
    if (p.shape.size() != 2) continue;
    const double elements = static_cast<double>(p.shape[0]) * p.shape[1];
    if (starts_with(p.name, "language_model.layers.")) layer_weights += elements;
    if (p.name == "lm_head.weight") head = elements;
  }
  EXPECT_NEAR(layer_weights, 6.476e9, 0.001e9);  // 32 * (4 * 4096^2 + 3 * 4096 * 11008)
  EXPECT_DOUBLE_EQ(decoder_forward_flops(shape.llava.text, 1, 0), 2 * layer_weights);
  EXPECT_DOUBLE_EQ(lm_head_flops(shape.llava.text, 1), 2 * head);
  EXPECT_EQ(shape.llava.image_tokens(), 576);
  // About 6 x 7e9 FLOPs per trained token (P + N T = 920 tokens) plus attention and vision.
  const double per_token = train_step_flops(shape).total() / (620 + 20 * 15);
  EXPECT_GT(per_token, 6 * 6.476e9);
  EXPECT_LT(per_token, 6 * 7.5e9);
}

TEST(BenchPeaks, KnownGpus) {
  EXPECT_EQ(known_peak_tflops("NVIDIA H200", "bf16"), 989);
  EXPECT_EQ(known_peak_tflops("NVIDIA H100 80GB HBM3", "bf16"), 989);
  EXPECT_EQ(known_peak_tflops("NVIDIA H100 PCIe", "bf16"), 756);
  EXPECT_EQ(known_peak_tflops("NVIDIA A100-SXM4-80GB", "fp32"), 19.5);
  EXPECT_FALSE(known_peak_tflops("cpu", "fp32").has_value());
}

TEST(BenchOptions, RefusesBadValues) {
  auto message = [](BenchOptions options) {
    try {
      checked_bench_shape(options);
    } catch (const Error& e) {
      EXPECT_TRUE(e.is_input_error());
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  BenchOptions good;
  EXPECT_EQ(message(good), "accepted");
  EXPECT_EQ(checked_bench_shape(good).answers, 20);
  good.answers = 5;
  EXPECT_EQ(checked_bench_shape(good).answers, 5);
  BenchOptions o;
  o.shape = "13b";
  EXPECT_NE(message(o).find("unknown bench shape '13b'"), std::string::npos);
  o = {};
  o.answers = 1;
  EXPECT_NE(message(o).find("--answers must be between 2 and 4096"), std::string::npos);
  o = {};
  o.iterations = 0;
  EXPECT_NE(message(o).find("--iterations must be >= 1"), std::string::npos);
  o = {};
  o.dtype = "fp16";
  EXPECT_NE(message(o).find("unknown --dtype 'fp16'"), std::string::npos);
  o = {};
  o.device = "tpu";
  EXPECT_NE(message(o).find("unknown device 'tpu'"), std::string::npos);
}

TEST(BenchMemory, TrainStateCountsWeightsGradientsAndAdam) {
  const ModelConfig config = bench_shape("tiny").llava;
  std::uint64_t all = 0, vision = 0;
  for (const ParameterShape& p : model_parameter_shapes(config)) {
    std::uint64_t elements = 1;
    for (auto size : p.shape) elements *= size;
    all += elements;
    if (starts_with(p.name, "vision_tower.")) vision += elements;
  }
  const std::uint64_t trained = all - vision;
  // fp32: weights 4 + gradient 4 + moments 8; bf16: weights 2 + gradient 2 + moments 8 + master 4.
  EXPECT_EQ(train_state_bytes(config, 4), 4 * all + 12 * trained);
  EXPECT_EQ(train_state_bytes(config, 2), 2 * all + 14 * trained);
  EXPECT_EQ(train_state_bytes(bench_shape("tiny"), 4), 4 * all + 12 * trained);
  EXPECT_EQ(bench_trained_parameters(bench_shape("tiny")), static_cast<std::int64_t>(trained));
}

}  // namespace
}  // namespace perpo
