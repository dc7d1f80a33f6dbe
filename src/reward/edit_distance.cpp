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

#include "perpo/core/levenshtein_table.h"

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
  // Branch-free on purpose: hin and hout are data-dependent and would mispredict often.
  const Word hin_negative = static_cast<Word>(hin < 0);
  const Word hin_positive = static_cast<Word>(hin > 0);
  Word pv = block.pv;
  Word mv = block.mv;
  Word xv = eq | mv;
  eq |= hin_negative;  // a -1 entering from above acts like a match on the top row
  Word xh = (((eq & pv) + pv) ^ pv) | eq;
  Word ph = mv | ~(xh | pv);
  Word mh = pv & xh;
  int hout = static_cast<int>((ph & out_bit) != 0) - static_cast<int>((mh & out_bit) != 0);
  ph = (ph << 1) | hin_positive;
  mh = (mh << 1) | hin_negative;
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

  auto match_masks = [&](char32_t point) {
    int symbol = alphabet.index(point);
    return &peq[(symbol < 0 ? no_match_row : static_cast<std::size_t>(symbol)) * block_count];
  };
  auto out_bit = [&](std::size_t b) { return b + 1 == block_count ? last_bit : kHighBit; };

  // Two text characters per pass, staggered by one block: (column j, block b) and
  // (column j+1, block b-1) do not depend on each other, so the CPU overlaps their dependency
  // chains. Column j+1 reaches block b-1 only after column j has left it.
  std::vector<Block> blocks(block_count);
  std::size_t score = m;
  std::size_t j = 0;
  for (; j + 1 < text.size(); j += 2) {
    const Word* eq0 = match_masks(text[j]);
    const Word* eq1 = match_masks(text[j + 1]);
    int carry0 = advance_block(blocks[0], eq0[0], 1, out_bit(0));  // top row: D[0][j] = j
    int carry1 = 1;
    for (std::size_t b = 1; b < block_count; ++b) {
      carry0 = advance_block(blocks[b], eq0[b], carry0, out_bit(b));
      carry1 = advance_block(blocks[b - 1], eq1[b - 1], carry1, kHighBit);
    }
    carry1 = advance_block(blocks[block_count - 1], eq1[block_count - 1], carry1, last_bit);
    score += carry0;  // size_t wrap-around makes -1 work: the score never drops below 0
    score += carry1;
  }
  if (j < text.size()) {  // odd length: the last column alone
    const Word* eq = match_masks(text[j]);
    int carry = 1;
    for (std::size_t b = 0; b < block_count; ++b) {
      carry = advance_block(blocks[b], eq[b], carry, out_bit(b));
    }
    score += carry;
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
  return levenshtein_table(a, b);
}

}  // namespace perpo
