// `perpo demo`: the whole PerPO chain on the built-in synthetic tasks with tiny models, on CPU.
//
//   perpo::DemoSuiteOptions options;      // out = runs/demo, seed 1, grounding and OCR
//   options.suite = perpo::DemoSuite::quick();
//   perpo::DemoResult result = perpo::run_demo(options);
//   // result.results["perpo"]["grounding"]["acc@0.5"], result.results["dpo"]["ocr"]["f1"]
//
// One chain per task, each with its own tiny model and config (a joint stage 1 on both tasks did
// not learn either: docs/demo-study.md), in <out>/<task>/. A chain's config is an ordinary perpo
// config, configs/demo/base.yaml <- <task>.yaml (<- quick.yaml), whose demo: section is the plan;
// the chain writes it to <out>/<task>/chain.yaml. Stages of a chain, each in its own folder, each
// run by ordinary configs written from the chain's, each reused when run again on the same folder
// (a stage is done when its done.json, written last, holds the same settings):
//   data/      synthetic splits per task (sft, pref, val, test: disjoint index ranges of one seed)
//              and the tiny SentencePiece tokenizer trained on the sft texts
//   sft/       stage 1: the tiny model trained from scratch on the sft split (perpo train, sft);
//              sft/model/ is its last checkpoint as a Hugging Face folder
//   lists/     N answers sampled by the stage-1 model for each fresh "pref" prompt, scored by the
//              task's reward, the ground truth added with reward 1 (demo-study.md: the anchor)
//   arms/<a>/  stage 2 from the same stage-1 model, same prompts and steps: sft (more SFT on the
//              pref ground truths), dpo, perpo (on the lists; online re-sampling from the policy
//              every demo.resample_every steps when > 0)
//   eval/      greedy answers of the start and of every arm on the eval split, and their metrics
// and in <out>: summary.json, report.md, plots/   every chain's table (arm -> task -> metric)
// and plots.
//
// The output folder follows the output-path rules (core/output_paths.h): new, empty or perpo's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "perpo/config/config.h"

namespace perpo {

/// The plan of one chain (one model): the demo: section of the chain's config (config.h).
using DemoPlan = DemoConfig;

/// A chain's built-in config: configs/demo/base.yaml <- configs/demo/<task>.yaml (<- quick.yaml
/// when `quick`), as compiled into perpo. Throws perpo::Error (input) for a task other than
/// grounding or ocr.
Config demo_chain_config(const std::string& task, bool quick = false);

/// The demo's chains: one model per task, each with its own config.
struct DemoSuite {
  std::vector<std::string> tasks = {"grounding", "ocr"};  // the chains that run, in this order
  std::map<std::string, Config> chains = {{"grounding", demo_chain_config("grounding")},
                                          {"ocr", demo_chain_config("ocr")}};
  static DemoSuite full();
  static DemoSuite quick();
  /// "key=value" sets a config key of every chain ("demo.pref_steps=200", "run.threads=2"; a
  /// demo key may leave out "demo.": "pref_steps=200", "arms=dpo,perpo"), "<task>.key=value"
  /// (e.g. "ocr.sft_lr=1e-3") one chain's, "tasks=grounding,ocr" which chains run. Throws
  /// perpo::Error (input) naming the setting as typed for an unknown key or a value of the wrong
  /// type; ranges and combinations are checked with the whole chain (run_demo, before it writes).
  void set(const std::string& assignment);
};

/// One chain of the demo (one model): its folder and config.
struct DemoOptions {
  std::filesystem::path out = "runs/demo/grounding";
  std::uint64_t seed = 1;                          // data, model init and sampling all follow it
  bool force = false;                              // write into a folder perpo did not make
  Config config = demo_chain_config("grounding");  // the chain's config; demo: is its plan
  const DemoPlan& plan() const { return config.demo; }
};

/// The whole demo: every chain of `suite` in <out>/<task>/, with the same seed.
struct DemoSuiteOptions {
  std::filesystem::path out = "runs/demo";
  std::uint64_t seed = 1;
  bool force = false;
  DemoSuite suite = DemoSuite::full();
  /// Stages run at once, each in its own perpo process (demo_jobs); 0 = as many as the cores
  /// hold at run.threads threads each. The results do not depend on it: every stage is the same
  /// computation with its own seed, whichever process runs it and whatever runs beside it.
  int jobs = 0;
};

/// The stages that run at once for `options`: options.jobs, or for 0 the cores this process may
/// use divided by the chains' largest run.threads (0 = every core), at least 1 and at most 8.
int demo_jobs(const DemoSuiteOptions& options);

/// The demo: settings of a chain as "key: value" lines (done.json, report notes), keys without
/// "demo.".
std::vector<std::pair<std::string, std::string>> demo_settings(const Config& chain);

using DemoTable = std::map<std::string, std::map<std::string, std::map<std::string, double>>>;

struct DemoResult {
  DemoTable results;  // arm ("start" = stage 1) -> task -> metric -> value
  // In the order they ran; run_demo names them "<task>/<stage>" (e.g. "ocr/arm-dpo").
  std::vector<std::pair<std::string, double>> stage_seconds;
  std::filesystem::path summary_json;
  std::filesystem::path report_md;
  std::vector<std::filesystem::path> plots;
};

/// The config every stage of a chain starts from: the chain's config without its plan (demo:
/// at its defaults, so stage configs are those of plain commands), with the chain's seed and
/// sampling temperature, before each stage fills in data, steps and losses.
Config demo_base_config(const DemoOptions& options);

/// Runs (or resumes) every chain; prints progress and, at the end, the table; writes
/// summary.json, report.md and plots/ in options.out. Throws perpo::Error; every chain's settings
/// are checked before anything is written. With demo_jobs(options) > 1 the data stages run here
/// and the model stages (sft, sample, each arm, eval) in child perpo processes
/// (`perpo demo --run-stage`), as many at once as the jobs, in the order of their dependencies
/// (sft -> sample -> arms -> eval within a chain), the stage with the longest remaining chain of
/// work first; the table is then read from the stages' files as a rerun would.
DemoResult run_demo(const DemoSuiteOptions& options);

/// One model stage of a chain run by `perpo demo` (above) in a child process: `stage` is
/// "<task>/<sft | sample | arm-<arm> | eval>", the chain's config is <out>/<task>/chain.yaml as
/// the parent wrote it. The parent holds the output folder's lock; `parent_pid` must be this
/// process's parent, and the stage stops (saving a checkpoint, as for SIGTERM) when the parent
/// dies (its parent pid is polled every 0.2 s). Throws perpo::Error (input) for an unknown stage or
/// a missing chain.yaml.
void run_demo_stage(const std::filesystem::path& out, std::uint64_t seed, const std::string& stage,
                    long parent_pid);

/// Validates a chain's config and checks its plan against the data generators; throws
/// perpo::Error (input).
void check_demo_chain(const DemoOptions& options);

/// Runs (or resumes) the stages of one chain in options.out, without the report (run_demo writes
/// it). Throws perpo::Error.
DemoResult run_demo_chain(const DemoOptions& options);

/// The results table as text: one row per arm and task, value +- SE and n.
std::string format_demo_table(const DemoTable& results, const std::vector<std::string>& arms);

}  // namespace perpo
