// What every fuzz target checks besides memory safety (which the sanitizers check): a parser of
// untrusted input either succeeds or throws perpo::Error of kind input with a message, and what
// it returns satisfies the target's invariants. Anything else aborts, which libFuzzer reports as a
// crash and the replay test (replay_main.cpp) as a failure.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "perpo/core/error.h"

namespace perpo::fuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

/// Aborts with `what` unless `condition` holds.
#define PERPO_FUZZ_CHECK(condition, what)                                           \
  do {                                                                              \
    if (!(condition)) ::perpo::fuzz::fail(std::string(#condition) + ": " + (what)); \
  } while (false)

/// Runs `parse()`; true when it returned, false when it rejected the input the way perpo rejects
/// bad input (perpo::Error, kind input, a non-empty message). Aborts on any other exception.
template <typename Parse>
bool accepts(Parse&& parse) {
  try {
    parse();
    return true;
  } catch (const Error& error) {
    if (!error.is_input_error())
      fail(std::string("a runtime error for bad input: ") + error.what());
    if (error.message().empty()) fail("an input error without a message");
    return false;
  } catch (const std::exception& error) {
    fail(std::string("an exception other than perpo::Error escaped (") + typeid(error).name() +
         "): " + error.what());
  }
}

}  // namespace perpo::fuzz
