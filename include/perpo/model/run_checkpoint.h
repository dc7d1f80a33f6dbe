// Training checkpoints: <run.dir>/checkpoints/step-N/, complete or absent.
//
//   step-N/
//     weights.safetensors    trained parameters by canonical name (adapters only under LoRA);
//                            every parameter when the model is the built-in tiny one (its base
//                            weights exist nowhere else)
//     optimizer.safetensors  AdamW moments, fp32 masters, step count; torch RNG states
//     config.yaml            the run's resolved config (resume checks it; export rebuilds from it)
//     trainer_state.json     step, data position, non-finite streak, host RNG state, counters;
//                            written last: a folder without it is not a checkpoint
//
// Writing: everything goes into checkpoints/.tmp-step-N-<pid>/, each file fsynced, then the folder
// is renamed to step-N and checkpoints/ fsynced; older ones beyond keep_checkpoints are removed
// afterwards. A crash, SIGKILL or full disk at any point leaves the previous checkpoints as they
// were (a leftover .tmp-* folder is removed by the next run).
//
// Data-parallel seam: only the writer rank (rank 0) calls save_run_checkpoint; every rank loads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <torch/nn/module.h>

#include "perpo/model/safetensors.h"

namespace perpo {

struct CheckpointContent {
  std::int64_t step = 0;
  NamedTensors weights;    // see above
  NamedTensors optimizer;  // AdamW::state() + "rng.*" tensors
  std::string config_yaml;
  nlohmann::json state = nlohmann::json::object();  // trainer_state.json ("step" is set from step)
};

/// Called between files with the name of what was just written (tests inject failures here).
using CheckpointFault = std::function<void(const std::string& written)>;

/// Writes <root>/step-<step>/ as described above and returns its path; then keeps the newest
/// `keep` checkpoints. On any failure the temporary folder is removed and the error rethrown
/// (perpo::Error, runtime) with the path.
std::filesystem::path save_run_checkpoint(const std::filesystem::path& root,
                                          const CheckpointContent& content, int keep,
                                          const CheckpointFault& fault = {});

/// Complete checkpoints under `root` (step-N folders with trainer_state.json), oldest first.
std::vector<std::filesystem::path> list_run_checkpoints(const std::filesystem::path& root);
/// The newest complete checkpoint, if any.
std::optional<std::filesystem::path> latest_run_checkpoint(const std::filesystem::path& root);
/// Removes leftover .tmp-* folders of interrupted writes; returns how many.
int remove_partial_checkpoints(const std::filesystem::path& root);

/// True when `dir` holds a perpo training checkpoint (trainer_state.json).
bool is_run_checkpoint(const std::filesystem::path& dir);

/// The one way trained weights go from a checkpoint into a model (train --resume, eval, export):
/// every tensor of `weights` must name a parameter of `model` with the same shape (copied in the
/// parameter's dtype and device), and, with `every_trained_parameter`, every parameter that
/// requires a gradient must be among them. Throws perpo::Error (input) naming `source`, the tensor
/// and both shapes. Returns how many tensors were copied.
std::size_t load_trained_weights(torch::nn::Module& model, const NamedTensors& weights,
                                 const std::string& source, bool every_trained_parameter);

/// Reads a checkpoint folder back. Throws perpo::Error (input) naming the folder when it is not
/// a complete checkpoint.
CheckpointContent load_run_checkpoint(const std::filesystem::path& dir);

}  // namespace perpo
