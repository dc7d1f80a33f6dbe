// The model a configuration asks for, ready to use: architecture, weights, tokenizer, adapters,
// trainable parts, device. Every command that runs a model (sample, logps, train, eval) starts
// here.
//
//   perpo::Config config = perpo::load_config("configs/demo/base.yaml");
//   perpo::LoadedModel loaded = perpo::load_model(config);
//   perpo::ChatTemplate chat(*loaded.tokenizer, config.tokenizer);
//   loaded.model->encode_prefix(...);
//
// model.path set: a Hugging Face LLaVA folder (config.json, *.safetensors, tokenizer.model),
// loaded strictly (checkpoint.h). model.path empty: the built-in tiny model, its sizes from
// model.tiny, its weights drawn at random from run.seed (normal(0, 0.02) as transformers'
// initializer_range; norms 1, biases 0); it needs tokenizer.path (for example the tokenizer that
// `perpo data synth` trains).
#pragma once

#include <filesystem>
#include <memory>

#include "perpo/config/config.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/tokenizer/tokenizer.h"

namespace perpo {

struct LoadedModel {
  ModelConfig config;                          // architecture (config.json or model.tiny)
  std::shared_ptr<VisionLanguageModel> model;  // on run.device; see LoadOptions for the dtype
  std::shared_ptr<TextTokenizer> tokenizer;    // ids checked against the model (vocab, image token)
  std::filesystem::path dir;                   // checkpoint folder; empty for the tiny model
  std::filesystem::path tokenizer_path;        // the SentencePiece model file used
};

struct LoadOptions {
  /// Cast every parameter to run.dtype (sampling, evaluation). The trainer passes false and
  /// keeps fp32 master weights for the parts it trains.
  bool cast_to_run_dtype = true;
  /// Apply model.lora when enabled (adapters on, the rest of the language model frozen).
  bool apply_lora = true;
};

/// Builds the model of `config` (see the file comment), then: LoRA per model.lora (when enabled
/// and options.apply_lora), requires_grad per model.freeze_* (the language model's base weights
/// stay frozen under LoRA), gradient checkpointing per model.gradient_checkpointing, moved to
/// run.device (and cast to run.dtype per options). Seeds every RNG with run.seed first, so the
/// tiny model's weights are a function of the seed.
/// Throws perpo::Error (input) naming the file or key when the checkpoint, the tokenizer or the
/// image size does not fit: the tokenizer's vocabulary larger than the model's, its image token
/// id different from config.json's image_token_index, image.size different from the vision
/// tower's image size.
LoadedModel load_model(const Config& config, const LoadOptions& options = {});

/// transformers-style initialisation of a freshly built model (the tiny model): weights of rank
/// >= 2 and CLIP's class embedding ~ normal(0, std), other weights (norms) 1, biases 0.
void init_weights(torch::nn::Module& model, double std = 0.02);

}  // namespace perpo
