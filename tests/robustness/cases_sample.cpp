// Robustness rows for `perpo sample`: bad configs, data and model/tokenizer pairs.
#include "cases_model_commands.h"
#include "perpo/synth/raster.h"
#include "qwen_fixture.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(sample) {
  const std::string run = "sample --config {dir}/c.yaml";
  // Data parallel: torchrun's variables, a bad set refused before anything is read or written.
  Case port_missing{"dist_port_missing", run, [](const fs::path& dir) { write_tiny_setup(dir); }, 2,
                    "MASTER_PORT is not set"};
  port_missing.env = "WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1";
  Case no_rendezvous{"dist_no_rendezvous", run + " distributed.timeout_s=2",
                     [](const fs::path& dir) { write_tiny_setup(dir); }, 1,
                     "no rendezvous with rank 0 at 127.0.0.1:1 within 2 s"};
  no_rendezvous.env = "WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=1";
  CaseList rows = {
      {"missing_config", "sample --config {dir}/none.yaml", nullptr, 2, "none.yaml"},
      {"unknown_key", run,
       [](const fs::path& dir) { write_tiny_setup(dir, "sampling:\n  num_answerz: 4\n"); }, 2,
       "did you mean 'sampling.num_answers'"},
      {"one_answer", run + " sampling.num_answers=1",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "must be in [2, 4096]"},
      {"missing_records", run + " data.train={dir}/none.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none.jsonl"},
      {"tiny_model_without_tokenizer", run + " data.train={dir}/records.jsonl tokenizer.path=",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "needs tokenizer.path"},
      {"model_folder_missing", run + " data.train={dir}/records.jsonl model.path={dir}/nope",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "does not exist"},
      // Issue 23: model families. An unknown model_type; a Qwen2.5-VL folder with a tokenizer of
      // another kind; an image whose merged tokens do not fit the context (512 positions).
      {"model_type_unknown", run + " data.train={dir}/records.jsonl model.path={dir}/m",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         fs::create_directories(dir / "m");
         write_text(dir / "m" / "config.json", R"({"model_type": "qwen3_vl"})");
       },
       2, "'qwen3_vl': unknown architecture; perpo loads llava, qwen2_5_vl"},
      {"qwen_with_a_sentencepiece_tokenizer",
       run + " data.train={dir}/records.jsonl model.path={dir}/qwen tokenizer.path={dir}/tok.model",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         test::write_tiny_qwen(dir / "qwen", 1);
         fs::copy_file(fixtures_dir() / "tokenizer" / "tiny.model", dir / "tok.model");
       },
       2, "tok.model is not valid JSON"},
      {"qwen_image_tokens_over_the_context",
       run + " data.train={dir}/records.jsonl model.path={dir}/qwen tokenizer.path= "
             "tokenizer.chat_template=auto image.min_pixels=602112 image.max_pixels=602112",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         test::write_tiny_qwen(dir / "qwen", 1);
       },
       2, "exceeds the model's context"},
      {"box_format_unknown", run + " data.train={dir}/records.jsonl reward.box_format=pixel",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "reward.box_format"},
      // A Qwen2.5-VL folder whose tokenizer.json belongs to another model (its <|image_pad|> is
      // 812, the config says 811); an image past smart_resize's 200:1 aspect ratio.
      {"qwen_tokenizer_of_another_model",
       run + " data.train={dir}/records.jsonl model.path={dir}/qwen tokenizer.path= "
             "tokenizer.chat_template=auto",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         test::write_tiny_qwen(dir / "qwen", 1);
         auto config = nlohmann::json::parse(read_text(dir / "qwen" / "config.json"));
         config["image_token_id"] = 811;
         write_text(dir / "qwen" / "config.json", config.dump(2));
       },
       2, "gives the image placeholder id 812 but the model expects image_token_index 811"},
      {"qwen_image_aspect_over_200",
       run + " data.train={dir}/records.jsonl model.path={dir}/qwen tokenizer.path= "
             "tokenizer.chat_template=auto",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         test::write_tiny_qwen(dir / "qwen", 1);
         RgbImage line{402, 2, std::vector<std::uint8_t>(402 * 2 * 3, 128)};
         fs::remove(dir / "img.png");
         write_text(dir / "img.png", encode_png(line));
       },
       2, "image of 402x2 pixels has an aspect ratio of 201"},
      {"tokenizer_does_not_fit_model",
       run + " data.train={dir}/records.jsonl model.path={dir}/ckpt image.size=32",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         copy_checkpoint(dir / "ckpt");
       },
       2, "embeds only 96"},
      {"image_size_does_not_fit_model", run + " data.train={dir}/records.jsonl image.size=32",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "image.size=16"},
      {"missing_image", run + " data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "img.png"},
      {"output_is_a_user_file",
       run + " data.train={dir}/records.jsonl sampling.output={dir}/notes.txt",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "notes.txt", "my notes\nno newline at the end");
       },
       2, "continues only lists it wrote"},
      {"output_holds_other_json",
       run + " data.train={dir}/records.jsonl sampling.output={dir}/mine.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "mine.jsonl", "{\"id\": \"r1\", \"note\": \"mine\"}\n");
       },
       2, "no \"id\" and \"answers\""},
      {"output_is_the_records",
       run + " data.train={dir}/records.jsonl sampling.output={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2,
       "is the input {dir}/records.jsonl"},
      // Issue 21: --force never reaches an input (the tokenizer, the config file, an image).
      {"output_is_the_tokenizer_forced",
       run + " --force data.train={dir}/records.jsonl sampling.output={dir}/tok.model "
             "tokenizer.path={dir}/tok.model",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         fs::copy_file(fixtures_dir() / "tokenizer" / "tiny.model", dir / "tok.model");
       },
       2, "is the input {dir}/tok.model"},
      {"output_is_the_config_forced",
       run + " --force data.train={dir}/records.jsonl sampling.output={dir}/c.yaml",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2,
       "is the input {dir}/c.yaml"},
      {"output_is_an_image_forced",
       run + " --force data.train={dir}/records.jsonl sampling.output={dir}/img.png",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2, "is the input"},
      {"image_mean_nan", run + " data.train={dir}/records.jsonl image.mean=[nan,0.5,0.5]",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2,
       "'image.mean' must be in [0, 1]; got nan"},
      {"num_answers_huge", run + " data.train={dir}/records.jsonl sampling.num_answers=1000000000",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 2,
       "'sampling.num_answers' must be in [2, 4096]"},
      // Per-record checks run before the run folder is created (the row writes nothing).
      {"two_image_placeholders", run + " data.train={dir}/records.jsonl",
       record_setup("grounding", "<image> and <image>", "[0.1, 0.2, 0.3, 0.4]"), 2,
       "records.jsonl:1: the prompt holds 2 image placeholder(s)"},
      {"duplicate_ids", run + " data.train={dir}/records.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "records.jsonl", std::string(kOneRecord) + kOneRecord);
       },
       2, "record id 'r1' was already used"},
      {"ground_truth_nan_box", run + " data.train={dir}/records.jsonl",
       record_setup("grounding", "x", "[nan, 0.2, 0.3, 0.4]"), 2, "cannot use the ground truth"},
      {"ground_truth_degenerate_box", run + " data.train={dir}/records.jsonl",
       record_setup("grounding", "x", "[0.3, 0.2, 0.3, 0.4]"), 2, "cannot use the ground truth"},
      {"unknown_task", run + " data.train={dir}/records.jsonl", record_setup("vqa", "x", "yes"), 2,
       "no default reward for task 'vqa'"},
      {"image_is_a_fifo", run + " data.train={dir}/records.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup(dir);
         make_fifo(dir / "img.png");
       },
       2, "is not a regular file"},
      // Issue 21: "filesystem error: cannot get file size" for devices; they are written in place.
      {"output_dev_null",
       run + " data.train={dir}/records.jsonl sampling.output=/dev/null "
             "sampling.num_answers=2 sampling.max_new_tokens=2",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 0, "wrote /dev/null"},
      {"output_dev_full",
       run + " data.train={dir}/records.jsonl sampling.output=/dev/full "
             "sampling.num_answers=2 sampling.max_new_tokens=2",
       [](const fs::path& dir) { write_tiny_setup_with_image(dir); }, 1, "/dev/full"},
      {"continue_with_other_settings", run + " data.train={dir}/records.jsonl",
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         write_text(dir / "run" / ".perpo-output", "written by perpo\nkind: run\n");
         write_text(dir / "run" / "lists.jsonl",
                    R"({"id": "r1", "answers": ["a", "b"], "rewards": [0, 0]})"
                    "\n");
         write_text(dir / "run" / ".lists.jsonl.perpo-sample.json",
                    R"({"sampling.num_answers": "7"})");
       },
       2, "sampling.num_answers: 7 then, 20 now"},
  };
  rows.push_back(port_missing);
  rows.push_back(no_rendezvous);
  return rows;
}

}  // namespace perpo::robustness
