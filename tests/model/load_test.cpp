// load_model: the tiny model from a tokenizer, an HF folder, and the checks that a tokenizer,
// image size and model fit together.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "perpo/model/checkpoint.h"
#include "perpo/model/load.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

fs::path tokenizer_fixture() { return fs::path(test::kTestsDir) / "fixtures/tokenizer/tiny.model"; }

Config tiny_config() {
  Config config;
  config.tokenizer.path = tokenizer_fixture().string();
  config.model.tiny = {.vision_hidden = 16,
                       .vision_layers = 1,
                       .vision_heads = 2,
                       .image_size = 16,
                       .patch_size = 8,
                       .hidden = 32,
                       .layers = 2,
                       .heads = 4,
                       .kv_heads = 2,
                       .intermediate = 48};
  config.image.size = 16;
  config.run.seed = 7;
  return config;
}

torch::Tensor logits_of(const std::shared_ptr<VisionLanguageModel>& model,
                        const TextTokenizer& tokenizer) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int image_id = *tokenizer.added_token_id("<image>");
  torch::Tensor ids = torch::tensor({1, image_id, image_id, image_id, image_id, 17, 18, 19},
                                    torch::kLong)
                          .unsqueeze(0);  // (1, 8)
  torch::Tensor pixels = torch::linspace(-1, 1, 3 * 16 * 16).view({1, 3, 16, 16});
  return model->lm_logits(model->run_prompts(ids, {}, pixels).hidden);  // (1, 8, V)
}

TEST(LoadModel, TinyModelIsAFunctionOfTheSeedAndFitsItsTokenizer) {
  Config config = tiny_config();
  LoadedModel a = load_model(config);
  EXPECT_TRUE(a.dir.empty());
  EXPECT_EQ(a.config.text.vocab_size, a.tokenizer->vocab_size());
  EXPECT_EQ(a.config.image_token_index, *a.tokenizer->added_token_id("<image>"));
  EXPECT_EQ(a.config.image_tokens(), 4);
  LoadedModel b = load_model(config);
  EXPECT_TRUE(torch::equal(logits_of(a.model, *a.tokenizer), logits_of(b.model, *b.tokenizer)));
  config.run.seed = 8;
  LoadedModel c = load_model(config);
  EXPECT_FALSE(torch::equal(logits_of(a.model, *a.tokenizer), logits_of(c.model, *c.tokenizer)));
  // transformers-style init: embeddings ~ N(0, 0.02), norms 1.
  auto params = a.model->named_parameters();
  const double std = params["language_model.embed_tokens.weight"].std().item<double>();
  EXPECT_NEAR(std, 0.02, 0.004);
  EXPECT_TRUE(torch::all(params["language_model.norm.weight"] == 1).item<bool>());
}

TEST(LoadModel, TrainablePartsFollowFreezeFlagsAndLora) {
  Config config = tiny_config();
  config.model.freeze_vision = true;
  config.model.freeze_projector = false;
  LoadedModel full = load_model(config);
  for (const auto& item : full.model->named_parameters()) {
    const bool vision = item.key().rfind("vision_tower.", 0) == 0;
    EXPECT_EQ(item.value().requires_grad(), !vision) << item.key();
  }
  config.model.lora.enabled = true;
  config.model.lora.r = 4;
  config.model.lora.alpha = 8;
  LoadedModel lora = load_model(config);
  int adapters = 0;
  for (const auto& item : lora.model->named_parameters()) {
    const std::string& name = item.key();
    const bool adapter = name.find("lora_") != std::string::npos;
    const bool projector = name.rfind("multi_modal_projector.", 0) == 0;
    adapters += adapter;
    EXPECT_EQ(item.value().requires_grad(), adapter || projector) << name;
  }
  EXPECT_EQ(adapters, 2 * 7 * 2);  // A and B on 7 linear layers in each of 2 decoder layers
}

TEST(LoadModel, HuggingFaceFolderRoundTrip) {
  // The tiny model exported in the HF layout with its tokenizer loads back with the same logits.
  const fs::path dir = test::fresh_scratch_dir("load", "hf");
  const fs::path tokenizer_dir = test::fresh_scratch_dir("load", "tokenizer");
  fs::copy_file(tokenizer_fixture(), tokenizer_dir / "tokenizer.model");
  Config config = tiny_config();
  LoadedModel tiny = load_model(config);
  export_checkpoint(*tiny.model, tiny.config, dir / "model", {.tokenizer_dir = tokenizer_dir});
  Config from_folder = tiny_config();
  from_folder.model.path = (dir / "model").string();
  from_folder.tokenizer.path.clear();  // <model.path>/tokenizer.model
  from_folder.run.seed = 99;           // weights come from the folder, not the seed
  LoadedModel loaded = load_model(from_folder);
  EXPECT_EQ(loaded.dir, dir / "model");
  EXPECT_EQ(loaded.tokenizer_path, dir / "model" / "tokenizer.model");
  EXPECT_TRUE(torch::allclose(logits_of(tiny.model, *tiny.tokenizer),
                              logits_of(loaded.model, *loaded.tokenizer), 0, 0));
}

TEST(LoadModel, MismatchesAreInputErrorsThatSayWhatToSet) {
  Config no_tokenizer = tiny_config();
  no_tokenizer.tokenizer.path.clear();
  EXPECT_NE(test::error_of([&] { load_model(no_tokenizer); }).find("needs tokenizer.path"),
            std::string::npos);

  Config wrong_size = tiny_config();
  wrong_size.image.size = 336;
  const std::string size_error = test::error_of([&] { load_model(wrong_size); });
  EXPECT_NE(size_error.find("image.size is 336"), std::string::npos) << size_error;
  EXPECT_NE(size_error.find("image.size=16"), std::string::npos) << size_error;

  // The parity fixture embeds 96 ids; the test tokenizer has 402.
  const fs::path dir = test::fresh_scratch_dir("load", "mismatch");
  const fs::path fixture = fs::path(test::kTestsDir) / "fixtures/model/tiny_new_tied";
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(fixture / name, dir / name);
  }
  fs::copy_file(tokenizer_fixture(), dir / "tokenizer.model");
  Config mismatch = tiny_config();
  mismatch.model.path = dir.string();
  mismatch.tokenizer.path.clear();
  mismatch.image.size = 32;
  const std::string vocab_error = test::error_of([&] { load_model(mismatch); });
  EXPECT_NE(vocab_error.find("embeds only 96"), std::string::npos) << vocab_error;
}

}  // namespace
}  // namespace perpo
