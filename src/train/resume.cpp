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

#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/runtime/runtime.h"

namespace perpo {
namespace {

// Walks Config::visit and records every field as text.
struct FlattenVisitor {
  std::map<std::string, std::string>* out;
  std::string prefix;

  template <typename T>
  static std::string text(const T& value) {
    std::ostringstream s;
    if constexpr (std::is_same_v<T, bool>) {
      s << (value ? "true" : "false");
    } else if constexpr (std::is_same_v<T, std::vector<std::string>> ||
                         std::is_same_v<T, std::vector<double>>) {
      s << "[";
      for (std::size_t i = 0; i < value.size(); ++i) s << (i ? ", " : "") << text(value[i]);
      s << "]";
    } else if constexpr (std::is_same_v<T, double>) {
      char buffer[64];
      auto end = std::to_chars(buffer, buffer + sizeof(buffer), value).ptr;  // shortest exact
      s << std::string(buffer, end);
    } else {
      s << value;
    }
    return s.str();
  }
  template <typename T>
  void field(const char* name, T& value, const char*) {
    (*out)[prefix + name] = text(value);
  }
  void choice(const char* name, std::string& value, std::vector<std::string>, const char*) {
    (*out)[prefix + name] = value;
  }
  template <typename S>
  void section(const char* name, S& value, const char*) {
    FlattenVisitor inner{out, prefix + name + "."};
    value.visit(inner);
  }
};

}  // namespace

std::map<std::string, std::string> flatten_config(const Config& config) {
  std::map<std::string, std::string> out;
  Config copy = config;
  FlattenVisitor visitor{&out, ""};
  copy.visit(visitor);
  return out;
}

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
