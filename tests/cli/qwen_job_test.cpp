// The README's job on a tiny random Qwen2.5-VL checkpoint (issue 23): data synth -> sample ->
// logps -> train (perpo with LoRA, sft) -> eval -> export -> eval of the export, through the same
// commands as LLaVA; the family comes from config.json's model_type. The checkpoint is the "batch"
// fixture's architecture with the Qwen2 tokenizer fixture's vocabulary and special-token ids,
// random weights, written by perpo's exporter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "generate_commands_support.h"
#include "perpo/core/atomic_file.h"
#include "qwen_fixture.h"
#include "run_perpo.h"

namespace {

namespace fs = std::filesystem;
using perpo::test::read_jsonl;
using perpo::test::run_perpo;
using perpo::test::slurp_file;

using perpo::test::write_tiny_qwen;

void write_config(const fs::path& file, const fs::path& model) {
  std::ofstream config(file);
  config << "model:\n  path: " << model.string() << "\n  lora: {enabled: true, r: 4, alpha: 8}\n"
         << "image:\n  min_pixels: 3136\n  max_pixels: 3136\n"  // 56 x 56: 4 image tokens
         << "sampling:\n  num_answers: 3\n  max_new_tokens: 6\n  lists_per_batch: 2\n"
         << "loss:\n  name: perpo\n"
         << "optim:\n  lr: 1.0e-3\n"
         << "train:\n  max_steps: 2\n  lists_per_step: 2\n"
         << "eval:\n  max_new_tokens: 6\n  batch_size: 2\n"
         << "run:\n  dir: runs/q\n  seed: 3\n  threads: 1\n";
}

void expect_ok(const perpo::test::PerpoRun& r, const std::string& what) {
  ASSERT_EQ(r.exit_code, 0) << what << ":\n" << r.output;
}

TEST(CliQwen, TheReadmeJobRunsOnQwen2_5VL) {
  const fs::path home = perpo::test::fresh_scratch_dir("cli_qwen", "job");
  write_tiny_qwen(home / "qwen-tiny", 11);
  write_config(home / "Q.yaml", home / "qwen-tiny");
  const std::string cwd = home.string();
  expect_ok(run_perpo("data synth --task grounding --n 4 --out data/train --seed 1", cwd), "synth");
  expect_ok(
      run_perpo("data synth --task grounding --n 3 --out data/eval --seed 1 --first-index 4", cwd),
      "synth eval");

  // sample: lists of 3 answers decoded by the Qwen model, with reference log-probs.
  expect_ok(run_perpo("sample --config Q.yaml data.train=data/train/records.jsonl", cwd), "sample");
  const auto lists = read_jsonl(home / "runs" / "q" / "lists.jsonl");
  ASSERT_EQ(lists.size(), 4u);
  for (const auto& list : lists) {
    ASSERT_EQ(list["answers"].size(), 3u);
    ASSERT_EQ(list["ref_logps"].size(), 3u);
    for (const auto& logp : list["ref_logps"]) EXPECT_LT(logp.get<double>(), 0.0);
  }

  // logps of the same lists: the sampler's reference log-probs, from a second path (the prompt
  // run alone, not the decoder's batched prefix).
  expect_ok(run_perpo("logps --config Q.yaml --input runs/q/lists.jsonl --output re/l.jsonl", cwd),
            "logps");
  const auto relogps = read_jsonl(home / "re" / "l.jsonl");
  ASSERT_EQ(relogps.size(), lists.size());
  for (std::size_t i = 0; i < lists.size(); ++i) {
    for (std::size_t n = 0; n < 3; ++n) {
      const double a = lists[i]["ref_logps"][n], b = relogps[i]["ref_logps"][n];
      EXPECT_NEAR(a, b, 1e-4 * std::max(1.0, std::abs(a))) << "list " << i << " answer " << n;
    }
  }

  // train: perpo on the lists (LoRA). A random model finds no box, so every reward is 0 and the
  // lists carry no signal: the test gives them rewards 1, 0.5, 0 (beside the sampled lists, so
  // their relative image paths still resolve), then sft on the records into another run folder.
  {
    std::ofstream out(home / "runs" / "q" / "signal.jsonl");
    for (auto list : lists) {
      list["rewards"] = {1.0, 0.5, 0.0};
      out << list.dump() << "\n";
    }
  }
  // Adapters on the vision tower too (model.lora.vision): the export below merges them.
  expect_ok(
      run_perpo("train --config Q.yaml data.train=runs/q/signal.jsonl model.lora.vision=true", cwd),
      "train perpo");
  const fs::path step = home / "runs" / "q" / "checkpoints" / "step-2";
  ASSERT_TRUE(fs::is_directory(step));
  {
    perpo::SafetensorsFile weights(step / "weights.safetensors");
    int vision_adapters = 0;
    for (const std::string& name : weights.names()) {
      if (name.rfind("visual.blocks.", 0) != 0 || name.find("lora_B") == std::string::npos)
        continue;
      ++vision_adapters;
      EXPECT_GT(weights.tensor(name).abs().sum().item<double>(), 0.0) << name << " never moved";
    }
    EXPECT_GT(vision_adapters, 0);
    EXPECT_FALSE(weights.contains("visual.merger.mlp.0.lora_B"));  // the projector: no adapter
  }
  const auto metrics = read_jsonl(home / "runs" / "q" / "metrics.jsonl");
  ASSERT_EQ(metrics.size(), 2u);
  for (const auto& m : metrics) {
    EXPECT_GT(m["loss"].get<double>(), 0.0) << m;
    EXPECT_GT(m["grad_norm"].get<double>(), 0.0) << m;  // the adapters move: the export below
  }                                                     // holds trained weights
  // sft in bf16 (the dtype users train Qwen2.5-VL in; fp32 masters in the optimizer).
  expect_ok(run_perpo("train --config Q.yaml loss.name=sft data.train=data/train/records.jsonl "
                      "run.dir=runs/sft run.dtype=bf16",
                      cwd),
            "train sft");
  EXPECT_TRUE(fs::is_directory(home / "runs" / "sft" / "checkpoints" / "step-2"));
  const auto sft = read_jsonl(home / "runs" / "sft" / "metrics.jsonl");
  ASSERT_EQ(sft.size(), 2u);
  EXPECT_GT(sft[0]["loss"].get<double>(), 1.0) << sft[0];  // NLL of a random model's answers
  EXPECT_GT(sft[0]["grad_norm"].get<double>(), 0.0) << sft[0];

  // eval of the checkpoint, export to a Hugging Face folder, eval of the export: the same answers.
  expect_ok(run_perpo("eval --config Q.yaml --checkpoint runs/q/checkpoints/step-2 "
                      "data.eval=data/eval/records.jsonl",
                      cwd),
            "eval");
  expect_ok(run_perpo("export --checkpoint runs/q/checkpoints/step-2 --output qwen-out", cwd),
            "export");
  const auto exported = nlohmann::json::parse(slurp_file(home / "qwen-out" / "config.json"));
  EXPECT_EQ(exported["model_type"], "qwen2_5_vl");
  EXPECT_TRUE(fs::is_regular_file(home / "qwen-out" / "tokenizer.json"));
  expect_ok(
      run_perpo("eval --config Q.yaml --checkpoint qwen-out data.eval=data/eval/records.jsonl "
                "--out evals/export",
                cwd),
      "eval of the export");
  const auto a = read_jsonl(home / "runs" / "q" / "predictions.jsonl");
  const auto b = read_jsonl(home / "evals" / "export" / "predictions.jsonl");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["answer"], b[i]["answer"]) << i;
}

/// The normalised ground truth "[0.21, 0.40, 0.44, 0.63]" as Qwen2.5-VL writes it in a
/// `side` x `side` frame: {"bbox_2d": [round(0.21 side), ...]} (halves away from zero).
std::string qwen_box(const std::string& truth, int side) {
  double v[4];
  EXPECT_EQ(std::sscanf(truth.c_str(), "[%lf, %lf, %lf, %lf]", &v[0], &v[1], &v[2], &v[3]), 4)
      << truth;
  std::string text = "{\"bbox_2d\": [";
  for (int i = 0; i < 4; ++i) text += (i ? ", " : "") + std::to_string(std::lround(v[i] * side));
  return text + "]}";
}

// A wrong box convention is the silent failure of grounding rewards: Qwen2.5-VL answers in
// pixels of its resized image. 48 x 48 images with min_pixels = max_pixels = 3136 are resized to
// 56 x 56 (round(48 / 28) * 28 = 56, 56 * 56 = 3136 within the bounds), so a box read in the
// file's 48 pixels, or as normalised, scores wrong.
TEST(CliQwen, BoxesAreWrittenAndReadInQwenPixelsOfTheResizedImage) {
  const fs::path home = perpo::test::fresh_scratch_dir("cli_qwen", "boxes");
  write_tiny_qwen(home / "qwen-tiny", 5);
  write_config(home / "Q.yaml", home / "qwen-tiny");
  const std::string cwd = home.string();
  expect_ok(run_perpo("data synth --task grounding --n 3 --image-size 48 --out data --seed 2", cwd),
            "synth");
  // The truth joins each list as the model would write it (sampling.add_ground_truth).
  expect_ok(run_perpo("sample --config Q.yaml data.train=data/records.jsonl run.dir=runs/b "
                      "sampling.num_answers=2 sampling.add_ground_truth=true",
                      cwd),
            "sample");
  const auto lists = read_jsonl(home / "runs" / "b" / "lists.jsonl");
  ASSERT_EQ(lists.size(), 3u);
  std::vector<std::size_t> truth_at;
  for (const auto& list : lists) {
    EXPECT_EQ(list["box_units"], "pixels") << list;
    EXPECT_EQ(list["image_width"], 56) << list;
    EXPECT_EQ(list["image_height"], 56) << list;
    const std::string target = qwen_box(list["ground_truth"].get<std::string>(), 56);
    const auto& answers = list["answers"];
    const auto it = std::find(answers.begin(), answers.end(), target);
    ASSERT_NE(it, answers.end()) << target << " not among " << answers;
    const auto k = static_cast<std::size_t>(it - answers.begin());
    truth_at.push_back(k);
    // Whole pixels of 56 move each side by at most 1/112 of the image.
    EXPECT_GT(list["rewards"][k].get<double>(), 0.8) << list;
    EXPECT_EQ(list["reward_notes"][k], "ok") << list;
  }

  // perpo score reads the lists' box_units and frame: the sampler's rewards again.
  expect_ok(run_perpo("score --reward iou --input runs/b/lists.jsonl --output s/again.jsonl", cwd),
            "score");
  const auto again = read_jsonl(home / "s" / "again.jsonl");
  ASSERT_EQ(again.size(), lists.size());
  for (std::size_t i = 0; i < lists.size(); ++i)
    EXPECT_EQ(again[i]["rewards"], lists[i]["rewards"]);
  // Read as LLaVA's normalised boxes, the same answers are out of range, never silently scored.
  expect_ok(run_perpo("score --reward iou --input runs/b/lists.jsonl --output s/norm.jsonl "
                      "reward.box_format=normalized",
                      cwd),
            "score normalized");
  const auto normalised = read_jsonl(home / "s" / "norm.jsonl");
  for (std::size_t i = 0; i < lists.size(); ++i) {
    EXPECT_EQ(normalised[i]["rewards"][truth_at[i]], 0.0);
    EXPECT_EQ(normalised[i]["reward_notes"][truth_at[i]], "out_of_range_box");
  }
}

TEST(CliQwen, AnUnknownModelTypeIsRefusedNamingTheFile) {
  const fs::path home = perpo::test::fresh_scratch_dir("cli_qwen", "unknown");
  fs::create_directories(home / "m");
  perpo::write_file_atomic(home / "m" / "config.json", R"({"model_type": "qwen3_vl"})");
  expect_ok(run_perpo("data synth --task grounding --n 2 --out data --seed 1", home.string()),
            "synth");
  const auto r =
      run_perpo("sample model.path=m data.train=data/records.jsonl run.dir=r", home.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("config.json"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'qwen3_vl'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("llava, qwen2_5_vl"), std::string::npos) << r.output;
}

}  // namespace
