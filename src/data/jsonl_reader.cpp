// JSONL readers for dataset records and preference lists, and the image checks they run.
#include <array>
#include <cctype>
#include <cstring>
#include <fstream>
#include <set>

#include "json_fields.h"
#include "perpo/core/error.h"
#include "perpo/core/input_file.h"
#include "perpo/core/log.h"
#include "perpo/core/strings.h"
#include "perpo/data/jsonl.h"
#include "perpo/image/image.h"
#include "reader_common.h"

namespace perpo {

namespace fs = std::filesystem;
using data_detail::describe_type;
using data_detail::number_rows_field;
using data_detail::numbers_field;
using data_detail::string_field;
using data_detail::strings_field;

ReadOptions ReadOptions::from(const DataConfig& config) {
  ReadOptions options;
  options.skip_bad_records = config.on_bad_record == "skip";
  return options;
}

namespace {

// First bytes of the formats stb_image decodes (TGA has no signature and is not accepted).
bool looks_like_image(const unsigned char* head, std::size_t size) {
  auto starts = [&](const char* magic, std::size_t length) {
    return size >= length && std::memcmp(head, magic, length) == 0;
  };
  return starts("\x89PNG\r\n\x1a\n", 8) || starts("\xff\xd8\xff", 3) || starts("BM", 2) ||
         starts("GIF8", 4) || starts("8BPS", 4) || starts("#?RADIANCE", 10) ||
         (size >= 2 && head[0] == 'P' && head[1] >= '1' && head[1] <= '6');
}

}  // namespace

void check_image(const fs::path& image, const RecordSource& source, ImageCheck check) {
  if (check == ImageCheck::kNone) return;
  if (image.empty()) {
    throw input_error(source.to_string(), ": the record has no image")
        .hint("give \"image\": a path relative to the records file's folder, or absolute");
  }
  const std::string where = source.to_string();
  std::error_code error;
  if (!fs::exists(image, error)) {
    throw input_error(where, ": image ", image.string(), " does not exist")
        .hint("relative image paths are read from the folder of " + source.file.string());
  }
  if (!fs::is_regular_file(image, error)) {  // a FIFO without a writer would block the read
    throw input_error(where, ": image ", image.string(), " is ",
                      fs::is_directory(image, error) ? "a folder" : "not a regular file",
                      ", not an image file")
        .hint("images are regular PNG, JPEG, BMP, GIF or PNM files");
  }
  if (check == ImageCheck::kDecode) {
    try {
      load_image(image);
    } catch (const Error& e) {
      throw input_error(where, ": image ", image.string(), " cannot be decoded: ", e.message());
    }
    return;
  }
  std::ifstream in(image, std::ios::binary);
  std::array<unsigned char, 16> head{};
  in.read(reinterpret_cast<char*>(head.data()), head.size());
  if (!in && in.gcount() <= 0) {
    throw input_error(where, ": image ", image.string(), " cannot be read")
        .hint("check that it is a file and readable");
  }
  if (!looks_like_image(head.data(), static_cast<std::size_t>(in.gcount()))) {
    throw input_error(where, ": image ", image.string(),
                      " is not a PNG, JPEG, BMP, GIF or PNM file");
  }
}

namespace data_detail {

fs::path resolve_image(const fs::path& records_file, const std::string& image) {
  const fs::path path(image);
  if (path.is_absolute()) return path;
  return records_file.parent_path() / path;
}

void note_skip(const Error& error, const ReadOptions& options, ReadReport& report) {
  if (!options.skip_bad_records || !error.is_input_error()) throw error;
  ++report.skipped;
  if (report.skip_messages.size() < 100) report.skip_messages.push_back(error.what());
  if (report.skipped <= 10) PERPO_LOG_WARN("skipping bad record: ", error.what());
}

void log_skips(const fs::path& path, const ReadReport& report) {
  if (report.skipped > 0) {
    PERPO_LOG_WARN("skipped ", report.skipped, " bad record(s) of ", path.string(),
                   " (data.on_bad_record: skip); ", report.records, " read");
  }
}

DatasetRecord parse_record(const nlohmann::json& json, const RecordSource& source,
                           const ReadOptions& options, bool in_list) {
  static const std::set<std::string> record_keys = {"id", "task", "image", "prompt",
                                                    "ground_truth"};
  static const std::set<std::string> list_keys = {"answers", "rewards", "ref_logps",
                                                  "sample_token_logps"};
  DatasetRecord record;
  record.source = source;
  record.id = string_field(json, "id", source, false,
                           source.file.stem().string() + "-" + std::to_string(source.line), true);
  record.task = string_field(json, "task", source, false);
  record.image = string_field(json, "image", source, options.require_prompt);
  record.prompt = string_field(json, "prompt", source, options.require_prompt);
  // A number is a valid truth for the numeric reward: 42 reads as "42".
  record.ground_truth = string_field(json, "ground_truth", source,
                                     !in_list && options.require_ground_truth, "", true);
  for (const auto& [key, value] : json.items()) {
    if (record_keys.count(key) || (in_list && list_keys.count(key))) continue;
    record.extra[key] = value;
  }
  if (!record.image.empty()) record.image_path = resolve_image(source.file, record.image);
  return record;
}

bool json_depth_exceeds(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

nlohmann::json parse_json_text(std::string_view text, const std::string& where,
                               const ReadOptions& options, const char* hint) {
  // nlohmann's parser is iterative, but dumping and copying are recursive: a JSON text nested
  // 100k deep would overflow the stack later, so depth is checked before parsing.
  if (json_depth_exceeds(text, options.max_json_depth)) {
    throw input_error(where, ": JSON nested deeper than ", options.max_json_depth, " levels")
        .hint("records are flat objects; this is not a list record");
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error; out_of_range: 1e400
    throw input_error(where, ": not valid JSON (", e.what(), ")").hint(hint);
  }
}

// Calls `parse(json, source)` for every non-blank line of `text` (the whole file); bad records
// throw or are skipped.
template <typename Record, typename Parse>
std::vector<Record> read_jsonl_text(const std::string& text, const fs::path& path,
                                    const ReadOptions& options, ReadReport* report, Parse parse) {
  ReadReport local;
  ReadReport& counts = report ? *report : local;
  std::vector<Record> records;
  std::size_t line_number = 0;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_number;
    if (trim(line).empty()) continue;
    const RecordSource source{path, line_number};
    try {
      if (line.size() > options.max_line_bytes) {
        throw input_error(source.to_string(), ": the line has ", line.size(),
                          " bytes, more than the ", options.max_line_bytes, " a record may have")
            .hint("is this a JSONL file? each line must hold one record");
      }
      nlohmann::json json = parse_json_text(line, source.to_string(), options,
                                            "each line must hold one complete JSON object");
      if (!json.is_object()) {
        throw input_error(source.to_string(), ": a record must be a JSON object, got ",
                          describe_type(json));
      }
      records.push_back(parse(json, source));
      ++counts.records;
    } catch (const Error& e) {
      note_skip(e, options, counts);
    }
  }
  log_skips(path, counts);
  return records;
}

std::vector<PreferenceList> read_preference_lists_text(const std::string& text,
                                                       const fs::path& path,
                                                       const ReadOptions& options,
                                                       ReadReport* report) {
  return read_jsonl_text<PreferenceList>(
      text, path, options, report, [&](const nlohmann::json& json, const RecordSource& source) {
        PreferenceList list;
        list.record = parse_record(json, source, options, true);
        list.answers = strings_field(json, "answers", source, true);
        list.rewards = numbers_field(json, "rewards", source, options.require_rewards);
        list.ref_logps = numbers_field(json, "ref_logps", source, false);
        list.sample_token_logps = number_rows_field(json, "sample_token_logps", source, false);
        check_image(list.record.image_path, source, options.image_check);
        validate_list(list, options.require_rewards);
        return list;
      });
}

}  // namespace data_detail

std::vector<DatasetRecord> read_dataset(const fs::path& path, const ReadOptions& options,
                                        ReadReport* report) {
  return data_detail::read_jsonl_text<DatasetRecord>(
      read_input_file(path), path, options, report,
      [&](const nlohmann::json& json, const RecordSource& source) {
        DatasetRecord record = data_detail::parse_record(json, source, options, false);
        check_image(record.image_path, source, options.image_check);
        return record;
      });
}

std::vector<PreferenceList> read_preference_lists(const fs::path& path, const ReadOptions& options,
                                                  ReadReport* report) {
  return data_detail::read_preference_lists_text(read_input_file(path), path, options, report);
}

std::string detect_list_format_of_text(std::string_view text, const std::string& format) {
  if (format == "perpo" || format == "authors") return format;
  PERPO_CHECK_INPUT(format == "auto", "unknown list format '", format,
                    "' (data.format must be auto, perpo or authors)");
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) return c == '[' ? "authors" : "perpo";
  }
  return "perpo";
}

std::string detect_list_format(const fs::path& path, const std::string& format) {
  if (format != "auto") return detect_list_format_of_text("", format);
  std::error_code error;
  if (fs::exists(path, error) && !fs::is_regular_file(path, error)) {
    // Peeking would consume a pipe's bytes; read_lists reads it once and detects in memory.
    throw input_error("cannot detect the format of ", path.string(),
                      " without reading it: it is not a regular file")
        .hint("give the format: --input-format perpo (JSONL) or --input-format authors");
  }
  return detect_list_format_of_text(read_input_file(path), format);
}

std::vector<PreferenceList> read_lists(const fs::path& path, const std::string& format,
                                       const ReadOptions& options, ReadReport* report) {
  const std::string text = read_input_file(path);  // once: a pipe cannot be read twice
  if (detect_list_format_of_text(text, format) == "authors") {
    return data_detail::read_authors_lists_text(text, path, options, report);
  }
  return data_detail::read_preference_lists_text(text, path, options, report);
}

}  // namespace perpo
