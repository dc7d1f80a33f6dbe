// Errors with context. Every failure perpo reports is a perpo::Error: one clear sentence (naming
// the file, line, key or tensor), an optional hint on how to fix it, and a kind that picks the
// process exit code (interfaces.md: 1 runtime failure, 2 bad usage / config / input).
//
//   PERPO_CHECK(beta > 0, "loss.beta must be > 0, got ", beta);
//   PERPO_CHECK_INPUT(n >= 2, path, ":", line, ": a list needs at least 2 answers, got ", n);
//   throw perpo::Error(perpo::ErrorKind::kInput, "unknown reward 'iuo'").hint("did you mean
//   'iou'?");
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace perpo {

enum class ErrorKind {
  kRuntime,  // something failed while running (exit code 1)
  kInput,    // bad usage, bad config or bad input file (exit code 2)
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, ErrorKind kind = ErrorKind::kRuntime)
      : std::runtime_error(message), message_(std::move(message)), kind_(kind) {}
  Error(ErrorKind kind, std::string message) : Error(std::move(message), kind) {}

  /// Adds a hint ("did you mean ...", "set X to ..."); returns *this for chaining in a throw.
  Error& hint(std::string text) & {
    hint_ = std::move(text);
    refresh();
    return *this;
  }
  Error&& hint(std::string text) && { return std::move(this->hint(std::move(text))); }
  /// Prefixes context ("reading lists.jsonl: ") to the message.
  Error& context(const std::string& prefix) & {
    message_ = prefix + message_;
    refresh();
    return *this;
  }
  Error&& context(const std::string& prefix) && { return std::move(this->context(prefix)); }
  /// Where in perpo's source the error was raised (for debug logs, not for users).
  Error& where(const char* file, int line) & {
    where_ = std::string(file) + ":" + std::to_string(line);
    return *this;
  }
  Error&& where(const char* file, int line) && { return std::move(this->where(file, line)); }

  const char* what() const noexcept override {
    return full_.empty() ? message_.c_str() : full_.c_str();
  }
  const std::string& message() const { return message_; }
  const std::string& hint_text() const { return hint_; }
  const std::string& source_location() const { return where_; }
  ErrorKind kind() const { return kind_; }
  bool is_input_error() const { return kind_ == ErrorKind::kInput; }
  /// The process exit code for this error (interfaces.md).
  int exit_code() const { return kind_ == ErrorKind::kInput ? 2 : 1; }

 private:
  void refresh() { full_ = hint_.empty() ? message_ : message_ + " (hint: " + hint_ + ")"; }

  std::string message_;
  std::string hint_;
  std::string where_;
  std::string full_;
  ErrorKind kind_;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

/// Builds an input error (exit code 2) from streamable pieces.
template <typename... Args>
Error input_error(Args&&... args) {
  return Error(ErrorKind::kInput, detail::concat(std::forward<Args>(args)...));
}
/// Builds a runtime error (exit code 1) from streamable pieces.
template <typename... Args>
Error runtime_error(Args&&... args) {
  return Error(ErrorKind::kRuntime, detail::concat(std::forward<Args>(args)...));
}

}  // namespace perpo

/// Throws perpo::Error (runtime, exit 1) with the streamed message when `cond` is false.
#define PERPO_CHECK(cond, ...)                                             \
  do {                                                                     \
    if (!(cond)) {                                                         \
      throw ::perpo::runtime_error(__VA_ARGS__).where(__FILE__, __LINE__); \
    }                                                                      \
  } while (false)

/// Throws perpo::Error (input, exit 2) with the streamed message when `cond` is false.
#define PERPO_CHECK_INPUT(cond, ...)                                     \
  do {                                                                   \
    if (!(cond)) {                                                       \
      throw ::perpo::input_error(__VA_ARGS__).where(__FILE__, __LINE__); \
    }                                                                    \
  } while (false)
