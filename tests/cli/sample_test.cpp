// `perpo sample` and `perpo logps` end to end: lists with scored answers and ref_logps; the same
// lists for any lists_per_batch; logps equal to sample's; killed runs resumed to the same file;
// bad input as exit 2 naming the record.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "generate_commands_support.h"
#include "run_perpo.h"

namespace {

namespace fs = std::filesystem;
using perpo::test::read_jsonl;
using perpo::test::run_perpo;
using perpo::test::slurp_file;

TEST(CliSample, WritesScoredListsWithRefLogpsAndASummary) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample", "basic");
  const fs::path config = perpo::test::write_tiny_setup(dir, 5);
  auto r = run_perpo("sample --config " + config.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("5 lists (0 from an earlier run) of 5 records"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("20 answers: mean reward"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lists with all rewards equal (no signal)"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "run" / "sample-config.yaml"));
  auto lists = read_jsonl(dir / "run" / "lists.jsonl");
  ASSERT_EQ(lists.size(), 5u);
  for (std::size_t i = 0; i < lists.size(); ++i) {
    EXPECT_EQ(lists[i]["id"], "r" + std::to_string(i));
    EXPECT_EQ(lists[i]["answers"].size(), 4u);
    EXPECT_EQ(lists[i]["rewards"].size(), 4u);
    EXPECT_EQ(lists[i]["reward_notes"].size(), 4u);
    ASSERT_EQ(lists[i]["ref_logps"].size(), 4u);
    for (double logp : lists[i]["ref_logps"]) EXPECT_LT(logp, 0.0);
  }

  // One list per batch, another run folder: the same answers; logps of those lists: the same
  // numbers (one code path: the prefix-sharing forward).
  r = run_perpo("sample --config " + config.string() +
                " sampling.lists_per_batch=1 run.dir=" + (dir / "run1").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto single = read_jsonl(dir / "run1" / "lists.jsonl");
  r = run_perpo("logps --config " + config.string() + " --input " +
                (dir / "run" / "lists.jsonl").string() + " --output " +
                (dir / "logps.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("log-probs of 20 answers in 5 lists"), std::string::npos) << r.output;
  auto rescored = read_jsonl(dir / "logps.jsonl");
  ASSERT_EQ(single.size(), 5u);
  ASSERT_EQ(rescored.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(single[i]["answers"], lists[i]["answers"]);
    EXPECT_EQ(rescored[i]["answers"], lists[i]["answers"]);
    for (std::size_t n = 0; n < 4; ++n) {
      EXPECT_NEAR(single[i]["ref_logps"][n].get<double>(), lists[i]["ref_logps"][n].get<double>(),
                  1e-5);
      EXPECT_NEAR(rescored[i]["ref_logps"][n].get<double>(), lists[i]["ref_logps"][n].get<double>(),
                  1e-5);
    }
  }
  // Another seed, other answers.
  r = run_perpo("sample --config " + config.string() +
                " run.seed=6 run.dir=" + (dir / "run2").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(read_jsonl(dir / "run2" / "lists.jsonl")[0]["answers"], lists[0]["answers"]);
}

TEST(CliLogps, ReadsTheAuthorsFormat) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample", "authors");
  const fs::path config = perpo::test::write_tiny_setup(dir, 1);
  const fs::path authors = fs::path(perpo::test::kTestsDir) / "fixtures" / "data" / "authors.json";
  auto r = run_perpo("logps --config " + config.string() + " --input " + authors.string() +
                     " --output " + (dir / "out.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(authors format)"), std::string::npos) << r.output;
  auto lists = read_jsonl(dir / "out.jsonl");
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0]["ref_logps"].size(), 3u);
  EXPECT_EQ(lists[1]["ref_logps"].size(), 2u);
  EXPECT_EQ(lists[1]["rewards"][1], 0.16);
  // The output may not replace the input.
  r = run_perpo("logps --config " + config.string() + " --input " + authors.string() +
                " --output " + authors.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

/// Starts `perpo args...` without waiting; stdout/stderr to /dev/null.
pid_t spawn_perpo(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* null = std::freopen("/dev/null", "w", stdout);
    (void)null;
    null = std::freopen("/dev/null", "w", stderr);
    std::vector<char*> argv;
    std::string exe = perpo::test::kPerpoExe;
    argv.push_back(exe.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

std::size_t line_count(const fs::path& file) {
  if (!fs::exists(file)) return 0;
  const std::string text = slurp_file(file);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(CliSample, KilledAndRestartedRunsEqualAnUninterruptedOne) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample", "kill");
  const int records = 24;
  const fs::path config = perpo::test::write_tiny_setup(dir, records);
  const fs::path full = dir / "full.jsonl", killed = dir / "killed.jsonl";
  const auto start = std::chrono::steady_clock::now();
  auto r = run_perpo("sample --config " + config.string() + " sampling.lists_per_batch=1" +
                     " sampling.output=" + full.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double full_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // SIGKILL at random moments; each restart continues the same file. Delays adapt so that kills
  // land while lists are being written (a loaded machine changes the timing).
  std::mt19937 rng(1234);
  double low = 0.2 * full_seconds, high = 0.9 * full_seconds;
  int partial_kills = 0;
  for (int attempt = 0; attempt < 12 && partial_kills < 3; ++attempt) {
    const std::size_t before = line_count(killed);
    pid_t pid = spawn_perpo({"sample", "--config", config.string(), "sampling.lists_per_batch=2",
                             "sampling.output=" + killed.string()});
    ASSERT_GT(pid, 0);
    const double delay = std::uniform_real_distribution<double>(low, high)(rng);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::size_t after = line_count(killed);
    const bool killed_by_signal = WIFSIGNALED(status);
    if (killed_by_signal && after > before) ++partial_kills;
    if (!killed_by_signal || after >= static_cast<std::size_t>(records)) {  // it finished
      if (partial_kills > 0) break;
      fs::remove(killed);  // finished before the kill landed: start over, killing sooner
      low *= 0.5;
      high *= 0.5;
      continue;
    }
    if (after == before) {  // killed before any list: start later next time
      low *= 1.3;
      high *= 1.3;
    }
  }
  EXPECT_GE(partial_kills, 1) << "no kill landed while lists were written";
  r = run_perpo("sample --config " + config.string() + " sampling.lists_per_batch=3" +
                " sampling.output=" + killed.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(line_count(killed), static_cast<std::size_t>(records));
  EXPECT_EQ(slurp_file(killed), slurp_file(full));
}

TEST(CliSample, AFileItDidNotWriteIsRefusedAndReplacedOnlyWithForce) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample", "foreign");
  const int records = 3;
  const fs::path config = perpo::test::write_tiny_setup(dir, records);
  const fs::path output = dir / "notes.txt";
  const std::string mine = "{\"id\": \"mine\", \"answers\": []}\nmy notes, no newline";
  std::ofstream(output) << mine;
  const std::string args =
      "sample --config " + config.string() + " sampling.output=" + output.string();
  auto r = run_perpo(args);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'mine' is not a record of this dataset"), std::string::npos) << r.output;
  EXPECT_EQ(slurp_file(output), mine);  // untouched (a cut last line of perpo's would be removed)
  r = run_perpo(args + " --force");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(line_count(output), static_cast<std::size_t>(records));
  EXPECT_EQ(slurp_file(output).find("my notes"), std::string::npos);
}

TEST(CliSample, BadInputIsExitTwoNamingTheRecord) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample", "bad");
  const fs::path config = perpo::test::write_tiny_setup(dir, 3);
  fs::copy_file(dir / "data.jsonl", dir / "good.jsonl");
  {
    std::ofstream data(dir / "data.jsonl", std::ios::app);
    data << R"({"id": "r3", "task": "grounding", "image": "nowhere.png", "prompt": "x",)"
         << R"( "ground_truth": "[0.1, 0.1, 0.2, 0.2]"})"
         << "\n";
  }
  auto r = run_perpo("sample --config " + config.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("data.jsonl:4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("nowhere.png"), std::string::npos) << r.output;
  r = run_perpo("sample --config " + config.string() + " data.on_bad_record=skip");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 lists (0 from an earlier run) of 3 records, 1 skipped"),
            std::string::npos)
      << r.output;
  r = run_perpo("sample --config " + config.string() +
                " reward.name=iuo run.dir=" + (dir / "r2").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("iuo"), std::string::npos) << r.output;
  r = run_perpo(
      "sample --config " + config.string() +
      " data.on_bad_record=skip data.max_prompt_tokens=8 run.dir=" + (dir / "r3").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("0 lists (0 from an earlier run) of 3 records, 4 skipped"),
            std::string::npos)
      << r.output;
  r = run_perpo("sample --config " + config.string() + " --input " + (dir / "good.jsonl").string() +
                " data.max_prompt_tokens=8 run.dir=" + (dir / "r4").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("good.jsonl:1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("max_prompt_tokens"), std::string::npos) << r.output;
}

}  // namespace
