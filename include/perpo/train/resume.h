// What a checkpoint needs beyond weights and optimizer, and whether a run may resume from it.
//
//   auto diffs = perpo::resume_config_differences(saved_config, config);
//   // {"model.lora.r: 128 in the checkpoint, 64 now", ...}: a resume is refused when non-empty
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perpo/config/config.h"
#include "perpo/config/config_io.h"  // flatten_config
#include "perpo/model/safetensors.h"

namespace perpo {

/// Keys that may change between a run and its resumption: how long it runs (train.max_steps,
/// train.epochs), how often it logs / saves / evaluates, threads, log level, TensorBoard,
/// evaluation settings and run.dir. Every other key decides the result and must be equal.
bool may_differ_on_resume(const std::string& key);

/// "key: <saved> in the checkpoint, <now> now" for every key that differs and may not.
std::vector<std::string> resume_config_differences(const Config& saved, const Config& now);

/// Random number generator states: torch's CPU (and CUDA, when used) generators as uint8
/// tensors "rng.torch_cpu" / "rng.torch_cuda", perpo's host engine as text in `host`.
struct RngStates {
  NamedTensors tensors;
  std::string host;
};
RngStates capture_rng_states(bool cuda);
void restore_rng_states(const NamedTensors& tensors, const std::string& host);

}  // namespace perpo
