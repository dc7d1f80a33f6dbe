// `perpo demo`: the whole PerPO chain on the built-in synthetic tasks with tiny models, on CPU.
//
//   perpo::DemoSuiteOptions options;      // out = runs/demo, seed 1, grounding and OCR
//   options.suite = perpo::DemoSuite::quick();
//   perpo::DemoResult result = perpo::run_demo(options);
//   // result.results["perpo"]["grounding"]["acc@0.5"], result.results["dpo"]["ocr"]["f1"]
//
// One chain per task, each with its own tiny model and plan (a joint stage 1 on both tasks did
// not learn either: docs/demo-study.md), in <out>/<task>/. Stages of a chain, each in its own
// folder, each reused when run again on the same folder (a stage is done when its done.json,
// written last, holds the same settings):
//   data/      synthetic splits per task (sft, pref, val, test: disjoint index ranges of one seed)
//              and the tiny SentencePiece tokenizer trained on the sft texts
//   sft/       stage 1: the tiny model trained from scratch on the sft split (perpo train, sft);
//              sft/model/ is its last checkpoint as a Hugging Face folder
//   lists/     N answers sampled by the stage-1 model for each fresh "pref" prompt, scored by the
//              task's reward, the ground truth added with reward 1 (demo-study.md: the anchor)
//   arms/<a>/  stage 2 from the same stage-1 model, same prompts and steps: sft (more SFT on the
//              pref ground truths), dpo, perpo (on the lists; online re-sampling from the policy
//              every plan.resample_every steps when > 0)
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

/// Sizes and settings of one chain of the demo (one model). full(task) is the demo of
/// docs/demo-study.md, quick(task) the CI test's. The member defaults are the grounding chain's.
struct DemoPlan {
  // The defaults are what stage 1 learns within minutes on 2 cores (docs/demo-study.md):
  // grounding, one shape per image; full("ocr") is the reduced OCR regime that it learns (one
  // word of 16, large font). Measured alternatives whose stage 1 did not begin to use the image:
  // one model on grounding + OCR mixed (3000 x 32 steps, lr 1e-3: val Acc@0.5 5-8, OCR edit
  // distance 0.86-0.92), 1-2 shapes with 4096 prompts (3000 x 32, lr 2e-3: sampled mean IoU
  // 0.09-0.17 over 3 seeds). "max_shapes=K" runs the latter.
  std::vector<std::string> tasks = {"grounding"};  // the tasks this chain's one model learns
  int sft_records = 2048;                          // stage-1 prompts per task
  int pref_records = 2048;                         // fresh stage-2 prompts per task
  int val_records = 500;                           // validation (choose settings here)
  int test_records = 2000;                         // test (report here)
  // Grounding: 1 .. max_shapes shapes per image (perpo data synth allows up to 8, default 5).
  // Grounding-only stage 1, 1500 x 32 steps, 2048 prompts, seed 1 -> test Acc@0.5 73.5 (1 shape),
  // 36.5 (1-2 shapes), 19.0 (1-3 shapes).
  int max_shapes = 1;
  int ocr_max_words = 2;  // OCR: 1 .. ocr_max_words words per line
  // OCR lines: words from a lexicon of this many (0 = all 140), font height as a share of the
  // image side, share of light-on-dark lines (perpo data synth's --lexicon, --min-text-height,
  // --max-text-height, --inverted).
  int ocr_lexicon = 0;
  double ocr_min_text_height = 0.26;
  double ocr_max_text_height = 0.36;
  double ocr_inverted = 0.3;
  int vocab_size = 160;  // upper bound of the tokenizer's pieces (trained on the sft texts)
  std::string eval_split = "test";  // "val" while tuning, "test" for the reported table

  // Stage 1.
  int sft_steps = 1500;
  int sft_batch = 32;
  double sft_lr = 2e-3;  // 1e-3 learned too slowly to use the image within the steps

  // Stage 2 (every arm the same prompts, steps and lists per step).
  std::vector<std::string> arms = {"sft", "dpo", "perpo"};
  int pref_steps = 500;
  int lists_per_step = 8;
  // N sampled answers per list: the paper's grounding N. Chosen on val (docs/demo-study.md):
  // PerPO's Acc@0.5 rose with N (58.6 at N = 8, 59.1 at N = 20, mean of seeds 1-3), DPO's did
  // not (58.1 at 8, 57.5 at 20): best vs worst uses two answers of any list.
  int answers = 20;
  bool ground_truth_in_list = true;
  int resample_every = 25;  // online re-sampling period in steps; 0 = offline lists
  // Sampling temperature of the lists (stage 2), chosen on val like the lrs (docs/demo-study.md):
  // mean Acc@0.5 of seeds 1-3 DPO / PerPO 58.5 / 60.0 at 0.7, 57.5 / 59.1 at 1; 1.5 lost 3-11
  // points (seeds 1, 2).
  double temperature = 0.7;
  // The arms' reference when re-sampling: "start" (the frozen stage-1 model) or "sampler" (each
  // re-sampled list scored by the policy that sampled it; loss.reference: sampler).
  std::string reference = "start";
  double beta = 0.1;
  double gamma = 0.5;
  double warmup_share = 0.05;  // the arms' lr warmup, as a share of pref_steps (25 of 500)
  // Each arm's lr is its best val Acc@0.5 (mean of seeds 1-3) at N = 20 among
  // sft {1.5, 3, 6} e-4, dpo {0.5, 1} e-4, perpo {0.5, 1} e-4 (docs/demo-study.md).
  std::map<std::string, double> arm_lr = {{"sft", 1.5e-4}, {"dpo", 5e-5}, {"perpo", 1e-4}};
  int curve_points = 5;     // evaluations on a validation subset during each arm
  int curve_records = 200;  // records per task of that subset

  int threads = 1;  // LibTorch threads (one: tiny matmuls gain nothing from more); 0 = default

  /// The demo plan of docs/demo-study.md of a task's chain ("grounding" or "ocr"), and the CI
  /// test's.
  static DemoPlan full(const std::string& task = "grounding");
  static DemoPlan quick(const std::string& task = "grounding");
  /// Applies "key=value" (e.g. "pref_steps=200", "arm_lr.dpo=3e-5", "tasks=grounding");
  /// throws perpo::Error (input) naming an unknown key, an unknown arm or a value out of its
  /// range (numbers must be finite). `shown_prefix` is how the user typed what came before the
  /// key ("ocr." for `--set ocr.answers=1`), so that messages name the setting as typed.
  void set(const std::string& assignment, const std::string& shown_prefix = "");
  /// Checks every setting's range (as set() does), the arms' names and learning rates and the
  /// OCR generator's combined rules; throws perpo::Error (input) naming the setting.
  void check() const;
  /// One line per setting, "key: value" (done.json / report notes).
  std::vector<std::pair<std::string, std::string>> describe() const;
};

/// The demo's chains: one model per task, each with its own plan.
struct DemoSuite {
  std::vector<std::string> tasks = {"grounding", "ocr"};  // the chains that run, in this order
  std::map<std::string, DemoPlan> plans = {{"grounding", DemoPlan::full("grounding")},
                                           {"ocr", DemoPlan::full("ocr")}};
  static DemoSuite full();
  static DemoSuite quick();
  /// "key=value" sets every chain's plan, "<task>.key=value" (e.g. "ocr.sft_lr=1e-3") one chain's,
  /// "tasks=grounding,ocr" which chains run; throws perpo::Error (input) like DemoPlan::set.
  void set(const std::string& assignment);
};

/// One chain of the demo (one model): its folder and plan.
struct DemoOptions {
  std::filesystem::path out = "runs/demo/grounding";
  std::uint64_t seed = 1;  // data, model init and sampling all follow it
  bool force = false;      // write into a folder perpo did not make
  DemoPlan plan = DemoPlan::full();
};

/// The whole demo: every chain of `suite` in <out>/<task>/, with the same seed.
struct DemoSuiteOptions {
  std::filesystem::path out = "runs/demo";
  std::uint64_t seed = 1;
  bool force = false;
  DemoSuite suite = DemoSuite::full();
};

using DemoTable = std::map<std::string, std::map<std::string, std::map<std::string, double>>>;

struct DemoResult {
  DemoTable results;  // arm ("start" = stage 1) -> task -> metric -> value
  // In the order they ran; run_demo names them "<task>/<stage>" (e.g. "ocr/arm-dpo").
  std::vector<std::pair<std::string, double>> stage_seconds;
  std::filesystem::path summary_json;
  std::filesystem::path report_md;
  std::vector<std::filesystem::path> plots;
};

/// The demo's model and data settings (tiny LLaVA of configs/demo.yaml, plain template, 48 px),
/// before each stage fills in data, steps and losses.
Config demo_base_config(const DemoOptions& options);

/// Runs (or resumes) every chain; prints progress and, at the end, the table; writes
/// summary.json, report.md and plots/ in options.out. Throws perpo::Error; every chain's settings
/// are checked before anything is written.
DemoResult run_demo(const DemoSuiteOptions& options);

/// Checks a chain's settings against the data generators; throws perpo::Error (input).
void check_demo_chain(const DemoOptions& options);

/// Runs (or resumes) the stages of one chain in options.out, without the report (run_demo writes
/// it). Throws perpo::Error.
DemoResult run_demo_chain(const DemoOptions& options);

/// The results table as text: one row per arm and task, value +- SE and n.
std::string format_demo_table(const DemoTable& results, const std::vector<std::string>& arms);

}  // namespace perpo
