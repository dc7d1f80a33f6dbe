// `perpo demo`: plan, base config, stage bookkeeping, the data stage and the run (pipeline.h).
// The model stages live in pipeline_stages.cpp, decoding in pipeline_decode.cpp.
#include "perpo/demo/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/output_paths.h"
#include "perpo/core/strings.h"
#include "perpo/data/jsonl.h"
#include "perpo/data/synth_ocr.h"
#include "perpo/demo/demo_data.h"
#include "perpo/demo/pipeline_stages.h"
#include "perpo/demo/report.h"

namespace perpo {
namespace fs = std::filesystem;

DemoPlan DemoPlan::full(const std::string& task) {
  PERPO_CHECK_INPUT(task == "grounding" || task == "ocr", "demo task '", task,
                    "' is not grounding or ocr");
  DemoPlan plan;
  if (task == "grounding") return plan;
  // OCR in the regime the tiny model learns (docs/demo-study.md, "OCR in a reduced regime"): one
  // word per image from 16 of the 140 words, in a large font, dark on light, letters as tokenizer
  // pieces. The 140-word task did not learn in 4000 x 32 steps (val edit distance 0.895), nor with
  // lr 1e-3 to 3e-3; with 16 words lr 5e-4 learns, 1e-3 less (seed 3, 4000 steps: val exact match
  // 90.4 vs 44.0). 2500 steps: a start that is good but not saturated (test edit distance 0.168,
  // mean of seeds 1-3; 0.064 after 4000 steps, with 72% of the sampled lists all equal).
  plan.tasks = {"ocr"};
  plan.ocr_max_words = 1;
  plan.ocr_lexicon = 16;
  plan.ocr_min_text_height = 0.45;
  plan.ocr_max_text_height = 0.55;
  plan.ocr_inverted = 0;
  plan.vocab_size = 64;
  plan.sft_lr = 5e-4;
  plan.sft_steps = 2500;
  // N = 5, the paper's OCR N, and the arms' lrs: each arm's best mean val edit distance of seeds
  // 1-3 (docs/demo-study.md): dpo and perpo {2.5, 5, 10} e-5 at N = 5 (N = 20 was no better and
  // costs more), sft {0.75, 1.5, 3} e-4.
  plan.answers = 5;
  plan.arm_lr = {{"sft", 1.5e-4}, {"dpo", 2.5e-5}, {"perpo", 2.5e-5}};
  plan.temperature = 1.0;  // the temperature these were chosen at
  return plan;
}

DemoPlan DemoPlan::quick(const std::string& task) {
  // The full plan's task and stage 1 (the smallest stage 1 that clearly beats trivial answers;
  // one model on both tasks with 1500 x 16 steps had not yet started to look at the image: test
  // Acc@0.5 3.5, mean IoU 0.107); small stage 2 and evaluation.
  DemoPlan plan = full(task);
  plan.pref_records = 64;
  plan.val_records = 64;
  plan.test_records = 200;
  plan.pref_steps = 16;
  plan.lists_per_step = 4;
  plan.answers = 4;
  plan.resample_every = 8;
  plan.curve_points = 2;
  plan.curve_records = 32;
  return plan;
}

DemoSuite DemoSuite::full() { return DemoSuite{}; }

DemoSuite DemoSuite::quick() {
  DemoSuite suite;
  for (auto& [task, plan] : suite.plans) plan = DemoPlan::quick(task);
  return suite;
}

namespace {

constexpr int kNoLimit = std::numeric_limits<int>::max();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// The stage-2 arms the demo knows (DemoPlan::arms, arm_lr.<arm>).
const std::vector<std::string> kDemoArms = {"sft", "dpo", "perpo"};

bool is_demo_arm(const std::string& arm) {
  return std::find(kDemoArms.begin(), kDemoArms.end(), arm) != kDemoArms.end();
}

// Every numeric setting and its range, checked when it is set and again before a chain runs, so
// that a bad value is refused before the first stage writes anything.
struct IntSetting {
  const char* key;
  int DemoPlan::*field;
  int min;
  int max;  // kNoLimit: no upper bound
};

struct RealSetting {
  const char* key;
  double DemoPlan::*field;
  double min;
  double max;         // kInfinity: no upper bound (the value must still be finite)
  bool min_excluded;  // the value must be > min
};

const std::vector<IntSetting>& int_settings() {
  static const std::vector<IntSetting> settings = {
      {"sft_records", &DemoPlan::sft_records, 1, kNoLimit},
      {"pref_records", &DemoPlan::pref_records, 1, kNoLimit},
      {"val_records", &DemoPlan::val_records, 1, kNoLimit},
      {"test_records", &DemoPlan::test_records, 1, kNoLimit},
      {"max_shapes", &DemoPlan::max_shapes, 1, 8},
      {"ocr_max_words", &DemoPlan::ocr_max_words, 1, 8},
      {"ocr_lexicon", &DemoPlan::ocr_lexicon, 0, static_cast<int>(ocr_words().size())},
      {"vocab_size", &DemoPlan::vocab_size, 64, 32000},
      {"sft_steps", &DemoPlan::sft_steps, 1, kNoLimit},
      {"sft_batch", &DemoPlan::sft_batch, 1, kNoLimit},
      {"pref_steps", &DemoPlan::pref_steps, 1, kNoLimit},
      {"lists_per_step", &DemoPlan::lists_per_step, 1, kNoLimit},
      {"answers", &DemoPlan::answers, 2, kNoLimit},  // a list compares two answers or more
      {"resample_every", &DemoPlan::resample_every, 0, kNoLimit},
      {"curve_points", &DemoPlan::curve_points, 0, kNoLimit},
      {"curve_records", &DemoPlan::curve_records, 1, kNoLimit},
      {"threads", &DemoPlan::threads, 0, kNoLimit}};
  return settings;
}

const std::vector<RealSetting>& real_settings() {
  static const std::vector<RealSetting> settings = {
      {"sft_lr", &DemoPlan::sft_lr, 0, kInfinity, true},
      {"temperature", &DemoPlan::temperature, 0, kInfinity, false},  // 0 = greedy
      {"beta", &DemoPlan::beta, 0, kInfinity, true},
      {"gamma", &DemoPlan::gamma, 0, kInfinity, false},
      {"warmup_share", &DemoPlan::warmup_share, 0, 1, false},
      {"ocr_min_text_height", &DemoPlan::ocr_min_text_height, 0.1, 0.9, false},
      {"ocr_max_text_height", &DemoPlan::ocr_max_text_height, 0.1, 0.9, false},
      {"ocr_inverted", &DemoPlan::ocr_inverted, 0, 1, false}};
  return settings;
}

std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// "" when `value` is in the setting's range, else what it must be ("must be in [1, 8]").
std::string range_problem(const IntSetting& setting, int value) {
  if (value >= setting.min && value <= setting.max) return "";
  if (setting.max == kNoLimit) return "must be a whole number >= " + std::to_string(setting.min);
  return "must be in [" + std::to_string(setting.min) + ", " + std::to_string(setting.max) + "]";
}

std::string range_problem(const RealSetting& setting, double value) {
  const bool above_min = setting.min_excluded ? value > setting.min : value >= setting.min;
  if (std::isfinite(value) && above_min && value <= setting.max) return "";
  if (setting.max == kInfinity) {
    return std::string("must be a finite number ") + (setting.min_excluded ? "> " : ">= ") +
           number_text(setting.min);
  }
  return "must be in [" + number_text(setting.min) + ", " + number_text(setting.max) + "]";
}

// An arm's learning rate: finite and > 0 (as sft_lr).
const RealSetting kArmLr = {"arm_lr", nullptr, 0, kInfinity, true};

double parse_number(const std::string& name, const std::string& text) {
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw input_error("demo setting '", name, "': '", text, "' is not a number");
}

int parse_int(const std::string& name, const std::string& text) {
  const double value = parse_number(name, text);
  PERPO_CHECK_INPUT(std::isfinite(value) && value == std::floor(value) &&
                        std::fabs(value) <= static_cast<double>(kNoLimit),
                    "demo setting '", name, "': '", text, "' is not a whole number");
  return static_cast<int>(value);
}

// The items of a list setting ("tasks", "arms"): known names, none twice.
std::vector<std::string> parse_list(const std::string& name, const std::string& key,
                                    const std::string& text) {
  std::vector<std::string> items = split(text, ',');
  PERPO_CHECK_INPUT(!text.empty() && !items.empty(), "demo setting '", name, "' is empty");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string& item = items[i];
    if (key == "tasks") {
      PERPO_CHECK_INPUT(item == "grounding" || item == "ocr", "demo task '", item,
                        "' is not grounding or ocr");
    } else {
      PERPO_CHECK_INPUT(is_demo_arm(item), "demo arm '", item, "' is not sft, dpo or perpo");
    }
    PERPO_CHECK_INPUT(std::find(items.begin(), items.begin() + i, item) == items.begin() + i,
                      "demo setting '", name, "': '", item, "' is named twice");
  }
  return items;
}

}  // namespace

void DemoPlan::set(const std::string& assignment, const std::string& shown_prefix) {
  const auto eq = assignment.find('=');
  PERPO_CHECK_INPUT(eq != std::string::npos, "demo setting '", shown_prefix, assignment,
                    "' is not key=value (e.g. pref_steps=200)");
  const std::string key = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  const std::string name = shown_prefix + key;  // as the user typed it, e.g. "ocr.answers"
  for (const IntSetting& setting : int_settings()) {
    if (key != setting.key) continue;
    const int number = parse_int(name, value);
    const std::string problem = range_problem(setting, number);
    PERPO_CHECK_INPUT(problem.empty(), "demo setting '", name, "' ", problem, ", got ", value);
    this->*setting.field = number;
    return;
  }
  for (const RealSetting& setting : real_settings()) {
    if (key != setting.key) continue;
    const double number = parse_number(name, value);
    const std::string problem = range_problem(setting, number);
    PERPO_CHECK_INPUT(problem.empty(), "demo setting '", name, "' ", problem, ", got ", value);
    this->*setting.field = number;
    return;
  }
  if (starts_with(key, "arm_lr.")) {
    const std::string arm = key.substr(7);
    PERPO_CHECK_INPUT(is_demo_arm(arm), "demo setting '", name, "': unknown arm '", arm,
                      "' (the arms are ", join(kDemoArms, ", "), ")");
    const double lr = parse_number(name, value);
    const std::string problem = range_problem(kArmLr, lr);
    PERPO_CHECK_INPUT(problem.empty(), "demo setting '", name, "' ", problem, ", got ", value);
    arm_lr[arm] = lr;
  } else if (key == "ground_truth_in_list") {
    PERPO_CHECK_INPUT(value == "true" || value == "false", "demo setting '", name,
                      "' must be true or false");
    ground_truth_in_list = value == "true";
  } else if (key == "reference") {
    PERPO_CHECK_INPUT(value == "start" || value == "sampler", "demo setting ", name,
                      " must be start or sampler, got '", value, "'");
    reference = value;
  } else if (key == "eval_split") {
    PERPO_CHECK_INPUT(value == "val" || value == "test", "demo setting ", name,
                      " must be val or test, got '", value, "'");
    eval_split = value;
  } else if (key == "tasks" || key == "arms") {
    (key == "tasks" ? tasks : arms) = parse_list(name, key, value);
  } else {
    throw input_error("unknown demo setting '", name, "'")
        .hint(
            "settings: sft_steps, pref_steps, answers, arm_lr.<arm>, beta, ... (perpo demo "
            "--help)");
  }
}

void DemoPlan::check() const {
  for (const IntSetting& setting : int_settings()) {
    const int value = this->*setting.field;
    const std::string problem = range_problem(setting, value);
    PERPO_CHECK_INPUT(problem.empty(), "demo setting '", setting.key, "' ", problem, ", got ",
                      value);
  }
  for (const RealSetting& setting : real_settings()) {
    const double value = this->*setting.field;
    const std::string problem = range_problem(setting, value);
    PERPO_CHECK_INPUT(problem.empty(), "demo setting '", setting.key, "' ", problem, ", got ",
                      value);
  }
  // The data generators' combined rules (validate_synth_options), named as demo settings.
  const int words = static_cast<int>(ocr_words().size());
  PERPO_CHECK_INPUT(ocr_lexicon != 1, "demo setting ocr_lexicon: the lexicon must be 0 ",
                    "(all words) or in [2, ", words, "], got ", ocr_lexicon);
  PERPO_CHECK_INPUT(ocr_min_text_height <= ocr_max_text_height,
                    "demo settings ocr_min_text_height and ocr_max_text_height must satisfy ",
                    "0.1 <= min <= max <= 0.9, got ", ocr_min_text_height, " and ",
                    ocr_max_text_height);
  parse_list("tasks", "tasks", join(tasks, ","));
  parse_list("arms", "arms", join(arms, ","));
  for (const auto& arm : arms) {
    PERPO_CHECK_INPUT(arm_lr.count(arm), "demo: no learning rate for arm '", arm,
                      "' (setting arm_lr.", arm, ")");
  }
  for (const auto& [arm, lr] : arm_lr) {
    PERPO_CHECK_INPUT(is_demo_arm(arm), "demo setting 'arm_lr.", arm, "': unknown arm '", arm,
                      "' (the arms are ", join(kDemoArms, ", "), ")");
    const std::string problem = range_problem(kArmLr, lr);
    PERPO_CHECK_INPUT(problem.empty(), "demo setting 'arm_lr.", arm, "' ", problem, ", got ", lr);
  }
  PERPO_CHECK_INPUT(eval_split == "val" || eval_split == "test",
                    "demo setting eval_split must be val or test, got '", eval_split, "'");
  PERPO_CHECK_INPUT(reference == "start" || reference == "sampler",
                    "demo setting reference must be start or sampler, got '", reference, "'");
}

void DemoSuite::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string key = assignment.substr(0, eq);
  if (key == "tasks" && eq != std::string::npos) {
    const std::string value = assignment.substr(eq + 1);
    PERPO_CHECK_INPUT(!value.empty(), "demo setting 'tasks' is empty");
    const std::vector<std::string> items = split(value, ',');
    for (std::size_t i = 0; i < items.size(); ++i) {
      PERPO_CHECK_INPUT(plans.count(items[i]), "demo task '", items[i],
                        "' is not grounding or ocr");
      PERPO_CHECK_INPUT(std::find(items.begin(), items.begin() + i, items[i]) == items.begin() + i,
                        "demo task '", items[i], "' is named twice");
    }
    tasks = items;
    return;
  }
  const auto dot = key.find('.');
  if (dot != std::string::npos && plans.count(key.substr(0, dot))) {
    const std::string rest = assignment.substr(dot + 1);
    PERPO_CHECK_INPUT(!starts_with(rest, "tasks="), "demo setting '", key,
                      "': a chain's task is its name (set tasks=... to choose the chains)");
    plans.at(key.substr(0, dot)).set(rest, key.substr(0, dot + 1));
    return;
  }
  for (auto& [task, plan] : plans) plan.set(assignment);
}

std::vector<std::pair<std::string, std::string>> DemoPlan::describe() const {
  std::vector<std::pair<std::string, std::string>> out = {
      {"tasks", join(tasks, ",")},
      {"sft_records", std::to_string(sft_records)},
      {"pref_records", std::to_string(pref_records)},
      {"val_records", std::to_string(val_records)},
      {"test_records", std::to_string(test_records)},
      {"max_shapes", std::to_string(max_shapes)},
      {"ocr_max_words", std::to_string(ocr_max_words)},
      {"ocr_lexicon", std::to_string(ocr_lexicon)},
      {"ocr_min_text_height", number_text(ocr_min_text_height)},
      {"ocr_max_text_height", number_text(ocr_max_text_height)},
      {"ocr_inverted", number_text(ocr_inverted)},
      {"vocab_size", std::to_string(vocab_size)},
      {"eval_split", eval_split},
      {"sft_steps", std::to_string(sft_steps)},
      {"sft_batch", std::to_string(sft_batch)},
      {"sft_lr", number_text(sft_lr)},
      {"arms", join(arms, ",")},
      {"pref_steps", std::to_string(pref_steps)},
      {"lists_per_step", std::to_string(lists_per_step)},
      {"answers", std::to_string(answers)},
      {"ground_truth_in_list", ground_truth_in_list ? "true" : "false"},
      {"resample_every", std::to_string(resample_every)},
      {"temperature", number_text(temperature)},
      {"reference", reference},
      {"beta", number_text(beta)},
      {"gamma", number_text(gamma)},
      {"warmup_share", number_text(warmup_share)}};
  for (const auto& [arm, lr] : arm_lr) out.emplace_back("arm_lr." + arm, number_text(lr));
  return out;
}

Config demo_base_config(const DemoOptions& options) {
  Config config;
  auto& tiny = config.model.tiny;  // configs/demo.yaml's sizes (~330k parameters)
  tiny.image_size = 48;
  tiny.patch_size = 8;  // 36 image tokens
  tiny.vision_hidden = 64;
  tiny.vision_layers = 3;  // LLaVA reads the second-to-last layer: 2 are used
  tiny.vision_heads = 4;
  tiny.hidden = 64;
  tiny.layers = 3;
  tiny.heads = 4;
  tiny.kv_heads = 2;
  tiny.intermediate = 176;
  config.model.freeze_vision = false;
  config.image.size = 48;
  config.tokenizer.chat_template = "plain";
  config.sampling.max_new_tokens = 24;
  config.sampling.temperature = options.plan.temperature;
  config.eval.max_new_tokens = 24;
  config.data.shuffle = true;
  config.run.seed = options.seed;
  config.run.threads = options.plan.threads;
  config.run.log_level = "warn";
  return config;
}

// ---- stage bookkeeping -------------------------------------------------------------------------

StageMark::StageMark(fs::path dir, nlohmann::json settings)
    : dir_(std::move(dir)), settings_(std::move(settings)) {}

namespace {

// Settings compared by value; a "config" string (dump_config's YAML) by the values it sets, so
// that a reworded comment of a config key does not make a finished stage run again.
bool same_settings(const nlohmann::json& saved, const nlohmann::json& now) {
  if (!saved.is_object() || !now.is_object()) return saved == now;
  if (saved.size() != now.size()) return false;
  for (const auto& [key, value] : now.items()) {
    if (!saved.contains(key)) return false;
    const nlohmann::json& before = saved.at(key);
    if (key == "config" && value.is_string() && before.is_string()) {
      Config a, b;
      merge_yaml(a, before.get<std::string>(), "done.json");
      merge_yaml(b, value.get<std::string>(), "done.json");
      if (!configs_equal(a, b)) return false;
    } else if (!same_settings(before, value)) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool StageMark::done() const {
  const fs::path file = dir_ / "done.json";
  if (!fs::exists(file)) return false;
  try {
    const auto saved = nlohmann::json::parse(read_file(file));
    return same_settings(saved.value("settings", nlohmann::json()), settings_);
  } catch (const std::exception&) {
    return false;  // unreadable, or a config of another perpo version: the stage runs again
  }
}

nlohmann::json StageMark::saved() const {
  return nlohmann::json::parse(read_file(dir_ / "done.json"));
}

void StageMark::finish(double seconds, nlohmann::json extra) const {
  extra["settings"] = settings_;
  extra["seconds"] = seconds;
  write_file_atomic(dir_ / "done.json", extra.dump(2) + "\n");
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void stage_line(const std::string& stage, const std::string& text) {
  std::fprintf(stderr, "[demo] %-8s %s\n", stage.c_str(), text.c_str());
  std::fflush(stderr);
}

// ---- data ----------------------------------------------------------------------------------

fs::path split_records(const fs::path& out, const std::string& task, const std::string& split) {
  return out / "data" / (task + "-" + split) / "records.jsonl";
}

fs::path mixed_records(const fs::path& out, const std::string& split) {
  return out / "data" / (split + "-mixed.jsonl");
}

std::vector<DatasetRecord> read_records(const fs::path& file) { return read_dataset(file, {}); }

namespace {

// All tasks' records of one split in one file (image paths relative to data/), for training.
void write_mixed(const fs::path& out, const std::vector<std::string>& tasks,
                 const std::string& split) {
  std::string text;
  for (const auto& task : tasks) {
    for (DatasetRecord record : read_records(split_records(out, task, split))) {
      record.image = task + "-" + split + "/" + record.image;
      text += to_json(record).dump() + "\n";
    }
  }
  write_file_atomic(mixed_records(out, split), text);
}

}  // namespace

namespace {

// The data stage's plan from the demo's settings; throws perpo::Error (input) when the
// generators would refuse them.
DemoDataPlan demo_data_plan(const DemoOptions& options) {
  const DemoPlan& plan = options.plan;
  DemoDataPlan data_plan;  // demo_data.h: splits, reuse, tokenizer
  data_plan.tasks = plan.tasks;
  data_plan.splits = {{"sft", plan.sft_records},
                      {"pref", plan.pref_records},
                      {"val", plan.val_records},
                      {"test", plan.test_records}};
  data_plan.seed = options.seed;
  SynthOptions& synth = data_plan.synth;
  synth.image_size = 48;
  synth.max_shapes = plan.max_shapes;
  synth.max_words = plan.ocr_max_words;
  synth.lexicon = plan.ocr_lexicon;
  synth.min_text_height = plan.ocr_min_text_height;
  synth.max_text_height = plan.ocr_max_text_height;
  synth.inverted = plan.ocr_inverted;
  data_plan.tokenizer.vocab_size = plan.vocab_size;
  for (const auto& task : plan.tasks) {
    SynthOptions check = synth;
    check.task = task;
    validate_synth_options(check);
  }
  return data_plan;
}

}  // namespace

double run_data_stage(const DemoOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const DemoPlan& plan = options.plan;
  const DemoData data = prepare_demo_data(options.out / "data", demo_data_plan(options));
  int reused = 0;
  for (const auto& set : data.sets) reused += set.reused ? 1 : 0;
  write_mixed(options.out, plan.tasks, "sft");
  write_mixed(options.out, plan.tasks, "pref");
  stage_line("data", std::to_string(data.sets.size()) + " splits (" + std::to_string(reused) +
                         " reused), tokenizer " + data.tokenizer.string());
  return seconds_since(start);
}

// ---- the run -------------------------------------------------------------------------------

void check_demo_chain(const DemoOptions& options) {
  options.plan.check();
  demo_data_plan(options);
}

DemoResult run_demo_chain(const DemoOptions& options) {
  check_demo_chain(options);  // the generators' options are checked before anything is written
  OutputPolicy policy{{}, options.force};
  policy.kind = OutputPolicy::kOutputKindDemo;
  OutputLock lock = prepare_output_dir(options.out, policy);
  DemoResult result;
  DemoContext context{options, demo_base_config(options)};
  result.stage_seconds.emplace_back("data", run_data_stage(options));
  result.stage_seconds.emplace_back("sft", run_sft_stage(context));
  result.stage_seconds.emplace_back("sample", run_sample_stage(context));
  for (const auto& arm : options.plan.arms) {
    result.stage_seconds.emplace_back("arm-" + arm, run_arm_stage(context, arm));
  }
  result.stage_seconds.emplace_back("eval", run_eval_stage(context, result.results));
  return result;
}

DemoResult run_demo(const DemoSuiteOptions& options) {
  const DemoSuite& suite = options.suite;
  PERPO_CHECK_INPUT(!suite.tasks.empty(), "the demo has no task to run");
  std::vector<DemoOptions> chains;
  for (const auto& task : suite.tasks) {
    chains.push_back({options.out / task, options.seed, options.force, suite.plans.at(task)});
    try {
      check_demo_chain(chains.back());  // every chain's settings before anything is written
    } catch (Error& error) {
      error.context("the " + task + " chain: ");
      throw;
    }
  }
  OutputPolicy policy{{}, options.force};
  policy.kind = OutputPolicy::kOutputKindDemo;  // one demo per folder at a time
  OutputLock lock = prepare_output_dir(options.out, policy);
  const auto start = std::chrono::steady_clock::now();
  stage_line("demo", "output " + options.out.string() + ", seed " + std::to_string(options.seed) +
                         ", one model per task: " + join(suite.tasks, ", "));
  DemoResult result;
  DemoReport report;
  for (std::size_t i = 0; i < chains.size(); ++i) {
    const std::string& task = suite.tasks[i];
    stage_line("demo", task + " (" + std::to_string(i + 1) + " of " +
                           std::to_string(chains.size()) + "): " + chains[i].out.string());
    DemoResult part = run_demo_chain(chains[i]);
    for (auto& [arm, tasks] : part.results) {
      for (auto& [name, metrics] : tasks) result.results[arm][name] = metrics;
    }
    for (const auto& [stage, seconds] : part.stage_seconds) {
      result.stage_seconds.emplace_back(task + "/" + stage, seconds);
    }
    add_chain_to_report(report, chains[i]);
  }
  stage_line("demo", "done in " + number_text(seconds_since(start)) + " s");
  write_demo_outputs(options, report, result);
  return result;
}

std::string format_demo_table(const DemoTable& results, const std::vector<std::string>& arms) {
  std::ostringstream out;
  char line[320];
  std::snprintf(line, sizeof line, "%-7s %-10s %-27s %-27s %-27s %6s\n", "arm", "task", "metric 1",
                "metric 2", "metric 3", "n");
  out << line;
  std::vector<std::string> tasks;  // every task of any arm, one block of rows each
  for (const auto& [arm, by_task] : results) {
    for (const auto& [task, metrics] : by_task) {
      if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) tasks.push_back(task);
    }
  }
  for (const auto& task : tasks) {
    const std::vector<std::string> names =
        task == "grounding" ? std::vector<std::string>{"acc@0.5", "acc@0.75", "mean_iou"}
                            : std::vector<std::string>{"edit_distance", "f1", "exact_match"};
    for (const auto& arm : arms) {
      auto found = results.find(arm);
      if (found == results.end() || !found->second.count(task)) continue;
      const auto& metrics = found->second.at(task);
      std::string cells[3];
      for (int i = 0; i < 3; ++i) {
        auto value = metrics.find(names[i]);
        auto se = metrics.find(names[i] + "_se");
        if (value == metrics.end()) continue;
        char cell[64];
        std::snprintf(cell, sizeof cell, "%s %.3f+-%.3f", names[i].c_str(), value->second,
                      se == metrics.end() ? 0.0 : se->second);
        cells[i] = cell;
      }
      auto n = metrics.find("n");
      std::snprintf(line, sizeof line, "%-7s %-10s %-27s %-27s %-27s %6.0f\n", arm.c_str(),
                    task.c_str(), cells[0].c_str(), cells[1].c_str(), cells[2].c_str(),
                    n == metrics.end() ? 0.0 : n->second);
      out << line;
    }
  }
  return out.str();
}

}  // namespace perpo
