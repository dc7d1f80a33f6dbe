// Models and prompts shared by the generate tests.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "perpo/generate/generator.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/model/safetensors.h"
#include "test_paths.h"

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

/// Decoding options: `max_new_tokens`, no stop token, `sampler`.
inline GenerationOptions decoding(int max_new_tokens, SamplerOptions sampler = {}) {
  GenerationOptions options;
  options.max_new_tokens = max_new_tokens;
  options.sampler = sampler;
  return options;
}

}  // namespace perpo::test
