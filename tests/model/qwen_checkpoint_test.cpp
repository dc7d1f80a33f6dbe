// Qwen2.5-VL checkpoints in and out (qwen_checkpoint.h) on the transformers fixtures of
// tools/make_qwen2_5_vl_fixtures.py (the Hub's key layout, F16 weights): the names of both
// layouts, strict loads with the logits transformers computed, rewrites in the other layout and
// in two shards that reload bit-equal, every way a checkpoint can fail to fit (naming the tensor),
// the header shape check, and exports (both layouts, fp32 / bf16, LoRA merged, tokenizer files)
// that reload equal. With PERPO_QWEN_EXPORT_DIR set, one test also leaves exports there for
// tools/check_qwen_export_in_transformers.py, which reloads them in transformers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/convert.h"
#include "perpo/model/hf_names.h"
#include "perpo/model/lora.h"
#include "perpo/model/qwen2_5_vl.h"
#include "perpo/model/qwen_checkpoint.h"
#include "perpo/model/safetensors.h"
#include "qwen_fixture.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using test::input_error_of;
using ::testing::HasSubstr;

constexpr HfFamily kQwen = HfFamily::kQwen2_5VL;

using test::fixture_dir;

fs::path scratch(const std::string& name) { return test::fresh_scratch_dir("qwen_io", name); }

/// The fixture's prompt batch and transformers' logits (expected.safetensors).
struct FixtureInputs {
  torch::Tensor ids, mask, grid, pixels, logits;
};

FixtureInputs fixture_inputs(const std::string& name, const Qwen2_5VLConfig& config) {
  SafetensorsFile expected(fixture_dir(name) / "expected.safetensors");
  FixtureInputs in;
  in.ids = expected.tensor("input_ids").clone();
  in.mask = expected.tensor("attention_mask").clone();
  in.grid = expected.tensor("image_grid_thw").clone();
  in.logits = expected.tensor("logits").clone();
  torch::Tensor salts = expected.tensor("image_salts");
  std::vector<torch::Tensor> images;
  for (std::int64_t i = 0; i < in.grid.size(0); ++i) {
    images.push_back(test::fixture_pixels(in.grid[i].prod().item<std::int64_t>(),
                                          config.vision.patch_values(),
                                          salts[i].item<std::int64_t>()));
  }
  in.pixels = torch::cat(images);  // (S, 1176)
  return in;
}

torch::Tensor logits_of(Qwen2_5VLModel& model, const FixtureInputs& in) {
  model->eval();
  torch::NoGradGuard no_grad;
  return model->forward(in.ids, in.pixels, in.grid, in.mask).logits;  // (B, T, V)
}

/// Largest |a - b| at the real (unpadded) tokens.
double max_diff_at_real_tokens(const torch::Tensor& a, const torch::Tensor& b,
                               const torch::Tensor& mask) {
  torch::Tensor real = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(real).max().item<double>();
}

void expect_same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    ASSERT_TRUE(pb.contains(item.key())) << item.key();
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
}

/// `model`'s weights under Qwen2.5-VL HF names in `layout`, plus `extra` tensors.
NamedTensors hf_tensors(torch::nn::Module& model, HfLayout layout, NamedTensors extra = {}) {
  NamedTensors tensors;
  for (auto& [name, tensor] : canonical_state(model))
    tensors.emplace_back(canonical_to_hf(name, layout, kQwen), tensor);
  for (auto& item : extra) tensors.push_back(item);
  return tensors;
}

/// A checkpoint folder: the fixture's config.json and `tensors` in model.safetensors.
fs::path write_folder(const std::string& name, const std::string& fixture,
                      const NamedTensors& tensors) {
  fs::path dir = scratch(name);
  fs::copy_file(fixture_dir(fixture) / "config.json", dir / "config.json");
  write_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

/// `tensors` without the one named `key`.
NamedTensors without(NamedTensors tensors, const std::string& key) {
  NamedTensors kept;
  for (auto& item : tensors) {
    if (item.first != key) kept.push_back(item);
  }
  EXPECT_EQ(kept.size() + 1, tensors.size()) << key;
  return kept;
}

// ---------------------------------------------------------------------------------------------
// Names

TEST(QwenHfNames, MapBothLayoutsBothWays) {
  // (canonical, old = the Hub's, new = transformers >= 4.52 / 5)
  const std::vector<std::array<std::string, 3>> table = {
      {"language_model.layers.1.self_attn.q_proj.bias", "model.layers.1.self_attn.q_proj.bias",
       "model.language_model.layers.1.self_attn.q_proj.bias"},
      {"language_model.embed_tokens.weight", "model.embed_tokens.weight",
       "model.language_model.embed_tokens.weight"},
      {"language_model.norm.weight", "model.norm.weight", "model.language_model.norm.weight"},
      {"visual.blocks.0.attn.qkv.weight", "visual.blocks.0.attn.qkv.weight",
       "model.visual.blocks.0.attn.qkv.weight"},
      {"visual.merger.mlp.2.bias", "visual.merger.mlp.2.bias", "model.visual.merger.mlp.2.bias"},
      {"lm_head.weight", "lm_head.weight", "lm_head.weight"},
  };
  for (const auto& [canonical, old_key, new_key] : table) {
    EXPECT_EQ(canonical_to_hf(canonical, HfLayout::kOld, kQwen), old_key);
    EXPECT_EQ(canonical_to_hf(canonical, HfLayout::kNew, kQwen), new_key);
    EXPECT_EQ(hf_to_canonical(old_key, HfLayout::kOld, kQwen), canonical);
    EXPECT_EQ(hf_to_canonical(new_key, HfLayout::kNew, kQwen), canonical);
  }
  EXPECT_EQ(hf_to_canonical("model.layers.0.mlp.up_proj.weight", HfLayout::kNew, kQwen),
            std::nullopt);
  EXPECT_EQ(hf_to_canonical("model.visual.merger.ln_q.weight", HfLayout::kOld, kQwen),
            "language_model.visual.merger.ln_q.weight");  // no such parameter: unexpected
  EXPECT_THROW(canonical_to_hf("vision_tower.x", HfLayout::kNew, kQwen), Error);
  EXPECT_TRUE(is_ignored_hf_key("visual.rotary_pos_emb.inv_freq"));
  EXPECT_TRUE(is_ignored_hf_key("model.language_model.rotary_emb.inv_freq"));
}

TEST(QwenHfNames, DetectsTheLayoutAndRefusesMixtures) {
  EXPECT_EQ(
      detect_hf_layout({"lm_head.weight", "model.norm.weight", "visual.merger.ln_q.weight"}, kQwen),
      HfLayout::kOld);
  EXPECT_EQ(detect_hf_layout({"lm_head.weight", "model.language_model.norm.weight",
                              "model.visual.merger.ln_q.weight"},
                             kQwen),
            HfLayout::kNew);
  // A decoder in one layout, the tower in the other: both keys quoted.
  std::string mixed = input_error_of([] {
    detect_hf_layout({"model.language_model.norm.weight", "visual.x.weight"}, kQwen);
  });
  EXPECT_THAT(mixed, HasSubstr("mixes the old and the new Hugging Face Qwen2.5-VL key layouts"));
  EXPECT_THAT(mixed, HasSubstr("'visual.x.weight'"));
  EXPECT_THAT(mixed, HasSubstr("'model.language_model.norm.weight'"));
  EXPECT_THAT(input_error_of([] {
                detect_hf_layout({"model.visual.blocks.0.norm1.weight", "model.layers.0.x"}, kQwen);
              }),
              HasSubstr("mixes the old and the new"));
  // A LLaVA checkpoint's old keys are none of Qwen2.5-VL's.
  EXPECT_THAT(input_error_of([] {
                detect_hf_layout({"language_model.model.norm.weight", "vision_tower.x"}, kQwen);
              }),
              HasSubstr("not those of a Hugging Face Qwen2.5-VL model"));
  // LLaVA's detection is unchanged by the family parameter's default.
  EXPECT_EQ(detect_hf_layout({"language_model.model.norm.weight"}), HfLayout::kOld);
}

// ---------------------------------------------------------------------------------------------
// Loading

class QwenCheckpointFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(QwenCheckpointFixture, LoadsWithTheLogitsOfTransformers) {
  LoadReport report;
  Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir(GetParam()), &report);
  EXPECT_EQ(report.layout, "old");  // the fixtures hold the Hub's names
  EXPECT_EQ(report.files, 1u);
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_EQ(report.loaded, static_cast<int>(model->named_parameters().size()));
  FixtureInputs in = fixture_inputs(GetParam(), model->config());
  torch::Tensor logits = logits_of(model, in);
  ASSERT_EQ(logits.sizes(), in.logits.sizes());
  EXPECT_LT(max_diff_at_real_tokens(logits, in.logits, in.mask), 1e-4);
}

TEST_P(QwenCheckpointFixture, OtherLayoutInTwoShardsReloadsBitEqual) {
  Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir(GetParam()));
  // The new layout, with the buffers transformers may save (skipped and counted).
  NamedTensors tensors =
      hf_tensors(*model, HfLayout::kNew,
                 {{"model.visual.rotary_pos_emb.inv_freq", torch::ones({4})},
                  {"model.language_model.rotary_emb.inv_freq", torch::ones({4})}});
  std::uint64_t total = 0, largest = 0;
  for (const auto& item : tensors) {
    const std::uint64_t bytes = item.second.numel() * item.second.element_size();
    total += bytes;
    largest = std::max(largest, bytes);
  }
  ASSERT_LT(largest, total / 2);
  fs::path dir = scratch("sharded_" + GetParam());
  fs::copy_file(fixture_dir(GetParam()) / "config.json", dir / "config.json");
  // Greedy sharding: the first shard passes half the bytes, the rest fits in a second.
  std::vector<std::string> files = write_safetensors_checkpoint(dir, tensors, total / 2 + largest);
  ASSERT_EQ(files.size(), 3u);  // two shards and the index
  EXPECT_TRUE(fs::exists(dir / "model-00002-of-00002.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));

  LoadReport report;
  Qwen2_5VLModel reloaded = load_qwen2_5_vl(dir, &report);
  EXPECT_EQ(report.layout, "new");
  EXPECT_EQ(report.files, 2u);
  EXPECT_EQ(report.skipped.size(), 2u);
  expect_same_parameters(*model, *reloaded);

  // And back in the Hub's layout, one file: the same again.
  fs::path hub =
      write_folder("hub_" + GetParam(), GetParam(), hf_tensors(*reloaded, HfLayout::kOld));
  Qwen2_5VLModel again = load_qwen2_5_vl(hub, &report);
  EXPECT_EQ(report.layout, "old");
  expect_same_parameters(*model, *again);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QwenCheckpointFixture, ::testing::Values("batch", "tied"));

TEST(QwenCheckpoint, TiedHeadSkipsAnEqualCopyAndRefusesAnotherOne) {
  Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir("tied"));
  ASSERT_TRUE(model->config().tie_word_embeddings);
  torch::Tensor embed = model->language_model->embed_tokens->weight.detach();
  // transformers may save the tied head: equal to embed_tokens, skipped and counted.
  fs::path dir = write_folder("tied_copy", "tied",
                              hf_tensors(*model, HfLayout::kNew, {{"lm_head.weight", embed}}));
  LoadReport report;
  Qwen2_5VLModel reloaded = load_qwen2_5_vl(dir, &report);
  EXPECT_THAT(report.skipped, ::testing::ElementsAre("lm_head.weight"));
  expect_same_parameters(*model, *reloaded);
  // A head that differs cannot be tied.
  fs::path other = write_folder(
      "tied_other", "tied", hf_tensors(*model, HfLayout::kOld, {{"lm_head.weight", embed + 1}}));
  std::string message = input_error_of([&] { load_qwen2_5_vl(other); });
  EXPECT_THAT(message, HasSubstr("'lm_head.weight' differs from embed_tokens"));
  EXPECT_THAT(message, HasSubstr("tie_word_embeddings"));
}

TEST(QwenCheckpoint, UntiedModelNeedsTheHead) {
  Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir("batch"));
  fs::path dir = write_folder("no_head", "batch",
                              without(hf_tensors(*model, HfLayout::kOld), "lm_head.weight"));
  std::string message = input_error_of([&] { load_qwen2_5_vl(dir); });
  EXPECT_THAT(message, HasSubstr("lacks 1 parameter(s) of the model: 'lm_head.weight'"));
  EXPECT_THAT(message, HasSubstr("set tie_word_embeddings to true"));
}

TEST(QwenCheckpoint, ErrorsNameTheTensorAndTheFile) {
  Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir("batch"));
  const NamedTensors hub = hf_tensors(*model, HfLayout::kOld);

  // Missing: the canonical name and the key the layout expects.
  fs::path missing =
      write_folder("missing", "batch", without(hub, "model.layers.1.mlp.up_proj.weight"));
  std::string message = input_error_of([&] { load_qwen2_5_vl(missing); });
  EXPECT_THAT(message, HasSubstr("lacks 1 parameter(s) of the model: "
                                 "'language_model.layers.1.mlp.up_proj.weight'"));
  EXPECT_THAT(message, HasSubstr("as old-layout keys: 'model.layers.1.mlp.up_proj.weight'"));

  // Unexpected: a block the config does not have, with its file.
  NamedTensors extra = hub;
  extra.emplace_back("visual.blocks.7.norm1.weight", torch::ones({32}));
  fs::path unexpected = write_folder("unexpected", "batch", extra);
  message = input_error_of([&] { load_qwen2_5_vl(unexpected); });
  EXPECT_THAT(message, HasSubstr("1 tensor(s) the model does not have (old layout): "
                                 "'visual.blocks.7.norm1.weight'"));
  EXPECT_THAT(message, HasSubstr((unexpected / "model.safetensors").string()));
  EXPECT_THAT(message, HasSubstr("not a Qwen2.5-VL model matching config.json"));

  // Mis-shaped: both shapes and the file, from the headers (before building) and from the load.
  NamedTensors reshaped;
  for (const auto& [key, tensor] : hub) {
    reshaped.emplace_back(
        key, key == "model.layers.0.self_attn.k_proj.weight" ? torch::zeros({16, 64}) : tensor);
  }
  fs::path shaped = write_folder("shape", "batch", reshaped);
  message = input_error_of(
      [&] { check_qwen2_5_vl_checkpoint_shapes(load_qwen2_5_vl_config(shaped), shaped); });
  EXPECT_THAT(message, HasSubstr("tensor 'model.layers.0.self_attn.k_proj.weight' in "
                                 "model.safetensors has shape [16, 64] but config.json makes it "
                                 "[32, 64]"));
  EXPECT_THAT(input_error_of([&] { load_qwen2_5_vl(shaped); }),
              HasSubstr("'model.layers.0.self_attn.k_proj.weight' in "));
  message = input_error_of([&] {
    Qwen2_5VLModel fresh(load_qwen2_5_vl_config(shaped));
    load_qwen2_5_vl_weights(*fresh, shaped);
  });
  EXPECT_THAT(message, HasSubstr("has shape [16, 64] but the model's parameter "
                                 "'language_model.layers.0.self_attn.k_proj.weight' has shape "
                                 "[32, 64]"));
  EXPECT_THAT(message, HasSubstr((shaped / "model.safetensors").string()));

  // Mixed layouts: one tensor renamed to the new layout.
  NamedTensors mixed;
  for (const auto& [key, tensor] : hub) {
    mixed.emplace_back(key == "visual.merger.ln_q.weight" ? "model.visual.merger.ln_q.weight" : key,
                       tensor);
  }
  fs::path mixed_dir = write_folder("mixed", "batch", mixed);
  message = input_error_of([&] { load_qwen2_5_vl(mixed_dir); });
  EXPECT_THAT(message, HasSubstr("mixes the old and the new Hugging Face Qwen2.5-VL key layouts"));
  EXPECT_THAT(message, HasSubstr("'model.visual.merger.ln_q.weight'"));
}

TEST(QwenCheckpoint, HeaderCheckCatchesAConfigThatClaimsAnotherModel) {
  // config.json says intermediate_size 200; the weights are 96 wide. The check reads headers only.
  fs::path dir = scratch("bigger_config");
  fs::copy_file(fixture_dir("batch") / "model.safetensors", dir / "model.safetensors");
  std::ifstream in(fixture_dir("batch") / "config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string from = "\"intermediate_size\": 96";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), "\"intermediate_size\": 200");
  write_file_atomic(dir / "config.json", text);
  EXPECT_THAT(
      input_error_of([&] { check_qwen2_5_vl_checkpoint_shapes(load_qwen2_5_vl_config(dir), dir); }),
      HasSubstr("has shape [96, 64] but config.json makes it [200, 64]"));
}

// ---------------------------------------------------------------------------------------------
// Export

/// A source folder: the fixture plus the tokenizer / processor files export copies.
fs::path source_with_tokenizer(const std::string& fixture) {
  fs::path dir = scratch("source_" + fixture);
  fs::copy(fixture_dir(fixture), dir);
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
        "preprocessor_config.json", "chat_template.json", "generation_config.json"}) {
    write_file_atomic(dir / name, std::string("{\"file\": \"") + name + "\"}\n");
  }
  return dir;
}

void expect_same_config(const Qwen2_5VLConfig& a, const Qwen2_5VLConfig& b) {
  EXPECT_EQ(qwen2_5_vl_config_json(a), qwen2_5_vl_config_json(b));
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.mrope_section, b.mrope_section);
  EXPECT_EQ(a.vision.fullatt_block_indexes, b.vision.fullatt_block_indexes);
  EXPECT_EQ(a.text.rope_theta, b.text.rope_theta);
  EXPECT_EQ(a.text.rms_norm_eps, b.text.rms_norm_eps);
}

class QwenExport : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(QwenExport, ReloadsInPerpoEqual) {
  const auto& [fixture, layout] = GetParam();
  fs::path source = source_with_tokenizer(fixture);
  Qwen2_5VLModel model = load_qwen2_5_vl(source);
  fs::path out = scratch("export_" + fixture + "_" + layout) / "hf";
  fs::create_directories(out);
  write_file_atomic(out / "stale.txt", "replaced\n");  // an existing folder is replaced whole
  ExportOptions options;
  options.layout = layout;
  options.tokenizer_dir = source;
  EXPECT_EQ(export_qwen2_5_vl(*model, out, options), model->named_parameters().size());
  EXPECT_FALSE(fs::exists(out / "stale.txt"));
  for (const auto& entry : fs::directory_iterator(out.parent_path()))
    EXPECT_EQ(entry.path().filename(), "hf");  // no staging folder left beside it
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
        "preprocessor_config.json", "chat_template.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(out / name)) << name;
  }
  SafetensorsCheckpoint written(out);
  EXPECT_EQ(written.contains("lm_head.weight"), !model->config().tie_word_embeddings);
  EXPECT_TRUE(
      written.contains(layout == "new" ? "model.language_model.norm.weight" : "model.norm.weight"));
  EXPECT_EQ(
      written
          .entry(canonical_to_hf("visual.patch_embed.proj.weight", parse_hf_layout(layout), kQwen))
          .dtype,
      c10::ScalarType::Float);

  LoadReport report;
  Qwen2_5VLModel reloaded = load_qwen2_5_vl(out, &report);
  EXPECT_EQ(report.layout, layout);
  expect_same_parameters(*model, *reloaded);
  expect_same_config(model->config(), reloaded->config());

  // bf16: every weight rounded once.
  options.to_bfloat16 = true;
  fs::path bf16 = scratch("export_bf16_" + fixture + "_" + layout) / "hf";
  export_qwen2_5_vl(*model, bf16, options);
  Qwen2_5VLModel from_bf16 = load_qwen2_5_vl(bf16);
  auto narrowed = from_bf16->named_parameters();
  for (const auto& item : model->named_parameters()) {
    EXPECT_TRUE(
        torch::equal(narrowed[item.key()], item.value().to(torch::kBFloat16).to(torch::kFloat)))
        << item.key();
  }
  std::ifstream config_file(bf16 / "config.json");
  std::string config_text((std::istreambuf_iterator<char>(config_file)),
                          std::istreambuf_iterator<char>());
  EXPECT_THAT(config_text, HasSubstr("\"torch_dtype\": \"bfloat16\""));
}

INSTANTIATE_TEST_SUITE_P(FixturesAndLayouts, QwenExport,
                         ::testing::Combine(::testing::Values("batch", "tied"),
                                            ::testing::Values("old", "new")));

TEST(QwenExportMerged, LoraAdaptersAreFoldedIn) {
  Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir("batch"));
  FixtureInputs in = fixture_inputs("batch", model->config());
  LoraConfig lora;
  lora.r = 2;
  lora.alpha = 4;
  lora.dropout = 0;
  EXPECT_GT(apply_lora(*model, lora), 0);
  torch::manual_seed(7);
  for (auto& item : model->named_parameters()) {
    if (item.key().find("lora_B") != std::string::npos) item.value().detach().normal_(0.0, 0.05);
  }
  torch::Tensor adapted = logits_of(model, in);
  EXPECT_GT(max_diff_at_real_tokens(adapted, in.logits, in.mask), 1e-3);  // the adapters act
  fs::path out = scratch("export_lora") / "hf";
  export_qwen2_5_vl(*model, out);
  SafetensorsCheckpoint written(out);
  for (const std::string& key : written.names())
    EXPECT_EQ(key.find("lora"), std::string::npos) << key;
  Qwen2_5VLModel merged = load_qwen2_5_vl(out);
  EXPECT_LT(max_diff_at_real_tokens(logits_of(merged, in), adapted, in.mask), 1e-4);
}

TEST(QwenExportMerged, ConvertsAFolderLikePerpoExport) {
  fs::path source = source_with_tokenizer("tied");
  fs::path out = scratch("convert") / "hf";
  ConvertOptions options;
  options.layout = "new";
  options.dtype = "bf16";
  ConvertSummary summary = export_qwen2_5_vl_hf_checkpoint(source, out, options);
  EXPECT_EQ(summary.input_layout, "old");
  EXPECT_EQ(summary.output_layout, "new");
  EXPECT_EQ(summary.tensors, 32);
  EXPECT_EQ(summary.tokenizer_files.size(), 7u);
  EXPECT_THAT(input_error_of([&] { export_qwen2_5_vl_hf_checkpoint(source, source, options); }),
              HasSubstr("is the checkpoint folder itself"));
  EXPECT_THAT(input_error_of([&] {
                ExportOptions bad;
                bad.layout = "hub";
                Qwen2_5VLModel model = load_qwen2_5_vl(source);
                export_qwen2_5_vl(*model, scratch("bad_layout") / "hf", bad);
              }),
              HasSubstr("unknown Hugging Face key layout 'hub'"));
}

TEST(QwenExportConfig, ConfigJsonReadsBackInBothLayouts) {
  Qwen2_5VLConfig config = load_qwen2_5_vl_config(fixture_dir("batch"));
  config.text.pad_token_id = 3;
  config.vision.tokens_per_second = 2;
  for (const char* layout : {"old", "new"}) {
    const std::string text = qwen2_5_vl_config_json(config, layout);
    Qwen2_5VLConfig back = parse_qwen2_5_vl_config(text, "export/config.json");
    expect_same_config(config, back);
    EXPECT_EQ(back.text.pad_token_id, 3);
    EXPECT_EQ(back.vision.tokens_per_second, 2);
    EXPECT_EQ(text.find("\"text_config\"") != std::string::npos, std::string(layout) == "new");
  }
  EXPECT_THAT(input_error_of([&] { qwen2_5_vl_config_json(config, "hub"); }),
              HasSubstr("unknown Qwen2.5-VL config.json layout 'hub'"));
}

/// With PERPO_QWEN_EXPORT_DIR set: exports of both fixtures in both layouts and dtypes, and a
/// LoRA-merged one with perpo's logits, for tools/check_qwen_export_in_transformers.py.
TEST(QwenExportForTransformers, WritesExportsWhenAsked) {
  const char* root = std::getenv("PERPO_QWEN_EXPORT_DIR");
  if (root == nullptr || *root == '\0') GTEST_SKIP() << "PERPO_QWEN_EXPORT_DIR is not set";
  for (const char* fixture : {"batch", "tied"}) {
    Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir(fixture));
    for (const char* layout : {"old", "new"}) {
      for (bool bf16 : {false, true}) {
        ExportOptions options;
        options.layout = layout;
        options.to_bfloat16 = bf16;
        export_qwen2_5_vl(
            *model,
            fs::path(root) / (std::string(fixture) + "_" + layout + "_" + (bf16 ? "bf16" : "fp32")),
            options);
      }
    }
  }
  Qwen2_5VLModel model = load_qwen2_5_vl(fixture_dir("batch"));
  LoraConfig lora;
  lora.r = 2;
  lora.alpha = 4;
  lora.dropout = 0;
  lora.vision = true;  // adapters on the vision blocks too: the export merges them
  apply_lora(*model, lora);
  torch::manual_seed(7);
  for (auto& item : model->named_parameters()) {
    if (item.key().find("lora_B") != std::string::npos) item.value().detach().normal_(0.0, 0.05);
  }
  FixtureInputs in = fixture_inputs("batch", model->config());
  ExportOptions options;
  export_qwen2_5_vl(*model, fs::path(root) / "batch_lora_new_fp32", options);
  write_safetensors(fs::path(root) / "batch_lora_logits.safetensors",
                    {{"logits", logits_of(model, in)}});
}

}  // namespace
}  // namespace perpo
