// Small helpers shared by the test executables.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "perpo/core/error.h"
#include "test_paths.h"

namespace perpo::test {

/// An empty folder <build>/tests/scratch/<group>/<name>, removed and re-created on each call.
inline std::filesystem::path fresh_scratch_dir(const std::string& group, const std::string& name) {
  std::filesystem::path dir = std::filesystem::path(kScratchDir) / group / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// Runs `body`, expects it to throw a perpo::Error and returns the error's text (else a failure).
template <typename F>
std::string error_of(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a perpo::Error";
  return "";
}

/// error_of for bad input: the error must also be an input error (exit code 2).
template <typename F>
std::string input_error_of(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error()) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a perpo::Error (input)";
  return "";
}

}  // namespace perpo::test
