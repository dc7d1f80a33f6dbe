// perpo bench's Python peer: a peer that cannot run is an error (exit 1) naming the Python and what
// it printed, found before perpo measures anything when the Python lacks a module; the peer's
// temporary folder is removed when a peer script fails. The "Python" here is a shell script.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "perpo/bench/bench.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

// Sets an environment variable for its lifetime, then restores the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// An executable shell script at `path`.
void write_script(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec,
                  fs::perm_options::replace);
}

// The peer's scripts folder with (empty) stand-ins of both scripts: the fake Python never runs
// them.
fs::path fake_peer_scripts(const fs::path& dir) {
  const fs::path scripts = dir / "bench";
  fs::create_directories(scripts);
  std::ofstream(scripts / "train_step_peer.py") << "";
  std::ofstream(scripts / "generate_sampling_peer.py") << "";
  return scripts;
}

BenchOptions tiny_bench(const fs::path& python) {
  BenchOptions options;
  options.shape = "tiny";
  options.iterations = 1;
  options.threads = 1;
  options.python = python.string();
  return options;
}

// Runs the bench, expects a perpo::Error and returns it.
Error bench_error(const BenchOptions& options) {
  try {
    run_bench(options);
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "expected perpo bench to fail";
  return Error("no error");
}

TEST(BenchPeer, AFailingPeerScriptIsAnErrorAndItsTemporaryFolderIsRemoved) {
  // The fake Python imports everything (-c) but fails on the peer script, printing nothing (what
  // /bin/false does; this crashed with basic_string::substr and left /tmp/perpo-bench-* behind).
  // It notes its arguments, so the test knows where the peer's config.json was.
  const fs::path dir = test::fresh_scratch_dir("bench", "failing-peer");
  const fs::path python = dir / "python";
  write_script(python,
               "#!/bin/sh\n"
               "if [ \"$1\" = \"-c\" ]; then exit 0; fi\n"
               "echo \"$@\" > \"$(dirname \"$0\")/args.txt\"\n"
               "exit 3\n");
  const fs::path temp = dir / "tmp";
  fs::create_directories(temp);
  const ScopedEnv scripts("PERPO_BENCH_PEER_DIR", fake_peer_scripts(dir).string());
  const ScopedEnv tmpdir("TMPDIR", temp.string());

  const Error error = bench_error(tiny_bench(python));
  const std::string message = error.what();
  EXPECT_EQ(error.exit_code(), 1) << message;
  EXPECT_NE(message.find("the bench peer failed: " + python.string()), std::string::npos)
      << message;
  EXPECT_NE(message.find("train_step_peer.py exited with status 3"), std::string::npos) << message;
  EXPECT_NE(message.find("it printed nothing"), std::string::npos) << message;
  EXPECT_NE(message.find("--no-peer"), std::string::npos) << message;

  // The peer ran on a config.json in a folder of $TMPDIR, and that folder is gone.
  const std::string args = read_file(dir / "args.txt");
  const std::size_t at = args.find("--config ");
  ASSERT_NE(at, std::string::npos) << args;
  const std::string config = args.substr(at + 9, args.find(' ', at + 9) - (at + 9));
  EXPECT_EQ(fs::path(config).parent_path().parent_path(), temp) << args;
  EXPECT_FALSE(fs::exists(fs::path(config).parent_path())) << config;
  EXPECT_TRUE(fs::is_empty(temp));
}

TEST(BenchPeer, APythonWithoutTransformersIsAnErrorThatSaysHowToInstallIt) {
  // What the .venv of tools/setup.sh (without --fixtures) prints for `import transformers`.
  const fs::path dir = test::fresh_scratch_dir("bench", "no-transformers");
  const fs::path python = dir / "python";
  write_script(python,
               "#!/bin/sh\n"
               "echo 'Traceback (most recent call last):' >&2\n"
               "echo \"ModuleNotFoundError: No module named 'transformers'\" >&2\n"
               "exit 1\n");
  const ScopedEnv scripts("PERPO_BENCH_PEER_DIR", fake_peer_scripts(dir).string());

  const Error error = bench_error(tiny_bench(python));
  const std::string message = error.what();
  EXPECT_EQ(error.exit_code(), 1) << message;
  EXPECT_NE(message.find(python.string()), std::string::npos) << message;
  EXPECT_NE(message.find("lacks the Python module 'transformers'"), std::string::npos) << message;
  EXPECT_NE(message.find("tools/setup.sh --fixtures"), std::string::npos) << message;
  EXPECT_NE(message.find("-m pip install 'transformers"), std::string::npos) << message;
  EXPECT_NE(message.find("--no-peer"), std::string::npos) << message;
}

TEST(BenchPeer, WithoutThePeerPerpoIsMeasuredAlone) {
  // --no-peer: the Python is not even looked at.
  BenchOptions options = tiny_bench("/nonexistent/python");
  options.peer = false;
  const BenchReport report = run_bench(options);
  bool has_peer_figure = false;
  for (const BenchFigure& figure : report.figures) {
    has_peer_figure = has_peer_figure || figure.name.rfind("peer.", 0) == 0;
  }
  EXPECT_FALSE(has_peer_figure);
  EXPECT_FALSE(report.figures.empty());
}

}  // namespace
}  // namespace perpo
