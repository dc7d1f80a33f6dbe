// Reward throughput figures (a program that prints, not a test):
//   1. Levenshtein of two 5,000-code-point texts: bit-parallel (Myers/Hyyrö, 64-row blocks) vs
//      the plain dynamic programme, in ms, and the speed-up (must be >= 10x);
//   2. grounding answers scored per second by the `iou` reward (parse + select + IoU);
//   3. page-length OCR answers scored per second by `ocr_edit`.
// Times are CPU time of the benchmark thread (one core).
//
//   ./build/bench/bench_reward_edit_distance
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "perpo/reward/edit_distance.h"
#include "perpo/reward/reward.h"
#include "perpo/reward/text.h"

namespace {

/// CPU time of this thread: the machines running this are shared, and wall time would mostly
/// measure the neighbours.
struct Clock {
  using time_point = double;
  static double now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  }
};

double elapsed_ms(Clock::time_point start) { return Clock::now() - start; }

/// Page-like text: words of Latin letters with some accents and CJK characters, spaces between.
std::u32string page_text(std::mt19937& rng, std::size_t length) {
  static const std::u32string kLetters =
      U"abcdefghijklmnopqrstuvwxyz\u00E9\u00E8\u00FC\u4E2D\u6587";
  std::u32string text;
  while (text.size() < length) {
    std::size_t word = 1 + rng() % 9;
    for (std::size_t i = 0; i < word && text.size() < length; ++i) {
      text.push_back(kLetters[rng() % kLetters.size()]);
    }
    if (text.size() < length) text.push_back(U' ');
  }
  return text;
}

/// `text` with about `rate` of its positions edited (substitution, insertion or deletion).
std::u32string with_edits(std::mt19937& rng, std::u32string text, double rate) {
  std::size_t edits = static_cast<std::size_t>(rate * static_cast<double>(text.size()));
  for (std::size_t e = 0; e < edits; ++e) {
    std::size_t at = rng() % text.size();
    switch (rng() % 3) {
      case 0:
        text[at] = U'x';
        break;
      case 1:
        text.insert(at, 1, U'y');
        break;
      default:
        text.erase(at, 1);
        break;
    }
  }
  return text;
}

/// Median wall time of `repeats` runs of `work`, in ms; `result` receives the last value.
template <typename Work>
double median_ms(int repeats, Work work, std::size_t& result) {
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    auto start = Clock::now();
    result = work();
    times.push_back(elapsed_ms(start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void edit_distance_figures(const char* label, const std::u32string& a, const std::u32string& b) {
  std::size_t fast = 0, slow = 0;
  double fast_ms = median_ms(
      21, [&] { return perpo::levenshtein(a, b); }, fast);
  double slow_ms = median_ms(
      3, [&] { return perpo::levenshtein_dp(a, b); }, slow);
  std::printf("edit distance %-22s %zu x %zu code points: distance %zu (DP %zu)%s\n", label,
              a.size(), b.size(), fast, slow, fast == slow ? "" : "  MISMATCH");
  std::printf("  bit-parallel %8.3f ms   plain DP %8.3f ms   speed-up %.1fx\n", fast_ms, slow_ms,
              slow_ms / fast_ms);
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  std::u32string page = page_text(rng, 5000);
  std::u32string edited = with_edits(rng, page, 0.10);
  edited.resize(std::min<std::size_t>(edited.size(), 5000));
  while (edited.size() < 5000) edited.push_back(U'z');
  std::u32string unrelated = page_text(rng, 5000);
  edit_distance_figures("(10% edits)", page, edited);
  edit_distance_figures("(unrelated pages)", page, unrelated);

  // Grounding: a mix of the forms models write, against one truth.
  const std::string truth = "[0.61, 0.1, 0.77, 0.54]";
  std::vector<std::string> answers;
  std::uniform_real_distribution<double> coordinate(0.0, 1.0);
  char buffer[160];
  for (int i = 0; i < 200000; ++i) {
    double x1 = coordinate(rng), y1 = coordinate(rng), x2 = coordinate(rng), y2 = coordinate(rng);
    switch (i % 4) {
      case 0:
        std::snprintf(buffer, sizeof(buffer), "[%.2f, %.2f, %.2f, %.2f]", x1, y1, x2, y2);
        break;
      case 1:
        std::snprintf(buffer, sizeof(buffer),
                      "The object is at [%.3f,%.3f,%.3f,%.3f] in the image.", x1, y1, x2, y2);
        break;
      case 2:
        std::snprintf(buffer, sizeof(buffer), "<|box_start|>(%d,%d),(%d,%d)<|box_end|>",
                      int(x1 * 1000), int(y1 * 1000), int(x2 * 1000), int(y2 * 1000));
        break;
      default:
        std::snprintf(buffer, sizeof(buffer), "I cannot find it.");
        break;
    }
    answers.emplace_back(buffer);
  }
  const perpo::RewardSpec& iou = perpo::find_reward("iou");
  perpo::RewardOptions options;
  double checksum = 0;
  auto start = Clock::now();
  for (const auto& answer : answers) checksum += iou.score(answer, truth, options).score;
  double seconds = elapsed_ms(start) / 1000.0;
  std::printf("grounding (iou): %zu answers in %.3f s = %.0f answers/s (mean reward %.4f)\n",
              answers.size(), seconds, static_cast<double>(answers.size()) / seconds,
              checksum / static_cast<double>(answers.size()));

  // OCR: page-length answers (~2,000 code points, 5% edits) against their page.
  const perpo::RewardSpec& ocr = perpo::find_reward("ocr_edit");
  std::u32string reference = page_text(rng, 2000);
  std::string reference_utf8 = perpo::encode_utf8(reference);
  std::vector<std::string> pages;
  for (int i = 0; i < 200; ++i)
    pages.push_back(perpo::encode_utf8(with_edits(rng, reference, 0.05)));
  checksum = 0;
  start = Clock::now();
  for (const auto& answer : pages) checksum += ocr.score(answer, reference_utf8, options).score;
  seconds = elapsed_ms(start) / 1000.0;
  std::printf(
      "ocr (ocr_edit): %zu page answers of ~2000 code points in %.3f s = %.0f answers/s "
      "(mean reward %.4f)\n",
      pages.size(), seconds, static_cast<double>(pages.size()) / seconds,
      checksum / static_cast<double>(pages.size()));
  return 0;
}
