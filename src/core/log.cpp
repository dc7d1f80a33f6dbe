#include "perpo/core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "perpo/core/error.h"

namespace perpo {
namespace {

std::mutex g_mutex;
std::shared_ptr<spdlog::sinks::basic_file_sink_mt> g_file_sink;
std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> g_console_sink;
spdlog::level::level_enum g_console_level = spdlog::level::info;

// A log file keeps info and above even under a quieter console (or the console's level when it
// is more verbose); the logger passes what either sink wants.
spdlog::level::level_enum file_level() { return std::min(g_console_level, spdlog::level::info); }

void apply_levels(spdlog::logger& logger) {
  if (g_console_sink) g_console_sink->set_level(g_console_level);
  if (g_file_sink) g_file_sink->set_level(file_level());
  logger.set_level(g_file_sink ? file_level() : g_console_level);
}

spdlog::level::level_enum parse_level(const std::string& level) {
  for (int i = spdlog::level::trace; i <= spdlog::level::off; ++i) {
    auto candidate = static_cast<spdlog::level::level_enum>(i);
    auto name = spdlog::level::to_string_view(candidate);
    if (level == std::string(name.data(), name.size())) return candidate;
  }
  if (level == "warn" || level == "warning") return spdlog::level::warn;
  throw input_error("unknown log level '", level, "'")
      .hint("use one of trace, debug, info, warn, error, off");
}

}  // namespace

void init_logging(const std::string& level) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto parsed = parse_level(level);
  auto logger = spdlog::get("perpo");
  if (!logger) {
    g_console_sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    logger = std::make_shared<spdlog::logger>("perpo", g_console_sink);
    logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
    spdlog::set_default_logger(logger);
  }
  g_console_level = parsed;
  apply_levels(*logger);
  logger->flush_on(spdlog::level::warn);
}

void add_log_file(const std::filesystem::path& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto logger = spdlog::default_logger();
  if (g_file_sink) {
    auto& sinks = logger->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), g_file_sink), sinks.end());
    g_file_sink.reset();
  }
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  try {
    g_file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path.string(), false);
  } catch (const spdlog::spdlog_ex& e) {
    throw runtime_error("cannot open log file ", path.string(), ": ", e.what());
  }
  g_file_sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  logger->sinks().push_back(g_file_sink);
  apply_levels(*logger);
}

namespace {
spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

bool log_enabled(LogLevel level) {
  return spdlog::default_logger_raw()->should_log(to_spdlog(level));
}

void log_message(LogLevel level, std::string_view message) {
  spdlog::default_logger_raw()->log(to_spdlog(level), "{}", message);
}

void close_log_file() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_file_sink) return;
  auto logger = spdlog::default_logger();
  logger->flush();
  auto& sinks = logger->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), g_file_sink), sinks.end());
  g_file_sink.reset();
  apply_levels(*logger);
}

}  // namespace perpo
