// Models and prompts shared by the generate tests.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/jsonl.h"
#include "perpo/generate/generator.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/model/safetensors.h"
#include "perpo/tokenizer/tokenizer.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo::test {

/// A tiny parity checkpoint of tests/fixtures/model/ (made with transformers).
inline LlavaModel load_fixture_model(const std::string& name, ModelConfig* config_out = nullptr) {
  const auto dir = std::filesystem::path(kTestsDir) / "fixtures" / "model" / name;
  ModelConfig config = load_model_config(dir);
  LlavaModel model(config);
  load_weights(*model, dir, &config);
  model->eval();
  if (config_out) *config_out = config;
  return model;
}

/// A small random LLaVA with order-one weights (image: 16x16 pixels -> 4 image tokens;
/// the image token lies outside the vocabulary, so answers never hold it).
inline LlavaModel random_model(std::uint64_t seed, int image_token = 50) {
  ModelConfig config;
  config.vision.hidden_size = 16;
  config.vision.intermediate_size = 32;
  config.vision.num_hidden_layers = 2;
  config.vision.num_attention_heads = 2;
  config.vision.image_size = 16;
  config.vision.patch_size = 8;
  config.text.vocab_size = 50;
  config.text.hidden_size = 32;
  config.text.intermediate_size = 48;
  config.text.num_hidden_layers = 2;
  config.text.num_attention_heads = 4;
  config.text.num_key_value_heads = 2;
  config.text.max_position_embeddings = 64;
  config.image_token_index = image_token;
  torch::manual_seed(seed);
  LlavaModel model(config);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.copy_(torch::randn_like(p) * 0.3);
  model->eval();
  return model;
}

/// A prompt of `before` text tokens, the 4 image tokens, `after` text tokens, and an image.
inline GenerationPrompt random_prompt(int before, int after, std::uint64_t seed, int answers = 1,
                                      int image_token = 50) {
  torch::manual_seed(seed);
  GenerationPrompt prompt;
  prompt.prompt_ids.push_back(1);
  for (int i = 0; i < before; ++i)
    prompt.prompt_ids.push_back(3 + static_cast<int>(seed * 7 + i * 13) % 40);
  for (int i = 0; i < 4; ++i) prompt.prompt_ids.push_back(image_token);
  for (int i = 0; i < after; ++i)
    prompt.prompt_ids.push_back(3 + static_cast<int>(seed * 5 + i * 11) % 40);
  prompt.pixel_values = torch::randn({3, 16, 16});
  for (int n = 0; n < answers; ++n)
    prompt.seeds.push_back(answer_seed(record_seed(42, std::to_string(seed)), n));
  prompt.name = "prompt " + std::to_string(seed);
  return prompt;
}

/// The committed tiny SentencePiece tokenizer: 400 pieces + <image> (400) + <pad> (401).
inline const Tokenizer& tiny_tokenizer() {
  static const Tokenizer tokenizer(std::filesystem::path(kTestsDir) / "fixtures" / "tokenizer" /
                                   "tiny.model");
  return tokenizer;
}

/// A config for the tiny tokenizer and a tiny model (16-pixel images -> 4 image tokens).
inline Config tiny_config() {
  Config config;
  config.model.tiny.vision_hidden = 16;
  config.model.tiny.vision_layers = 1;
  config.model.tiny.vision_heads = 2;
  config.model.tiny.image_size = 16;
  config.model.tiny.patch_size = 8;
  config.model.tiny.hidden = 32;
  config.model.tiny.layers = 2;
  config.model.tiny.heads = 4;
  config.model.tiny.kv_heads = 2;
  config.model.tiny.intermediate = 48;
  config.image.size = 16;
  config.tokenizer.chat_template = "plain";
  config.sampling.num_answers = 4;
  config.sampling.max_new_tokens = 6;
  config.run.seed = 7;
  return config;
}

/// The tiny model of `config` with order-one random weights (so sampling varies).
inline LlavaModel tiny_model(const Config& config, std::uint64_t seed, double scale = 0.5) {
  ModelConfig model_config = tiny_model_config(config.model.tiny, 402, 400);
  torch::manual_seed(seed);
  LlavaModel model(model_config);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.copy_(torch::randn_like(p) * scale);
  model->eval();
  return model;
}

/// Writes `count` grounding records (ids r0, r1, ...) using the data fixtures' image, and reads
/// them back as the data module does.
inline std::vector<DatasetRecord> write_dataset(const std::filesystem::path& file, int count,
                                                int first = 0) {
  const auto image =
      std::filesystem::path(kTestsDir) / "fixtures" / "data" / "images" / "gradient_8x6.png";
  std::ofstream out(file);
  const char* things[] = {"red box", "left cat", "tall tree", "small dog", "blue car", "old man"};
  for (int i = first; i < first + count; ++i) {
    nlohmann::json record = {{"id", "r" + std::to_string(i)},
                             {"task", "grounding"},
                             {"image", image.string()},
                             {"prompt", std::string("Where is the ") + things[i % 6] + "?"},
                             {"ground_truth", "[0.1, 0.2, 0.5, 0.6]"}};
    out << record.dump() << "\n";
  }
  out.close();
  return read_dataset(file, ReadOptions{});
}

/// A fixture: a fresh scratch folder <group>/<test name> holding five grounding records
/// (write_dataset), the tiny config and a tiny model from `model_seed`.
class TinyRecordsTest : public ::testing::Test {
 protected:
  TinyRecordsTest(std::string group, std::uint64_t model_seed)
      : group_(std::move(group)), config(tiny_config()), model(tiny_model(config, model_seed)) {}
  void SetUp() override {
    dir =
        fresh_scratch_dir(group_, ::testing::UnitTest::GetInstance()->current_test_info()->name());
    records = write_dataset(dir / "data.jsonl", 5);
  }

 private:
  std::string group_;

 protected:
  std::filesystem::path dir;
  std::vector<DatasetRecord> records;
  Config config;
  LlavaModel model;
};

/// Decoding options: `max_new_tokens`, no stop token, `sampler`.
inline GenerationOptions decoding(int max_new_tokens, SamplerOptions sampler = {}) {
  GenerationOptions options;
  options.max_new_tokens = max_new_tokens;
  options.sampler = sampler;
  return options;
}

}  // namespace perpo::test
