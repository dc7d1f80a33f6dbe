// `perpo sample`'s loop: lists for every record of a dataset, appended to a JSONL file batch by
// batch, resumable. A killed run started again with the same command continues after the last
// whole line: records already in the file are not sampled again, a cut last line is removed
// (JsonlWriter), and since each answer's random stream depends only on run.seed and the record id
// (sampler.h), the finished file equals that of an uninterrupted run.
//
//   perpo::SampleSummary summary = perpo::sample_to_file(sampler, records, "run/lists.jsonl", 4);
//   std::fputs(summary.to_text().c_str(), stdout);
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/data/records.h"
#include "perpo/dist/process_group.h"
#include "perpo/generate/sample_lists.h"

namespace perpo {

struct SampleSummary {
  std::size_t records = 0;  // dataset records
  std::size_t lists = 0;    // lists in the output file at the end
  std::size_t resumed = 0;  // of which were there before this run
  std::size_t skipped = 0;  // bad records left out (data.on_bad_record: skip)
  std::size_t answers = 0;  // answers of all lists
  double reward_sum = 0;
  double reward_max = 0;
  std::array<std::size_t, 10> histogram{};   // bin k: rewards in [k/10, (k+1)/10); 1.0 in bin 9
  std::map<std::string, std::size_t> notes;  // reward note -> answers
  std::size_t unparsable = 0;                // answers whose note is not "ok"
  std::size_t all_equal = 0;               // lists whose rewards are all equal (no training signal)
  std::size_t duplicates_dropped = 0;      // sampling.unique_answers
  std::size_t short_lists = 0;             // fewer distinct answers than num_answers
  GenerationStats stats;                   // tokens decoded in this run
  double seconds = 0;                      // wall time of this run
  std::vector<std::string> skip_messages;  // the first 20
  bool stopped = false;                    // SIGINT/SIGTERM ended the run early (resumable)

  /// Counts one list (its rewards and record.extra["reward_notes"]).
  void add(const PreferenceList& list);
  double mean_reward() const { return answers ? reward_sum / static_cast<double>(answers) : 0.0; }
  /// The end-of-run report: counts, rewards (mean, max, histogram), notes, lists without signal.
  std::string to_text() const;
};

/// Checks, before anything is written, that an existing non-empty `output` is lists of `records`
/// (what an earlier run of the same command wrote, perhaps with a cut last line): every whole line
/// a JSON object whose "id" is one of `records`, a cut last piece starting with '{'. Returns true
/// when it is (sampling continues it) and false when `output` is absent or empty. Anything else
/// throws perpo::Error (input) naming the file and the line, unless `force`: then it returns
/// false and the caller starts the file afresh. Never modifies `output`.
/// `stamp` (sample_stamp) says how the lists are drawn; it is kept beside the output in
/// .<name>.perpo-sample.json, and a file written with another stamp is not continued (refused, or
/// replaced with `force`): a killed run continued with another N, seed or temperature would mix
/// lists of both in one file.
bool check_sample_output(const std::filesystem::path& output,
                         const std::vector<DatasetRecord>& records, bool force,
                         const nlohmann::json& stamp = nlohmann::json());

/// The settings that decide the lists perpo sample writes (sampling.*, run.seed, reward.*, the
/// model and tokenizer, data limits), as JSON.
nlohmann::json sample_stamp(const Config& config);

/// Where check_sample_output keeps the stamp of `output`.
std::filesystem::path sample_stamp_path(const std::filesystem::path& output);

/// Samples lists for `records` into `output` (appending; see the file comment), `lists_per_batch`
/// records decoded together, with a progress bar (lists/s, tokens/s, ETA). Stops after the
/// current batch when stop_requested() (core/signals.h) turns true. Throws perpo::Error
/// (input) for duplicate record ids, or when `output` holds lists of records not in `records`.
/// `force`: an output that is not such lists is replaced (check_sample_output).
SampleSummary sample_to_file(ListSampler& sampler, const std::vector<DatasetRecord>& records,
                             const std::filesystem::path& output, int lists_per_batch,
                             bool force = false, const nlohmann::json& stamp = nlohmann::json());

/// Data parallel (`group` of W > 1 ranks; W = 1 is sample_to_file): the records not yet in
/// `output` are dealt out (rank r takes every W-th), each rank samples its share into its own part
/// file beside `output` (".<name>.rank-R-of-W", resumable as `output` is), and once every rank is
/// done rank 0 writes `output` with its lists and the parts' in the records' order and removes the
/// parts: the file equals one process's (each answer's random stream depends on run.seed, the
/// record id and n alone). A stop on any rank stops all after their batch; the parts stay for the
/// next run with the same W. Every rank calls it; rank 0's summary counts every rank's lists and
/// tokens. `output` must be a regular file or absent.
SampleSummary sample_to_file_sharded(ListSampler& sampler,
                                     const std::vector<DatasetRecord>& records,
                                     const std::filesystem::path& output, int lists_per_batch,
                                     bool force, const nlohmann::json& stamp,
                                     const ProcessGroup& group);

}  // namespace perpo
