// Levenshtein distance: bit-parallel (Myers 1999 / Hyyrö 2003, multi-block) and plain DP.
//
// Bit-vector picture. The DP table D has one row per pattern character (the longer string, m
// rows) and one column per text character (n columns). Column j is not stored; only its vertical
// deltas D[i][j] - D[i-1][j], each in {-1, 0, +1}, as two bit masks per 64 rows:
//   Pv bit i set: delta at row i+1 is +1;  Mv bit i set: delta is -1;  neither: 0.
// One text character updates a whole 64-row block with a dozen word operations. Blocks are
// chained top to bottom by the horizontal delta leaving each block's last row (hin / hout).
// The answer D[m][n] is tracked directly: it starts at D[m][0] = m and moves by the horizontal
// delta of row m at every column.
#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <vector>

#include "perpo/reward/edit_distance.h"

namespace perpo {
namespace {

using Word = std::uint64_t;
constexpr Word kHighBit = Word{1} << 63;

struct Block {
  Word pv = ~Word{0};  // all +1: the first column is D[i][0] = i
  Word mv = 0;
};

/// Advances one block by one text character with match mask `eq`; `hin` is the horizontal delta
/// entering at the top of the block; returns the delta at row `out_bit` (the block's last row,
/// or the pattern's last row in the final block).
inline int advance_block(Block& block, Word eq, int hin, Word out_bit) {
  Word pv = block.pv;
  Word mv = block.mv;
  Word xv = eq | mv;
  if (hin < 0) eq |= 1;  // a -1 entering from above acts like a match on the top row
  Word xh = (((eq & pv) + pv) ^ pv) | eq;
  Word ph = mv | ~(xh | pv);
  Word mh = pv & xh;
  int hout = 0;
  if (ph & out_bit) hout = 1;
  if (mh & out_bit) hout = -1;
  ph <<= 1;
  mh <<= 1;
  if (hin < 0) {
    mh |= 1;
  } else if (hin > 0) {
    ph |= 1;
  }
  block.pv = mh | ~(xv | ph);
  block.mv = ph & xv;
  return hout;
}

/// Symbol table of the pattern: code point -> row index into the match masks.
class PatternAlphabet {
 public:
  explicit PatternAlphabet(std::u32string_view pattern) {
    symbols_.assign(pattern.begin(), pattern.end());
    std::sort(symbols_.begin(), symbols_.end());
    symbols_.erase(std::unique(symbols_.begin(), symbols_.end()), symbols_.end());
    small_.fill(-1);
    for (std::size_t i = 0; i < symbols_.size(); ++i) {
      if (symbols_[i] < small_.size()) small_[symbols_[i]] = static_cast<int>(i);
    }
  }
  std::size_t size() const { return symbols_.size(); }
  /// Index of `point`, or -1 when the pattern does not contain it.
  int index(char32_t point) const {
    if (point < small_.size()) return small_[point];
    auto it = std::lower_bound(symbols_.begin(), symbols_.end(), point);
    return (it != symbols_.end() && *it == point) ? static_cast<int>(it - symbols_.begin()) : -1;
  }

 private:
  std::vector<char32_t> symbols_;
  std::array<int, 256> small_{};  // direct lookup for Latin-1
};

std::size_t bit_parallel_distance(std::u32string_view pattern, std::u32string_view text) {
  const std::size_t m = pattern.size();
  const std::size_t block_count = (m + 63) / 64;
  PatternAlphabet alphabet(pattern);
  // peq[symbol * block_count + b]: bit i set where pattern[64 * b + i] == symbol.
  std::vector<Word> peq((alphabet.size() + 1) * block_count, 0);  // last row: no match anywhere
  for (std::size_t i = 0; i < m; ++i) {
    std::size_t symbol = static_cast<std::size_t>(alphabet.index(pattern[i]));
    peq[symbol * block_count + i / 64] |= Word{1} << (i % 64);
  }
  const std::size_t no_match_row = alphabet.size();
  const Word last_bit = Word{1} << ((m - 1) % 64);

  std::vector<Block> blocks(block_count);
  std::size_t score = m;
  for (char32_t point : text) {
    int symbol = alphabet.index(point);
    const Word* eq =
        &peq[(symbol < 0 ? no_match_row : static_cast<std::size_t>(symbol)) * block_count];
    int carry = 1;  // the top row D[0][j] = j grows by 1 per column
    for (std::size_t b = 0; b + 1 < block_count; ++b) {
      carry = advance_block(blocks[b], eq[b], carry, kHighBit);
    }
    carry = advance_block(blocks[block_count - 1], eq[block_count - 1], carry, last_bit);
    score += carry;  // wraps correctly for carry == -1: score never drops below 0
  }
  return score;
}

}  // namespace

std::size_t levenshtein(std::u32string_view a, std::u32string_view b) {
  // Common prefix and suffix never change the distance; stripping them is free speed.
  std::size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  a.remove_prefix(prefix);
  b.remove_prefix(prefix);
  std::size_t suffix = 0;
  while (suffix < a.size() && suffix < b.size() &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) {
    ++suffix;
  }
  a.remove_suffix(suffix);
  b.remove_suffix(suffix);
  if (a.empty()) return b.size();
  if (b.empty()) return a.size();
  // The longer string is the pattern: cost ~ ceil(m / 64) * n is lowest that way.
  return a.size() >= b.size() ? bit_parallel_distance(a, b) : bit_parallel_distance(b, a);
}

std::size_t levenshtein_dp(std::u32string_view a, std::u32string_view b) {
  // row[j] = distance(a[0..i), b[0..j)) for the current i.
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace perpo
