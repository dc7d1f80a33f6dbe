// The textbook Levenshtein distance by dynamic programming, one table row at a time: O(|a| |b|)
// time, O(|b|) memory. Bytes for `did you mean` suggestions (core/strings.h edit_distance_bytes);
// code points as the reference of the reward's bit-parallel levenshtein (reward/edit_distance.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <string_view>
#include <vector>

namespace perpo {

template <typename Char>
std::size_t levenshtein_table(std::basic_string_view<Char> a, std::basic_string_view<Char> b) {
  // row[j] = distance(a[0..i), b[0..j)) for the current i.
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace perpo
