// Robustness rows for `perpo score`: bad list files, bad flags, outputs that may not be written.
// Each row's output goes to {dir}/new/out.jsonl unless it tests the output itself; the harness
// checks that neither the folder `new` nor any temporary file appears.
#include <unistd.h>

#include "harness.h"

namespace perpo::robustness {

namespace {

const std::string kGood =
    R"({"answers": ["[0.1, 0.2, 0.3, 0.4]", "no box"], "ground_truth": "[0.1, 0.2, 0.3, 0.4]"})";
const std::string kScore = "score --reward iou --input {dir}/in.jsonl ";

// A row scoring {dir}/in.jsonl holding `text`.
Case list_case(std::string name, std::string text, std::string message,
               std::string extra_args = "") {
  return {std::move(name), kScore + "--output {dir}/new/out.jsonl" + extra_args,
          [text](const fs::path& dir) { write_text(dir / "in.jsonl", text); }, 2,
          std::move(message)};
}

// A row with a good input and the given output / flags.
Case flag_case(std::string name, std::string args_after_input, std::string message,
               std::function<void(const fs::path&)> more_setup = nullptr) {
  return {std::move(name), kScore + args_after_input,
          [more_setup](const fs::path& dir) {
            write_text(dir / "in.jsonl", kGood + "\n");
            if (more_setup) more_setup(dir);
          },
          2, std::move(message)};
}

std::string authors_item(const std::string& fields) {
  return R"({"image_path": "x.png", "question": "q", "answer": "[0, 0, 1, 1]", )" + fields + "}";
}

}  // namespace

PERPO_ROBUSTNESS_CASES(score) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  return {
      // Flags.
      {"no_input_flag", "score --reward iou --output {dir}/out.jsonl", nullptr, 2, "--input"},
      flag_case("output_is_an_existing_file", "--output {dir}/mine.jsonl", "only with --force",
                [](const fs::path& dir) { write_text(dir / "mine.jsonl", "my notes\n"); }),
      {"missing_input", kScore + "--output {dir}/out.jsonl", nullptr, 2, "in.jsonl"},
      flag_case("no_output_flag", "", "--output"),
      {"unknown_reward", "score --reward iuo --input {dir}/in.jsonl --output {dir}/new/out.jsonl",
       [](const fs::path& dir) { write_text(dir / "in.jsonl", kGood + "\n"); }, 2,
       "did you mean 'iou'"},
      {"no_reward", "score --input {dir}/in.jsonl --output {dir}/new/out.jsonl",
       [](const fs::path& dir) { write_text(dir / "in.jsonl", kGood + "\n"); }, 2,
       "needs a reward"},
      flag_case("bad_input_format", "--output {dir}/new/out.jsonl --input-format csv",
                "unknown input format 'csv'"),
      flag_case("bad_box_select", "--output {dir}/new/out.jsonl --box-select middle", "middle"),
      flag_case("image_width_negative", "--output {dir}/new/out.jsonl --image-width -100",
                "--image-width must be a positive number of pixels"),
      flag_case("image_width_zero", "--output {dir}/new/out.jsonl --image-width 0",
                "--image-width must be a positive number of pixels"),
      flag_case("image_width_nan", "--output {dir}/new/out.jsonl --image-width nan",
                "--image-width must be a positive number of pixels"),
      flag_case("image_width_inf", "--output {dir}/new/out.jsonl --image-width inf",
                "--image-width must be a positive number of pixels"),
      flag_case("image_height_negative", "--output {dir}/new/out.jsonl --image-height -1",
                "--image-height must be a positive number of pixels"),
      flag_case("image_width_text", "--output {dir}/new/out.jsonl --image-width wide",
                "--image-width"),
      flag_case("bad_config_override", "--output {dir}/new/out.jsonl reward.nme=x",
                "unknown key 'reward.nme'"),
      // Outputs the rules refuse.
      flag_case("output_is_input", "--output {dir}/in.jsonl", "is the input"),
      flag_case(
          "output_symlink_to_input", "--output {dir}/alias.jsonl", "is the input",
          [](const fs::path& dir) { fs::create_symlink(dir / "in.jsonl", dir / "alias.jsonl"); }),
      flag_case(
          "output_hard_link_to_input", "--output {dir}/hard.jsonl", "is the input",
          [](const fs::path& dir) { fs::create_hard_link(dir / "in.jsonl", dir / "hard.jsonl"); }),
      flag_case("output_inside_input", "--output {dir}/in.jsonl/out.jsonl", "inside the input"),
      flag_case("output_is_folder", "--output {dir}/sub", "is a folder",
                [](const fs::path& dir) { fs::create_directories(dir / "sub"); }),
      flag_case("output_below_a_file", "--output {dir}/notes.txt/out.jsonl",
                "is a regular file, not a folder",
                [](const fs::path& dir) { write_text(dir / "notes.txt", "mine"); }),
      flag_case("output_empty", "--output ''", "empty"),
      // Inputs that are not list files.
      {"input_dev_zero", "score --reward iou --input /dev/zero --output {dir}/new/out.jsonl",
       nullptr, 2, "it is a character device"},
      {"input_is_folder", "score --reward iou --input {dir}/sub --output {dir}/new/out.jsonl",
       [](const fs::path& dir) { fs::create_directories(dir / "sub"); }, 2, "sub"},
      list_case("empty_input", "", "holds no lists"),
      list_case("blank_input", "\n  \n\n", "holds no lists"),
      // Bad records (our JSONL).
      list_case("invalid_json", kGood + "\n{not json\n", "in.jsonl:2: not valid JSON"),
      list_case("truncated_json", R"({"answers": ["a", "b")", "in.jsonl:1: not valid JSON"),
      list_case("invalid_utf8", "{\"answers\": [\"\xff\", \"b\"], \"ground_truth\": \"a\"}\n",
                "in.jsonl:1: not valid JSON"),
      list_case("record_not_object", "\"just a string\"\n",
                "in.jsonl:1: a record must be a JSON object"),
      list_case("answers_missing", R"({"ground_truth": "a"})",
                "in.jsonl:1: field \"answers\" is missing"),
      list_case("answers_not_array", R"({"answers": "a", "ground_truth": "a"})",
                "must be an array of strings"),
      list_case("answer_not_string", R"({"answers": [1, "b"], "ground_truth": "a"})",
                "but entry 0 is a number"),
      list_case("answer_null", R"({"answers": ["a", null], "ground_truth": "a"})",
                "but entry 1 is null"),
      list_case("one_answer", R"({"answers": ["a"], "ground_truth": "a"})",
                "in.jsonl:1: a preference list needs at least 2 answers, got 1"),
      list_case("no_answers", R"({"answers": [], "ground_truth": "a"})",
                "at least 2 answers, got 0"),
      list_case("ref_logps_short",
                R"({"answers": ["a", "b"], "ground_truth": "a", "ref_logps": [-1]})",
                "field \"ref_logps\" has 1 entries but \"answers\" has 2"),
      list_case("ref_logps_strings",
                R"({"answers": ["a", "b"], "ground_truth": "a", "ref_logps": ["x", "y"]})",
                "field \"ref_logps\" must be an array of finite numbers"),
      list_case("rewards_long",
                R"({"answers": ["a", "b"], "ground_truth": "a", "rewards": [1, 0, 1]})",
                "field \"rewards\" has 3 entries"),
      list_case("no_ground_truth", R"({"answers": ["a", "b"]})",
                "in.jsonl:1: the list has no ground truth"),
      list_case("empty_ground_truth", R"({"answers": ["a", "b"], "ground_truth": ""})",
                "no ground truth"),
      list_case("ground_truth_object", R"({"answers": ["a", "b"], "ground_truth": {"box": 1}})",
                "field \"ground_truth\" must be a string or a number, got an object"),
      list_case("ground_truth_bool", R"({"answers": ["a", "b"], "ground_truth": true})",
                "must be a string or a number, got a boolean"),
      list_case("id_object", R"({"id": {}, "answers": ["a", "b"], "ground_truth": "a"})",
                "field \"id\" must be a string"),
      list_case("image_width_string",
                R"({"answers": ["a", "b"], "ground_truth": "a", "image_width": "640"})",
                "field \"image_width\" must be a positive number of pixels"),
      // Issue 23: the units a sampled model wrote its boxes in (BoxConvention::annotate).
      list_case("box_units_unknown",
                R"({"answers": ["a", "b"], "ground_truth": "a", "box_units": "pixel"})",
                "in.jsonl:1: field \"box_units\": unknown box units 'pixel'"),
      list_case("box_units_number",
                R"({"answers": ["a", "b"], "ground_truth": "a", "box_units": 1000})",
                "field \"box_units\" must be a string, got 1000"),
      list_case("image_width_negative_field",
                R"({"answers": ["a", "b"], "ground_truth": "a", "image_width": -100})",
                "field \"image_width\" must be a positive number of pixels, got -100"),
      list_case("image_height_zero_field",
                R"({"answers": ["a", "b"], "ground_truth": "a", "image_height": 0})",
                "field \"image_height\" must be a positive number of pixels, got 0"),
      list_case("deep_nesting",
                R"({"answers": ["a", "b"], "ground_truth": "a", "x": )" + deep + "}\n",
                "in.jsonl:1: JSON nested deeper than"),
      list_case("bad_record_after_good_ones",
                kGood + "\n" + kGood + "\n" + R"({"answers": ["a"], "ground_truth": "a"})",
                "in.jsonl:3: a preference list needs at least 2 answers"),
      // The authors' JSON format.
      list_case("authors_invalid_json", "[{\"answer\": ", "not valid JSON"),
      list_case("authors_item_not_object", "[1, 2]", "in.jsonl:1: an item must be a JSON object"),
      list_case("authors_no_answers_gen", "[\n" + authors_item(R"("iou_scores": [1, 0])") + "\n]",
                "in.jsonl:2: field \"answers_gen\" is missing"),
      list_case("authors_one_answer", "[\n" + authors_item(R"("answers_gen": ["a"])") + "\n]",
                "in.jsonl:2: a preference list needs at least 2 answers"),
      list_case("authors_scores_length",
                "[\n" + authors_item(R"("answers_gen": ["a", "b"], "iou_scores": [1])") + "\n]",
                "field \"rewards\" has 1 entries"),
      list_case("authors_deep", "[" + deep + "]", "JSON nested deeper than"),
      list_case("authors_forced_on_jsonl", kGood + "\n" + kGood + "\n", "not valid JSON",
                " --input-format authors"),
      list_case("ours_forced_on_authors",
                "[\n" + authors_item(R"("answers_gen": ["a", "b"])") + "\n]",
                "in.jsonl:1: not valid JSON", " --input-format ours"),
  };
}

}  // namespace perpo::robustness
