// metrics.jsonl, TensorBoard scalars, progress note (metrics.h).
#include "perpo/train/metrics.h"

#include <ATen/DeviceAccelerator.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"

namespace perpo {
namespace fs = std::filesystem;

StepSums StepSums::from(const double* v) {
  return {v[0], v[1],  v[2],  v[3],  v[4],  v[5],  v[6],  v[7], v[8],
          v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16]};
}

std::vector<double> StepSums::values() const {
  return {loss,
          objective,
          nll,
          pairs,
          pairs_right,
          margin,
          lists_without_signal,
          lists,
          rewards,
          reward_std,
          reward_lists,
          answers,
          tokens,
          clipped_low,
          clipped_high,
          kl,
          lists_dropped};
}

void StepSums::finish(StepMetrics& m) const {
  auto mean = [](double sum, double count) { return count > 0 ? sum / count : 0.0; };
  m.lists = static_cast<std::int64_t>(lists);
  m.lists_without_signal = static_cast<std::int64_t>(lists_without_signal);
  m.lists_dropped = static_cast<std::int64_t>(lists_dropped);
  const double trained = lists - lists_dropped;  // the lists the loss is a mean over
  m.loss = mean(loss, trained);
  m.objective = mean(objective, trained);
  m.nll = mean(nll, trained);
  m.pair_accuracy = mean(pairs_right, pairs);
  m.mean_margin = mean(margin, pairs);
  m.has_rewards = reward_lists > 0;
  m.mean_reward = mean(rewards, reward_lists);
  m.reward_std = mean(reward_std, reward_lists);
  m.answer_tokens = mean(tokens, answers);
  m.clip_low = mean(clipped_low, tokens);
  m.clip_high = mean(clipped_high, tokens);
  m.kl = mean(kl, tokens);
}

MetricsLog::MetricsLog(const fs::path& run_dir, bool tensorboard, std::int64_t resume_after_step)
    : path_(run_dir / "metrics.jsonl") {
  fs::create_directories(run_dir);
  if (fs::exists(path_)) {  // keep the lines up to resume_after_step (none on a fresh run)
    std::istringstream in(read_file(path_));
    std::string kept, line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (json.is_object() && json.value("step", std::int64_t{0}) > resume_after_step) continue;
      kept += line + "\n";
    }
    write_file_atomic(path_, kept);
  }
  out_.open(path_, std::ios::app);
  PERPO_CHECK(out_.good(), "cannot open ", path_.string(), " for writing");
  if (tensorboard) tensorboard_ = std::make_unique<TensorBoardWriter>(run_dir / "tensorboard");
}

void MetricsLog::append(const std::string& line) {
  out_ << line << '\n';
  out_.flush();
  PERPO_CHECK(out_.good(), "writing ", path_.string(), " failed (disk full?)");
}

void MetricsLog::write(const StepMetrics& m) {
  nlohmann::json line = {{"step", m.step},
                         {"loss", m.loss},
                         {"objective", m.objective},
                         {"lr", m.lr},
                         {"grad_norm", m.grad_norm},
                         {"pair_accuracy", m.pair_accuracy},
                         {"mean_margin", m.mean_margin},
                         {"lists_per_s", m.lists_per_s},
                         {"tokens_per_s", m.tokens_per_s},
                         {"peak_memory_mb", m.peak_memory_mb},
                         {"lists", m.lists},
                         {"lists_without_signal", m.lists_without_signal}};
  if (m.nll != 0) line["nll"] = m.nll;
  if (m.comm_s >= 0) line["comm_s"] = m.comm_s;
  if (m.comm_hidden_s >= 0) line["comm_hidden_s"] = m.comm_hidden_s;
  if (m.comm_grad_s >= 0) line["comm_grad_s"] = m.comm_grad_s;
  if (m.has_rewards) {
    line["mean_reward"] = m.mean_reward;
    line["reward_std"] = m.reward_std;
  }
  if (m.grpo) {
    line["clip_low"] = m.clip_low;
    line["clip_high"] = m.clip_high;
    line["kl"] = m.kl;
    line["lists_dropped"] = m.lists_dropped;
    line["answer_tokens"] = m.answer_tokens;
  }
  if (m.skipped) line["skipped"] = "non-finite loss or gradient";
  // Non-finite numbers are not JSON: write them as null (the "skipped" field says why).
  for (auto it = line.begin(); it != line.end(); ++it) {
    if (it->is_number_float() && !std::isfinite(it->get<double>())) *it = nullptr;
  }
  append(line.dump());
  if (tensorboard_) {
    for (const char* key :
         {"loss", "objective", "lr", "grad_norm", "pair_accuracy", "mean_margin", "lists_per_s",
          "tokens_per_s", "peak_memory_mb", "comm_s", "comm_hidden_s", "comm_grad_s", "mean_reward",
          "reward_std", "clip_low", "clip_high", "kl", "lists_dropped", "answer_tokens"}) {
      if (line.contains(key) && line[key].is_number()) {
        tensorboard_->add_scalar(std::string("train/") + key, m.step,
                                 static_cast<float>(line[key].get<double>()));
      }
    }
    tensorboard_->flush();
  }
}

void MetricsLog::write_extra(std::int64_t step, const std::map<std::string, double>& values) {
  nlohmann::json line = {{"step", step}};
  for (const auto& [key, value] : values) line[key] = value;
  append(line.dump());
  if (tensorboard_) {
    for (const auto& [key, value] : values) {
      tensorboard_->add_scalar(key, step, static_cast<float>(value));
    }
    tensorboard_->flush();
  }
}

double peak_memory_mb(const c10::Device& device) {
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : at::accelerator::getDeviceIndex();
    const auto stats = at::accelerator::getDeviceStats(index);
    const auto aggregate = static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<double>(stats.allocated_bytes[aggregate].peak) / (1024.0 * 1024.0);
  }
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

std::string progress_note(const StepMetrics& m) {
  char text[160];
  std::snprintf(text, sizeof(text), "loss %.4f  acc %.2f  %.2f lists/s%s", m.loss, m.pair_accuracy,
                m.lists_per_s, m.skipped ? "  (skipped: non-finite)" : "");
  return text;
}

}  // namespace perpo
