// Hugging Face Qwen2.5-VL checkpoints in and out of a perpo Qwen2_5VLModel: checkpoint.h's strict
// loader, header shape check and atomic exporter with Qwen2.5-VL's names (hf_names.h).
//
//   perpo::Qwen2_5VLConfig config = perpo::load_qwen2_5_vl_config(dir);  // qwen2_5_vl_config.h
//   perpo::check_qwen2_5_vl_checkpoint_shapes(config, dir);  // headers only, before building
//   perpo::Qwen2_5VLModel model(config);                       // refuses what memory cannot hold
//   perpo::LoadReport report = perpo::load_qwen2_5_vl_weights(*model, dir);  // strict
//   // or the three at once: perpo::Qwen2_5VLModel model = perpo::load_qwen2_5_vl(dir, &report);
//   ...
//   perpo::ExportOptions options;            // checkpoint.h
//   options.layout = "old";                  // the Hub's names; "new": transformers >= 4.52's
//   options.tokenizer_dir = dir;             // tokenizer / processor / chat-template files
//   perpo::export_qwen2_5_vl(*model, "out/", options);
//
// In: config.json with model.safetensors, or model-0000i-of-0000n.safetensors shards named by
// model.safetensors.index.json; keys in the Hub's layout (visual.*, model.* for the decoder,
// lm_head.weight) or transformers >= 4.52 / 5's (model.visual.*, model.language_model.*,
// lm_head.weight), never both. Every parameter must come from the checkpoint with its shape and
// every tensor must land in a parameter; the only keys skipped (counted in LoadReport::skipped)
// are HF buffers (rotary inv_freq, position_ids) and, for a tied model, an lm_head.weight equal to
// embed_tokens. Errors name the tensor, its file and both shapes.
// Out: merged weights (LoRA folded in by canonical_state), config.json as
// qwen2_5_vl_config_json writes it for the same layout, and the tokenizer files of
// tokenizer_file_names() found in options.tokenizer_dir; the folder is built beside out_dir and
// renamed into place. transformers' Qwen2_5_VLForConditionalGeneration.from_pretrained loads it
// (tools/check_qwen_export_in_transformers.py).
#pragma once

#include <cstddef>
#include <filesystem>

#include "perpo/model/checkpoint.h"
#include "perpo/model/qwen2_5_vl.h"
#include "perpo/model/qwen2_5_vl_config.h"
#include "perpo/model/safetensors.h"

namespace perpo {

/// Compares the shape config.json gives every parameter (model_size.h) with `dir`'s tensors, from
/// the safetensors headers alone, before the model is built. Throws perpo::Error (input) naming
/// the tensor, its file and both shapes; also on a mixed or unknown key layout.
void check_qwen2_5_vl_checkpoint_shapes(const Qwen2_5VLConfig& config,
                                        const std::filesystem::path& dir);

/// Loads the weights of the checkpoint folder `dir` into `model`, converting each tensor to its
/// parameter's dtype and device. Throws perpo::Error (input) naming the tensor on a missing,
/// unexpected or mis-shaped tensor. report.layout: "old" (the Hub's) | "new".
LoadReport load_qwen2_5_vl_weights(Qwen2_5VLModelImpl& model, const std::filesystem::path& dir);

/// Same, from tensors already keyed by HF names.
LoadReport load_qwen2_5_vl_weights_from(Qwen2_5VLModelImpl& model,
                                        const SafetensorsCheckpoint& checkpoint);

/// load_qwen2_5_vl_config, check_qwen2_5_vl_checkpoint_shapes, the model (fp32, CPU, train mode)
/// and load_qwen2_5_vl_weights: a Hugging Face folder as a model. `report` receives the load's.
Qwen2_5VLModel load_qwen2_5_vl(const std::filesystem::path& dir, LoadReport* report = nullptr);

/// Writes `model` as a Hugging Face Qwen2.5-VL folder `out_dir` (see the file comment) in
/// options.layout, BF16 when options.to_bfloat16; config.json's torch_dtype follows the weights.
/// An existing `out_dir` is replaced. Returns the tensors written.
std::size_t export_qwen2_5_vl(Qwen2_5VLModelImpl& model, const std::filesystem::path& out_dir,
                              const ExportOptions& options = {});

}  // namespace perpo
