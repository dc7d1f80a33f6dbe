// The model a run trains, built from its config: weights, LoRA, freezing, gradient checkpointing,
// device and dtype, plus the tokenizer.
//
//   perpo::TrainModel m = perpo::load_train_model(config);
//   m.model->answer_logps(...);
//
// SEAM: this mirrors perpo::load_model (model/load.h, coordinator); once that lands the body of
// load_train_model becomes a call to it. Fields have the same names as LoadedModel's.
#pragma once

#include <filesystem>
#include <memory>

#include "perpo/config/config.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/tokenizer/tokenizer.h"

namespace perpo {

struct TrainModel {
  ModelConfig config;
  LlavaModel model{nullptr};
  std::shared_ptr<Tokenizer> tokenizer;
  std::filesystem::path dir;  // model.path ("" for the built-in tiny model)
};

/// model.path: a Hugging Face LLaVA folder (strict load); empty: the built-in tiny model
/// (model.tiny sizes, random init seeded from run.seed; tokenizer.path required). Then LoRA per
/// model.lora (the base decoder frozen), freezing per model.freeze_*, gradient checkpointing,
/// run.device and run.dtype (all weights; the optimizer keeps fp32 masters of trained ones).
/// Throws perpo::Error (input) when image.size differs from the model's image size.
TrainModel load_train_model(const Config& config);

}  // namespace perpo
