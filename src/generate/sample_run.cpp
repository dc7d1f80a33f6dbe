#include "perpo/generate/sample_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/progress.h"
#include "perpo/core/signals.h"
#include "perpo/core/strings.h"
#include "perpo/data/jsonl.h"
#include "perpo/data/jsonl_writer.h"

namespace perpo {

void SampleSummary::add(const PreferenceList& list) {
  ++lists;
  const auto notes_json = list.record.extra.find("reward_notes");
  for (std::size_t i = 0; i < list.rewards.size(); ++i) {
    const double reward = list.rewards[i];
    reward_max = answers == 0 ? reward : std::max(reward_max, reward);
    ++answers;
    reward_sum += reward;
    const auto bin = static_cast<std::size_t>(std::clamp(reward, 0.0, 1.0) * 10);
    ++histogram[std::min<std::size_t>(bin, 9)];
    if (notes_json != list.record.extra.end() && notes_json->is_array() && i < notes_json->size() &&
        (*notes_json)[i].is_string()) {
      const std::string note = (*notes_json)[i].get<std::string>();
      ++notes[note];
      if (note != "ok") ++unparsable;
    }
  }
  if (!list.rewards.empty() && std::all_of(list.rewards.begin(), list.rewards.end(),
                                           [&](double r) { return r == list.rewards.front(); })) {
    ++all_equal;
  }
}

std::string SampleSummary::to_text() const {
  std::ostringstream out;
  char line[200];
  std::snprintf(line, sizeof(line),
                "%zu lists (%zu from an earlier run) of %zu records, %zu skipped\n", lists, resumed,
                records, skipped);
  out << line;
  std::snprintf(line, sizeof(line), "%zu answers: mean reward %.4f, max %.4f\n", answers,
                mean_reward(), reward_max);
  out << line;
  const std::size_t peak =
      std::max<std::size_t>(1, *std::max_element(histogram.begin(), histogram.end()));
  for (std::size_t bin = 0; bin < histogram.size(); ++bin) {
    std::snprintf(line, sizeof(line), "  [%.1f, %.1f%c %8zu  ", bin / 10.0, (bin + 1) / 10.0,
                  bin == 9 ? ']' : ')', histogram[bin]);
    out << line << std::string(histogram[bin] * 40 / peak, '#') << '\n';
  }
  out << "notes:";
  for (const auto& [note, count] : notes) out << ' ' << note << ' ' << count;
  out << (notes.empty() ? " none\n" : "\n");
  std::snprintf(line, sizeof(line),
                "unparsable answers %zu; lists with all rewards equal (no signal) %zu\n",
                unparsable, all_equal);
  out << line;
  if (duplicates_dropped > 0 || short_lists > 0) {
    std::snprintf(line, sizeof(line),
                  "repeated answers dropped %zu; lists short of distinct answers %zu\n",
                  duplicates_dropped, short_lists);
    out << line;
  }
  if (seconds > 0) {
    std::snprintf(line, sizeof(line), "this run: %lld tokens decoded in %.1f s (%.1f tokens/s)\n",
                  static_cast<long long>(stats.generated_tokens), seconds,
                  static_cast<double>(stats.generated_tokens) / seconds);
    out << line;
  }
  for (const std::string& message : skip_messages) out << "skipped: " << message << '\n';
  if (stopped) out << "stopped by a signal: run the same command again to continue\n";
  return out.str();
}

nlohmann::json sample_stamp(const Config& config) {
  Config decides;  // the settings that decide the lists, nothing else
  decides.sampling = config.sampling;
  decides.sampling.output.clear();
  decides.sampling.lists_per_batch = 0;  // answers do not depend on the batch (sampler.h)
  decides.reward = config.reward;
  decides.model = config.model;
  decides.tokenizer = config.tokenizer;
  decides.image = config.image;
  decides.data.max_prompt_tokens = config.data.max_prompt_tokens;
  decides.data.max_answer_tokens = config.data.max_answer_tokens;
  decides.run.seed = config.run.seed;
  decides.run.dtype = config.run.dtype;
  nlohmann::json stamp = nlohmann::json::object();
  for (const auto& [key, value] : flatten_config(decides)) {
    if (starts_with(key, "sampling.") || starts_with(key, "reward.") ||
        starts_with(key, "model.") || starts_with(key, "tokenizer.") ||
        starts_with(key, "image.") || key == "data.max_prompt_tokens" ||
        key == "data.max_answer_tokens" || key == "run.seed" || key == "run.dtype") {
      stamp[key] = value;
    }
  }
  return stamp;
}

std::filesystem::path sample_stamp_path(const std::filesystem::path& output) {
  const std::filesystem::path folder = output.parent_path();
  return folder / ("." + output.filename().string() + ".perpo-sample.json");
}

namespace {

/// The keys whose values differ between two stamps, "key: a then, b now"; keys the earlier stamp
/// lacks (or an unreadable stamp) are not counted.
std::vector<std::string> stamp_differences(const nlohmann::json& then, const nlohmann::json& now) {
  std::vector<std::string> out;
  for (auto it = now.begin(); it != now.end(); ++it) {
    // A key the earlier run did not record (an older perpo) is not held against it.
    if (!then.is_object() || !then.contains(it.key())) continue;
    const std::string before =
        then[it.key()].is_string() ? then[it.key()].get<std::string>() : then[it.key()].dump();
    if (before != it.value().get<std::string>()) {
      out.push_back(it.key() + ": " + before + " then, " + it.value().get<std::string>() + " now");
    }
  }
  return out;
}

}  // namespace

bool check_sample_output(const std::filesystem::path& output,
                         const std::vector<DatasetRecord>& records, bool force,
                         const nlohmann::json& stamp) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(output, ec) ||
      std::filesystem::file_size(output, ec) == 0) {
    return false;
  }
  const std::filesystem::path stamp_file = sample_stamp_path(output);
  if (stamp.is_object() && std::filesystem::is_regular_file(stamp_file, ec)) {
    nlohmann::json then =
        nlohmann::json::parse(read_file(stamp_file), nullptr, /*allow_exceptions=*/false);
    const std::vector<std::string> differences = stamp_differences(then, stamp);
    if (!differences.empty()) {
      if (force) return false;
      throw input_error(output.string(), " holds lists sampled with other settings (",
                        join(differences, "; "), "); continuing would mix both in one file")
          .hint(
              "sample with the same settings to continue it, pass --force to replace it, or "
              "choose another sampling.output");
    }
  }
  std::unordered_set<std::string> ids;
  for (const DatasetRecord& record : records) ids.insert(record.id);
  const std::string text = read_file(output);
  std::size_t start = 0, line = 1;
  auto refuse = [&](const std::string& why) -> bool {
    if (force) return false;
    throw input_error(output.string(), ":", line, ": ", why,
                      "; perpo sample continues only lists it wrote for this dataset")
        .hint("pass --force to replace the file, or choose another sampling.output");
  };
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) {  // a cut last line: what a killed run leaves
      return text[start] == '{' ? true : refuse("the file does not hold perpo's lists");
    }
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(start),
                                     text.begin() + static_cast<std::ptrdiff_t>(end));
    } catch (const std::exception&) {
      return refuse("the file does not hold perpo's lists (not a JSON line)");
    }
    if (!object.is_object() || !object.contains("answers") || !object.contains("id") ||
        !object["id"].is_string()) {
      return refuse("the file does not hold perpo's lists (no \"id\" and \"answers\")");
    }
    if (!ids.count(object["id"].get<std::string>())) {
      return refuse("list '" + object["id"].get<std::string>() +
                    "' is not a record of this dataset");
    }
    start = end + 1;
    ++line;
  }
  return true;
}

SampleSummary sample_to_file(ListSampler& sampler, const std::vector<DatasetRecord>& records,
                             const std::filesystem::path& output, int lists_per_batch, bool force,
                             const nlohmann::json& stamp) {
  PERPO_CHECK(lists_per_batch >= 1, "lists_per_batch must be >= 1");
  SampleSummary summary;
  summary.records = records.size();
  std::unordered_map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto [it, fresh] = index_of.emplace(records[i].id, i);
    if (!fresh) {
      throw input_error(records[i].source.to_string(), ": record id '", records[i].id,
                        "' was already used at ", records[it->second].source.to_string())
          .hint("record ids must be unique: sample resumes by id");
    }
  }

  const bool ours = check_sample_output(output, records, force, stamp);  // before any write
  JsonlWriter writer(output, /*truncate=*/!ours);  // appends; cuts a cut last line of a killed run
  std::error_code regular_error;
  if (stamp.is_object() && std::filesystem::is_regular_file(output, regular_error)) {
    write_file_atomic(sample_stamp_path(output), stamp.dump(2) + "\n");  // what this file holds
  }
  if (writer.repaired_bytes() > 0) {
    PERPO_LOG_WARN("removed a cut last line (", writer.repaired_bytes(), " bytes) from ",
                   output.string());
  }
  std::unordered_set<std::string> done;
  std::error_code size_error;  // /dev/null, a FIFO, a pipe: nothing to continue
  if (std::filesystem::is_regular_file(output, size_error) &&
      std::filesystem::file_size(output, size_error) > 0 && !size_error) {
    ReadOptions options;
    options.image_check = ImageCheck::kNone;
    for (const PreferenceList& list : read_preference_lists(output, options)) {
      if (!index_of.count(list.record.id)) {
        throw input_error(output.string(), ":", list.record.source.line, ": list '", list.record.id,
                          "' is not a record of this dataset")
            .hint("the output holds lists of another run; pick another sampling.output");
      }
      done.insert(list.record.id);
      summary.add(list);
    }
    summary.resumed = summary.lists;
    if (summary.resumed > 0) {
      PERPO_LOG_INFO("resuming: ", summary.resumed, " lists already in ", output.string());
    }
  }

  std::vector<const DatasetRecord*> todo;
  for (const DatasetRecord& record : records) {
    if (!done.count(record.id)) todo.push_back(&record);
  }
  Progress bar(static_cast<std::int64_t>(records.size()), "sampling", "lists");
  bar.advance(static_cast<std::int64_t>(records.size() - todo.size()));
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t first = 0; first < todo.size(); first += lists_per_batch) {
    if (stop_requested()) {  // SIGINT / SIGTERM: the file ends after a whole batch
      summary.stopped = true;
      break;
    }
    const std::size_t count = std::min<std::size_t>(lists_per_batch, todo.size() - first);
    std::vector<DatasetRecord> batch_records;
    for (std::size_t i = first; i < first + count; ++i) batch_records.push_back(*todo[i]);
    SampledBatch batch = sampler.sample(batch_records);
    for (PreferenceList& list : batch.lists) {
      // A relative image is written relative to the output's folder (lists are read from there).
      rebase_image(list.record, list.record.source.file, output);
      writer.write(to_json(list));
      summary.add(list);
    }
    summary.skipped += batch.skipped.size();
    for (const std::string& message : batch.skipped) {
      PERPO_LOG_WARN("skipped ", message);
      if (summary.skip_messages.size() < 20) summary.skip_messages.push_back(message);
    }
    summary.duplicates_dropped += batch.duplicates_dropped;
    summary.short_lists += batch.short_lists;
    summary.stats.prompt_tokens += batch.stats.prompt_tokens;
    summary.stats.generated_tokens += batch.stats.generated_tokens;
    summary.stats.steps += batch.stats.steps;
    summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char note[64];
    std::snprintf(note, sizeof(note), "%.0f tok/s",
                  summary.seconds > 0 ? summary.stats.generated_tokens / summary.seconds : 0.0);
    bar.set_note(note);
    bar.advance(static_cast<std::int64_t>(count));
  }
  bar.finish();
  return summary;
}

namespace {

// The whole lines of a JSONL file (a cut last line left out), each with its list's "id".
std::vector<std::pair<std::string, std::string>> id_lines(const std::filesystem::path& path) {
  std::vector<std::pair<std::string, std::string>> lines;
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return lines;
  const std::string text = read_file(path);
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    const nlohmann::json object = nlohmann::json::parse(line);
    lines.emplace_back(object.at("id").get<std::string>(), std::move(line));
  }
  return lines;
}

}  // namespace

SampleSummary sample_to_file_sharded(ListSampler& sampler,
                                     const std::vector<DatasetRecord>& records,
                                     const std::filesystem::path& output, int lists_per_batch,
                                     bool force, const nlohmann::json& stamp,
                                     const ProcessGroup& group) {
  if (group.world() == 1) {
    return sample_to_file(sampler, records, output, lists_per_batch, force, stamp);
  }
  std::error_code type_error;
  const auto type = std::filesystem::symlink_status(output, type_error).type();
  if (type != std::filesystem::file_type::not_found &&
      type != std::filesystem::file_type::regular) {
    throw input_error("data-parallel perpo sample writes ", output.string(),
                      " by merging its ranks' parts: it must be a regular file or absent")
        .hint("choose another sampling.output, or sample in one process");
  }
  std::unordered_map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (!index_of.emplace(records[i].id, i).second) {
      throw input_error(records[i].source.to_string(), ": record id '", records[i].id,
                        "' is used twice")
          .hint("record ids must be unique: sample resumes by id");
    }
  }
  // Lists already in `output` (an earlier run) are kept; the other records are dealt out.
  const bool ours = check_sample_output(output, records, force, stamp);
  std::vector<std::pair<std::string, std::string>> kept;
  if (ours) kept = id_lines(output);
  std::unordered_set<std::string> done;
  for (const auto& [id, line] : kept) done.insert(id);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (!done.count(records[i].id)) todo.push_back(i);
  }
  std::vector<DatasetRecord> share;
  for (std::size_t i : rank_share(todo, group.rank(), group.world())) share.push_back(records[i]);
  const std::filesystem::path part = rank_part_path(output, group.rank(), group.world());
  SampleSummary mine = sample_to_file(sampler, share, part, lists_per_batch, force, stamp);

  // Counts every rank adds up: tokens, skipped records, dropped duplicates, short lists.
  at::Tensor counts = torch::tensor(
      {static_cast<double>(mine.stats.prompt_tokens),
       static_cast<double>(mine.stats.generated_tokens), static_cast<double>(mine.stats.steps),
       static_cast<double>(mine.skipped), static_cast<double>(mine.duplicates_dropped),
       static_cast<double>(mine.short_lists), mine.stopped ? 1.0 : 0.0},
      torch::kFloat64);
  group.all_reduce_sum(counts);
  const double* c = counts.data_ptr<double>();
  SampleSummary summary;
  summary.records = records.size();
  summary.stats.prompt_tokens = static_cast<std::int64_t>(c[0]);
  summary.stats.generated_tokens = static_cast<std::int64_t>(c[1]);
  summary.stats.steps = static_cast<std::int64_t>(c[2]);
  summary.skipped = static_cast<std::size_t>(c[3]);
  summary.duplicates_dropped = static_cast<std::size_t>(c[4]);
  summary.short_lists = static_cast<std::size_t>(c[5]);
  summary.skip_messages = mine.skip_messages;  // rank 0's
  summary.seconds = mine.seconds;
  summary.stopped = c[6] > 0;
  if (summary.stopped || !group.writer()) return summary;  // the parts stay for the next run

  // Rank 0: the kept lists and every part's, in the records' order, into `output`.
  std::vector<std::pair<std::string, std::string>> lines = kept;
  for (int r = 0; r < group.world(); ++r) {
    for (auto& entry : id_lines(rank_part_path(output, r, group.world()))) {
      lines.push_back(std::move(entry));
    }
  }
  std::stable_sort(lines.begin(), lines.end(), [&](const auto& a, const auto& b) {
    return index_of.at(a.first) < index_of.at(b.first);
  });
  {
    AtomicFileWriter out(output);
    for (const auto& [id, line] : lines) out.stream() << line << '\n';
    out.commit();
  }
  if (stamp.is_object()) write_file_atomic(sample_stamp_path(output), stamp.dump(2) + "\n");
  for (int r = 0; r < group.world(); ++r) {
    const std::filesystem::path p = rank_part_path(output, r, group.world());
    std::error_code ignored;
    std::filesystem::remove(p, ignored);
    std::filesystem::remove(sample_stamp_path(p), ignored);
  }
  ReadOptions options;
  options.image_check = ImageCheck::kNone;
  for (const PreferenceList& list : read_preference_lists(output, options)) summary.add(list);
  summary.resumed = kept.size();
  return summary;
}

}  // namespace perpo
