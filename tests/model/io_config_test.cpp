// ModelConfig from config.json: the values transformers resolves (fixtures from
// tools/make_model_io_fixtures.py), errors naming the field, and the config.json perpo writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "perpo/config/config.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/model_config.h"
#include "perpo/model/model_size.h"
#include "test_paths.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

fs::path fixture(const std::string& name) {
  return fs::path(test::kTestsDir) / "fixtures" / "model_io" / name;
}

std::string parse_error(const std::string& text) {
  try {
    parse_model_config(text, "ckpt/config.json");
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    return e.what();
  }
  ADD_FAILURE() << "expected a perpo::Error for " << text;
  return "";
}

// ModelConfig flattened with the names of expected_*.json.
json flatten(const ModelConfig& c) {
  return {{"vision.hidden_size", c.vision.hidden_size},
          {"vision.intermediate_size", c.vision.intermediate_size},
          {"vision.num_hidden_layers", c.vision.num_hidden_layers},
          {"vision.num_attention_heads", c.vision.num_attention_heads},
          {"vision.image_size", c.vision.image_size},
          {"vision.patch_size", c.vision.patch_size},
          {"vision.layer_norm_eps", c.vision.layer_norm_eps},
          {"vision.hidden_act", c.vision.hidden_act},
          {"text.vocab_size", c.text.vocab_size},
          {"text.hidden_size", c.text.hidden_size},
          {"text.intermediate_size", c.text.intermediate_size},
          {"text.num_hidden_layers", c.text.num_hidden_layers},
          {"text.num_attention_heads", c.text.num_attention_heads},
          {"text.num_key_value_heads", c.text.num_key_value_heads},
          {"text.head_dim", c.text.effective_head_dim()},
          {"text.rms_norm_eps", c.text.rms_norm_eps},
          {"text.rope_theta", c.text.rope_theta},
          {"text.rope_scaling_type", c.text.rope_scaling_type},
          {"text.rope_scaling_factor", c.text.rope_scaling_factor},
          {"text.max_position_embeddings", c.text.max_position_embeddings},
          {"projector_hidden_act", c.projector_hidden_act},
          {"vision_feature_layer", c.vision_feature_layer},
          {"vision_feature_select_strategy", c.vision_feature_select_strategy},
          {"image_token_index", c.image_token_index},
          {"tie_word_embeddings", c.tie_word_embeddings},
          {"multimodal_projector_bias", c.multimodal_projector_bias},
          {"parameters", model_size(c).parameters}};
}

class ConfigMatchesTransformers : public ::testing::TestWithParam<std::string> {};

TEST_P(ConfigMatchesTransformers, EveryResolvedField) {
  const std::string name = GetParam();
  ModelConfig config = parse_model_config(read_file(fixture("config_" + name + ".json")), name);
  json expected = json::parse(read_file(fixture("expected_" + name + ".json")));
  json got = flatten(config);
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    EXPECT_EQ(got.at(it.key()), it.value()) << name << ": " << it.key();
  }
}
INSTANTIATE_TEST_SUITE_P(Fixtures, ConfigMatchesTransformers,
                         ::testing::Values("llava15", "minimal", "tiny_gqa"));

TEST(ModelConfigJson, LoadsFromAFolder) {
  fs::path dir = fs::path(test::kScratchDir) / "model_io" / "config_folder";
  fs::create_directories(dir);
  fs::copy_file(fixture("config_llava15.json"), dir / "config.json",
                fs::copy_options::overwrite_existing);
  ModelConfig config = load_model_config(dir);
  EXPECT_EQ(config.text.vocab_size, 32064);
  EXPECT_EQ(config.image_tokens(), 576);  // (336 / 14)^2, CLS dropped
  EXPECT_THROW(
      {
        try {
          load_model_config(dir / "nowhere");
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("nowhere/config.json does not exist"));
          throw;
        }
      },
      Error);
}

TEST(ModelConfigJson, MissingModelTypeNamesTheField) {
  std::string message = parse_error(R"({"text_config": {"hidden_size": 64}})");
  EXPECT_THAT(message, HasSubstr("ckpt/config.json: model_type is missing"));
}

TEST(ModelConfigJson, IllTypedFieldsAreNamedWithTheirPath) {
  EXPECT_THAT(parse_error(R"({"model_type": "llava", "text_config": {"hidden_size": "4096"}})"),
              HasSubstr("ckpt/config.json: text_config.hidden_size must be an integer from 1 to "
                        "16777216, got \"4096\""));
  EXPECT_THAT(
      parse_error(R"({"model_type": "llava", "vision_config": {"layer_norm_eps": "small"}})"),
      HasSubstr("vision_config.layer_norm_eps must be a number"));
  EXPECT_THAT(parse_error(R"({"model_type": "llava", "text_config": [1, 2]})"),
              HasSubstr("text_config must be an object"));
  EXPECT_THAT(
      parse_error(
          R"({"model_type": "llava", "text_config": {"rope_scaling": {"type": "linear"}}})"),
      HasSubstr("text_config.rope_scaling.factor is missing"));
  EXPECT_THAT(parse_error(R"({"model_type": "llava", "tie_word_embeddings": 1})"),
              HasSubstr("tie_word_embeddings must be true or false"));
}

TEST(ModelConfigJson, UnknownArchitecturesAreRefused) {
  EXPECT_THAT(parse_error(R"({"model_type": "qwen2_vl"})"),
              HasSubstr("model_type is 'qwen2_vl': unknown architecture"));
  EXPECT_THAT(parse_error(R"({"model_type": "llava", "text_config": {"model_type": "mistral"}})"),
              HasSubstr("text_config.model_type is 'mistral'"));
  EXPECT_THAT(
      parse_error(
          R"({"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"}})"),
      HasSubstr("vision_config.model_type is 'siglip_vision_model'"));
  EXPECT_THAT(parse_error(R"({"model_type": "llava", "vision_feature_layer": [-2, -5]})"),
              HasSubstr("vision_feature_layer lists several layers"));
  EXPECT_THAT(parse_error("{\"model_type\": \"llava\", "),
              HasSubstr("ckpt/config.json is not valid JSON"));
}

TEST(ModelConfigJson, TieWordEmbeddingsComesFromTextConfigOnly) {
  // transformers 4.57 ties lm_head by config.get_text_config(decoder=True).tie_word_embeddings,
  // i.e. text_config's value (LlamaConfig default false); the top-level key is never read
  // (checked with LlavaForConditionalGeneration: top-level true, text_config silent -> untied).
  EXPECT_FALSE(parse_model_config(R"({"model_type": "llava", "tie_word_embeddings": true,
      "text_config": {"tie_word_embeddings": false}})",
                                  "c")
                   .tie_word_embeddings);
  EXPECT_FALSE(parse_model_config(R"({"model_type": "llava", "tie_word_embeddings": true})", "c")
                   .tie_word_embeddings);
  EXPECT_TRUE(parse_model_config(R"({"model_type": "llava", "tie_word_embeddings": false,
      "text_config": {"tie_word_embeddings": true}})",
                                 "c")
                  .tie_word_embeddings);
}

TEST(ModelConfigJson, DynamicRopeScalingIsRefusedAtParsing) {
  // Refused while reading config.json, naming the file and the key (not later by the model).
  for (const char* key : {"rope_type", "type"}) {
    std::string text =
        std::string(R"({"model_type": "llava", "text_config": {"rope_scaling": {")") + key +
        R"(": "dynamic", "factor": 2.0}}})";
    std::string message = parse_error(text);
    EXPECT_THAT(message, HasSubstr("ckpt/config.json: text_config.rope_scaling." +
                                   std::string(key) + " is 'dynamic'"));
  }
}

TEST(ModelConfigJson, PadTokenIdIsARowOfTheVocabulary) {
  auto with_pad = [](const std::string& pad) {
    return R"({"model_type": "llava", "text_config": {"vocab_size": 100, "pad_token_id": )" + pad +
           "}}";
  };
  EXPECT_EQ(parse_model_config(with_pad("7"), "c").text.pad_token_id, 7);
  EXPECT_EQ(parse_model_config(with_pad("null"), "c").text.pad_token_id, -1);  // none
  // A negative id counts from the end, as torch.nn.Embedding's padding_idx (transformers passes
  // pad_token_id straight to it): -1 is row 99.
  EXPECT_EQ(parse_model_config(with_pad("-1"), "c").text.pad_token_id, 99);
  EXPECT_THAT(parse_error(with_pad("100")),
              HasSubstr("ckpt/config.json: text_config.pad_token_id (100) is outside the "
                        "vocabulary of 100"));
  EXPECT_THAT(parse_error(with_pad("-101")), HasSubstr("text_config.pad_token_id (-101)"));
}

TEST(ModelConfigJson, SavedConfigParsesBackToTheSameModel) {
  TinyModelConfig tiny;
  tiny.kv_heads = 2;
  ModelConfig config = tiny_model_config(tiny, 300, 299);
  config.tie_word_embeddings = true;
  config.text.rope_scaling_type = "linear";
  config.text.rope_scaling_factor = 4.0;
  config.text.pad_token_id = 0;
  fs::path path = fs::path(test::kScratchDir) / "model_io" / "saved" / "config.json";
  save_model_config(config, path);
  ModelConfig back = load_model_config(path.parent_path());
  EXPECT_EQ(flatten(back), flatten(config));
  EXPECT_EQ(back.text.pad_token_id, 0);
  json raw = json::parse(read_file(path));
  EXPECT_EQ(raw.at("architectures")[0], "LlavaForConditionalGeneration");
  EXPECT_EQ(raw.at("image_seq_length"), 16);  // (64 / 16)^2 patches, CLS dropped
}

TEST(ModelConfigJson, TinyConfigFollowsPerposSettings) {
  TinyModelConfig tiny;  // defaults: vision 64 x 2 layers x 4 heads, 64 px / 16 px, decoder 128 x 2
  ModelConfig config = tiny_model_config(tiny, 512, 3);
  EXPECT_EQ(config.vision.hidden_size, 64);
  EXPECT_EQ(config.vision.intermediate_size, 256);  // 4 x hidden, as CLIP
  EXPECT_EQ(config.vision.num_patches(), 16);
  EXPECT_EQ(config.text.vocab_size, 512);
  EXPECT_EQ(config.text.num_key_value_heads, 2);
  EXPECT_EQ(config.text.effective_head_dim(), 32);  // 128 / 4
  EXPECT_EQ(config.image_token_index, 3);
  EXPECT_THROW(tiny_model_config(tiny, 512, 600), Error);  // image token outside the vocabulary
  tiny.patch_size = 15;
  EXPECT_THROW(tiny_model_config(tiny, 512, 3), Error);
}

}  // namespace
}  // namespace perpo
