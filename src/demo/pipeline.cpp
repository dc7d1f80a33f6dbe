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
#include <thread>

#include <sched.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/output_paths.h"
#include "perpo/core/signals.h"
#include "perpo/core/strings.h"
#include "perpo/data/jsonl.h"
#include "perpo/demo/demo_data.h"
#include "perpo/demo/pipeline_stages.h"
#include "perpo/demo/report.h"
#include "perpo/runtime/runtime.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

// configs/demo/*.yaml as compiled in (CMakeLists.txt): name -> text.
const std::map<std::string, std::string>& builtin_demo_configs() {
  static const std::map<std::string, std::string> files = {
#include "demo_configs.inc"
  };
  return files;
}

void merge_builtin(Config& config, const std::string& name) {
  merge_yaml(config, builtin_demo_configs().at(name), "configs/demo/" + name + ".yaml");
}

}  // namespace

Config demo_chain_config(const std::string& task, bool quick) {
  PERPO_CHECK_INPUT(task == "grounding" || task == "ocr", "demo task '", task,
                    "' is not grounding or ocr");
  Config config;
  merge_builtin(config, "base");
  merge_builtin(config, task);
  if (quick) merge_builtin(config, "quick");
  validate(config);
  return config;
}

DemoSuite DemoSuite::full() { return DemoSuite{}; }

DemoSuite DemoSuite::quick() {
  DemoSuite suite;
  for (auto& [task, config] : suite.chains) config = demo_chain_config(task, /*quick=*/true);
  return suite;
}

namespace {

// `--set <shown><typed>=<value>` on one chain's config: a config key, or a demo key without its
// "demo."; a list key also takes "a,b" for [a, b]. Errors name the setting as typed.
void set_chain(Config& config, const std::string& typed, const std::string& value,
               const std::string& shown) {
  PERPO_CHECK_INPUT(shown.empty() || (typed != "tasks" && typed != "demo.tasks"), "demo setting '",
                    shown, typed,
                    "': a chain's task is its name (set tasks=... to choose the chains)");
  const std::vector<std::string> keys = config_keys();
  auto known = [&](const std::string& k) {
    return std::find(keys.begin(), keys.end(), k) != keys.end();
  };
  const std::string key = !known(typed) && known("demo." + typed) ? "demo." + typed : typed;
  std::string text = value;
  if ((key == "demo.arms" || key == "demo.tasks") && !starts_with(text, "[")) {
    text = "[" + text + "]";
  }
  try {
    apply_override(config, key + "=" + text);  // values are validated with the whole chain
  } catch (Error& error) {
    error.context("--set " + shown + typed + "=" + value + ": ");
    throw;
  }
}

}  // namespace

void DemoSuite::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  PERPO_CHECK_INPUT(eq != std::string::npos, "demo setting '", assignment,
                    "' is not key=value (e.g. pref_steps=200)");
  const std::string key = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  if (key == "tasks") {
    PERPO_CHECK_INPUT(!value.empty(), "demo setting 'tasks' is empty");
    const std::vector<std::string> items = split(value, ',');
    for (std::size_t i = 0; i < items.size(); ++i) {
      PERPO_CHECK_INPUT(chains.count(items[i]), "demo task '", items[i],
                        "' is not grounding or ocr");
      PERPO_CHECK_INPUT(std::find(items.begin(), items.begin() + i, items[i]) == items.begin() + i,
                        "demo task '", items[i], "' is named twice");
    }
    tasks = items;
    return;
  }
  const auto dot = key.find('.');
  if (dot != std::string::npos && chains.count(key.substr(0, dot))) {
    set_chain(chains.at(key.substr(0, dot)), key.substr(dot + 1), value, key.substr(0, dot + 1));
    return;
  }
  for (auto& [task, config] : chains) set_chain(config, key, value, "");
}

std::vector<std::pair<std::string, std::string>> demo_settings(const Config& chain) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : flatten_config(chain)) {
    if (starts_with(key, "demo.")) out.emplace_back(key.substr(5), value);
  }
  return out;
}

Config demo_base_config(const DemoOptions& options) {
  Config config = options.config;
  config.demo = DemoConfig{};  // the plan is the chain's; the stages' configs are plain ones
  config.sampling.temperature = options.plan().temperature;
  config.run.seed = options.seed;
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

namespace {
std::string stage_task;  // set_stage_task
}  // namespace

void set_stage_task(const std::string& task) { stage_task = task; }

void stage_line(const std::string& stage, const std::string& text) {
  // One write per line, so that the lines of stages running at once do not interleave.
  const std::string line = "[demo] " + stage +
                           std::string(stage.size() < 8 ? 8 - stage.size() : 0, ' ') + " " +
                           (stage_task.empty() ? "" : stage_task + ": ") + text + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

double finished_stage(const DemoContext& context, const StageMark& mark, const std::string& stage,
                      const std::string& line) {
  if (!mark.done()) {
    PERPO_CHECK(!context.collect, "the ", stage, " stage of ", context.options.out.string(),
                " did not finish");
    return -1;
  }
  if (!context.collect) stage_line(stage, line);
  return mark.saved().value("seconds", 0.0);
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
  const DemoPlan& plan = options.plan();
  DemoDataPlan data_plan;  // demo_data.h: splits, reuse, tokenizer
  data_plan.tasks = plan.tasks;
  data_plan.splits = {{"sft", plan.sft_records},
                      {"pref", plan.pref_records},
                      {"val", plan.val_records},
                      {"test", plan.test_records}};
  data_plan.seed = options.seed;
  SynthOptions& synth = data_plan.synth;
  synth.image_size = options.config.image.size;  // the tiny model's input side
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
  const DemoPlan& plan = options.plan();
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
  validate(options.config);
  demo_data_plan(options);
}

namespace {

// Takes the chain's folder (new, empty or perpo's; locked while the lock lives) and writes its
// chain.yaml, the config every stage of the chain is written from.
OutputLock open_chain(const DemoOptions& options) {
  OutputPolicy policy{{}, options.force};
  policy.kind = OutputPolicy::kOutputKindDemo;
  OutputLock lock = prepare_output_dir(options.out, policy);
  write_file_atomic(options.out / "chain.yaml",
                    dump_config(options.config, /*every_section=*/true));
  return lock;
}

// The stages after data, in their order: run here, or read back (context.collect).
void run_model_stages(DemoContext& context, DemoResult& result) {
  result.stage_seconds.emplace_back("sft", run_sft_stage(context));
  result.stage_seconds.emplace_back("sample", run_sample_stage(context));
  for (const auto& arm : context.options.plan().arms) {
    result.stage_seconds.emplace_back("arm-" + arm, run_arm_stage(context, arm));
  }
  result.stage_seconds.emplace_back("eval", run_eval_stage(context, result.results));
}

void merge_chain(DemoResult& result, const std::string& task, DemoResult& part) {
  for (auto& [arm, tasks] : part.results) {
    for (auto& [name, metrics] : tasks) result.results[arm][name] = metrics;
  }
  for (const auto& [stage, seconds] : part.stage_seconds) {
    result.stage_seconds.emplace_back(task + "/" + stage, seconds);
  }
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

int demo_jobs(const DemoSuiteOptions& options) {
  if (options.jobs > 0) return options.jobs;
  const int cores = available_cores();
  int threads = 1;  // per stage: the largest run.threads of the chains that run
  for (const auto& task : options.suite.tasks) {
    const int t = options.suite.chains.at(task).run.threads;
    threads = std::max(threads, t <= 0 ? cores : t);
  }
  return std::clamp(cores / threads, 1, 8);
}

DemoResult run_demo_chain(const DemoOptions& options) {
  check_demo_chain(options);  // the generators' options are checked before anything is written
  OutputLock lock = open_chain(options);
  set_threads(options.config.run.threads);  // as run_demo_stage: the same for every stage
  DemoResult result;
  DemoContext context{options, demo_base_config(options)};
  result.stage_seconds.emplace_back("data", run_data_stage(options));
  run_model_stages(context, result);
  return result;
}

void run_demo_stage(const fs::path& out, std::uint64_t seed, const std::string& stage,
                    long parent_pid) {
  PERPO_CHECK_INPUT(static_cast<long>(getppid()) == parent_pid, "--run-stage ", stage,
                    ": this is perpo demo's own option for the stages it runs in child processes, "
                    "and the parent process ",
                    parent_pid, " is not this process's parent");
  // The parent holds the folders' locks and waits for this process; if it dies, stop as for
  // SIGTERM (the stage saves a checkpoint that the next run resumes from). Polled rather than
  // PR_SET_PDEATHSIG, which signals again for each thread of the dying parent that adopts this
  // process on the way, and a second signal ends perpo at once, without saving.
  std::thread([parent_pid] {
    while (static_cast<long>(getppid()) == parent_pid) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    request_stop();
  }).detach();
  const auto slash = stage.find('/');
  PERPO_CHECK_INPUT(slash != std::string::npos, "--run-stage '", stage,
                    "' is not <task>/<stage> (e.g. grounding/arm-dpo)");
  const std::string task = stage.substr(0, slash), name = stage.substr(slash + 1);
  const fs::path chain_yaml = out / task / "chain.yaml";
  PERPO_CHECK_INPUT(fs::is_regular_file(chain_yaml), "--run-stage ", stage, ": no chain config ",
                    chain_yaml.string());
  Config config;
  merge_yaml(config, read_file(chain_yaml), chain_yaml.string());
  validate(config);
  const DemoOptions chain{out / task, seed, /*force=*/false, config};
  // The chain's threads for every stage, the untrained ones (sampling, evaluation) included: two
  // stages side by side at LibTorch's default (every core each, spinning at barriers) ran 5x
  // slower than at one thread each.
  set_threads(config.run.threads);
  set_stage_task(task);
  DemoContext context{chain, demo_base_config(chain)};
  const auto& arms = chain.plan().arms;
  if (name == "sft") {
    run_sft_stage(context);
  } else if (name == "sample") {
    run_sample_stage(context);
  } else if (starts_with(name, "arm-") &&
             std::find(arms.begin(), arms.end(), name.substr(4)) != arms.end()) {
    run_arm_stage(context, name.substr(4));
  } else if (name == "eval") {
    DemoTable table;
    run_eval_stage(context, table);
  } else {
    throw input_error("--run-stage '", stage, "': no stage '", name, "' in the ", task, " chain")
        .hint("sft, sample, eval or arm-<arm> for an arm of demo.arms");
  }
}

DemoResult run_demo(const DemoSuiteOptions& options) {
  const DemoSuite& suite = options.suite;
  PERPO_CHECK_INPUT(!suite.tasks.empty(), "the demo has no task to run");
  PERPO_CHECK_INPUT(options.jobs >= 0, "--jobs ", options.jobs, " is negative");
  std::vector<DemoOptions> chains;
  for (const auto& task : suite.tasks) {
    chains.push_back({options.out / task, options.seed, options.force, suite.chains.at(task)});
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
  const int jobs = demo_jobs(options);
  stage_line("demo", "output " + options.out.string() + ", seed " + std::to_string(options.seed) +
                         ", one model per task: " + join(suite.tasks, ", ") + "; " +
                         std::to_string(jobs) + (jobs == 1 ? " stage" : " stages") + " at a time");
  DemoResult result;
  DemoReport report;
  if (jobs == 1) {
    for (std::size_t i = 0; i < chains.size(); ++i) {
      const std::string& task = suite.tasks[i];
      stage_line("demo", task + " (" + std::to_string(i + 1) + " of " +
                             std::to_string(chains.size()) + "): " + chains[i].out.string());
      set_stage_task(task);
      DemoResult part = run_demo_chain(chains[i]);
      set_stage_task("");
      merge_chain(result, task, part);
      add_chain_to_report(report, chains[i]);
    }
  } else {
    // Data here (seconds), then the model stages of every chain in child processes, then the
    // results read back from the stages' files, as a rerun would read them.
    std::vector<OutputLock> chain_locks;
    std::vector<double> data_seconds;
    for (std::size_t i = 0; i < chains.size(); ++i) {
      const std::string& task = suite.tasks[i];
      set_stage_task("");
      stage_line("demo", task + " (" + std::to_string(i + 1) + " of " +
                             std::to_string(chains.size()) + "): " + chains[i].out.string());
      set_stage_task(task);
      chain_locks.push_back(open_chain(chains[i]));
      data_seconds.push_back(run_data_stage(chains[i]));
    }
    set_stage_task("");
    run_stages_in_processes(options, chains, jobs);
    for (std::size_t i = 0; i < chains.size(); ++i) {
      DemoResult part;
      part.stage_seconds.emplace_back("data", data_seconds[i]);
      DemoContext context{chains[i], demo_base_config(chains[i])};
      context.collect = true;
      run_model_stages(context, part);
      merge_chain(result, suite.tasks[i], part);
      add_chain_to_report(report, chains[i]);
    }
  }
  std::ostringstream took;
  took << seconds_since(start);
  stage_line("demo", "done in " + took.str() + " s");
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
        cells[i] =
            names[i] + " " +
            format_metric(names[i], value->second, se == metrics.end() ? 0.0 : se->second, "+-") +
            (is_percent_metric(names[i]) ? "%" : "");
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
