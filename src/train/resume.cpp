// Config comparison for --resume, and RNG states for checkpoints (resume.h).
#include "perpo/train/resume.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/torch.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <sstream>
#include <type_traits>

#include "perpo/config/config_io.h"
#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/runtime/runtime.h"

namespace perpo {
bool may_differ_on_resume(const std::string& key) {
  static const std::vector<std::string> keys = {"train.max_steps",
                                                "train.epochs",
                                                "train.log_every",
                                                "train.checkpoint_every",
                                                "train.keep_checkpoints",
                                                "train.eval_every",
                                                "train.max_nonfinite_steps",
                                                "run.threads",
                                                "run.log_level",
                                                "run.tensorboard",
                                                "run.dir",
                                                "data.eval"};
  if (std::find(keys.begin(), keys.end(), key) != keys.end()) return true;
  return starts_with(key, "eval.") || starts_with(key, "distributed.");
}

std::vector<std::string> resume_config_differences(const Config& saved, const Config& now) {
  auto a = flatten_config(saved), b = flatten_config(now);
  std::vector<std::string> out;
  for (const auto& [key, value] : a) {
    if (may_differ_on_resume(key)) continue;
    auto it = b.find(key);
    const std::string other = it == b.end() ? "(absent)" : it->second;
    if (value != other) out.push_back(key + ": " + value + " in the checkpoint, " + other + " now");
  }
  return out;
}

RngStates capture_rng_states(bool cuda) {
  RngStates states;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    states.tensors.emplace_back("rng.torch_cpu", gen.get_state());
  }
  if (cuda) {
    auto gen = at::globalContext().defaultGenerator(c10::DeviceType::CUDA);
    std::lock_guard<std::mutex> lock(gen.mutex());
    states.tensors.emplace_back("rng.torch_cuda", gen.get_state());
  }
  std::ostringstream host;
  host << global_rng();
  states.host = host.str();
  return states;
}

void restore_rng_states(const NamedTensors& tensors, const std::string& host) {
  for (const auto& [name, tensor] : tensors) {
    if (name == "rng.torch_cpu") {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(tensor.clone());
    } else if (name == "rng.torch_cuda") {
      auto gen = at::globalContext().defaultGenerator(c10::DeviceType::CUDA);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(tensor.clone());
    }
  }
  if (!host.empty()) {
    std::istringstream in(host);
    in >> global_rng();
    PERPO_CHECK(!in.fail(), "the checkpoint's host RNG state is unreadable");
  }
}

}  // namespace perpo
