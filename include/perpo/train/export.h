// A training checkpoint (checkpoints/step-N) -> a Hugging Face LLaVA folder, the work behind
// `perpo export --checkpoint runs/x/checkpoints/step-N`.
//
// The model is rebuilt from the checkpoint's config.yaml (model.path's base weights, or the tiny
// model's weights stored in the checkpoint), the trained weights (adapters under LoRA) are loaded
// over it, and export_checkpoint writes merged weights + config.json + tokenizer files.
#pragma once

#include <filesystem>

#include "perpo/model/convert.h"

namespace perpo {

/// Throws perpo::Error (input) naming the folder when `checkpoint_dir` is not a training
/// checkpoint or its base model cannot be found.
ConvertSummary export_training_checkpoint(const std::filesystem::path& checkpoint_dir,
                                          const std::filesystem::path& out_dir,
                                          const ConvertOptions& options = {});

}  // namespace perpo
