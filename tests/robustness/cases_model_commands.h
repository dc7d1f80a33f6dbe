// Setup shared by the rows of the commands that run a model (sample, logps, eval, train): a
// config file at {dir}/c.yaml that uses the built-in tiny model with the test tokenizer, and a
// small dataset at {dir}/records.jsonl (its image need not exist for rows that fail earlier).
#pragma once

#include <functional>
#include <string>

#include "harness.h"

namespace perpo::robustness {

/// YAML for the tiny model (16 px images) with the fixture tokenizer, plus `extra` lines.
inline std::string tiny_model_yaml(const fs::path& dir, const std::string& extra = "") {
  return "model:\n  tiny: {vision_hidden: 16, vision_layers: 1, vision_heads: 2, image_size: 16,"
         " patch_size: 8, hidden: 32, layers: 1, heads: 4, kv_heads: 2, intermediate: 48}\n"
         "tokenizer:\n  path: " +
         (fixtures_dir() / "tokenizer" / "tiny.model").string() +
         "\n  chat_template: plain\nimage:\n  size: 16\nrun:\n  dir: " + (dir / "run").string() +
         "\n" + extra;
}

inline const char* kOneRecord =
    R"({"id": "r1", "task": "grounding", "image": "img.png", "prompt": "the red square", )"
    R"("ground_truth": "[0.10, 0.20, 0.30, 0.40]"})"
    "\n";

/// {dir}/c.yaml with `extra` config lines and {dir}/records.jsonl with one record.
inline void write_tiny_setup(const fs::path& dir, const std::string& extra = "") {
  write_text(dir / "c.yaml", tiny_model_yaml(dir, extra));
  write_text(dir / "records.jsonl", kOneRecord);
}

/// write_tiny_setup plus the record's image (a fixture PNG), for rows that fail past the reader.
inline void write_tiny_setup_with_image(const fs::path& dir) {
  write_tiny_setup(dir);
  fs::copy_file(fixtures_dir() / "image" / "grey_40x30.png", dir / "img.png");
}

/// A setup: write_tiny_setup_with_image, then {dir}/records.jsonl holding one record "r1" of
/// `task` with `prompt` and `ground_truth` (JSON-escaped already).
inline std::function<void(const fs::path&)> record_setup(const std::string& task,
                                                         const std::string& prompt,
                                                         const std::string& ground_truth) {
  return [=](const fs::path& dir) {
    write_tiny_setup_with_image(dir);
    write_text(dir / "records.jsonl", R"({"id": "r1", "task": ")" + task +
                                          R"(", "image": "img.png", "prompt": ")" + prompt +
                                          R"(", "ground_truth": ")" + ground_truth + "\"}\n");
  };
}

}  // namespace perpo::robustness
