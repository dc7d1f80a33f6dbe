// HF key layouts, strict loading and export, on a stand-in model with canonical names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <filesystem>

#include "io_test_model.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/hf_names.h"
#include "perpo/model/lora.h"
#include "perpo/model/safetensors.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using test::make_mini_llava;
using test::MiniLlavaSpec;
using ::testing::HasSubstr;

fs::path scratch(const std::string& name) { return test::fresh_scratch_dir("model_io", name); }
using test::error_of;

// Writes `model`'s weights as an HF checkpoint (model.safetensors only) in `layout`.
void write_hf(torch::nn::Module& model, const fs::path& dir, HfLayout layout,
              NamedTensors extra = {}) {
  NamedTensors tensors;
  for (auto& [name, tensor] : canonical_state(model))
    tensors.emplace_back(canonical_to_hf(name, layout), tensor);
  for (auto& item : extra) tensors.push_back(item);
  write_safetensors(dir / "model.safetensors", tensors);
}

void expect_same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
}

TEST(HfNames, MapBothLayoutsBothWays) {
  // (canonical, old, new)
  const std::vector<std::array<std::string, 3>> table = {
      {"language_model.layers.3.self_attn.q_proj.weight",
       "language_model.model.layers.3.self_attn.q_proj.weight",
       "model.language_model.layers.3.self_attn.q_proj.weight"},
      {"language_model.embed_tokens.weight", "language_model.model.embed_tokens.weight",
       "model.language_model.embed_tokens.weight"},
      {"lm_head.weight", "language_model.lm_head.weight", "lm_head.weight"},
      {"vision_tower.vision_model.pre_layrnorm.bias", "vision_tower.vision_model.pre_layrnorm.bias",
       "model.vision_tower.vision_model.pre_layrnorm.bias"},
      {"multi_modal_projector.linear_2.bias", "multi_modal_projector.linear_2.bias",
       "model.multi_modal_projector.linear_2.bias"},
  };
  for (const auto& [canonical, old_key, new_key] : table) {
    EXPECT_EQ(canonical_to_hf(canonical, HfLayout::kOld), old_key);
    EXPECT_EQ(canonical_to_hf(canonical, HfLayout::kNew), new_key);
    EXPECT_EQ(hf_to_canonical(old_key, HfLayout::kOld), canonical);
    EXPECT_EQ(hf_to_canonical(new_key, HfLayout::kNew), canonical);
  }
  EXPECT_EQ(hf_to_canonical("language_model.model.norm.weight", HfLayout::kNew), std::nullopt);
  EXPECT_EQ(hf_to_canonical("model.language_model.norm.weight", HfLayout::kOld), std::nullopt);
  EXPECT_THROW(canonical_to_hf("decoder.norm.weight", HfLayout::kNew), Error);
  EXPECT_TRUE(is_ignored_hf_key("language_model.model.layers.0.self_attn.rotary_emb.inv_freq"));
  EXPECT_TRUE(is_ignored_hf_key("vision_tower.vision_model.embeddings.position_ids"));
  EXPECT_FALSE(is_ignored_hf_key("vision_tower.vision_model.embeddings.position_embedding.weight"));
}

TEST(HfNames, DetectsTheLayout) {
  EXPECT_EQ(detect_hf_layout({"language_model.lm_head.weight", "vision_tower.x"}), HfLayout::kOld);
  EXPECT_EQ(detect_hf_layout({"lm_head.weight", "model.language_model.norm.weight"}),
            HfLayout::kNew);
  EXPECT_THAT(error_of([] {
                detect_hf_layout({"language_model.model.a", "model.vision_tower.b"});
              }),
              HasSubstr("mixes the old and the new"));
  EXPECT_THAT(error_of([] { detect_hf_layout({"transformer.h.0.attn.weight"}); }),
              HasSubstr("e.g. transformer.h.0.attn.weight"));
}

TEST(HfNames, ReadsTheNamesTransformers5Writes) {
  // 5.6 and later: the old layout with the vision tower's vision_model level gone.
  const std::vector<std::string> v56 = {
      "language_model.model.norm.weight", "language_model.lm_head.weight",
      "vision_tower.embeddings.patch_embedding.weight", "multi_modal_projector.linear_1.weight"};
  ASSERT_EQ(detect_hf_layout(v56), HfLayout::kOld);
  EXPECT_EQ(hf_to_canonical("vision_tower.embeddings.patch_embedding.weight", HfLayout::kOld),
            "vision_tower.vision_model.embeddings.patch_embedding.weight");
  EXPECT_EQ(hf_to_canonical("vision_tower.encoder.layers.1.mlp.fc1.bias", HfLayout::kOld),
            "vision_tower.vision_model.encoder.layers.1.mlp.fc1.bias");
  // 5.4 - 5.5: a doubled model. level and the old head beside new-layout names.
  const std::vector<std::string> v54 = {"model.language_model.model.norm.weight",
                                        "language_model.lm_head.weight",
                                        "model.vision_tower.vision_model.post_layernorm.weight",
                                        "model.multi_modal_projector.linear_1.weight"};
  ASSERT_EQ(detect_hf_layout(v54), HfLayout::kNew);
  EXPECT_EQ(hf_to_canonical("model.language_model.model.norm.weight", HfLayout::kNew),
            "language_model.norm.weight");
  EXPECT_EQ(hf_to_canonical("language_model.lm_head.weight", HfLayout::kNew), "lm_head.weight");
  // A 5.x state_dict: model.vision_tower.embeddings.*
  EXPECT_EQ(hf_to_canonical("model.vision_tower.embeddings.class_embedding", HfLayout::kNew),
            "vision_tower.vision_model.embeddings.class_embedding");
  // Writing keeps the 4.x names, which transformers 4 and 5 both read.
  EXPECT_EQ(canonical_to_hf("vision_tower.vision_model.embeddings.class_embedding", HfLayout::kNew),
            "model.vision_tower.vision_model.embeddings.class_embedding");
}

class LoadBothLayouts : public ::testing::TestWithParam<HfLayout> {};

TEST_P(LoadBothLayouts, RoundTripsEveryParameter) {
  torch::manual_seed(1);
  auto source = make_mini_llava();
  fs::path dir = scratch("load_" + hf_layout_name(GetParam()));
  // HF buffers that loading skips.
  write_hf(*source, dir, GetParam(),
           {{canonical_to_hf("language_model.layers.0.self_attn.rotary_emb.inv_freq", GetParam()),
             torch::ones({4})}});
  auto target = make_mini_llava();
  ModelConfig config;
  LoadReport report = load_weights(*target, dir, &config);
  expect_same_parameters(*source, *target);
  EXPECT_EQ(report.layout, hf_layout_name(GetParam()));
  EXPECT_EQ(config.key_layout, report.layout);
  EXPECT_EQ(report.loaded, static_cast<int>(source->parameters().size()));
  EXPECT_EQ(report.skipped.size(), 1u);
}
INSTANTIATE_TEST_SUITE_P(Layouts, LoadBothLayouts,
                         ::testing::Values(HfLayout::kOld, HfLayout::kNew));

TEST(LoadWeights, ConvertsDtypes) {
  torch::manual_seed(2);
  auto source = make_mini_llava();
  fs::path dir = scratch("bf16");
  NamedTensors tensors;
  for (auto& [name, tensor] : canonical_state(*source)) {
    tensors.emplace_back(canonical_to_hf(name, HfLayout::kNew), tensor.to(torch::kBFloat16));
  }
  write_safetensors(dir / "model.safetensors", tensors);
  auto target = make_mini_llava();
  load_weights(*target, dir);
  for (const auto& item : target->named_parameters()) {
    EXPECT_EQ(item.value().scalar_type(), torch::kFloat);
    EXPECT_TRUE(
        torch::equal(item.value(),
                     source->named_parameters()[item.key()].to(torch::kBFloat16).to(torch::kFloat)))
        << item.key();
  }
}

TEST(LoadWeights, WrongShapeNamesTheTensorAndBothShapes) {
  auto source = make_mini_llava();
  fs::path dir = scratch("wrong_shape");
  NamedTensors tensors;
  for (auto& [name, tensor] : canonical_state(*source)) {
    bool bad = name == "language_model.layers.1.mlp.up_proj.weight";
    tensors.emplace_back(canonical_to_hf(name, HfLayout::kNew),
                         bad ? torch::zeros({25, 16}) : tensor);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  auto target = make_mini_llava();
  torch::Tensor before = target->named_parameters()["language_model.embed_tokens.weight"].clone();
  std::string message = error_of([&] { load_weights(*target, dir); });
  EXPECT_THAT(message, HasSubstr("tensor 'model.language_model.layers.1.mlp.up_proj.weight'"));
  EXPECT_THAT(message, HasSubstr("has shape [25, 16]"));
  EXPECT_THAT(message, HasSubstr("has shape [24, 16]"));  // intermediate 24, hidden 16
  // Nothing was half-loaded.
  EXPECT_TRUE(
      torch::equal(before, target->named_parameters()["language_model.embed_tokens.weight"]));
}

TEST(LoadWeights, MissingAndUnexpectedTensorsAreNamed) {
  auto source = make_mini_llava();
  fs::path dir = scratch("missing");
  NamedTensors tensors;
  for (auto& [name, tensor] : canonical_state(*source)) {
    if (name != "language_model.norm.weight")
      tensors.emplace_back(canonical_to_hf(name, HfLayout::kOld), tensor);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  auto target = make_mini_llava();
  std::string message = error_of([&] { load_weights(*target, dir); });
  EXPECT_THAT(message,
              HasSubstr("lacks 1 parameter(s) of the model: 'language_model.norm.weight'"));
  EXPECT_THAT(message, HasSubstr("'language_model.model.norm.weight'"));

  fs::path extra_dir = scratch("unexpected");
  write_hf(*source, extra_dir, HfLayout::kNew,
           {{"model.language_model.layers.0.mlp.extra.weight", torch::ones({2})}});
  EXPECT_THAT(error_of([&] { load_weights(*target, extra_dir); }),
              HasSubstr("1 tensor(s) the model does not have (new layout): "
                        "'model.language_model.layers.0.mlp.extra.weight'"));
}

TEST(LoadWeights, TruncatedCheckpointNamesTheFileAndTensor) {
  auto source = make_mini_llava();
  fs::path dir = scratch("truncated_ckpt");
  write_hf(*source, dir, HfLayout::kNew);
  fs::path file = dir / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 10);
  std::string message = error_of([&] { load_weights(*make_mini_llava(), dir); });
  EXPECT_THAT(message, HasSubstr(file.string()));
  EXPECT_THAT(message, HasSubstr("tensor '"));
  EXPECT_THAT(message, HasSubstr("truncated"));
}

TEST(LoadWeights, TiedEmbeddingsAndUnusedVisionParts) {
  MiniLlavaSpec tied_spec;
  tied_spec.tied = true;
  tied_spec.vision_layers = 1;       // the model builds one of the checkpoint's two layers
  tied_spec.post_layernorm = false;  // and no post_layernorm (LLaVA never reads it)
  auto source = make_mini_llava();   // untied, 2 vision layers, post_layernorm
  fs::path dir = scratch("tied");
  NamedTensors tensors;
  torch::Tensor embed = source->named_parameters()["language_model.embed_tokens.weight"];
  for (auto& [name, tensor] : canonical_state(*source)) {
    // An HF tied checkpoint may or may not store lm_head; here it stores a copy of embed_tokens.
    tensors.emplace_back(canonical_to_hf(name, HfLayout::kNew),
                         name == "lm_head.weight" ? embed : tensor);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  auto target = make_mini_llava(tied_spec);
  LoadReport report = load_weights(*target, dir);
  // skipped: lm_head.weight + post_layernorm (weight, bias) + vision layer 1 (4 linears x 2)
  EXPECT_EQ(report.skipped.size(), 1u + 2u + 8u);
  EXPECT_TRUE(
      torch::equal(target->named_parameters()["language_model.embed_tokens.weight"], embed));

  // A head that differs from embed_tokens cannot be dropped silently.
  fs::path untied_dir = scratch("untied");
  write_hf(*source, untied_dir, HfLayout::kNew);
  EXPECT_THAT(error_of([&] { load_weights(*target, untied_dir); }),
              HasSubstr("'lm_head.weight' differs from embed_tokens"));
  // An untied model needs the head.
  NamedTensors without_head;
  for (auto& [name, tensor] : canonical_state(*source)) {
    if (name != "lm_head.weight")
      without_head.emplace_back(canonical_to_hf(name, HfLayout::kNew), tensor);
  }
  fs::path headless = scratch("headless");
  write_safetensors(headless / "model.safetensors", without_head);
  EXPECT_THAT(error_of([&] { load_weights(*make_mini_llava(), headless); }),
              HasSubstr("set tie_word_embeddings to true"));
}

TEST(ExportCheckpoint, MergesLoraAndReloadsInBothLayouts) {
  torch::manual_seed(3);
  auto model = make_mini_llava();
  LoraConfig lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.dropout = 0;
  lora.targets = {"q_proj", "down_proj"};
  apply_lora(*model, lora);
  test::randomize(*model);  // random adapters (B != 0) so the merge matters
  ModelConfig config;
  fs::path tokenizer = scratch("tokenizer_src");
  write_file_atomic(tokenizer / "tokenizer_config.json", "{}");
  write_file_atomic(tokenizer / "tokenizer.model", "spm");
  for (const std::string layout : {"new", "old"}) {
    fs::path out = scratch("export_parent") / ("export_" + layout);
    write_file_atomic(out / "stale.txt", "replaced");  // an existing folder is replaced whole
    export_checkpoint(*model, config, out, {.layout = layout, .tokenizer_dir = tokenizer});
    EXPECT_FALSE(fs::exists(out / "stale.txt"));
    EXPECT_TRUE(fs::exists(out / "config.json"));
    EXPECT_EQ(read_file(out / "tokenizer.model"), "spm");
    EXPECT_TRUE(fs::exists(out / "tokenizer_config.json"));
    SafetensorsCheckpoint written(out);
    for (const std::string& key : written.names())
      EXPECT_THAT(key, ::testing::Not(HasSubstr("lora"))) << key;
    auto reloaded = make_mini_llava();
    ModelConfig found;
    load_weights(*reloaded, out, &found);
    EXPECT_EQ(found.key_layout, layout);
    EXPECT_EQ(load_model_config(out).key_layout, "new");  // key_layout is not part of config.json
    // q_proj of layer 0: W + (alpha / r) B A; untouched layers equal the source.
    auto* q =
        model->named_modules()["language_model.layers.0.self_attn.q_proj"]->as<LoraLinearImpl>();
    torch::Tensor expected = q->weight + (8.0 / 4.0) * torch::matmul(q->lora_B, q->lora_A);
    EXPECT_TRUE(torch::allclose(
        reloaded->named_parameters()["language_model.layers.0.self_attn.q_proj.weight"], expected,
        1e-6, 1e-6));
    EXPECT_TRUE(torch::equal(
        reloaded->named_parameters()["language_model.layers.0.self_attn.k_proj.weight"],
        model->named_parameters()["language_model.layers.0.self_attn.k_proj.weight"]));
  }
  EXPECT_EQ(std::distance(
                fs::directory_iterator(fs::path(test::kScratchDir) / "model_io" / "export_parent"),
                fs::directory_iterator{}),
            1);  // the last export only: no staging folders left behind
}

TEST(ExportCheckpoint, ShardsAndBfloat16) {
  auto model = make_mini_llava();
  fs::path out = scratch("export_sharded") / "out";
  ExportOptions options;
  options.max_shard_bytes = 4096;  // 45 tensors of 6040 floats in all (24 KB): several shards
  options.to_bfloat16 = true;
  export_checkpoint(*model, ModelConfig{}, out, options);
  EXPECT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  SafetensorsCheckpoint written(out);
  EXPECT_GT(written.file_count(), 1u);
  EXPECT_EQ(written.entry("lm_head.weight").dtype, torch::kBFloat16);
  auto reloaded = make_mini_llava();
  load_weights(*reloaded, out);
  EXPECT_TRUE(torch::equal(
      reloaded->named_parameters()["lm_head.weight"],
      model->named_parameters()["lm_head.weight"].to(torch::kBFloat16).to(torch::kFloat)));
}

}  // namespace
}  // namespace perpo
