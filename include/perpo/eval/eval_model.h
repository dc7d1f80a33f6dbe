// The model `perpo eval --checkpoint C` evaluates:
//   C empty                          load_model(config) (model.path, or the tiny model)
//   C a Hugging Face LLaVA folder    model.path = C
//   C a perpo training checkpoint    (checkpoints/step-N, model/run_checkpoint.h) the model its
//                                    config.yaml describes (its model, tokenizer and image
//                                    sections replace the given config's), with the trained
//                                    weights loaded over it
#pragma once

#include <filesystem>

#include "perpo/config/config.h"
#include "perpo/model/load.h"

namespace perpo {

/// See the file comment. `config` is updated to what was loaded. Throws perpo::Error (input)
/// naming the folder when it is neither kind, or a tensor's shape does not fit.
LoadedModel load_eval_model(Config& config, const std::filesystem::path& checkpoint);

}  // namespace perpo
