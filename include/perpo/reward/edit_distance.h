// Levenshtein distance on Unicode code points (insert, delete, substitute; each costs 1).
//
// levenshtein() is the fast path: the bit-parallel algorithm of Myers (1999) in Hyyrö's (2003)
// formulation for global edit distance, with the pattern split into 64-bit blocks so any length
// works. It costs O(ceil(m / 64) * n) word operations instead of the O(m * n) cells of the plain
// dynamic programme, which is kept (levenshtein_dp) as the reference the tests compare against.
//
//   perpo::levenshtein(U"kitten", U"sitting") == 3
#pragma once

#include <cstddef>
#include <string_view>

namespace perpo {

/// Edit distance by the bit-parallel algorithm (common prefix and suffix stripped first).
std::size_t levenshtein(std::u32string_view a, std::u32string_view b);

/// Edit distance by the textbook dynamic programme, O(|a| * |b|) time, O(|b|) memory.
std::size_t levenshtein_dp(std::u32string_view a, std::u32string_view b);

}  // namespace perpo
