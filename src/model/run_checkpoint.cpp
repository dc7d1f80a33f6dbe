// Checkpoint folders written atomically (run_checkpoint.h).
#include "perpo/model/run_checkpoint.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <regex>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/signals.h"
#include "perpo/core/strings.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFile = "trainer_state.json";

std::optional<std::int64_t> step_of(const fs::path& dir) {
  static const std::regex pattern("step-([0-9]+)");
  std::smatch match;
  const std::string name = dir.filename().string();
  if (!std::regex_match(name, match, pattern)) return std::nullopt;
  return std::stoll(match[1].str());
}

NamedTensors read_tensors(const fs::path& file) {
  SafetensorsFile reader(file);
  NamedTensors out;
  for (const std::string& name : reader.names()) out.emplace_back(name, reader.tensor(name));
  return out;
}

}  // namespace

bool is_run_checkpoint(const fs::path& dir) {
  return fs::is_directory(dir) && fs::is_regular_file(dir / kStateFile);
}

std::vector<fs::path> list_run_checkpoints(const fs::path& root) {
  std::vector<std::pair<std::int64_t, fs::path>> found;
  if (!fs::is_directory(root)) return {};
  for (const auto& entry : fs::directory_iterator(root)) {
    auto step = step_of(entry.path());
    if (step && is_run_checkpoint(entry.path())) found.emplace_back(*step, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& item : found) out.push_back(item.second);
  return out;
}

std::optional<fs::path> latest_run_checkpoint(const fs::path& root) {
  auto all = list_run_checkpoints(root);
  if (all.empty()) return std::nullopt;
  return all.back();
}

int remove_partial_checkpoints(const fs::path& root) {
  int removed = 0;
  if (!fs::is_directory(root)) return 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (starts_with(entry.path().filename().string(), ".tmp-")) {
      fs::remove_all(entry.path());
      ++removed;
    }
  }
  return removed;
}

fs::path save_run_checkpoint(const fs::path& root, const CheckpointContent& content, int keep,
                             const CheckpointFault& fault) {
  fs::create_directories(root);
  const std::string name = "step-" + std::to_string(content.step);
  const fs::path final_dir = root / name;
  const fs::path temp = root / (".tmp-" + name + "-" + std::to_string(::getpid()));
  auto note = [&](const std::string& what) {
    if (fault) fault(what);
  };
  TempPathGuard guard(temp);  // removed if a signal ends perpo while it is written
  try {
    fs::remove_all(temp);
    fs::create_directories(temp);
    write_safetensors(temp / "weights.safetensors", content.weights);
    fsync_path(temp / "weights.safetensors");
    note("weights.safetensors");
    write_safetensors(temp / "optimizer.safetensors", content.optimizer);
    fsync_path(temp / "optimizer.safetensors");
    note("optimizer.safetensors");
    write_file_atomic(temp / "config.yaml", content.config_yaml);
    note("config.yaml");
    nlohmann::json state = content.state;
    state["step"] = content.step;
    state["format"] = "perpo-train-checkpoint-1";
    write_file_atomic(temp / kStateFile, state.dump(2));
    note(kStateFile);
    fsync_path(temp);
    if (fs::exists(final_dir)) fs::remove_all(final_dir);  // a re-save of the same step
    fs::rename(temp, final_dir);
    guard.release();
    fsync_path(root);
  } catch (const Error& e) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw runtime_error("writing checkpoint ", final_dir.string(), " failed: ", e.message())
        .hint("the previous checkpoints are untouched; free disk space and resume with --resume");
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw runtime_error("writing checkpoint ", final_dir.string(), " failed: ", e.what())
        .hint("the previous checkpoints are untouched; free disk space and resume with --resume");
  }
  auto all = list_run_checkpoints(root);
  for (std::size_t i = 0; i + static_cast<std::size_t>(std::max(keep, 1)) < all.size(); ++i) {
    std::error_code error;
    fs::remove_all(all[i], error);
    if (error)
      PERPO_LOG_WARN("could not remove old checkpoint ", all[i].string(), ": ", error.message());
  }
  return final_dir;
}

CheckpointContent load_run_checkpoint(const fs::path& dir) {
  if (!is_run_checkpoint(dir)) {
    throw input_error(dir.string(), " is not a perpo training checkpoint (no ", kStateFile, ")")
        .hint("pass a folder run.dir/checkpoints/step-N written by perpo train");
  }
  CheckpointContent content;
  try {
    content.state = nlohmann::json::parse(read_file(dir / kStateFile));
    content.step = content.state.at("step").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw input_error(dir.string(), "/", kStateFile,
                      " is not a valid checkpoint state: ", e.what());
  }
  content.config_yaml = read_file(dir / "config.yaml");
  content.weights = read_tensors(dir / "weights.safetensors");
  content.optimizer = read_tensors(dir / "optimizer.safetensors");
  return content;
}

std::size_t load_trained_weights(torch::nn::Module& model, const NamedTensors& weights,
                                 const std::string& source, bool every_trained_parameter) {
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> by_name(weights.begin(), weights.end());
  std::size_t copied = 0;
  for (auto& item : model.named_parameters()) {
    auto it = by_name.find(item.key());
    if (it == by_name.end()) {
      if (every_trained_parameter && item.value().requires_grad()) {
        throw input_error(source, ": the checkpoint has no weights for trained parameter '",
                          item.key(), "'")
            .hint("the checkpoint was written for other trainable parameters (LoRA / freezing)");
      }
      continue;
    }
    PERPO_CHECK_INPUT(it->second.sizes() == item.value().sizes(), source, ": tensor '", item.key(),
                      "' has shape ", it->second.sizes(), ", the model needs ",
                      item.value().sizes());
    item.value().copy_(it->second.to(item.value().options()));
    ++copied;
  }
  PERPO_CHECK_INPUT(copied == by_name.size(), source, ": ", by_name.size() - copied,
                    " trained tensor(s) match no parameter of the model its config.yaml describes");
  return copied;
}

}  // namespace perpo
