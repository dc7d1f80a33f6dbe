// A training checkpoint (checkpoints/step-N) -> a Hugging Face LLaVA folder, the work behind
// `perpo export --checkpoint runs/x/checkpoints/step-N`.
//
// The model is rebuilt from the checkpoint's config.yaml (model.path's base weights, or the tiny
// model's weights stored in the checkpoint), the trained weights (adapters under LoRA) are loaded
// over it, and export_checkpoint writes merged weights + config.json + tokenizer files.
#pragma once

#include <filesystem>
#include <vector>

#include "perpo/model/convert.h"

namespace perpo {

/// Throws perpo::Error (input) naming the folder when `checkpoint_dir` is not a training
/// checkpoint or its base model cannot be found.
ConvertSummary export_training_checkpoint(const std::filesystem::path& checkpoint_dir,
                                          const std::filesystem::path& out_dir,
                                          const ConvertOptions& options = {});

/// What exporting `checkpoint_dir` reads besides the checkpoint itself: the folder, its base
/// model (model.path) and tokenizer (tokenizer.path) as named in its config.yaml. Only that file
/// is read. The export's output may overlap none of them. Throws perpo::Error (input) naming the
/// file when config.yaml is missing or unreadable.
std::vector<std::filesystem::path> training_checkpoint_inputs(
    const std::filesystem::path& checkpoint_dir);

}  // namespace perpo
