// The demo's report: report.md with a results table and plots, and summary.json.
//
//   perpo::DemoReport report;
//   report.seed = 1;
//   report.arms = {"sft", "dpo", "perpo"};
//   report.results["perpo"]["grounding"]["acc@0.5"] = 0.512;       // arm -> task -> metric
//   report.results["perpo"]["grounding"]["acc@0.5_se"] = 0.011;    // "<metric>_se": its SE
//   report.results["perpo"]["grounding"]["n"] = 2000;              // eval records
//   report.stage_seconds = {{"data", 1.2}, {"sft", 140.0}, ...};
//   report.curves.push_back({"grounding", "reward", "mean reward of sampled lists",
//                            {{"dpo", {0, 25, 50}, {0.41, 0.44, 0.47}}, ...}});
//   report.sampled_rewards["grounding"] = {0.0, 0.83, 0.91, ...};
//   perpo::ReportFiles files = perpo::write_demo_report("runs/demo", report);
//
// Files (all written atomically):
//   summary.json   {"seed": 1, "arms": {"perpo": {"grounding": {"acc@0.5": 0.512, ...}}},
//                   "stage_seconds": {"data": 1.2, ...}, "total_seconds": ..., "plots": [...]}
//   report.md      the table (value +- one standard error, n), stage times, plots, notes
//   plots/<task>-<metric>.png         one line per arm (reward / accuracy curves)
//   plots/<task>-reward-histogram.png rewards of the sampled lists, 20 bins over [0, 1]
//   plots/*.dat, plots/*.gp           the data and gnuplot scripts, to redraw by hand
//
// Plots are drawn by gnuplot (Debian's gnuplot-nox, installed by tools/setup.sh), run as a child
// process with the pngcairo terminal. Without gnuplot the report is written text-only: report.md
// and ReportFiles::plots_skipped say why and how to get plots (install gnuplot-nox), unless
// `require_plots`, which turns that into an error (exit code 1).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace perpo {

/// One arm's values of one metric over training steps.
struct CurveSeries {
  std::string arm;
  std::vector<double> steps;
  std::vector<double> values;
  std::vector<double> errors;  // one standard error per value (drawn as bars), or empty
};

/// One plot: a metric of a task over steps, one line per arm.
struct CurvePlot {
  std::string task;     // e.g. "grounding"
  std::string metric;   // e.g. "reward", "acc@0.5"; names the file
  std::string y_label;  // e.g. "mean reward of sampled lists"
  std::vector<CurveSeries> series;
};

/// True for the metrics that are shares of records (acc@*, unparsable, exact_match, f1): the
/// report, the stdout table and the README show them in percent; edit distance and mean IoU stay
/// averages in [0, 1].
bool is_percent_metric(const std::string& metric);
/// "acc@0.5 (%)" for a percent metric, else the name.
std::string metric_header(const std::string& metric);
/// The value (and "+- se" when se >= 0) as shown: "49.7 ± 1.1" in percent, "0.059 ± 0.004".
std::string format_metric(const std::string& metric, double value, double se = -1,
                          const std::string& plus_minus = " ± ");

using MetricTable = std::map<std::string, std::map<std::string, std::map<std::string, double>>>;

struct DemoReport {
  std::string title = "perpo demo: SFT vs DPO vs PerPO on synthetic perception tasks";
  std::uint64_t seed = 0;
  std::vector<std::string> arms;  // table rows, in order; arms missing here follow by name
  MetricTable results;            // arm -> task -> metric -> value (see file comment)
  std::vector<std::pair<std::string, double>> stage_seconds;  // in the order they ran
  std::vector<CurvePlot> curves;
  std::map<std::string, std::vector<double>> sampled_rewards;  // task -> rewards of sampled lists
  std::vector<std::string> notes;                              // free lines for report.md
  std::vector<std::string> commands;  // report.md "Reproduce": shell lines, run where the demo ran
};

struct ReportOptions {
  std::string gnuplot = "gnuplot";  // program name (looked up in PATH) or path
  bool require_plots = false;       // missing gnuplot / a failed plot is an error, not a note
  int histogram_bins = 20;          // over [0, 1]
};

struct ReportFiles {
  std::filesystem::path report_md;
  std::filesystem::path summary_json;
  std::vector<std::filesystem::path> plots;  // PNGs written
  std::string plots_skipped;                 // why no plots were drawn ("" = they were)
};

/// Writes report.md, summary.json and the plots into `dir` (created when missing). Throws
/// perpo::Error (runtime) when a file cannot be written, or, with require_plots, when gnuplot is
/// missing or fails (its stderr quoted).
ReportFiles write_demo_report(const std::filesystem::path& dir, const DemoReport& report,
                              const ReportOptions& options = {});

/// summary.json's content (see the file comment).
std::string summary_json_text(const DemoReport& report, const std::vector<std::string>& plots);

/// Finds `program` like the shell does (a name is looked up in PATH; a path is taken as is).
/// Returns "" when there is no such executable.
std::filesystem::path find_program(const std::string& program);

}  // namespace perpo
