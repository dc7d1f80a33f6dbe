// Runs a fuzz target's entry function over committed inputs, without libFuzzer: the regression
// test of every fuzz target (fuzz/CMakeLists.txt registers one CTest entry per target).
//
//   fuzz_replay_box_parser fuzz/corpus/box_parser tests/fixtures/fuzz/box_parser [FILE ...]
//
// Each argument is a file or a folder (every regular file in it, recursively, in name order).
// A target reports a bug by aborting, so a passing run prints how many inputs it replayed; a run
// that finds no input at all fails, so a wrong path cannot pass unnoticed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::filesystem::path> input_files(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    for (const auto& item : std::filesystem::recursive_directory_iterator(path)) {
      if (item.is_regular_file()) files.push_back(item.path());
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::is_regular_file(path)) {
    files.push_back(path);
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::vector<std::filesystem::path> files = input_files(argv[i]);
    if (files.empty()) std::fprintf(stderr, "replay: no inputs in %s\n", argv[i]);
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.c_str(), bytes.size());
      // A copy of exactly `size` bytes, as libFuzzer passes them: reading past it is a bug that the
      // sanitizer build (tools/sanitize.sh) reports.
      std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
      LLVMFuzzerTestOneInput(data.data(), data.size());
      ++replayed;
    }
  }
  std::printf("replayed %zu input(s), no failure\n", replayed);
  return replayed > 0 ? 0 : 1;
}
