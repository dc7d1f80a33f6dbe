// The stages of `perpo demo` (pipeline.h), one function each, and what they share. Each stage
// returns its seconds (those of the earlier run when it was reused).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perpo/config/config.h"
#include "perpo/data/records.h"
#include "perpo/demo/pipeline.h"
#include "perpo/demo/report.h"

namespace perpo {

/// A stage's done.json: written last with the stage's settings; the stage is reused when the
/// file holds the same settings.
class StageMark {
 public:
  StageMark(std::filesystem::path dir, nlohmann::json settings);
  bool done() const;
  nlohmann::json saved() const;
  void finish(double seconds, nlohmann::json extra = nlohmann::json::object()) const;

 private:
  std::filesystem::path dir_;
  nlohmann::json settings_;
};

struct DemoContext {
  const DemoOptions& options;
  Config base;  // demo_base_config(options)
};

double seconds_since(std::chrono::steady_clock::time_point start);
/// "[demo] stage    text" on stderr: the demo's progress lines.
void stage_line(const std::string& stage, const std::string& text);

/// <out>/data/<task>-<split>/records.jsonl
std::filesystem::path split_records(const std::filesystem::path& out, const std::string& task,
                                    const std::string& split);
/// <out>/data/<split>-mixed.jsonl: every task's records of a split (training input).
std::filesystem::path mixed_records(const std::filesystem::path& out, const std::string& split);
std::vector<DatasetRecord> read_records(const std::filesystem::path& file);
/// <out>/eval/<model>/<task>.eval.yaml: the config that `perpo eval --config` reproduces the
/// table row of `model` ("start" or an arm) on `task` with.
std::filesystem::path eval_config_file(const std::filesystem::path& out, const std::string& model,
                                       const std::string& task);

double run_data_stage(const DemoOptions& options);
double run_sft_stage(DemoContext& context);
double run_sample_stage(DemoContext& context);
double run_arm_stage(DemoContext& context, const std::string& arm);
/// Evaluates the stage-1 model ("start") and every arm; fills `results`.
double run_eval_stage(DemoContext& context, DemoTable& results);
/// Adds a finished chain's curves (from its files), sampled rewards and notes to `report`.
void add_chain_to_report(DemoReport& report, const DemoOptions& chain);
/// The suite's summary.json, report.md and plots in options.out, from `report` and `result`
/// (which get the files' paths); prints the table.
void write_demo_outputs(const DemoSuiteOptions& options, DemoReport& report, DemoResult& result);

}  // namespace perpo
