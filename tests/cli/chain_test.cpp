// The job chained the way the README shows it, as a user runs it: data synth -> sample -> train
// -> eval -> export -> eval of the export, with each command's output in another folder, one
// config for every command (so sample, train and eval share run.dir), relative paths from the
// user's folder, absolute paths from another working directory, and lists trained from a folder
// other than the one they were written in (issue 21: relative image paths were copied unchanged,
// and the run folder holding the lists was refused as "a folder above the input").
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "generate_commands_support.h"
#include "run_perpo.h"

namespace {

namespace fs = std::filesystem;
using perpo::test::read_jsonl;
using perpo::test::run_perpo;
using perpo::test::slurp_file;

/// A config for the tiny model with the README's single run.dir, written as the user would.
void write_chain_config(const fs::path& file, const std::string& run_dir) {
  const fs::path tokenizer =
      fs::path(perpo::test::kTestsDir) / "fixtures" / "tokenizer" / "tiny.model";
  std::ofstream config(file);
  config << "# the README's job, one config for every command\n"
         << "model:\n  path: \"\"\n  tiny: {vision_hidden: 16, vision_layers: 1, vision_heads: 2,"
            " image_size: 16, patch_size: 8, hidden: 32, layers: 2, heads: 4, kv_heads: 2,"
            " intermediate: 48}\n"
         << "tokenizer:\n  path: " << tokenizer.string() << "\n  chat_template: plain\n"
         << "image:\n  size: 16\n"
         << "sampling:\n  num_answers: 3\n  max_new_tokens: 6\n  lists_per_batch: 2\n"
         << "loss:\n  name: perpo\n"
         << "optim:\n  lr: 1.0e-3\n"
         << "train:\n  max_steps: 2\n  lists_per_step: 2\n"
         << "eval:\n  max_new_tokens: 6\n  batch_size: 2\n"
         << "run:\n  dir: " << run_dir << "\n  seed: 3\n  threads: 1\n";
}

void expect_ok(const perpo::test::PerpoRun& r, const std::string& what) {
  ASSERT_EQ(r.exit_code, 0) << what << ":\n" << r.output;
}

/// Every list's relative image path resolves from the lists file's own folder.
void expect_images_resolve(const fs::path& lists_file) {
  const auto lists = read_jsonl(lists_file);
  ASSERT_FALSE(lists.empty()) << lists_file;
  for (const auto& list : lists) {
    const fs::path image = list["image"].get<std::string>();
    const fs::path resolved = image.is_absolute() ? image : lists_file.parent_path() / image;
    EXPECT_TRUE(fs::is_regular_file(resolved)) << lists_file << ": " << image;
  }
}

TEST(CliChain, ReadmeJobWithRelativePathsFromTheUsersFolder) {
  const fs::path home = perpo::test::fresh_scratch_dir("cli_chain", "relative");
  write_chain_config(home / "C.yaml", "runs/x");
  const std::string cwd = home.string();
  expect_ok(run_perpo("data synth --task grounding --n 6 --out data/train --seed 1", cwd), "synth");
  expect_ok(
      run_perpo("data synth --task grounding --n 4 --out data/eval --seed 1 --first-index 6", cwd),
      "synth eval");
  expect_ok(run_perpo("sample --config C.yaml data.train=data/train/records.jsonl", cwd), "sample");
  const fs::path lists = home / "runs" / "x" / "lists.jsonl";
  expect_images_resolve(lists);
  // train: the same config, so run.dir runs/x holds its own input lists.
  expect_ok(run_perpo("train --config C.yaml data.train=runs/x/lists.jsonl loss.name=perpo", cwd),
            "train");
  const fs::path step = home / "runs" / "x" / "checkpoints" / "step-2";
  ASSERT_TRUE(fs::is_directory(step));
  EXPECT_TRUE(fs::is_regular_file(home / "runs" / "x" / "lists.jsonl"));      // untouched input
  EXPECT_EQ(slurp_file(home / "C.yaml").rfind("# the README's job", 0), 0u);  // the user's file
  // eval of the training checkpoint into the run folder that holds it.
  expect_ok(run_perpo("eval --config C.yaml --checkpoint runs/x/checkpoints/step-2 "
                      "data.eval=data/eval/records.jsonl",
                      cwd),
            "eval");
  const auto checkpoint_metrics =
      nlohmann::json::parse(slurp_file(home / "runs" / "x" / "metrics.json"));
  EXPECT_TRUE(fs::is_directory(step));  // the evaluated checkpoint is still there
  EXPECT_TRUE(fs::is_regular_file(home / "runs" / "x" / "config.yaml"));  // train's own
  // export, then eval of the export from its own folder: the same predictions.
  expect_ok(run_perpo("export --checkpoint runs/x/checkpoints/step-2 --output my-llava-hf", cwd),
            "export");
  EXPECT_TRUE(fs::is_regular_file(home / "my-llava-hf" / "tokenizer.model"));
  expect_ok(run_perpo("eval --config C.yaml --checkpoint my-llava-hf "
                      "data.eval=data/eval/records.jsonl --out evals/export",
                      cwd),
            "eval of the export");
  const auto export_metrics =
      nlohmann::json::parse(slurp_file(home / "evals" / "export" / "metrics.json"));
  EXPECT_EQ(export_metrics["grounding"], checkpoint_metrics["grounding"]);
  const auto a = read_jsonl(home / "runs" / "x" / "predictions.jsonl");
  const auto b = read_jsonl(home / "evals" / "export" / "predictions.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["answer"], b[i]["answer"]) << i;
}

TEST(CliChain, AbsolutePathsFromAnotherFolderAndListsTrainedElsewhere) {
  const fs::path home = perpo::test::fresh_scratch_dir("cli_chain", "absolute");
  fs::create_directories(home / "elsewhere");
  write_chain_config(home / "C.yaml", (home / "runs" / "x").string());
  const std::string cwd = (home / "elsewhere").string();
  const std::string config = (home / "C.yaml").string();
  const fs::path data = home / "data" / "train";
  expect_ok(run_perpo("data synth --task grounding --n 4 --out " + data.string(), cwd), "synth");
  // Lists written into a folder of their own (sampling.output), relative to the working folder.
  expect_ok(run_perpo("sample --config " + config + " data.train=" +
                          (data / "records.jsonl").string() + " sampling.output=../lists/l.jsonl",
                      cwd),
            "sample");
  const fs::path lists = home / "lists" / "l.jsonl";
  expect_images_resolve(lists);
  // The lists copied to yet another folder still resolve (relative to their own folder).
  fs::create_directories(home / "copy" / "deeper");
  fs::copy_file(lists, home / "copy" / "l.jsonl");
  // logps rebases them into its output's folder too.
  expect_ok(run_perpo("logps --config " + config + " --input " + lists.string() + " --output " +
                          (home / "copy" / "deeper" / "relogps.jsonl").string(),
                      cwd),
            "logps");
  expect_images_resolve(home / "copy" / "deeper" / "relogps.jsonl");
  expect_ok(run_perpo("train --config " + config +
                          " data.train=" + (home / "copy" / "deeper" / "relogps.jsonl").string() +
                          " run.dir=../runs/y",
                      cwd),
            "train elsewhere");
  EXPECT_TRUE(fs::is_directory(home / "runs" / "y" / "checkpoints" / "step-2"));
  // The --config file is an input: no output may replace it, not even with --force.
  auto r = run_perpo("logps --config " + config + " --input " + lists.string() + " --output " +
                         config + " --force",
                     cwd);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is the input"), std::string::npos) << r.output;
  EXPECT_EQ(slurp_file(config).rfind("# the README's job", 0), 0u);
}

// Issue 25: the offline GRPO chain. sample keeps each answer's token log-probs
// (sampling.token_logps; their sums are the ref_logps of the same pass), logps carries them into
// its output, and train with loss.name grpo reads them from another folder; lists without them
// are refused naming the field.
TEST(CliChain, GrpoTrainsOnListsSampledWithTheirTokenLogps) {
  const fs::path home = perpo::test::fresh_scratch_dir("cli_chain", "grpo");
  fs::create_directories(home / "elsewhere");
  write_chain_config(home / "C.yaml", "runs/x");
  const std::string cwd = home.string();
  expect_ok(run_perpo("data synth --task grounding --n 4 --out data/train --seed 1", cwd), "synth");
  expect_ok(run_perpo("sample --config C.yaml data.train=data/train/records.jsonl "
                      "sampling.token_logps=true sampling.output=lists/l.jsonl",
                      cwd),
            "sample");
  const auto lists = read_jsonl(home / "lists" / "l.jsonl");
  ASSERT_EQ(lists.size(), 4u);
  for (const auto& list : lists) {
    const auto& rows = list.at("sample_token_logps");
    ASSERT_EQ(rows.size(), list.at("answers").size());
    for (std::size_t a = 0; a < rows.size(); ++a) {
      double sum = 0;
      for (const auto& v : rows[a]) sum += v.get<double>();
      EXPECT_FALSE(rows[a].empty());
      EXPECT_NEAR(sum, list.at("ref_logps")[a].get<double>(), 1e-9);
    }
  }
  expect_ok(run_perpo("logps --config ../C.yaml --input ../lists/l.jsonl --output rescored.jsonl",
                      (home / "elsewhere").string()),
            "logps");
  const auto rescored = read_jsonl(home / "elsewhere" / "rescored.jsonl");
  ASSERT_EQ(rescored.size(), lists.size());
  EXPECT_EQ(rescored[0].at("sample_token_logps"), lists[0].at("sample_token_logps"));
  expect_ok(run_perpo("train --config ../C.yaml data.train=rescored.jsonl loss.name=grpo "
                      "run.dir=../runs/g",
                      (home / "elsewhere").string()),
            "train grpo");
  EXPECT_TRUE(fs::is_directory(home / "runs" / "g" / "checkpoints" / "step-2"));
  const auto metrics = read_jsonl(home / "runs" / "g" / "metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_TRUE(metrics[0].contains("clip_low")) << metrics[0].dump();

  // Lists sampled without them: refused, exit 2, the field named; nothing written.
  expect_ok(run_perpo("sample --config C.yaml data.train=data/train/records.jsonl "
                      "sampling.output=plain/l.jsonl",
                      cwd),
            "sample without token log-probs");
  auto refused = run_perpo(
      "train --config C.yaml data.train=plain/l.jsonl loss.name=grpo run.dir=runs/refused", cwd);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("'sample_token_logps'"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(home / "runs" / "refused"));
}

}  // namespace
