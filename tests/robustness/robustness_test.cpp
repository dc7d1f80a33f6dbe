// Runs every row of the robustness table (see harness.h) as its own test.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "harness.h"
#include "run_perpo.h"
#include "test_paths.h"

namespace perpo::robustness {

namespace {

std::map<std::string, CaseList (*)()>& registry() {
  static std::map<std::string, CaseList (*)()> makers;
  return makers;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

/// Everything under `root` (links not followed): path -> kind, size, mtime and content.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> entries;
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end;
       it.increment(error)) {
    const fs::path& path = it->path();
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) continue;
    std::ostringstream state;
    state << "mode " << info.st_mode << " size " << info.st_size << " mtime " << info.st_mtim.tv_sec
          << "." << info.st_mtim.tv_nsec;
    if (S_ISREG(info.st_mode)) {
      std::ifstream in(path, std::ios::binary);
      state << " content "
            << std::hash<std::string>{}(std::string((std::istreambuf_iterator<char>(in)),
                                                    std::istreambuf_iterator<char>()));
    } else if (S_ISLNK(info.st_mode)) {
      state << " -> " << fs::read_symlink(path, error).string();
    }
    entries[fs::relative(path, root).string()] = state.str();
  }
  return entries;
}

}  // namespace

/// The row's name instead of its bytes in GoogleTest's messages.
void PrintTo(const Case& c, std::ostream* out) { *out << c.command << "_" << c.name; }

namespace {

class Robustness : public ::testing::TestWithParam<Case> {};

TEST_P(Robustness, Bad) {
  const Case& c = GetParam();
  const fs::path dir = fs::path(test::kScratchDir) / "robustness" / (c.command + "_" + c.name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (c.setup) c.setup(dir);
  const std::string args = replace_all(replace_all(c.args, "{dir}", dir.string()), "{fixtures}",
                                       fixtures_dir().string());
  const auto before = snapshot(dir);
  const test::PerpoRun run =
      test::run_perpo(args, c.cwd.empty() ? "" : (dir / c.cwd).string(), c.stdout_to, c.env);
  EXPECT_EQ(run.exit_code, c.exit_code) << "perpo " << args << "\n" << run.output;
  const std::string message = replace_all(c.message, "{dir}", dir.string());
  EXPECT_NE(run.output.find(message), std::string::npos)
      << "perpo " << args << "\nexpected the message to hold: " << message << "\n"
      << run.output;
  const auto after = snapshot(dir);
  for (const auto& [path, state] : after) {
    auto it = before.find(path);
    EXPECT_TRUE(it != before.end()) << "perpo " << args << " wrote " << path;
    if (it != before.end()) EXPECT_EQ(it->second, state) << "perpo " << args << " changed " << path;
  }
  for (const auto& [path, state] : before) {
    EXPECT_TRUE(after.count(path)) << "perpo " << args << " removed " << path;
  }
}

INSTANTIATE_TEST_SUITE_P(, Robustness, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.command + "_" + info.param.name;
                         });

TEST(RobustnessTable, HasRowsForEveryCommandThatExists) {
  std::map<std::string, int> rows;
  for (const Case& c : all_cases()) ++rows[c.command];
  for (const char* command : {"main", "config", "score", "export"}) {
    EXPECT_GE(rows[command], 5) << "too few rows for " << command;
  }
  EXPECT_GE(all_cases().size(), 60u);
}

}  // namespace

int register_cases(const char* command, CaseList (*make)()) {
  registry()[command] = make;
  return 0;
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& [command, make] : registry()) {
    for (Case c : make()) {
      c.command = command;
      cases.push_back(std::move(c));
    }
  }
  return cases;
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void make_fifo(const fs::path& path) {
  if (::mkfifo(path.c_str(), 0644) != 0) ADD_FAILURE() << "mkfifo " << path;
}

fs::path fixtures_dir() { return fs::path(test::kTestsDir) / "fixtures"; }

void copy_checkpoint(const fs::path& to) {
  fs::create_directories(to);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(fixtures_dir() / "model" / "tiny_new_tied" / name, to / name);
  }
}

}  // namespace perpo::robustness
