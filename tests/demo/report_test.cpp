// The demo report: summary.json parses and holds arm -> task -> metric, report.md shows the
// table, gnuplot draws real PNGs, and without gnuplot the report is text-only (or an error when
// plots are required).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/demo/pipeline.h"
#include "perpo/demo/plots.h"
#include "perpo/demo/report.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

DemoReport example_report() {
  DemoReport report;
  report.seed = 7;
  report.arms = {"sft", "dpo", "perpo"};
  report.results["sft"]["grounding"] = {{"acc@0.5", 0.497}, {"acc@0.5_se", 0.011}, {"n", 2000}};
  report.results["dpo"]["grounding"] = {{"acc@0.5", 0.483}, {"acc@0.5_se", 0.011}, {"n", 2000}};
  report.results["perpo"]["grounding"] = {{"acc@0.5", 0.5}, {"mean_iou", NAN}, {"n", 2000}};
  report.results["perpo"]["ocr"] = {{"edit_distance", 1.25}};
  report.stage_seconds = {{"data", 1.5}, {"sft", 140.25}, {"eval", 8.25}};
  CurvePlot reward{"grounding", "reward", "mean reward of sampled lists", {}};
  reward.series.push_back({"dpo", {0, 25, 50}, {0.41, 0.44, 0.47}, {}});
  reward.series.push_back({"perpo", {0, 25, 50}, {0.41, 0.46, 0.52}, {}});
  reward.series.push_back({"empty arm", {}, {}, {}});  // nothing to draw: left out
  report.curves.push_back(reward);
  report.curves.push_back(
      {"grounding", "acc@0.5", "validation Acc@0.5", {{"sft", {0, 100}, {0.4, 0.5}, {}}}});
  report.sampled_rewards["grounding"] = {0.0, 0.0, 0.2, 0.81, 0.93, 1.0, 0.5};
  report.notes = {"a note with 'quotes'"};
  return report;
}

bool is_png(const fs::path& path) {
  const std::string bytes = read_file(path);
  return bytes.size() > 1000 && bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0;
}

TEST(DemoReport, WritesSummaryTableAndPlots) {
  const fs::path dir = test::fresh_scratch_dir("demo", "report");
  const ReportFiles files = write_demo_report(dir, example_report());
  EXPECT_EQ(files.plots_skipped, "");
  const auto summary = nlohmann::ordered_json::parse(read_file(dir / "summary.json"));
  EXPECT_EQ(summary["seed"], 7);
  EXPECT_DOUBLE_EQ(summary["arms"]["dpo"]["grounding"]["acc@0.5"].get<double>(), 0.483);
  EXPECT_DOUBLE_EQ(summary["arms"]["perpo"]["ocr"]["edit_distance"].get<double>(), 1.25);
  EXPECT_TRUE(summary["arms"]["perpo"]["grounding"]["mean_iou"].is_null());  // NaN -> null
  EXPECT_DOUBLE_EQ(summary["stage_seconds"]["sft"].get<double>(), 140.25);
  EXPECT_DOUBLE_EQ(summary["total_seconds"].get<double>(), 150.0);
  // Arms keep the report's order (sft, dpo, perpo), not alphabetical.
  EXPECT_EQ(summary["arms"].begin().key(), "sft");

  ASSERT_EQ(files.plots.size(), 3u);
  const std::vector<std::string> names = {"grounding-reward.png", "grounding-acc_0.5.png",
                                          "grounding-reward-histogram.png"};
  for (const std::string& name : names) {
    EXPECT_TRUE(is_png(dir / "plots" / name)) << name;
    EXPECT_EQ(summary["plots"].dump().find("plots/" + name) != std::string::npos, true) << name;
  }
  const std::string md = read_file(dir / "report.md");
  EXPECT_NE(md.find("| arm | acc@0.5 (%) | mean_iou | n |"), std::string::npos) << md;
  EXPECT_NE(md.find("| sft | 49.7 ± 1.1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| perpo | 50.0 | n/a | 2000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("![grounding-reward](plots/grounding-reward.png)"), std::string::npos) << md;
  EXPECT_NE(md.find("| total | 150 |"), std::string::npos) << md;
  EXPECT_NE(md.find("- a note with 'quotes'"), std::string::npos) << md;
  // The histogram's data: 7 rewards in 20 bins; 0.0 twice in the first, 1.0 in the last.
  const std::string histogram = read_file(dir / "plots" / "grounding-reward-histogram.dat");
  EXPECT_NE(histogram.find("0.025 2\n"), std::string::npos) << histogram;
  EXPECT_NE(histogram.find("0.975 1\n"), std::string::npos) << histogram;
}

TEST(DemoReport, EachArmKeepsItsColourAndLossesAreSmoothed) {
  const fs::path dir = test::fresh_scratch_dir("demo", "report_colours");
  DemoReport report = example_report();
  report.curves.push_back(
      {"grounding", "mean_iou", "validation mean IoU", {{"perpo", {0, 100}, {0.3, 0.4}, {}}}});
  report.curves.push_back(
      {"grounding", "f1", "validation F1", {{"dpo", {0, 100}, {0.3, 0.4}, {0.02, 0.03}}}});
  CurveSeries loss{"grpo", {}, {}, {}};
  for (int step = 0; step < 60; ++step) {
    loss.steps.push_back(step);
    loss.values.push_back(step);
  }
  report.curves.push_back({"grounding-train-grpo", "loss", "training loss of grpo", {loss}});
  ASSERT_EQ(write_demo_report(dir, report).plots_skipped, "");
  // perpo is green wherever it is drawn, whatever the other lines of the plot.
  for (const char* plot : {"grounding-reward.gp", "grounding-mean_iou.gp"}) {
    EXPECT_NE(read_file(dir / "plots" / plot).find("lc rgb '#2ca02c' title 'perpo'"),
              std::string::npos)
        << plot;
  }
  EXPECT_NE(read_file(dir / "plots" / "grounding-reward.gp").find("lc rgb '#ff7f0e' title 'dpo'"),
            std::string::npos);
  // Standard errors, when the series has them, are drawn as bars.
  EXPECT_NE(read_file(dir / "plots" / "grounding-f1.gp")
                .find("using 1:2:3 with yerrorlines pointsize 0.5 lc rgb '#ff7f0e' title "
                      "'dpo (+-1 SE)'"),
            std::string::npos);
  EXPECT_NE(read_file(dir / "plots" / "grounding-f1.dat").find("\n100 0.4 0.03\n"),
            std::string::npos);
  // The loss: raw values faint, a moving average of max(60 / 20, 5) = 5 values drawn over them.
  const std::string script = read_file(dir / "plots" / "grounding-train-grpo-loss.gp");
  EXPECT_NE(script.find("lc rgb '#b0d62728' notitle"), std::string::npos) << script;
  EXPECT_NE(script.find("title 'grpo (moving average)'"), std::string::npos) << script;
  const std::string data = read_file(dir / "plots" / "grounding-train-grpo-loss.dat");
  EXPECT_NE(data.find("\n9 9 7\n"), std::string::npos) << data;    // (5 + 6 + 7 + 8 + 9) / 5
  EXPECT_NE(data.find("\n1 1 0.5\n"), std::string::npos) << data;  // fewer values at the start
  EXPECT_TRUE(is_png(dir / "plots" / "grounding-train-grpo-loss.png"));
}

TEST(DemoReport, TheStdoutTableShowsSharesInPercent) {
  DemoTable results;
  results["perpo"]["grounding"] = {{"acc@0.5", 0.749}, {"acc@0.5_se", 0.0097}, {"n", 2000}};
  results["perpo"]["ocr"] = {{"edit_distance", 0.0521}, {"edit_distance_se", 0.004}, {"n", 2000}};
  const std::string table = format_demo_table(results, {"perpo"});
  EXPECT_NE(table.find("acc@0.5 74.9+-1.0%"), std::string::npos) << table;
  EXPECT_NE(table.find("edit_distance 0.052+-0.004 "), std::string::npos) << table;
}

// Changes the working directory for its lifetime.
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const fs::path& dir) : saved_(fs::current_path()) {
    fs::current_path(dir);
  }
  ~WorkingDirectory() {
    std::error_code error;
    fs::current_path(saved_, error);
  }
  WorkingDirectory(const WorkingDirectory&) = delete;
  WorkingDirectory& operator=(const WorkingDirectory&) = delete;

 private:
  fs::path saved_;
};

TEST(DemoReport, PlotsAreDrawnIntoARelativeFolderFromAnotherWorkingDirectory) {
  // `perpo demo --out runs/demo` (tools/demo.sh's folder): gnuplot runs in the plots folder, so
  // it must be given the script's absolute path (issue 21: report.md without its plots).
  ASSERT_FALSE(find_program("gnuplot").empty())
      << "gnuplot is missing: install Debian's gnuplot-nox (tools/setup.sh does)";
  const fs::path root = test::fresh_scratch_dir("demo", "relative-out");
  ReportOptions options;
  options.require_plots = true;  // a failed plot is an error, not a note
  ReportFiles files;
  {
    const WorkingDirectory cwd(root);
    files = write_demo_report(fs::path("runs") / "demo", example_report(), options);
  }
  EXPECT_EQ(files.plots_skipped, "");
  EXPECT_EQ(files.plots.size(), 3u);
  const fs::path out = root / "runs" / "demo";
  const std::vector<std::string> names = {"grounding-reward.png", "grounding-acc_0.5.png",
                                          "grounding-reward-histogram.png"};
  for (const std::string& name : names) {
    EXPECT_TRUE(fs::exists(out / "plots" / name)) << name;
    if (fs::exists(out / "plots" / name)) {
      EXPECT_TRUE(is_png(out / "plots" / name)) << name;
    }
  }
  const std::string md = read_file(out / "report.md");
  EXPECT_NE(md.find("![grounding-reward](plots/grounding-reward.png)"), std::string::npos) << md;
}

TEST(DemoReport, WithoutGnuplotTheReportIsTextOnlyOrAnErrorWhenPlotsAreRequired) {
  const fs::path dir = test::fresh_scratch_dir("demo", "no-gnuplot");
  ReportOptions options;
  options.gnuplot = "/nonexistent/gnuplot";
  const ReportFiles files = write_demo_report(dir, example_report(), options);
  EXPECT_TRUE(files.plots.empty());
  EXPECT_NE(files.plots_skipped.find("gnuplot"), std::string::npos);
  EXPECT_NE(files.plots_skipped.find("gnuplot-nox"), std::string::npos) << files.plots_skipped;
  const std::string md = read_file(dir / "report.md");
  EXPECT_NE(md.find("Plots skipped: gnuplot"), std::string::npos) << md;
  EXPECT_NE(md.find("| dpo | 48.3 ± 1.1 |"), std::string::npos) << md;
  EXPECT_TRUE(nlohmann::json::parse(read_file(dir / "summary.json"))["plots"].empty());

  options.require_plots = true;
  const std::string error = test::error_of([&] {
    write_demo_report(test::fresh_scratch_dir("demo", "required"), example_report(), options);
  });
  EXPECT_NE(error.find("was not found"), std::string::npos) << error;
  EXPECT_NE(error.find("gnuplot-nox"), std::string::npos) << error;
}

TEST(DemoReport, AFailingGnuplotIsReportedWithItsMessage) {
  // `false` exits 1 without drawing: the reason names the program and the script.
  const fs::path dir = test::fresh_scratch_dir("demo", "failing");
  ReportOptions options;
  options.gnuplot = "false";
  const ReportFiles files = write_demo_report(dir, example_report(), options);
  EXPECT_TRUE(files.plots.empty());
  EXPECT_NE(files.plots_skipped.find("failed on"), std::string::npos) << files.plots_skipped;
  EXPECT_NE(files.plots_skipped.find("grounding-reward.gp"), std::string::npos);
}

TEST(DemoReport, HistogramCountsAndFileStems) {
  // 4 bins over [0, 1]: 0 -> bin 0, 0.25 -> bin 1, 0.6 -> bin 2, 1.0 and 7 -> bin 3, -1 -> bin 0.
  EXPECT_EQ(histogram_counts({0.0, 0.25, 0.6, 1.0, 7.0, -1.0, NAN}, 4),
            (std::vector<int>{2, 1, 1, 2}));
  EXPECT_EQ(plot_file_stem("ocr-edit distance@1/2"), "ocr-edit_distance_1_2");
  EXPECT_TRUE(find_program("no-such-program-perpo").empty());
  EXPECT_FALSE(find_program("sh").empty());
}

}  // namespace
}  // namespace perpo
