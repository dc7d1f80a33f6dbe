// Logging: messages to stderr, and (once a run directory is known) to <run_dir>/log.txt too.
// spdlog does the work behind this facade; its headers are kept out of perpo's headers because
// LibTorch ships its own, newer {fmt} that clashes with the one Debian's spdlog is built against.
//
//   perpo::init_logging("info");                      // console only
//   perpo::add_log_file(run_dir / "log.txt");         // and a file
//   PERPO_LOG_INFO("sampled ", n, " lists in ", seconds, " s");   // pieces are streamed
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "perpo/core/error.h"  // detail::concat

namespace perpo {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

/// Sets up the console logger at `level` (trace|debug|info|warn|error|off). Safe to call twice.
/// A log file (add_log_file) keeps info and above whatever the console's level (debug and trace
/// too when the console shows them), so a quiet console never thins a run's log.txt.
/// Throws perpo::Error (input) for an unknown level.
void init_logging(const std::string& level = "info");

/// Also writes every log message to `path` (appending; parent folders are created).
void add_log_file(const std::filesystem::path& path);

/// Flushes and detaches the log file, if any.
void close_log_file();

bool log_enabled(LogLevel level);
void log_message(LogLevel level, std::string_view message);

}  // namespace perpo

#define PERPO_LOG_AT(level, ...)                                         \
  do {                                                                   \
    if (::perpo::log_enabled(level)) {                                   \
      ::perpo::log_message(level, ::perpo::detail::concat(__VA_ARGS__)); \
    }                                                                    \
  } while (false)
#define PERPO_LOG_DEBUG(...) PERPO_LOG_AT(::perpo::LogLevel::kDebug, __VA_ARGS__)
#define PERPO_LOG_INFO(...) PERPO_LOG_AT(::perpo::LogLevel::kInfo, __VA_ARGS__)
#define PERPO_LOG_WARN(...) PERPO_LOG_AT(::perpo::LogLevel::kWarn, __VA_ARGS__)
#define PERPO_LOG_ERROR(...) PERPO_LOG_AT(::perpo::LogLevel::kError, __VA_ARGS__)
