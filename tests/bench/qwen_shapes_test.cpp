// perpo bench's Qwen2.5-VL shapes: the 3B / 7B shapes are the Instruct models (the known
// parameter totals of model_size.h, a config that round-trips through config.json), their FLOPs
// against their parameter lists and the vision tower's own window layout, qwen-tiny's FLOPs by
// hand, and qwen-tiny running a training step and sampling on CPU through the same code as LLaVA
// (no peer: the report says so). --plan prints the 7B's figures without building it.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "perpo/bench/bench.h"
#include "perpo/bench/bench_shape.h"
#include "perpo/core/strings.h"
#include "perpo/model/model_size.h"
#include "perpo/model/qwen2_5_vl_config.h"
#include "perpo/model/qwen_vision_windows.h"

namespace perpo {
namespace {

std::map<std::string, double> figures_of(const BenchReport& report) {
  std::map<std::string, double> figures;
  for (const BenchFigure& figure : report.figures) figures[figure.name] = figure.value;
  return figures;
}

bool has_note(const BenchReport& report, const std::string& phrase) {
  for (const std::string& note : report.notes) {
    if (note.find(phrase) != std::string::npos) return true;
  }
  return false;
}

TEST(BenchQwenShapes, KnownParameterCountsAndTheirConfigJson) {
  // model_size.h: Qwen2.5-VL-3B-Instruct 3,754,622,976 (tied head), 7B 8,292,166,656; both
  // share the vision tower, of which the merger (3B 36,708,608; 7B 44,574,464) trains and the
  // rest, 631,975,680 (patch_embed 1,505,280 + 32 blocks of 19,702,200), is frozen.
  const BenchShape small = bench_shape("qwen2.5-vl-3b");
  const BenchShape large = bench_shape("qwen2.5-vl-7b");
  EXPECT_EQ(bench_model_size(small).parameters, 3'754'622'976);
  EXPECT_EQ(bench_model_size(large).parameters, 8'292'166'656);
  EXPECT_EQ(bench_trained_parameters(small), 3'754'622'976 - 631'975'680);
  EXPECT_EQ(bench_trained_parameters(large), 8'292'166'656 - 631'975'680);
  for (const BenchShape* shape : {&small, &large}) {
    EXPECT_EQ(shape->model_type, "qwen2_5_vl");
    // The shape is a config perpo's reader accepts: written as config.json and read back.
    const Qwen2_5VLConfig back =
        parse_qwen2_5_vl_config(qwen2_5_vl_config_json(shape->qwen), shape->name);
    EXPECT_EQ(model_size(back).parameters, bench_model_size(*shape).parameters) << shape->name;
    // 448 x 448 px: smart_resize keeps it (16 x 28), 32 x 32 patches, 256 merged tokens; the
    // prompt is those plus the 44 text tokens of the LLaVA shapes (the two vision markers among
    // them).
    EXPECT_EQ(shape->image_side, 448);
    EXPECT_EQ(shape->image_tokens, 256);
    EXPECT_EQ(shape->prompt_tokens, 300);
    const std::vector<std::int64_t> block = bench_image_block(*shape);
    ASSERT_EQ(block.size(), 258u);
    EXPECT_EQ(block.front(), 151652);  // <|vision_start|>
    EXPECT_EQ(block[1], 151655);       // <|image_pad|>
    EXPECT_EQ(block.back(), 151653);   // <|vision_end|>
    EXPECT_EQ(bench_text_id_limit(*shape), 151652);
  }
  // fp32 state: 4 bytes per weight + 12 per trained weight (gradient, two moments).
  EXPECT_EQ(train_state_bytes(large, 4), 4ull * 8'292'166'656 + 12ull * 7'660'190'976);
  // bf16: 2 per weight + 14 per trained weight (gradient 2, moments 8, fp32 master 4).
  EXPECT_EQ(train_state_bytes(large, 2), 2ull * 8'292'166'656 + 14ull * 7'660'190'976);
}

// Linear FLOPs per token are twice the matrix parameters they multiply, checked against the
// parameter lists of the real models (model_size.h), not the formula.
TEST(BenchQwenShapes, FlopsMatchTheParameterLists) {
  for (const char* name : {"qwen2.5-vl-3b", "qwen2.5-vl-7b"}) {
    const BenchShape shape = bench_shape(name);
    double layers = 0, head = 0, embed = 0, blocks = 0, patch_embed = 0, merger = 0;
    for (const ParameterShape& p : model_parameter_shapes(shape.qwen)) {
      double elements = 1;
      for (std::int64_t size : p.shape) elements *= static_cast<double>(size);
      if (p.shape.size() < 2) continue;  // norms and biases: not matmuls
      if (starts_with(p.name, "language_model.layers.")) layers += elements;
      if (p.name == "lm_head.weight") head = elements;
      if (p.name == "language_model.embed_tokens.weight") embed = elements;
      if (starts_with(p.name, "visual.blocks.")) blocks += elements;
      if (p.name == "visual.patch_embed.proj.weight") patch_embed = elements;
      if (starts_with(p.name, "visual.merger.")) merger += elements;
    }
    const TextConfig& text = shape.qwen.text;
    EXPECT_DOUBLE_EQ(decoder_forward_flops(text, 1, 0), 2 * layers) << name;
    // The 3B's head is the tied embedding: the same (V, C) product either way.
    EXPECT_DOUBLE_EQ(lm_head_flops(text, 1), 2 * (shape.qwen.tie_word_embeddings ? embed : head));
    // Vision on S = 1024 patches: 2 S (blocks' and patch embedding's weights) + attention: 28
    // window blocks over 16 windows of 64 patches, 4 full blocks over all 1024, 4 Cv per pair.
    const double S = 1024, cv = 1280;
    const double attention = 4 * cv * (28 * 16 * 64.0 * 64 + 4 * S * S);
    EXPECT_DOUBLE_EQ(qwen_vision_forward_flops(shape.qwen.vision, 32, 32),
                     2 * S * (blocks + patch_embed) + attention)
        << name;
    EXPECT_DOUBLE_EQ(qwen_merger_forward_flops(shape.qwen.vision, 1024), 2 * 256 * merger) << name;
    // About 6 x decoder weights FLOPs per trained token (P + N T = 600); the vision tower, the
    // head at the N T answer positions and attention add about 11% (7B) to 21% (3B).
    const double per_token = train_step_flops(shape).total() / (300 + 20 * 15);
    EXPECT_GT(per_token, 6 * layers) << name;
    EXPECT_LT(per_token, 1.25 * 6 * layers) << name;
  }
}

// The windows the FLOPs count are the vision tower's own (qwen_vision_windows.h window_layout).
TEST(BenchQwenShapes, WindowsAreTheVisionTowersWindows) {
  const QwenVisionConfig vision = bench_shape("qwen2.5-vl-7b").qwen.vision;  // 4 x 4 merged
  for (const auto& [h, w] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{32, 32}, {22, 34}, {8, 8}, {2, 60}}) {
    const WindowLayout layout = window_layout({VisionGrid{1, h, w}}, vision);
    EXPECT_EQ(qwen_window_patches(vision, h, w), layout.window_patches) << h << " x " << w;
  }
  EXPECT_EQ(qwen_window_patches(vision, 32, 32), std::vector<std::int64_t>(16, 64));
  // 22 x 34 patches = 11 x 17 merged tokens: rows of 4, 4, 3 by columns of 4, 4, 4, 4, 1.
  EXPECT_EQ(qwen_window_patches(vision, 22, 34).size(), 15u);
}

// qwen-tiny by hand. Vision: Cv 32, Iv 64, 2 blocks (0: windows, 1: full), 112 px -> 8 x 8 = 64
// patches of Pv = 3 * 2 * 14 * 14 = 1176 values; merged 4 x 4 = 16 tokens in windows of 2 x 2
// merged tokens: 4 windows of 16 patches.
//   patch embedding 2 * 64 * 1176 * 32 = 4,816,896
//   linear 2 blocks * 64 * (8 * 32^2 + 6 * 32 * 64) = 128 * 20,480 = 2,621,440
//   attention: window block 4 * 32 * (4 * 16^2) = 131,072; full block 4 * 32 * 64^2 = 524,288
//   vision 4,816,896 + 2,621,440 + 655,360 = 8,093,696
//   merger 2 * 16 * (128 * 128 + 128 * 64) = 786,432 (width 4 * 32 = 128, out 64)
// Text: C 64, I 128, L 2, H 4, Hkv 2, D 16, V 256. Per token 2 * (64*64 + 2*64*32 + 64*64 +
// 3*64*128) = 73,728 per layer, 147,456 for 2; per attended pair 4 * 4 * 16 * 2 = 512.
// P = 16 image + 32 text = 48, N 4, T 8, G 8.
TEST(BenchQwenShapes, TinyFlopsByHand) {
  const BenchShape shape = bench_shape("qwen-tiny");
  EXPECT_EQ(shape.image_tokens, 16);
  EXPECT_EQ(shape.prompt_tokens, 48);
  EXPECT_DOUBLE_EQ(qwen_vision_forward_flops(shape.qwen.vision, 8, 8), 8'093'696);
  EXPECT_DOUBLE_EQ(qwen_merger_forward_flops(shape.qwen.vision, 64), 786'432);
  // Training step: tokens 48 + 4 * 8 = 80 -> 11,796,480; pairs 48 * 49 / 2 = 1176 + 4 * (8 * 48
  // + 36) = 1680 -> 2856 * 512 = 1,462,272. Decoder 13,258,752, x3 = 39,776,256. lm_head at
  // N T = 32 positions * 2 * 64 * 256 = 1,048,576, x3 = 3,145,728. Merger x2 = 1,572,864.
  const FlopCount train = train_step_flops(shape);
  EXPECT_DOUBLE_EQ(train.vision, 8'093'696);
  EXPECT_DOUBLE_EQ(train.projector, 1'572'864);
  EXPECT_DOUBLE_EQ(train.decoder, 39'776'256);
  EXPECT_DOUBLE_EQ(train.lm_head, 3'145'728);
  EXPECT_DOUBLE_EQ(train.total(), 52'588'544);
  // Sampling: 7 steps per answer; tokens 48 + 28 = 76 -> 11,206,656; pairs 1176 + 4 * (7 * 48 +
  // 28) = 2632 -> 1,347,584; decoder 12,554,240; logits at 1 + 28 positions: 950,272.
  EXPECT_DOUBLE_EQ(sampling_flops(shape).total(), 8'093'696 + 786'432 + 12'554'240 + 950'272);
}

TEST(BenchQwenShapes, TinyRunsAStepAndSamplesOnCpuWithoutAPeer) {
  BenchOptions options;
  options.shape = "qwen-tiny";
  options.iterations = 1;
  options.threads = 1;
  options.python = "/nonexistent/python";  // never looked for: the shape has no peer
  const BenchReport report = run_bench(options);
  const std::map<std::string, double> figures = figures_of(report);
  for (const char* name : {"train.lists_per_s", "train.tokens_per_s", "sample.lists_per_s",
                           "sample.tokens_per_s", "train.state_memory_estimate"}) {
    ASSERT_TRUE(figures.count(name)) << name;
    EXPECT_GT(figures.at(name), 0) << name;
  }
  EXPECT_DOUBLE_EQ(figures.at("train.flops_per_step"), 52'588'544);
  EXPECT_DOUBLE_EQ(figures.at("model.parameters"),
                   static_cast<double>(bench_model_size(report.shape).parameters));
  EXPECT_FALSE(figures.count("ratio.train.lists_per_s")) << "a ratio without a peer";
  EXPECT_TRUE(has_note(report, "peer: none for shape qwen-tiny")) << report.to_text();
  const std::string text = report.to_text();
  EXPECT_NE(text.find("(16 image tokens)"), std::string::npos) << text;
  EXPECT_NE(text.find("run transformers' LLaVA only"), std::string::npos) << text;
}

TEST(BenchQwenShapes, PlanPrintsTheSevenBillionShapeWithoutBuildingIt) {
  BenchOptions options;
  options.shape = "qwen2.5-vl-7b";
  options.dtype = "bf16";
  options.plan = true;
  const BenchReport report = run_bench(options);  // 31 GB in fp32: only a plan can run here
  const std::map<std::string, double> figures = figures_of(report);
  EXPECT_DOUBLE_EQ(figures.at("model.parameters"), 8'292'166'656);
  EXPECT_DOUBLE_EQ(figures.at("model.trained_parameters"), 7'660'190'976);
  EXPECT_DOUBLE_EQ(figures.at("train.flops_per_step"),
                   train_step_flops(bench_shape("qwen2.5-vl-7b")).total());
  EXPECT_DOUBLE_EQ(figures.at("train.state_memory_estimate"),
                   static_cast<double>(train_state_bytes(report.shape, 2)) / (1024.0 * 1024.0));
  EXPECT_FALSE(figures.count("train.lists_per_s")) << "a plan timed something";
  EXPECT_TRUE(has_note(report, "plan only"));
  const std::string text = report.to_text();
  EXPECT_NE(text.find("8,292,166,656 parameters, 7,660,190,976 trained"), std::string::npos)
      << text;
  EXPECT_NE(text.find("train FLOP per step"), std::string::npos) << text;
}

}  // namespace
}  // namespace perpo
