// The demo's last stage (pipeline_stages.h): the table on stdout, and summary.json, report.md and
// the plots through synth's report writer (report.h), fed from the stages' files: the arms'
// metrics.jsonl (loss and validation curves, the mean reward of the online lists),
// lists/done.json (rewards of the stage-1 samples).
#include <algorithm>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "perpo/core/atomic_file.h"
#include "perpo/core/strings.h"
#include "perpo/demo/pipeline_stages.h"
#include "perpo/demo/report.h"

namespace perpo {
namespace fs = std::filesystem;
namespace {

std::vector<nlohmann::json> json_lines(const fs::path& file) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

// One arm's values of `key` in its metrics.jsonl over steps, with their standard errors when
// every line has `key`_se.
CurveSeries metric_series(const fs::path& metrics, const std::string& arm, const std::string& key) {
  CurveSeries series{arm, {}, {}, {}};
  const std::string se = key + "_se";
  bool all_errors = true;
  for (const auto& line : json_lines(metrics)) {
    if (!line.contains(key) || !line[key].is_number()) continue;
    series.steps.push_back(line["step"].get<double>());
    series.values.push_back(line[key].get<double>());
    all_errors = all_errors && line.contains(se) && line[se].is_number();
    series.errors.push_back(all_errors ? line[se].get<double>() : 0.0);
  }
  if (!all_errors) series.errors.clear();
  return series;
}

void add_curves(DemoReport& report, const DemoOptions& chain) {
  const DemoPlan& plan = chain.plan();
  const fs::path& out = chain.out;
  const std::string name = join(plan.tasks, "+");  // the chain's model
  for (const auto& task : plan.tasks) {
    const std::vector<std::pair<std::string, std::string>> metrics =
        task == "grounding"
            ? std::vector<std::pair<std::string, std::string>>{{"acc@0.5", "validation Acc@0.5"},
                                                               {"mean_iou", "validation mean IoU"}}
            : std::vector<std::pair<std::string, std::string>>{
                  {"edit_distance", "validation edit distance"}, {"f1", "validation word F1"}};
    for (const auto& [metric, label] : metrics) {
      CurvePlot plot{task, metric, label, {}};
      for (const auto& arm : plan.arms) {
        plot.series.push_back(metric_series(out / "arms" / arm / "run" / "metrics.jsonl", arm,
                                            "eval/" + task + "/" + metric));
      }
      report.curves.push_back(plot);
    }
    CurvePlot reward{task, "reward", "mean reward of the re-sampled lists", {}};
    for (const auto& arm : plan.arms) {
      CurveSeries series = metric_series(out / "arms" / arm / "run" / "metrics.jsonl", arm,
                                         "online/" + task + "/mean_reward");
      if (!series.steps.empty()) reward.series.push_back(series);
    }
    if (!reward.series.empty()) report.curves.push_back(reward);
  }
  // Each objective's loss on its own axes: their scales have nothing in common.
  for (const auto& arm : plan.arms) {
    report.curves.push_back(
        {name + "-train-" + arm,
         "loss",
         "training loss of " + arm + " (" + name + ")",
         {metric_series(out / "arms" / arm / "run" / "metrics.jsonl", arm, "loss")}});
  }
  CurvePlot stage1{name + "-stage1",
                   "loss",
                   "stage-1 SFT loss (" + name + ")",
                   {metric_series(out / "sft" / "run" / "metrics.jsonl", "sft", "loss")}};
  report.curves.push_back(stage1);
}

}  // namespace

void add_chain_to_report(DemoReport& report, const DemoOptions& chain) {
  const DemoPlan& plan = chain.plan();
  for (const auto& arm : plan.arms) {
    if (std::find(report.arms.begin(), report.arms.end(), arm) == report.arms.end()) {
      report.arms.push_back(arm);
    }
  }
  add_curves(report, chain);
  const auto lists = nlohmann::json::parse(read_file(chain.out / "lists" / "done.json"));
  for (const auto& task : plan.tasks) {
    const auto& stats = lists["tasks"][task];
    report.sampled_rewards[task] = stats["sampled_rewards"].get<std::vector<double>>();
    report.notes.push_back(task + ": the stage-1 model's sampled lists have mean reward " +
                           std::to_string(stats["mean_reward"].get<double>()) + "; " +
                           std::to_string(stats["all_equal_lists"].get<int>()) + " of " +
                           std::to_string(stats["lists"].get<int>()) +
                           " lists have all rewards equal.");
  }
  // Every arm as plain perpo commands (from stage 1's model, as the demo trained it).
  auto quoted = [](const fs::path& path) {
    const std::string text = path.string();
    return text.find_first_of(" '\"$\\") == std::string::npos ? text : "'" + text + "'";
  };
  for (const auto& arm : plan.arms) {
    const fs::path again = chain.out / "reproduce" / arm;
    report.commands.push_back("perpo train --config " +
                              quoted(chain.out / "arms" / arm / "run" / "config.yaml") +
                              " run.dir=" + quoted(again) + " train.eval_every=0");
    report.commands.push_back(
        "perpo export --checkpoint " +
        quoted(again / "checkpoints" / ("step-" + std::to_string(plan.pref_steps))) + " --output " +
        quoted(again / "model"));
    for (const auto& task : plan.tasks) {
      report.commands.push_back(
          "perpo eval --config " + quoted(eval_config_file(chain.out, arm, task)) +
          " model.path=" + quoted(again / "model") + " --out " + quoted(again / ("eval-" + task)));
    }
  }
  report.notes.push_back(join(plan.tasks, "+") + " (one model, in " + chain.out.string() +
                         "): metrics on the " + plan.eval_split + " split.");
  std::string settings = join(plan.tasks, "+") + " settings:";
  for (const auto& [key, value] : demo_settings(chain.config)) {
    settings += " " + key + "=" + value + ";";
  }
  report.notes.push_back(settings);
}

void write_demo_outputs(const DemoSuiteOptions& options, DemoReport& report, DemoResult& result) {
  report.seed = options.seed;
  report.arms.insert(report.arms.begin(), "start");
  report.results = result.results;
  report.stage_seconds = result.stage_seconds;
  report.notes.insert(report.notes.begin(),
                      "Row \"start\" is the stage-1 model every arm of its task starts from; one "
                      "model per task; value +- one standard error over records.");
  const ReportFiles files = write_demo_report(options.out, report);
  result.summary_json = files.summary_json;
  result.report_md = files.report_md;
  result.plots = files.plots;

  std::printf("\n%s", format_demo_table(result.results, report.arms).c_str());
  std::printf("summary: %s\nreport:  %s (%zu plots%s)\n", files.summary_json.string().c_str(),
              files.report_md.string().c_str(), files.plots.size(),
              files.plots_skipped.empty() ? "" : (": " + files.plots_skipped).c_str());
  std::fflush(stdout);
}

}  // namespace perpo
