// Model sizes before allocation: the parameter list predicted from a config equals what LlavaModel
// registers, config.json sizes are range-checked while parsing, and a model that cannot fit in
// memory is refused before anything is allocated.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "perpo/core/error.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/model/model_size.h"
#include "perpo/model/qwen2_5_vl.h"
#include "perpo/model/qwen2_5_vl_config.h"
#include "small_llava.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {
using test::error_of;
using ::testing::HasSubstr;

constexpr std::uint64_t kGiB = 1ull << 30;

std::string parse_error(const std::string& text) {
  return error_of([&] { parse_model_config(text, "ckpt/config.json"); });
}

std::string text_config(const std::string& fields) {
  return R"({"model_type": "llava", "text_config": {)" + fields + "}}";
}

void expect_shapes_match_the_model(const ModelConfig& config) {
  LlavaModel model(config);
  std::map<std::string, std::vector<std::int64_t>> built, predicted;
  std::int64_t built_count = 0;
  for (const auto& item : model->named_parameters()) {
    built[item.key()] = item.value().sizes().vec();
    built_count += item.value().numel();
  }
  for (const auto& parameter : model_parameter_shapes(config))
    predicted[parameter.name] = parameter.shape;
  EXPECT_EQ(predicted, built);
  EXPECT_EQ(model_size(config).parameters, built_count);
  EXPECT_EQ(model_size(config).fp32_bytes, static_cast<std::uint64_t>(built_count) * 4);
}

TEST(ModelSize, PredictedParametersAreExactlyTheModels) {
  ModelConfig config = test::small_llava_config();  // GQA, untied, projector bias
  expect_shapes_match_the_model(config);
  config.tie_word_embeddings = true;
  config.multimodal_projector_bias = false;
  config.text.attention_bias = true;
  config.text.mlp_bias = true;
  config.text.head_dim = 4;  // explicit head_dim != hidden / heads
  config.vision.num_hidden_layers = 3;
  config.vision_feature_select_strategy = "full";
  expect_shapes_match_the_model(config);
}

TEST(ModelSize, ConfigSizesAreRangeChecked) {
  // Too large for an int: used to wrap into a negative size and a raw LibTorch error.
  EXPECT_THAT(parse_error(text_config(R"("hidden_size": 1000000000000)")),
              HasSubstr("ckpt/config.json: text_config.hidden_size must be an integer from 1 to "
                        "16777216, got 1000000000000"));
  EXPECT_THAT(parse_error(text_config(R"("hidden_size": 1e12)")),
              HasSubstr("text_config.hidden_size must be an integer from 1 to 16777216, got "
                        "1000000000000.0"));
  EXPECT_THAT(parse_error(text_config(R"("hidden_size": 0)")),
              HasSubstr("text_config.hidden_size must be an integer from 1"));
  EXPECT_THAT(parse_error(text_config(R"("vocab_size": -5)")),
              HasSubstr("text_config.vocab_size must be an integer from 1"));
  EXPECT_THAT(parse_error(text_config(R"("num_hidden_layers": 1000000)")),
              HasSubstr("text_config.num_hidden_layers must be an integer from 1 to 4096"));
  EXPECT_THAT(parse_error(text_config(R"("rms_norm_eps": -1e-6)")),
              HasSubstr("text_config.rms_norm_eps must be a positive number"));
  EXPECT_THAT(parse_error(R"({"model_type": "llava", "vision_config": {"image_size": 0}})"),
              HasSubstr("vision_config.image_size must be an integer from 1"));
  EXPECT_THAT(
      parse_error(R"({"model_type": "llava", "vision_config": {"num_attention_heads": 7}})"),
      HasSubstr("vision_config.hidden_size (768) must be divisible by num_attention_heads (7)"));
  EXPECT_THAT(parse_error(text_config(R"("bos_token_id": [99999999999])")),
              HasSubstr("text_config.bos_token_id must be an integer of 32 bits"));
}

TEST(ModelSize, ConfigWithoutTextConfigIsWeighedAgainstMemory) {
  // No text_config: transformers' LlamaConfig defaults, a 7B decoder (CLIP ViT-L/14-336 beside).
  ModelConfig config = parse_model_config(R"({"model_type": "llava"})", "ckpt/config.json");
  ModelSize size = model_size(config);
  EXPECT_GT(size.parameters, 7'000'000'000);
  std::string message = error_of([&] { check_model_fits_memory(config, 8 * kGiB); });
  EXPECT_THAT(message, HasSubstr(std::to_string(size.parameters) + " parameters"));
  EXPECT_THAT(message, HasSubstr("but only 8.0 GiB of memory are available"));
  EXPECT_THAT(message, HasSubstr("num_hidden_layers 32"));
  EXPECT_THAT(message, HasSubstr("without text_config"));  // the hint
  check_model_fits_memory(config, 64 * kGiB);              // fits: no error
  check_model_fits_memory(config, std::nullopt);           // unknown memory: no check
}

TEST(ModelSize, AbsurdModelIsRefusedBeforeAllocation) {
  // Within every per-field range, far beyond any machine: 4096 layers of width 16384.
  ModelConfig config = parse_model_config(
      text_config(R"("hidden_size": 16384, "intermediate_size": 65536, "num_hidden_layers": 4096,
                     "num_attention_heads": 128)"),
      "ckpt/config.json");
  ASSERT_TRUE(available_memory_bytes().has_value());        // Linux: /proc/meminfo
  EXPECT_GT(model_size(config).fp32_bytes, 10'000 * kGiB);  // 64 TiB
  // Refused by the constructor before its first tensor (else this test would exhaust memory).
  std::string message = error_of([&] { LlavaModel model(config); });
  EXPECT_THAT(message, HasSubstr("of memory are available"));
}

TEST(ModelSize, CountsThatOverflowAreRefused) {
  ModelConfig config = test::small_llava_config();
  config.text.hidden_size = 1 << 24;
  config.text.intermediate_size = 1 << 24;
  config.text.num_attention_heads = 1 << 12;
  config.text.num_key_value_heads = 1 << 12;
  config.text.num_hidden_layers = 1 << 12;
  EXPECT_THAT(error_of([&] { model_size(config); }), HasSubstr("overflow"));
  EXPECT_THAT(error_of([&] { LlavaModel model(config); }), HasSubstr("overflow"));
}

// Qwen2.5-VL ------------------------------------------------------------------------------------

/// A Qwen2.5-VL config.json in the Hub's flat layout with the Instruct models' vision tower.
std::string qwen_hub_config(int hidden, int intermediate, int layers, int heads, int kv_heads,
                            int vocab, bool tied) {
  return R"({"model_type": "qwen2_5_vl", "hidden_act": "silu", "hidden_size": )" +
         std::to_string(hidden) + R"(, "intermediate_size": )" + std::to_string(intermediate) +
         R"(, "num_hidden_layers": )" + std::to_string(layers) + R"(, "num_attention_heads": )" +
         std::to_string(heads) + R"(, "num_key_value_heads": )" + std::to_string(kv_heads) +
         R"(, "vocab_size": )" + std::to_string(vocab) + R"(, "tie_word_embeddings": )" +
         (tied ? "true" : "false") +
         R"(, "max_position_embeddings": 128000, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
          "use_sliding_window": false, "image_token_id": 151655, "video_token_id": 151656,
          "vision_start_token_id": 151652, "vision_end_token_id": 151653,
          "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
          "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280,
            "intermediate_size": 3420, "num_heads": 16, "in_chans": 3, "out_hidden_size": )" +
         std::to_string(hidden) + R"(, "patch_size": 14, "spatial_merge_size": 2,
            "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
            "tokens_per_second": 2, "temporal_patch_size": 2}})";
}

Qwen2_5VLConfig qwen_fixture_config(const std::string& name) {
  return load_qwen2_5_vl_config(std::filesystem::path(test::kTestsDir) / "fixtures" / "model" /
                                "qwen2_5_vl" / name);
}

TEST(QwenModelSize, PredictedParametersAreExactlyTheModels) {
  for (const char* name : {"batch", "tied"}) {  // untied, 2 blocks; tied head, 1 block
    Qwen2_5VLConfig config = qwen_fixture_config(name);
    Qwen2_5VLModel model(config);
    std::map<std::string, std::vector<std::int64_t>> built, predicted;
    std::int64_t built_count = 0;
    for (const auto& item : model->named_parameters()) {
      built[item.key()] = item.value().sizes().vec();
      built_count += item.value().numel();
    }
    for (const auto& parameter : model_parameter_shapes(config))
      predicted[parameter.name] = parameter.shape;
    EXPECT_EQ(predicted, built) << name;
    EXPECT_EQ(model_size(config).parameters, built_count) << name;
    EXPECT_EQ(model_size(config).fp32_bytes, static_cast<std::uint64_t>(built_count) * 4);
  }
}

TEST(QwenModelSize, RealConfigsGiveTheKnownTotals) {
  // The Hub's model cards say 3.75e9 and 8.29e9; transformers' Qwen2_5_VLForConditionalGeneration
  // built from these configs on the meta device counts exactly the totals below.
  // Qwen2.5-VL-3B-Instruct: 36 layers of 2048, 2 key/value heads, tied head. The sum, worked:
  // vision 668,684,288 (32 blocks of 19,702,200 = 630,470,400; patch_embed 1,505,280; merger
  // 36,708,608) + decoder 3,085,938,688 (embed 311,164,928; 36 layers of 77,076,992; norm 2048).
  Qwen2_5VLConfig small =
      parse_qwen2_5_vl_config(qwen_hub_config(2048, 11008, 36, 16, 2, 151936, true), "3b");
  EXPECT_EQ(model_size(small).parameters, 3'754'622'976);
  // Qwen2.5-VL-7B-Instruct: 28 layers of 3584 (233,057,792 each), 4 key/value heads, vision
  // 676,550,144 (its merger ends in 3584), embed and an untied head of 544,997,376 each.
  Qwen2_5VLConfig large =
      parse_qwen2_5_vl_config(qwen_hub_config(3584, 18944, 28, 28, 4, 152064, false), "7b");
  const ModelSize size = model_size(large);
  EXPECT_EQ(size.parameters, 8'292'166'656);
  EXPECT_EQ(size.fp32_bytes, 4ull * 8'292'166'656);
  std::string message = error_of([&] { check_model_fits_memory(large, 16 * kGiB); });
  EXPECT_THAT(message, HasSubstr("8292166656 parameters (30.9 GiB in fp32"));
  EXPECT_THAT(message, HasSubstr("but only 16.0 GiB of memory are available"));
  check_model_fits_memory(large, 64 * kGiB);  // fits: no error
}

TEST(QwenModelSize, AbsurdModelIsRefusedBeforeAllocation) {
  Qwen2_5VLConfig config = qwen_fixture_config("tied");
  config.text.hidden_size = 16384;
  config.text.intermediate_size = 65536;
  config.text.num_hidden_layers = 4096;
  config.text.num_attention_heads = 128;
  config.text.num_key_value_heads = 128;
  config.vision.out_hidden_size = 16384;
  config.mrope_section = {16, 24, 24};
  ASSERT_TRUE(available_memory_bytes().has_value());
  EXPECT_GT(model_size(config).fp32_bytes, 10'000 * kGiB);
  EXPECT_THAT(error_of([&] { Qwen2_5VLModel model(config); }),
              HasSubstr("of memory are available"));
}

}  // namespace
}  // namespace perpo
