// Pieces the JSONL reader and the authors' importer share. Private to data/.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/data/jsonl.h"

namespace perpo::data_detail {

/// `image` as written in a record, resolved against the folder of `records_file`.
std::filesystem::path resolve_image(const std::filesystem::path& records_file,
                                    const std::string& image);

/// A bad record: rethrows `error` unless skipping input errors; else counts and logs it.
void note_skip(const Error& error, const ReadOptions& options, ReadReport& report);

/// One warning line summarising the skips of a file, if there were any.
void log_skips(const std::filesystem::path& path, const ReadReport& report);

/// The dataset-record part of a JSON object; unknown fields go to `extra`. `in_list`: answers,
/// rewards and ref_logps are the list's own (not extra) and ground_truth is optional.
DatasetRecord parse_record(const nlohmann::json& json, const RecordSource& source,
                           const ReadOptions& options, bool in_list);

/// True when `text` (JSON) nests arrays / objects deeper than `max_depth` (strings skipped).
bool json_depth_exceeds(std::string_view text, int max_depth);

/// Parses one JSON text after checking its depth against options.max_json_depth. Throws
/// perpo::Error (input) "<where>: not valid JSON (...)" with `hint`, or "nested deeper than".
nlohmann::json parse_json_text(std::string_view text, const std::string& where,
                               const ReadOptions& options, const char* hint);

/// The readers on a file's text already in memory (read once: the file may be a pipe).
std::vector<PreferenceList> read_preference_lists_text(const std::string& text,
                                                       const std::filesystem::path& path,
                                                       const ReadOptions& options,
                                                       ReadReport* report);
std::vector<PreferenceList> read_authors_lists_text(const std::string& text,
                                                    const std::filesystem::path& path,
                                                    const ReadOptions& options, ReadReport* report);

}  // namespace perpo::data_detail
