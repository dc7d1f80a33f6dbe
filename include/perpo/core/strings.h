// Small string helpers shared by the modules (no LibTorch).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace perpo {

/// Levenshtein distance on bytes; for short identifiers (suggestions), not for OCR scoring.
std::size_t edit_distance_bytes(std::string_view a, std::string_view b);

/// The candidate closest to `word`, if it is close enough to be a plausible typo
/// (distance <= max(2, |word| / 3)). Ties go to the first candidate.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

/// Splits on a single character; keeps empty pieces.
std::vector<std::string> split(std::string_view text, char separator);

/// `items` joined by `separator`.
std::string join(const std::vector<std::string>& items, std::string_view separator);

/// Leading and trailing ASCII whitespace removed.
std::string_view trim(std::string_view text);

bool starts_with(std::string_view text, std::string_view prefix);
bool ends_with(std::string_view text, std::string_view suffix);

}  // namespace perpo
