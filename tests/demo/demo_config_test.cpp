// configs/demo/base.yaml agrees with the synthetic data and the tokenizer trainer it is made for.
#include <gtest/gtest.h>

#include <filesystem>

#include "perpo/config/config_io.h"
#include "perpo/demo/pipeline.h"
#include "perpo/synth/synth.h"
#include "perpo/tokenizer/trainer.h"
#include "test_paths.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

TEST(DemoConfig, ImageSizesAgreeWithTheSyntheticData) {
  const Config config =
      load_config(fs::path(test::kTestsDir).parent_path() / "configs" / "demo" / "base.yaml");
  const TinyModelConfig& tiny = config.model.tiny;
  EXPECT_TRUE(config.model.path.empty());  // the built-in tiny model
  EXPECT_EQ(config.image.size, tiny.image_size);
  EXPECT_EQ(SynthOptions{}.image_size, tiny.image_size);  // perpo data synth's default
  EXPECT_EQ(tiny.image_size % tiny.patch_size, 0);
  EXPECT_EQ((tiny.image_size / tiny.patch_size) * (tiny.image_size / tiny.patch_size), 36);
  EXPECT_EQ(tiny.hidden, 64);
  EXPECT_EQ(tiny.vision_hidden, 64);
  // A box answer is 17 pieces + </s> with the trainer's fixed pieces: it must fit.
  EXPECT_GE(config.sampling.max_new_tokens, 18);
  EXPECT_GE(config.eval.max_new_tokens, 18);
  // The model perpo demo builds is this file's tiny model (every chain's stages start here).
  const Config base = demo_base_config(DemoOptions{});
  Config demo_model, file_model;
  demo_model.model = base.model;
  file_model.model = config.model;
  EXPECT_EQ(dump_config(demo_model), dump_config(file_model));
  EXPECT_EQ(base.image.size, config.image.size);
  EXPECT_EQ(config.tokenizer.chat_template, "plain");
  EXPECT_GE(TokenizerTrainOptions{}.vocab_size, 64);
}

}  // namespace
}  // namespace perpo
