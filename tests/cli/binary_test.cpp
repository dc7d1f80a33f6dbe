// The perpo executable ships no test-only code: no symbol of the reference computations and
// readers that only tests and benches use (tests/support), and no fault-injection hook.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "test_paths.h"

namespace {

std::string command_output(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  std::array<char, 65536> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    output.append(buffer.data(), n);
  ::pclose(pipe);
  return output;
}

TEST(PerpoBinary, HoldsNoTestOnlyCode) {
  const std::string exe = perpo::test::kPerpoExe;
  const std::string symbols = command_output("nm -C '" + exe + "' 2>&1");
  // nm read the symbols: the trainer is there.
  ASSERT_NE(symbols.find("perpo::run_training("), std::string::npos) << symbols.substr(0, 500);
  for (const char* name : {"answer_logps_repeated", "read_tensorboard_scalars", "EventReader",
                           "ScalarEvent", "train_killed_while_checkpointing"}) {
    EXPECT_EQ(symbols.find(name), std::string::npos) << name << " is in " << exe;
  }
  std::ifstream in(exe, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000000u);
  EXPECT_EQ(bytes.find("PERPO_FAULT"), std::string::npos) << "a fault-injection hook in " << exe;
}

}  // namespace
