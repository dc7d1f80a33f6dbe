// Importer of the authors' released list format: one JSON list whose items are
//   {"image_id": 581857, "image_path": "coco/train2014/COCO_train2014_000000581857.jpg",
//    "question": "<image>\nPlease provide the bounding box coordinate of ...: the lady",
//    "answer": "[0.1, 0.2, 0.5, 0.9]", "answers_gen": ["[...]", ...], "iou_scores": [0.8, ...]}
// Items are reported by the line they start on ("authors.json:12: ...").
#include <cctype>
#include <set>
#include <string_view>

#include "json_fields.h"
#include "perpo/core/error.h"
#include "perpo/core/input_file.h"
#include "perpo/data/jsonl.h"
#include "reader_common.h"

namespace perpo {

namespace fs = std::filesystem;
using data_detail::numbers_field;
using data_detail::string_field;
using data_detail::strings_field;

namespace {

// The 1-based line on which each element of the top-level JSON array starts. Strings are skipped
// so that brackets and commas inside them do not count.
std::vector<std::size_t> top_level_item_lines(std::string_view text) {
  std::vector<std::size_t> lines;
  std::size_t line = 1;
  int depth = 0;
  bool in_string = false, escaped = false, expect_item = false;
  for (char c : text) {
    if (c == '\n') ++line;
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (depth == 1 && expect_item && !std::isspace(static_cast<unsigned char>(c)) && c != ']') {
      lines.push_back(line);
      expect_item = false;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
      if (depth == 1) expect_item = true;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_item = true;
    }
  }
  return lines;
}

// The fields of a perpo preference list (records.h): the importer fills them itself.
bool is_perpo_field(const std::string& key) {
  static const std::set<std::string> names = {"id",      "task",         "image",
                                              "prompt",  "ground_truth", "answers",
                                              "rewards", "ref_logps",    "sample_token_logps"};
  return names.count(key) > 0;
}

std::string strip_image_placeholder(std::string question) {
  for (std::string_view placeholder : {"<image>\n", "<image>"}) {
    if (question.rfind(placeholder, 0) == 0) return question.substr(placeholder.size());
  }
  return question;
}

PreferenceList parse_item(const nlohmann::json& item, const RecordSource& source,
                          const ReadOptions& options) {
  if (!item.is_object()) {
    throw input_error(source.to_string(), ": an item must be a JSON object, got ",
                      data_detail::describe_type(item));
  }
  PreferenceList list;
  DatasetRecord& record = list.record;
  record.source = source;
  record.id = string_field(item, "image_id", source, false,
                           source.file.stem().string() + "-" + std::to_string(source.line), true);
  record.task = "grounding";
  record.image = string_field(item, "image_path", source, options.require_prompt);
  if (!record.image.empty()) {
    record.image_path = data_detail::resolve_image(source.file, record.image);
  }
  record.prompt =
      strip_image_placeholder(string_field(item, "question", source, options.require_prompt));
  record.ground_truth = string_field(item, "answer", source, false, "", true);
  list.answers = strings_field(item, "answers_gen", source, true);
  list.rewards = numbers_field(item, "iou_scores", source, options.require_rewards);
  for (const auto& [key, value] : item.items()) {
    if (key != "image_id" && key != "image_path" && key != "question" && key != "answer" &&
        key != "answers_gen" && key != "iou_scores") {
      // Written back as perpo JSONL, a field named like one of perpo's own would be lost or
      // would replace the imported value (found by fuzz/authors_json.cpp).
      if (is_perpo_field(key)) {
        throw input_error(source.to_string(), ": field \"", key,
                          "\" is not part of the authors' format and clashes with perpo's own \"",
                          key, "\"")
            .hint(
                "rename or remove it; perpo fills its fields from the authors' ones (question -> "
                "prompt, answer -> ground_truth, answers_gen -> answers, ...)");
      }
      record.extra[key] = value;
    }
  }
  check_image(record.image_path, source, options.image_check);
  validate_list(list, options.require_rewards);
  return list;
}

}  // namespace

std::vector<PreferenceList> read_authors_lists(const fs::path& path, const ReadOptions& options,
                                               ReadReport* report) {
  return data_detail::read_authors_lists_text(read_input_file(path), path, options, report);
}

std::vector<PreferenceList> data_detail::read_authors_lists_text(const std::string& text,
                                                                 const fs::path& path,
                                                                 const ReadOptions& options,
                                                                 ReadReport* report) {
  ReadOptions whole = options;
  whole.max_json_depth = options.max_json_depth + 1;  // the list around the items
  const nlohmann::json json = data_detail::parse_json_text(
      text, path.string(), whole,
      "the authors' format is one JSON list; use --input-format perpo for JSONL");
  if (!json.is_array()) {
    throw input_error(path.string(), ": the authors' format is a JSON list, got ",
                      data_detail::describe_type(json));
  }
  const std::vector<std::size_t> lines = top_level_item_lines(text);
  ReadReport local;
  ReadReport& counts = report ? *report : local;
  std::vector<PreferenceList> lists;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const RecordSource source{path, i < lines.size() ? lines[i] : 0};
    try {
      lists.push_back(parse_item(json[i], source, options));
      ++counts.records;
    } catch (const Error& e) {
      data_detail::note_skip(e, options, counts);
    }
  }
  data_detail::log_skips(path, counts);
  return lists;
}

}  // namespace perpo
