// Hugging Face LLaVA checkpoints in and out of a perpo model, and the family-independent loader
// and exporter under them (load_hf_weights, check_hf_checkpoint_shapes, export_hf_folder), which
// qwen_checkpoint.h uses with Qwen2.5-VL's names.
//
//   perpo::ModelConfig config = perpo::load_model_config(dir);   // model_config.h
//   perpo::LlavaModel model(config);                             // canonical parameter names
//   perpo::LoadReport report = perpo::load_weights(*model, dir);  // strict
//   ...
//   perpo::export_checkpoint(*model, config, "out/", {.tokenizer_dir = dir});
//
// Loading is strict: every parameter of the model (adapters lora_A / lora_B aside) must come from
// the checkpoint with the same shape, and every tensor of the checkpoint must land in a parameter.
// The only tensors skipped are counted in the report: HF buffers (rotary inv_freq, position_ids),
// parts of the CLIP tower LLaVA never uses when the model leaves them out (post_layernorm, the
// encoder layers after vision_feature_layer), and an lm_head.weight equal to embed_tokens when the
// model ties them.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "perpo/model/hf_names.h"
#include "perpo/model/model_config.h"
#include "perpo/model/model_size.h"
#include "perpo/model/safetensors.h"

namespace perpo {

struct LoadReport {
  std::string layout;                // "old" | "new": the checkpoint's key layout
  int loaded = 0;                    // parameters set
  std::int64_t loaded_elements = 0;  // their total size
  std::vector<std::string> skipped;  // checkpoint keys deliberately not loaded (see above)
  std::size_t files = 0;             // safetensors files read
};

/// Loads the weights of the checkpoint folder `dir` into `model` (names: model_config.h),
/// converting each tensor to its parameter's dtype and device. Throws perpo::Error (input) naming
/// the tensor on a missing, unexpected or mis-shaped tensor (with both shapes). When `config` is
/// given, its key_layout is set to the layout found.
/// Compares the shapes config.json gives every parameter with the checkpoint's tensors, from the
/// safetensors headers alone, before the model is built: a config.json that claims a far larger
/// model than its weights fails here, naming the tensor and both shapes, instead of allocating
/// the model first. Throws perpo::Error (input).
void check_checkpoint_shapes(const ModelConfig& config, const std::filesystem::path& dir);

LoadReport load_weights(torch::nn::Module& model, const std::filesystem::path& dir,
                        ModelConfig* config = nullptr);

/// Same, from tensors already keyed by HF names (tests, in-memory conversion).
LoadReport load_weights_from(torch::nn::Module& model, const SafetensorsCheckpoint& checkpoint,
                             ModelConfig* config = nullptr);

/// The strict load behind load_weights_from, for any family: `checkpoint`'s keys in `family`'s
/// names (hf_names.h) onto `model`'s canonical parameters, with the same checks, skips and errors
/// (a tied head: lm_head.weight absent, or equal to embed_tokens and skipped).
LoadReport load_hf_weights(torch::nn::Module& model, const SafetensorsCheckpoint& checkpoint,
                           HfFamily family);

/// The shape check behind check_checkpoint_shapes, for any family: `parameters` (canonical names
/// and shapes as the config makes them) against `dir`'s tensors in `family`'s names, from the
/// headers alone. Tensors on neither side are left to the strict load.
void check_hf_checkpoint_shapes(const std::vector<ParameterShape>& parameters,
                                const std::filesystem::path& dir, HfFamily family);

/// The model's weights under canonical names, for export: LoRA layers contribute their merged
/// weight (W + scale B A), adapter tensors are left out. Tensors are detached (not copied when no
/// merge is needed).
NamedTensors canonical_state(torch::nn::Module& model);

struct ExportOptions {
  std::string layout = "new";           // HF key layout: "new" (transformers >= 4.52) | "old"
  std::filesystem::path tokenizer_dir;  // copy tokenizer / processor files from here, if set
  // A SentencePiece model to write as tokenizer.model whatever its own name (the tokenizer.path
  // a run was trained with); wins over a tokenizer.model in tokenizer_dir.
  std::filesystem::path tokenizer_model;
  std::uint64_t max_shard_bytes = 5'000'000'000;  // larger exports are sharded (index.json)
  bool to_bfloat16 = false;  // store weights as BF16 (else the parameters' dtypes)
};

/// Writes `model` as a Hugging Face LLaVA checkpoint folder `out_dir`: safetensors (merged LoRA,
/// HF names) + config.json (+ tokenizer files). The folder is built next to `out_dir` and renamed
/// into place, so `out_dir` is either complete or absent; an existing `out_dir` is replaced.
void export_checkpoint(torch::nn::Module& model, const ModelConfig& config,
                       const std::filesystem::path& out_dir, const ExportOptions& options = {});

/// The export behind export_checkpoint, for any family: canonical_state(model) under `family`'s
/// names in options.layout (BF16 when options.to_bfloat16), `config_json` as config.json and the
/// tokenizer files, built beside `out_dir` and renamed into place. Returns the tensors written.
std::size_t export_hf_folder(torch::nn::Module& model, HfFamily family,
                             const std::string& config_json, const std::filesystem::path& out_dir,
                             const ExportOptions& options);

/// The tokenizer and processor files export copies when present.
const std::vector<std::string>& tokenizer_file_names();

}  // namespace perpo
