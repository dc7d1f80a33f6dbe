// Text helpers of the byte-level BPE tokenizer (bpe_tokenizer.cpp): UTF-8 walking and
// Unicode classes as the `tokenizers` library sees them (utf8proc), NFC, Rust's lossy UTF-8
// decoding, GPT-2's bytes_to_unicode table and the pre-tokenizer regex (PCRE2).
// Private to the tokenizer module; PCRE2 and utf8proc are reached only from bpe_text.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace perpo::bpe_text {

// --- UTF-8 ---------------------------------------------------------------------------------

/// Length in bytes of the code point at text[at] (stored in *point), 0 when it is not valid UTF-8.
std::size_t code_point_at(std::string_view text, std::size_t at, std::int32_t* point);
/// Appends the UTF-8 of `point`.
void append_utf8(std::int32_t point, std::string& out);
/// Rust's char::is_whitespace (the White_Space property).
bool is_whitespace(std::int32_t c);
/// A \w character as the library's single_word check sees it: letters, marks, decimal digits,
/// connector punctuation and the joiners.
bool is_word_character(std::int32_t c);
/// The code point that ends text (text is valid UTF-8 and not empty).
std::int32_t last_code_point(std::string_view text);
/// NFC normalisation (utf8proc); ASCII text is returned as it is.
std::string nfc(std::string_view text);
/// Bytes to text as Rust's String::from_utf8_lossy: each maximal invalid subsequence -> U+FFFD.
void append_lossy(std::string_view bytes, std::string& out);

// --- byte-level alphabet -------------------------------------------------------------------

/// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others for
/// U+0100 onwards in byte order.
struct ByteLevelTable {
  std::string byte_text[256];                     // UTF-8 of the character of each byte
  std::unordered_map<std::int32_t, int> to_byte;  // character -> byte
  ByteLevelTable();
};
/// The one table (built on first use).
const ByteLevelTable& byte_level();

// --- pre-tokenizer regex -------------------------------------------------------------------

/// The pattern with \s (and \S outside brackets) spelled out as the White_Space property, which
/// the library's Oniguruma uses: PCRE2 10.42's \s with UCP also takes U+180E.
std::string with_white_space_class(std::string_view pattern);

/// A Split pre-tokenizer's pattern, compiled by PCRE2 with UTF + UCP (or as a literal string).
class Regex {
 public:
  /// Throws perpo::Error (input) naming `file` when the pattern does not compile.
  Regex(std::string_view pattern, bool literal, const std::filesystem::path& file);

  /// Splits every piece at the matches, keeping matches and gaps ("Isolated"); empty matches
  /// are skipped, as the library drops empty pieces.
  std::vector<std::string_view> split(const std::vector<std::string_view>& pieces) const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> code_;
};

}  // namespace perpo::bpe_text
