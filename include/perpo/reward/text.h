// Unicode text for OCR scoring: UTF-8 decoding to code points, and the optional normalisations
// (whitespace, case) applied before comparing an answer with its ground truth.
//
//   std::u32string points = perpo::decode_utf8("caf\xC3\xA9");   // {'c','a','f',U+00E9}
//   perpo::normalize_text(U"  Hello \t World ", {.collapse_whitespace = true, .lowercase = true})
//     == U"hello world"
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace perpo {

/// The replacement character that stands for each invalid UTF-8 sequence.
inline constexpr char32_t kReplacementChar = 0xFFFD;

/// Decodes UTF-8 to code points. Never throws: every maximal invalid subsequence (stray
/// continuation byte, truncated sequence, overlong form, surrogate, value above U+10FFFF)
/// becomes one U+FFFD, the "maximal subpart" practice of the Unicode standard (ch. 3.9).
std::u32string decode_utf8(std::string_view bytes);

/// Encodes code points as UTF-8 (invalid code points, e.g. surrogates, as U+FFFD).
std::string encode_utf8(std::u32string_view points);

/// True for Unicode White_Space characters (ASCII blanks, NBSP, U+2000..U+200A, U+3000, ...).
bool is_unicode_space(char32_t point);

struct TextNormalization {
  bool collapse_whitespace = false;  // trim, and turn each run of whitespace into one ' '
  bool lowercase = false;            // Unicode simple lowercase mapping (utf8proc)
};

/// `text` with the requested normalisations applied (identity when both are off).
std::u32string normalize_text(std::u32string_view text, const TextNormalization& normalization);

/// Splits on runs of Unicode whitespace; no empty words.
std::vector<std::u32string> split_words(std::u32string_view text);

}  // namespace perpo
