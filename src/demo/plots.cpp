// Report plots through gnuplot (see plots.h).
#include "perpo/demo/plots.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"

extern char** environ;

namespace perpo {

namespace fs = std::filesystem;

namespace {

// One colour per arm in every plot (gnuplot's own would follow the order of the lines).
std::string arm_colour(const std::string& arm) {
  static const std::map<std::string, std::string> colours = {{"start", "7f7f7f"},
                                                             {"sft", "1f77b4"},
                                                             {"dpo", "ff7f0e"},
                                                             {"perpo", "2ca02c"},
                                                             {"grpo", "d62728"}};
  const auto found = colours.find(arm);
  return found == colours.end() ? "9467bd" : found->second;
}

// Trailing moving average over `window` values (fewer at the start).
std::vector<double> moving_average(const std::vector<double>& values, std::size_t window) {
  std::vector<double> out;
  double sum = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    sum += values[i];
    if (i >= window) sum -= values[i - window];
    out.push_back(sum / static_cast<double>(std::min(i + 1, window)));
  }
  return out;
}

// A gnuplot single-quoted string: a quote inside is written twice.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string header(const std::string& png, const std::string& title, const std::string& x_label,
                   const std::string& y_label) {
  std::ostringstream gp;
  gp << "set terminal pngcairo size 720,420 noenhanced font 'DejaVu Sans,10'\n"
     << "set output " << quoted(png) << "\n"
     << "set title " << quoted(title) << "\n"
     << "set xlabel " << quoted(x_label) << "\n"
     << "set ylabel " << quoted(y_label) << "\n"
     << "set grid\nset key outside right top\n";
  return gp.str();
}

// Runs `gnuplot -e "cd '<dir>'" <dir>/<script>` with `dir` made absolute: gnuplot reads the
// script's path after the `cd`, so a relative one (perpo demo --out runs/demo) would name a
// file under the plots folder itself. Returns "" on success, else what went wrong.
std::string run_gnuplot(const fs::path& gnuplot, const fs::path& plots_dir,
                        const std::string& script) {
  const fs::path dir = fs::absolute(plots_dir);
  const std::string cd = "cd " + quoted(dir.string());
  const fs::path log = dir / (fs::path(script).stem().string() + ".log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const std::string program = gnuplot.string();
  const std::string script_path = (dir / script).string();
  std::vector<char*> argv = {const_cast<char*>(program.c_str()), const_cast<char*>("-e"),
                             const_cast<char*>(cd.c_str()), const_cast<char*>(script_path.c_str()),
                             nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return "cannot start " + program + ": " + std::strerror(rc);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    std::error_code ec;
    fs::remove(log, ec);
    return "";
  }
  std::string message = read_file(log);
  if (message.size() > 600) {
    message.resize(600);
    message += "...";
  }
  return program + " failed on " + script_path + ": " + message;
}

}  // namespace

std::string plot_file_stem(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool safe = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
    out += safe ? c : '_';
  }
  return out.empty() ? "plot" : out;
}

std::vector<int> histogram_counts(const std::vector<double>& values, int bins) {
  PERPO_CHECK(bins > 0, "a histogram needs at least one bin, got ", bins);
  std::vector<int> counts(bins, 0);
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    const int bin = static_cast<int>(std::floor(std::clamp(v, 0.0, 1.0) * bins));
    counts[std::min(bin, bins - 1)]++;
  }
  return counts;
}

std::vector<fs::path> draw_report_plots(const fs::path& plots_dir, const DemoReport& report,
                                        const ReportOptions& options, std::string* skipped) {
  std::vector<fs::path> pngs;
  auto give_up = [&](std::string reason, std::string hint) -> std::vector<fs::path> {
    if (options.require_plots) throw runtime_error(reason).hint(hint);
    *skipped = reason + " (" + hint + ")";
    return pngs;
  };
  const fs::path gnuplot = find_program(options.gnuplot);
  if (gnuplot.empty()) {
    return give_up("gnuplot ('" + options.gnuplot + "') was not found, so the report has no plots",
                   "install Debian's gnuplot-nox (./tools/setup.sh does) and run again");
  }
  fs::create_directories(plots_dir);

  // Each plot: data file, script, PNG.
  auto draw = [&](const std::string& stem, const std::string& data, const std::string& script) {
    write_file_atomic(plots_dir / (stem + ".dat"), data);
    write_file_atomic(plots_dir / (stem + ".gp"), script);
    const std::string error = run_gnuplot(gnuplot, plots_dir, stem + ".gp");
    if (!error.empty()) return error;
    pngs.push_back(plots_dir / (stem + ".png"));
    return std::string();
  };

  for (const CurvePlot& plot : report.curves) {
    const std::string stem = plot_file_stem(plot.task + "-" + plot.metric);
    std::ostringstream data, script;
    script << header(stem + ".png", plot.task + ": " + plot.metric, "step", plot.y_label);
    std::vector<std::string> lines;
    int block = 0;
    for (const CurveSeries& series : plot.series) {
      const std::size_t n = std::min(series.steps.size(), series.values.size());
      if (n == 0) continue;
      const std::string colour = arm_colour(series.arm);
      // Losses: the raw values faint, a moving average over them in full colour.
      const bool smooth = plot.metric == "loss" && n >= 50;
      data << "# " << series.arm << (smooth ? ": step, value, moving average" : "") << "\n";
      const std::vector<double> values(series.values.begin(), series.values.begin() + n);
      const std::vector<double> average = moving_average(values, std::max<std::size_t>(n / 20, 5));
      for (std::size_t i = 0; i < n; ++i) {
        data << series.steps[i] << " " << values[i];
        if (smooth) data << " " << average[i];
        if (!smooth && series.errors.size() == n) data << " " << series.errors[i];
        data << "\n";
      }
      data << "\n\n";
      const std::string index = quoted(stem + ".dat") + " index " + std::to_string(block++);
      if (smooth) {
        lines.push_back(index + " using 1:2 with lines lc rgb '#b0" + colour + "' notitle");
        lines.push_back(index + " using 1:3 with lines lw 2 lc rgb '#" + colour + "' title " +
                        quoted(series.arm + " (moving average)"));
      } else if (series.errors.size() == n) {  // one standard error each side
        lines.push_back(index + " using 1:2:3 with yerrorlines pointsize 0.5 lc rgb '#" + colour +
                        "' title " + quoted(series.arm + " (+-1 SE)"));
      } else {
        lines.push_back(index + " using 1:2 with linespoints pointsize 0.5 lc rgb '#" + colour +
                        "' title " + quoted(series.arm));
      }
    }
    if (lines.empty()) continue;  // nothing to draw for this metric
    script << "plot ";
    for (std::size_t i = 0; i < lines.size(); ++i) script << (i ? ", \\\n     " : "") << lines[i];
    script << "\n";
    const std::string error = draw(stem, data.str(), script.str());
    if (!error.empty()) return give_up(error, "see the script and data next to it");
  }

  for (const auto& [task, rewards] : report.sampled_rewards) {
    if (rewards.empty()) continue;
    const std::string stem = plot_file_stem(task + "-reward-histogram");
    const int bins = options.histogram_bins;
    const std::vector<int> counts = histogram_counts(rewards, bins);
    std::ostringstream data, script;
    data << "# bin centre, answers with a reward in the bin\n";
    for (int b = 0; b < bins; ++b) data << (b + 0.5) / bins << " " << counts[b] << "\n";
    script << header(stem + ".png",
                     task + ": rewards of the sampled answers (" + std::to_string(rewards.size()) +
                         ")",
                     "reward", "answers")
           << "set style fill solid 0.6 border -1\nset boxwidth " << 1.0 / bins
           << "\nset xrange [0:1]\nset yrange [0:*]\nunset key\n"
           << "plot " << quoted(stem + ".dat") << " using 1:2 with boxes\n";
    const std::string error = draw(stem, data.str(), script.str());
    if (!error.empty()) return give_up(error, "see the script and data next to it");
  }
  return pngs;
}

}  // namespace perpo
