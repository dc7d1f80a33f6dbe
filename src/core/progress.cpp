#include "perpo/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace perpo {
namespace {

bool progress_wanted() {
  if (const char* env = std::getenv("PERPO_PROGRESS")) {
    if (std::strcmp(env, "0") == 0) return false;
    if (std::strcmp(env, "1") == 0) return true;
  }
  return ::isatty(STDERR_FILENO) == 1;
}

std::string format_rate(double rate) {
  char buffer[32];
  if (rate >= 100) {
    std::snprintf(buffer, sizeof buffer, "%.0f", rate);
  } else if (rate >= 1) {
    std::snprintf(buffer, sizeof buffer, "%.1f", rate);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3f", rate);
  }
  return buffer;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto total = static_cast<long long>(std::llround(seconds));
  long long hours = total / 3600, minutes = (total % 3600) / 60, secs = total % 60;
  char buffer[32];
  if (hours > 0) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", hours, minutes);
  } else if (minutes > 0) {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", minutes, secs);
  } else {
    std::snprintf(buffer, sizeof buffer, "%llds", secs);
  }
  return buffer;
}

Progress::Progress(std::int64_t total, std::string label, std::string unit)
    : total_(total),
      label_(std::move(label)),
      unit_(std::move(unit)),
      enabled_(progress_wanted()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

double Progress::rate() const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
}

void Progress::advance(std::int64_t n) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (enabled_ && now - last_draw_ > std::chrono::milliseconds(200)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::set_note(std::string note) { note_ = std::move(note); }

std::string Progress::render() const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double per_second = rate();
  std::string line = label_ + " ";
  if (total_ > 0) {
    double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    constexpr int kWidth = 24;
    int filled = static_cast<int>(fraction * kWidth);
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    line += std::to_string(done_) + "/" + std::to_string(total_) + " " + unit_;
    char percent[16];
    std::snprintf(percent, sizeof percent, " %3.0f%%", fraction * 100);
    line += percent;
  } else {
    line += std::to_string(done_) + " " + unit_;
  }
  line += "  " + format_rate(per_second) + " " + unit_ + "/s";
  line += "  " + format_duration(elapsed);
  if (total_ > 0 && done_ < total_ && per_second > 0) {
    line += " ETA " + format_duration(static_cast<double>(total_ - done_) / per_second);
  }
  if (!note_.empty()) line += "  " + note_;
  return line;
}

void Progress::draw(bool final_line) {
  std::string line = render();
  std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

}  // namespace perpo
