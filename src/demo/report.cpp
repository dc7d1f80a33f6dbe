// The demo report: report.md and summary.json (see report.h); plots in plots.cpp.
#include "perpo/demo/report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/demo/plots.h"

namespace perpo {

namespace fs = std::filesystem;

namespace {

bool is_annotation(const std::string& metric) { return metric == "n" || ends_with(metric, "_se"); }

std::string number(double value) {
  if (!std::isfinite(value)) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

}  // namespace

bool is_percent_metric(const std::string& metric) {
  return starts_with(metric, "acc@") || metric == "unparsable" || metric == "exact_match" ||
         metric == "f1";
}

std::string metric_header(const std::string& metric) {
  return is_percent_metric(metric) ? metric + " (%)" : metric;
}

std::string format_metric(const std::string& metric, double value, double se,
                          const std::string& plus_minus) {
  if (!std::isfinite(value)) return "n/a";
  const bool percent = is_percent_metric(metric);
  const char* format = percent ? "%.1f" : "%.3f";
  const double scale = percent ? 100.0 : 1.0;
  char text[64];
  std::snprintf(text, sizeof text, format, value * scale);
  std::string out = text;
  if (se >= 0 && std::isfinite(se)) {
    std::snprintf(text, sizeof text, format, se * scale);
    out += plus_minus + text;
  }
  return out;
}

namespace {

// Arms in the report's order, then any others that have results.
std::vector<std::string> arm_order(const DemoReport& report) {
  std::vector<std::string> arms = report.arms;
  for (const auto& [arm, tasks] : report.results) {
    if (std::find(arms.begin(), arms.end(), arm) == arms.end()) arms.push_back(arm);
  }
  return arms;
}

// One table per task: a row per arm, a column per metric ("value +- se"), then n.
void write_tables(std::ostringstream& md, const DemoReport& report) {
  std::set<std::string> tasks;
  for (const auto& [arm, by_task] : report.results) {
    for (const auto& [task, metrics] : by_task) tasks.insert(task);
  }
  if (tasks.empty()) md << "No results yet.\n\n";
  for (const std::string& task : tasks) {
    std::vector<std::string> metrics;
    bool has_n = false;
    for (const auto& [arm, by_task] : report.results) {
      const auto it = by_task.find(task);
      if (it == by_task.end()) continue;
      for (const auto& [metric, value] : it->second) {
        has_n = has_n || metric == "n";
        if (!is_annotation(metric) &&
            std::find(metrics.begin(), metrics.end(), metric) == metrics.end()) {
          metrics.push_back(metric);
        }
      }
    }
    md << "### " << task << "\n\n| arm |";
    for (const auto& metric : metrics) md << " " << metric_header(metric) << " |";
    md << (has_n ? " n |\n|---|" : "\n|---|");
    for (std::size_t i = 0; i < metrics.size() + (has_n ? 1 : 0); ++i) md << "---|";
    md << "\n";
    for (const std::string& arm : arm_order(report)) {
      const auto arm_it = report.results.find(arm);
      if (arm_it == report.results.end() || !arm_it->second.count(task)) continue;
      const auto& values = arm_it->second.at(task);
      md << "| " << arm << " |";
      for (const auto& metric : metrics) {
        const auto value = values.find(metric);
        const auto se = values.find(metric + "_se");
        if (value != values.end()) {
          md << " " << format_metric(metric, value->second, se == values.end() ? -1.0 : se->second);
        }
        md << " |";
      }
      if (has_n) md << " " << (values.count("n") ? number(values.at("n")) : "") << " |";
      md << "\n";
    }
    md << "\n";
  }
  md << "Values ± one standard error over the evaluation records; (%): percent of the "
        "records.\n\n";
}

}  // namespace

fs::path find_program(const std::string& program) {
  if (program.empty()) return {};
  auto runnable = [](const fs::path& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) return runnable(program) ? fs::path(program) : "";
  const char* path = std::getenv("PATH");
  for (const std::string& dir : split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / program;
    if (runnable(candidate)) return candidate;
  }
  return {};
}

std::string summary_json_text(const DemoReport& report, const std::vector<std::string>& plots) {
  nlohmann::ordered_json json;
  json["seed"] = report.seed;
  nlohmann::ordered_json arms = nlohmann::ordered_json::object();
  for (const std::string& arm : arm_order(report)) {
    const auto it = report.results.find(arm);
    if (it == report.results.end()) continue;
    arms[arm] = nlohmann::ordered_json::object();
    for (const auto& [task, metrics] : it->second) {
      arms[arm][task] = nlohmann::ordered_json::object();
      // Non-finite values become null (JSON has no NaN).
      for (const auto& [metric, value] : metrics) {
        arms[arm][task][metric] = std::isfinite(value) ? nlohmann::ordered_json(value) : nullptr;
      }
    }
  }
  json["arms"] = arms;
  nlohmann::ordered_json stages = nlohmann::ordered_json::object();
  double total = 0;
  for (const auto& [stage, seconds] : report.stage_seconds) {
    stages[stage] = seconds;
    total += seconds;
  }
  json["stage_seconds"] = stages;
  json["total_seconds"] = total;
  json["plots"] = plots;
  return json.dump(2) + "\n";
}

ReportFiles write_demo_report(const fs::path& dir, const DemoReport& report,
                              const ReportOptions& options) {
  ReportFiles files;
  std::error_code ec;
  fs::create_directories(dir, ec);
  PERPO_CHECK(!ec, "cannot create the report folder ", dir.string(), ": ", ec.message());
  const std::vector<fs::path> pngs =
      draw_report_plots(dir / "plots", report, options, &files.plots_skipped);
  std::vector<std::string> plot_names;
  for (const fs::path& png : pngs) {
    plot_names.push_back(fs::relative(png, dir).generic_string());
    files.plots.push_back(png);
  }

  std::ostringstream md;
  md << "# " << report.title << "\n\nSeed " << report.seed << ".\n\n## Results\n\n";
  write_tables(md, report);
  if (!report.stage_seconds.empty()) {
    double total = 0;
    md << "## Time per stage\n\n| stage | seconds |\n|---|---|\n";
    for (const auto& [stage, seconds] : report.stage_seconds) {
      md << "| " << stage << " | " << number(seconds) << " |\n";
      total += seconds;
    }
    md << "| total | " << number(total) << " |\n\n";
  }
  md << "## Plots\n\n";
  if (!files.plots_skipped.empty()) md << "Plots skipped: " << files.plots_skipped << ".\n\n";
  for (const std::string& name : plot_names) {
    md << "![" << fs::path(name).stem().string() << "](" << name << ")\n\n";
  }
  if (plot_names.empty() && files.plots_skipped.empty()) md << "No curves or rewards to plot.\n\n";
  if (!report.commands.empty()) {
    md << "## Reproduce\n\nEach stage is an ordinary perpo run with the config the demo wrote; "
          "from "
          "the folder the demo ran in:\n\n```sh\n";
    for (const std::string& command : report.commands) md << command << "\n";
    md << "```\n\n";
  }
  if (!report.notes.empty()) {
    md << "## Notes\n\n";
    for (const std::string& note : report.notes) md << "- " << note << "\n";
    md << "\n";
  }

  files.report_md = dir / "report.md";
  files.summary_json = dir / "summary.json";
  write_file_atomic(files.summary_json, summary_json_text(report, plot_names));
  write_file_atomic(files.report_md, md.str());
  return files;
}

}  // namespace perpo
