// Plots of the demo report, drawn by gnuplot (see report.h for the files and the fallback).
//
//   std::string skipped;
//   auto pngs = perpo::draw_report_plots("runs/demo/plots", report, options, &skipped);
//
// Each plot is a data file (<name>.dat), a gnuplot script (<name>.gp) and the PNG gnuplot makes
// from them (pngcairo terminal); gnuplot runs as a child process (no shell) in the plots folder
// (its absolute path, so a relative folder works from any working directory), its stderr kept in
// <name>.log when it fails.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "perpo/demo/report.h"

namespace perpo {

/// Draws the curves and the reward histograms of `report` into `plots_dir`. Returns the PNGs
/// drawn. When gnuplot is missing or fails: with options.require_plots throws perpo::Error;
/// otherwise sets *skipped to the reason and returns what was drawn until then.
std::vector<std::filesystem::path> draw_report_plots(const std::filesystem::path& plots_dir,
                                                     const DemoReport& report,
                                                     const ReportOptions& options,
                                                     std::string* skipped);

/// Counts of `values` in `bins` equal bins over [0, 1] (values outside are clamped in).
std::vector<int> histogram_counts(const std::vector<double>& values, int bins);

/// "acc@0.5" -> "acc_0.5": a name safe in file names.
std::string plot_file_stem(const std::string& name);

}  // namespace perpo
