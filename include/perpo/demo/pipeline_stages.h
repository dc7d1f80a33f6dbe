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
  // The stages ran in other processes (run_demo with jobs > 1): each stage is read back from its
  // done.json quietly, and one that is not done is an error instead of running here.
  bool collect = false;
};

/// The saved seconds of a finished stage (printing its stage line `line`, e.g. "reused <folder>",
/// unless collecting), or a negative number when the stage must run; throws perpo::Error when
/// collecting and the stage is not done.
double finished_stage(const DemoContext& context, const StageMark& mark, const std::string& stage,
                      const std::string& line);

double seconds_since(std::chrono::steady_clock::time_point start);
/// "[demo] stage    text" on stderr: the demo's progress lines; "[demo] stage    task: text" once
/// set_stage_task has named the chain (stages of several chains run at once).
void stage_line(const std::string& stage, const std::string& text);
/// The chain that this process's stage lines name from now on ("" = none).
void set_stage_task(const std::string& task);

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
/// A model stage of the demo as run_demo schedules it over child processes: "<task>/<stage>",
/// the stages it waits for, its estimated seconds (from the plan's sizes, calibrated on the full
/// demo on one core; only their ratios matter) and its rank: its cost plus the longest chain of
/// costs that waits for it. A free process takes the ready stage of the highest rank.
struct DemoStageNode {
  std::string task;
  std::string stage;               // sft, sample, arm-<arm>, eval
  std::vector<std::size_t> after;  // indices of the stages that must finish first
  double cost = 0;
  double rank = 0;
};
/// Every chain's sft -> sample -> arms -> eval (the eval waits for every arm of its chain).
std::vector<DemoStageNode> demo_stage_graph(const std::vector<DemoOptions>& chains);
/// Runs demo_stage_graph(chains) with `jobs` child processes (`perpo demo --run-stage`) at a
/// time; prints a line when a stage starts and ends and, every minute, what runs. A stage that
/// fails, or a signal, stops the others (SIGTERM: each saves a checkpoint) and throws
/// perpo::Error once they have ended; finished stages are kept for the next run.
void run_stages_in_processes(const DemoSuiteOptions& options,
                             const std::vector<DemoOptions>& chains, int jobs);
/// Adds a finished chain's curves (from its files), sampled rewards and notes to `report`.
void add_chain_to_report(DemoReport& report, const DemoOptions& chain);
/// The suite's summary.json, report.md and plots in options.out, from `report` and `result`
/// (which get the files' paths); prints the table.
void write_demo_outputs(const DemoSuiteOptions& options, DemoReport& report, DemoResult& result);

}  // namespace perpo
