// Export of the real LlavaModel: a transformers checkpoint (tools/make_model_fixtures.py) loaded,
// given LoRA adapters, exported with the adapters merged, and reloaded gives the same logits.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "perpo/model/checkpoint.h"
#include "perpo/model/llava.h"
#include "perpo/model/lora.h"
#include "perpo/model/model_config.h"
#include "perpo/model/safetensors.h"
#include "test_paths.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

fs::path fixture_dir(const std::string& name) {
  return fs::path(test::kTestsDir) / "fixtures" / "model" / name;
}

LlavaModel load(const fs::path& dir, ModelConfig* config) {
  *config = load_model_config(dir);
  LlavaModel model(*config);
  load_weights(*model, dir, config);
  model->eval();
  return model;
}

class ExportLlava : public ::testing::TestWithParam<std::string> {};

TEST_P(ExportLlava, MergedExportReloadsWithTheSameLogits) {
  ModelConfig config;
  LlavaModel model = load(fixture_dir(GetParam()), &config);
  SafetensorsFile inputs(fixture_dir(GetParam()) / "inputs.safetensors");
  torch::Tensor ids = inputs.tensor("input_ids"), pixels = inputs.tensor("pixel_values");
  torch::NoGradGuard no_grad;

  // Plain export in the other layout: transformers' logits survive the trip.
  const std::string other = config.key_layout == "old" ? "new" : "old";
  fs::path plain = fs::path(test::kScratchDir) / "model_io" / ("export_" + GetParam());
  ExportOptions options;
  options.layout = other;
  export_checkpoint(*model, config, plain, options);
  ModelConfig plain_config;
  LlavaModel plain_model = load(plain, &plain_config);
  EXPECT_EQ(plain_config.key_layout, other);
  EXPECT_EQ(plain_config.tie_word_embeddings, config.tie_word_embeddings);
  EXPECT_LT(
      (plain_model->forward(ids, pixels) - inputs.tensor("logits")).abs().max().item<double>(),
      1e-4);

  // LoRA with random adapters: the merged export computes what the adapted model computes.
  LoraConfig lora;
  lora.r = 2;
  lora.alpha = 4;
  lora.dropout = 0;
  EXPECT_GT(apply_lora(*model, lora), 0);
  torch::manual_seed(5);
  for (auto& item : model->named_parameters()) {
    if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0.0, 0.05);
  }
  torch::Tensor adapted = model->forward(ids, pixels);                              // (B, S, V)
  EXPECT_GT((adapted - inputs.tensor("logits")).abs().max().item<double>(), 1e-3);  // LoRA acts
  fs::path merged = fs::path(test::kScratchDir) / "model_io" / ("export_lora_" + GetParam());
  export_checkpoint(*model, config, merged);
  ModelConfig merged_config;
  LlavaModel merged_model = load(merged, &merged_config);
  EXPECT_LT((merged_model->forward(ids, pixels) - adapted).abs().max().item<double>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ExportLlava,
                         ::testing::Values("tiny_old_untied_gqa", "tiny_new_tied",
                                           "tiny_tf5_rope"));

}  // namespace
}  // namespace perpo
