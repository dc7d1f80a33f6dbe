#include "perpo/generate/logps_file.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/progress.h"
#include "perpo/data/jsonl.h"
#include "perpo/generate/list_logps.h"

namespace perpo {

std::string LogpsSummary::to_text() const {
  std::ostringstream out;
  char line[200];
  std::snprintf(line, sizeof(line),
                "log-probs of %zu answers in %zu lists (%s format), %zu skipped, in %.1f s\n",
                answers, lists, format.c_str(), skipped, seconds);
  out << line;
  if (answers > 0) {
    std::snprintf(line, sizeof(line), "mean summed log-prob %.4f\n",
                  logp_sum / static_cast<double>(answers));
    out << line;
  }
  for (const std::string& message : skip_messages) out << "skipped: " << message << '\n';
  return out.str();
}

LogpsSummary logps_file(VisionLanguageModel& model, RecordPrompts& prompts, const Config& config,
                        const std::filesystem::path& input, const std::filesystem::path& output,
                        const std::string& format, const ProcessGroup* group) {
  const ProcessGroup single;
  const ProcessGroup& g = group != nullptr ? *group : single;
  const auto start = std::chrono::steady_clock::now();
  LogpsSummary summary;
  std::error_code regular_error;  // a pipe is read once, and its format detected then
  summary.format = format != "auto" || std::filesystem::is_regular_file(input, regular_error)
                       ? detect_list_format(input, format)
                       : format;
  ReadOptions options = ReadOptions::from(config.data);
  options.require_rewards = false;
  options.require_ground_truth = false;
  ReadReport report;
  std::vector<PreferenceList> lists = read_lists(input, summary.format, options, &report);
  summary.skipped = report.skipped;
  for (const std::string& message : report.skip_messages) {
    if (summary.skip_messages.size() < 20) summary.skip_messages.push_back(message);
  }
  const bool skip_bad = config.data.on_bad_record == "skip";

  // One process: straight into `output`. Data parallel: this rank's lines ("<index>\t<json>")
  // into its part file, merged by rank 0 below.
  const std::filesystem::path part = rank_part_path(output, g.rank(), g.world());
  const bool sharded = g.world() > 1;
  AtomicFileWriter writer(sharded ? part : output);
  Progress bar(static_cast<std::int64_t>(lists.size()), "log-probs", "lists");
  for (std::size_t index = 0; index < lists.size(); ++index) {
    PreferenceList& list = lists[index];
    if (sharded &&
        index % static_cast<std::size_t>(g.world()) != static_cast<std::size_t>(g.rank())) {
      continue;  // another rank's
    }
    try {
      PreferenceList for_encoding = list;  // the encoder wants rewards; they are not used here
      if (!for_encoding.has_rewards()) for_encoding.rewards.assign(list.size(), 0.0);
      ListExample example = prompts.encode_list(for_encoding);
      list.ref_logps = list_logps(model, example, prompts.image(list.record));
    } catch (const Error& e) {
      if (!skip_bad || !e.is_input_error()) throw;
      PERPO_LOG_WARN("skipped ", e.what());
      ++summary.skipped;
      if (summary.skip_messages.size() < 20) summary.skip_messages.push_back(e.what());
      bar.advance();
      continue;
    }
    rebase_image(list.record, input, output);  // resolves from the output's folder
    if (sharded) writer.stream() << index << '\t';
    writer.stream() << to_json(list).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    << '\n';
    ++summary.lists;
    summary.answers += list.size();
    for (double logp : list.ref_logps) summary.logp_sum += logp;
    bar.advance();
  }
  writer.commit();
  bar.finish();
  if (sharded) {
    // Every rank's counts (the all-reduce also waits for every part to be written).
    at::Tensor counts =
        torch::tensor({static_cast<double>(summary.lists), static_cast<double>(summary.answers),
                       static_cast<double>(summary.skipped - report.skipped), summary.logp_sum},
                      torch::kFloat64);
    g.all_reduce_sum(counts);
    const double* c = counts.data_ptr<double>();
    summary.lists = static_cast<std::size_t>(c[0]);
    summary.answers = static_cast<std::size_t>(c[1]);
    summary.skipped = report.skipped + static_cast<std::size_t>(c[2]);
    summary.logp_sum = c[3];
    if (g.writer()) {
      std::vector<std::pair<std::size_t, std::string>> lines;
      for (int r = 0; r < g.world(); ++r) {
        const std::filesystem::path p = rank_part_path(output, r, g.world());
        std::istringstream in(read_file(p));
        for (std::string line; std::getline(in, line);) {
          const std::size_t tab = line.find('\t');
          lines.emplace_back(std::stoull(line.substr(0, tab)), line.substr(tab + 1));
        }
        std::error_code ignored;
        std::filesystem::remove(p, ignored);
      }
      std::sort(lines.begin(), lines.end());
      AtomicFileWriter out(output);
      for (const auto& [index, line] : lines) out.stream() << line << '\n';
      out.commit();
    }
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace perpo
