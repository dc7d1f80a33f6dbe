// Text helpers of the byte-level BPE tokenizer (see bpe_text.h): utf8proc and PCRE2 live here.
#include "bpe_text.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "perpo/core/error.h"

namespace perpo::bpe_text {

namespace fs = std::filesystem;

// --- UTF-8 ---------------------------------------------------------------------------------

// Length in bytes of the code point at text[at] (stored in *point), 0 when it is not valid UTF-8.
std::size_t code_point_at(std::string_view text, std::size_t at, std::int32_t* point) {
  utf8proc_int32_t value = -1;
  const auto length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + at),
                                       static_cast<utf8proc_ssize_t>(text.size() - at), &value);
  if (length <= 0) return 0;
  *point = value;
  return static_cast<std::size_t>(length);
}

void append_utf8(std::int32_t point, std::string& out) {
  utf8proc_uint8_t buffer[4];
  const auto length = utf8proc_encode_char(point, buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<std::size_t>(length));
}

// Rust's char::is_whitespace (the White_Space property).
bool is_whitespace(std::int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// A \w character as the library's single_word check sees it: letters, marks, decimal digits,
// connector punctuation and the joiners.
bool is_word_character(std::int32_t c) {
  if (c == 0x200C || c == 0x200D) return true;
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// The code point that ends text (text is valid UTF-8 and not empty).
std::int32_t last_code_point(std::string_view text) {
  std::size_t at = text.size() - 1;
  while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
  std::int32_t point = 0;
  code_point_at(text, at, &point);
  return point;
}

std::string nfc(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; }))
    return std::string(text);
  utf8proc_uint8_t* mapped = nullptr;
  const auto length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  PERPO_CHECK(length >= 0, "NFC normalisation failed: ", utf8proc_errmsg(length));
  std::string out(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(length));
  std::free(mapped);
  return out;
}

// Bytes to text as Rust's String::from_utf8_lossy: each maximal invalid subsequence -> U+FFFD.
void append_lossy(std::string_view bytes, std::string& out) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  std::size_t i = 0;
  while (i < bytes.size()) {
    const unsigned char lead = byte(i);
    const int width = lead < 0x80                    ? 1
                      : lead >= 0xC2 && lead <= 0xDF ? 2
                      : lead >= 0xE0 && lead <= 0xEF ? 3
                      : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                     : 0;
    if (width == 1) {
      out += static_cast<char>(lead);
      ++i;
      continue;
    }
    // Accept continuation bytes while they can still make a valid sequence (Unicode's
    // "maximal subpart" rule, which Rust and Python follow).
    std::size_t next = i + 1;
    int accepted = 1;
    while (width > 0 && accepted < width && next < bytes.size()) {
      unsigned char low = 0x80, high = 0xBF;
      if (accepted == 1 && lead == 0xE0) low = 0xA0;
      if (accepted == 1 && lead == 0xED) high = 0x9F;
      if (accepted == 1 && lead == 0xF0) low = 0x90;
      if (accepted == 1 && lead == 0xF4) high = 0x8F;
      if (byte(next) < low || byte(next) > high) break;
      ++next;
      ++accepted;
    }
    if (width > 0 && accepted == width) {
      out.append(bytes.substr(i, next - i));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
    }
    i = next;
  }
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others for
// U+0100 onwards in byte order.
ByteLevelTable::ByteLevelTable() {
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const std::int32_t point = printable ? b : next++;
    append_utf8(point, byte_text[b]);
    to_byte[point] = b;
  }
}

const ByteLevelTable& byte_level() {
  static const ByteLevelTable table;
  return table;
}

// --- PCRE2 ----------------------------------------------------------------------------------

// The pattern with \s (and \S outside brackets) spelled out as the White_Space property, which
// the library's Oniguruma uses: PCRE2 10.42's \s with UCP also takes U+180E.
std::string with_white_space_class(std::string_view pattern) {
  constexpr std::string_view kSpaces =
      R"(\t\n\x0B\f\r\x20\x85\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        out += in_class ? std::string(kSpaces) : "[" + std::string(kSpaces) + "]";
      } else if (next == 'S' && !in_class) {
        out += "[^" + std::string(kSpaces) + "]";
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // a literal ]
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

struct Regex::Compiled {
  explicit Compiled(pcre2_code* compiled) : code(compiled) {}
  ~Compiled() { pcre2_code_free(code); }
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;
  pcre2_code* code;
};

Regex::Regex(std::string_view pattern, bool literal, const fs::path& file) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  const std::uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0u);
  const std::string source = literal ? std::string(pattern) : with_white_space_class(pattern);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                   options, &error, &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw input_error("tokenizer ", file.string(), ": cannot compile the pre-tokenizer regex '",
                      pattern, "' at offset ", error_offset, ": ",
                      reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // faster when JIT exists; fine without
  code_ = std::make_shared<const Compiled>(code);
}

std::vector<std::string_view> Regex::split(const std::vector<std::string_view>& pieces) const {
  std::vector<std::string_view> out;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), pcre2_match_data_free);
  for (std::string_view text : pieces) {
    std::size_t offset = 0, last = 0;
    while (offset < text.size()) {
      const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()),
                                 text.size(), offset, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      PERPO_CHECK(rc >= 0, "pre-tokenizer regex failed with PCRE2 error ", rc);
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      const std::size_t start = ovector[0], end = ovector[1];
      if (end == start) {
        std::int32_t point = 0;
        offset = start + std::max<std::size_t>(1, code_point_at(text, start, &point));
        continue;
      }
      if (start > last) out.push_back(text.substr(last, start - last));
      out.push_back(text.substr(start, end - start));
      last = offset = end;
    }
    if (last < text.size()) out.push_back(text.substr(last));
  }
  return out;
}

}  // namespace perpo::bpe_text
