// A progress bar for long loops: count, rate and ETA on one redrawn stderr line when stderr is a
// terminal; silent otherwise (logs and CI stay clean). PERPO_PROGRESS=0 silences it, =1 forces it.
//
//   perpo::Progress bar(lists.size(), "sampling", "lists");
//   for (...) { ...; bar.advance(); }
//   bar.finish();   // prints the final line (also done by the destructor)
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace perpo {

class Progress {
 public:
  /// `total` 0 means unknown (no percentage or ETA). `unit` names what is counted.
  Progress(std::int64_t total, std::string label, std::string unit = "it");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::int64_t n = 1);
  /// Short free text shown after the counters ("loss 0.41").
  void set_note(std::string note);
  void finish();

  std::int64_t done() const { return done_; }
  bool enabled() const { return enabled_; }
  /// Items per second so far.
  double rate() const;
  /// The line that would be drawn now (exposed for tests).
  std::string render() const;

 private:
  void draw(bool final_line);

  std::int64_t total_;
  std::int64_t done_ = 0;
  std::string label_;
  std::string unit_;
  std::string note_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

/// "1h02m", "3m05s", "12s" for a duration in seconds.
std::string format_duration(double seconds);

}  // namespace perpo
