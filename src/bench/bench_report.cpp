// perpo bench's report: the text table, JSON lines, the GPU peak table and the build's commit.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <map>

#include "perpo/bench/bench.h"

#ifndef PERPO_GIT_COMMIT
#define PERPO_GIT_COMMIT "unknown"
#endif

namespace perpo {

namespace {

struct GpuPeak {
  const char* name;  // a substring of the CUDA device name; the first match wins
  double bf16;       // dense bf16 tensor-core TFLOP/s (no sparsity)
  double fp32;       // fp32 without TF32 (LibTorch's default for fp32 matmuls)
};

// Vendor data sheets, SXM/PCIe as named.
constexpr GpuPeak kGpuPeaks[] = {
    {"H100 PCIe", 756, 51}, {"H100 NVL", 835, 60}, {"H100", 989, 67},
    {"H200", 989, 67},      {"H800", 989, 67},     {"B200", 2250, 80},
    {"A100", 312, 19.5},    {"A800", 312, 19.5},   {"L40S", 362, 91.6},
};

std::string format_value(double value, const std::string& unit) {
  char text[64];
  if (unit == "FLOP") {
    std::snprintf(text, sizeof(text), "%.3e", value);
  } else if (std::fabs(value) >= 100 || unit == "MiB") {
    std::snprintf(text, sizeof(text), "%.1f", value);
  } else {
    std::snprintf(text, sizeof(text), "%.4g", value);
  }
  return text;
}

/// 8292166656 -> "8,292,166,656".
std::string with_commas(double value) {
  const std::string digits = std::to_string(std::llround(value));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

std::optional<double> known_peak_tflops(const std::string& device_name, const std::string& dtype) {
  for (const GpuPeak& peak : kGpuPeaks) {
    if (device_name.find(peak.name) != std::string::npos)
      return dtype == "bf16" ? peak.bf16 : peak.fp32;
  }
  return std::nullopt;
}

std::string build_commit() { return PERPO_GIT_COMMIT; }

std::string BenchReport::to_text() const {
  std::string out;
  char line[1024];
  std::map<std::string, const BenchFigure*> by_name;
  for (const BenchFigure& figure : figures) by_name[figure.name] = &figure;
  auto cell = [&](const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? std::string("-")
                               : format_value(it->second->value, it->second->unit);
  };
  auto value = [&](const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? 0.0 : it->second->value;
  };
  std::snprintf(
      line, sizeof(line),
      "perpo bench: shape %s, %s, %s, N = %lld answers; commit %s\n  %s\n"
      "  train: P = %lld prompt tokens (%lld image tokens), T = %lld tokens per answer; "
      "sampling: %lld tokens per answer",
      shape.name.c_str(), options.plan ? "plan only" : device_name.c_str(), options.dtype.c_str(),
      static_cast<long long>(shape.answers), commit.c_str(), shape.description.c_str(),
      static_cast<long long>(shape.prompt_tokens), static_cast<long long>(shape.image_tokens),
      static_cast<long long>(shape.answer_tokens), static_cast<long long>(shape.sampled_tokens));
  out += line;
  if (!options.plan) {
    std::snprintf(line, sizeof(line), "; %d iterations after one warm-up", options.iterations);
    out += line;
  }
  const double state_mib = value("train.state_memory_estimate");
  std::snprintf(line, sizeof(line),
                "\n  model: %s parameters, %s trained (vision tower frozen, projector and decoder "
                "trained); weights + gradients + AdamW state about %.1f %s in %s (activations not "
                "counted)\n",
                with_commas(value("model.parameters")).c_str(),
                with_commas(value("model.trained_parameters")).c_str(),
                state_mib >= 1024 ? state_mib / 1024 : state_mib, state_mib >= 1024 ? "GiB" : "MiB",
                options.dtype.c_str());
  out += line;
  if (options.plan) {
    std::snprintf(line, sizeof(line), "\n%-26s %14s\n%-26s %14s\n", "train FLOP per step",
                  cell("train.flops_per_step").c_str(), "sample FLOP per list",
                  cell("sample.flops_per_list").c_str());
    out += line;
    out += "\nFLOPs: matmuls counted from the shapes (include/perpo/bench/bench_shape.h)\n";
    for (const std::string& note : notes) out += note + "\n";
    return out;
  }
  const std::string peak_note = peak_tflops ? format_value(*peak_tflops, "TFLOP/s") + " TFLOP/s"
                                            : "n/a (CPU: pass --peak-tflops)";
  std::snprintf(line, sizeof(line), "\n%-26s %14s %14s %10s\n", "", "perpo", "peer", "ratio");
  out += line;
  struct Row {
    const char* label;
    std::string perpo, peer, ratio;
  };
  const Row rows[] = {
      {"train lists/s", cell("train.lists_per_s"), cell("peer.train.lists_per_s"),
       cell("ratio.train.lists_per_s")},
      {"train tokens/s (P + N T)", cell("train.tokens_per_s"), cell("peer.train.tokens_per_s"), ""},
      {"train peak memory MiB", cell("train.peak_memory"), cell("peer.train.peak_memory"), ""},
      {"train FLOP per step", cell("train.flops_per_step"), "", ""},
      {"train TFLOP/s", cell("train.tflops_per_s"), "", ""},
      {"train MFU %", cell("train.mfu"), "", ""},
      {"sample lists/s", cell("sample.lists_per_s"), cell("peer.sample.lists_per_s"), ""},
      {"sample tokens/s (N G)", cell("sample.tokens_per_s"), cell("peer.sample.tokens_per_s"),
       cell("ratio.sample.tokens_per_s")},
      {"sample peak memory MiB", cell("sample.peak_memory"), cell("peer.sample.peak_memory"), ""},
      {"sample FLOP per list", cell("sample.flops_per_list"), "", ""},
      {"sample TFLOP/s", cell("sample.tflops_per_s"), "", ""},
      {"sample MFU %", cell("sample.mfu"), "", ""},
  };
  for (const Row& row : rows) {
    std::snprintf(line, sizeof(line), "%-26s %14s %14s %10s\n", row.label, row.perpo.c_str(),
                  row.peer.c_str(), row.ratio.c_str());
    out += line;
  }
  out += "\npeak: " + peak_note +
         "; memory: peak resident set of the process during the timed steps on CPU, peak "
         "bytes allocated by tensors on CUDA; FLOPs: matmuls counted from the shapes "
         "(include/perpo/bench/bench_shape.h)\n";
  std::snprintf(line, sizeof(line),
                "load: %.2f core(s) busy with other work at the start (%d busy-loop process(es) "
                "added by --busy-cores); load average %.2f at the start, %.2f at the end\n",
                value("machine.busy_cores_elsewhere"), options.busy_cores,
                value("machine.loadavg_start"), value("machine.loadavg_end"));
  out += line;
  for (const std::string& note : notes) out += note + "\n";
  if (!profile.empty()) {
    out += "\ntraining step profile (--profile; " + std::to_string(options.iterations) +
           " more steps under RecordFunction hooks, per step):\n" + profile;
  }
  if (!sample_profile.empty()) {
    out += "\nsampling profile (--profile; " + std::to_string(options.iterations) +
           " more lists under RecordFunction hooks, per list):\n" + sample_profile;
  }
  return out;
}

std::string BenchReport::to_json_lines() const {
  std::string out;
  for (const BenchFigure& figure : figures) {
    nlohmann::ordered_json line = {{"name", figure.name},      {"value", figure.value},
                                   {"unit", figure.unit},      {"shape", shape.name},
                                   {"device", options.device}, {"dtype", options.dtype},
                                   {"commit", commit}};
    out += line.dump() + "\n";
  }
  return out;
}

}  // namespace perpo
