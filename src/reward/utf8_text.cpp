// UTF-8 decoding with replacement of invalid bytes, and text normalisation for OCR scores.
#include <utf8proc.h>

#include "perpo/reward/text.h"

namespace perpo {
namespace {

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

std::u32string decode_utf8(std::string_view bytes) {
  std::u32string points;
  points.reserve(bytes.size());
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t size = bytes.size();
  std::size_t pos = 0;
  while (pos < size) {
    unsigned char lead = data[pos];
    if (lead < 0x80) {
      points.push_back(lead);
      ++pos;
      continue;
    }
    // Sequence length and the allowed range of the SECOND byte (Unicode table 3-7), which rules
    // out overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and > U+10FFFF (F4 90..).
    std::size_t length = 0;
    unsigned char second_low = 0x80, second_high = 0xBF;
    char32_t point = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2, point = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3, point = lead & 0x0F;
      if (lead == 0xE0) second_low = 0xA0;
      if (lead == 0xED) second_high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4, point = lead & 0x07;
      if (lead == 0xF0) second_low = 0x90;
      if (lead == 0xF4) second_high = 0x8F;
    } else {
      points.push_back(kReplacementChar);  // C0, C1, F5..FF or a stray continuation byte
      ++pos;
      continue;
    }
    std::size_t consumed = 1;
    bool valid = true;
    for (std::size_t k = 1; k < length; ++k) {
      if (pos + k >= size) {
        valid = false;
        break;
      }
      unsigned char byte = data[pos + k];
      bool in_range =
          (k == 1) ? (byte >= second_low && byte <= second_high) : is_continuation(byte);
      if (!in_range) {
        valid = false;
        break;
      }
      point = (point << 6) | (byte & 0x3F);
      ++consumed;
    }
    // An invalid sequence's valid prefix (the maximal subpart) becomes one U+FFFD; decoding
    // resumes at the first byte that did not fit.
    points.push_back(valid ? point : kReplacementChar);
    pos += consumed;
  }
  return points;
}

std::string encode_utf8(std::u32string_view points) {
  std::string bytes;
  bytes.reserve(points.size());
  for (char32_t point : points) {
    if (point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) point = kReplacementChar;
    if (point < 0x80) {
      bytes.push_back(static_cast<char>(point));
    } else if (point < 0x800) {
      bytes.push_back(static_cast<char>(0xC0 | (point >> 6)));
      bytes.push_back(static_cast<char>(0x80 | (point & 0x3F)));
    } else if (point < 0x10000) {
      bytes.push_back(static_cast<char>(0xE0 | (point >> 12)));
      bytes.push_back(static_cast<char>(0x80 | ((point >> 6) & 0x3F)));
      bytes.push_back(static_cast<char>(0x80 | (point & 0x3F)));
    } else {
      bytes.push_back(static_cast<char>(0xF0 | (point >> 18)));
      bytes.push_back(static_cast<char>(0x80 | ((point >> 12) & 0x3F)));
      bytes.push_back(static_cast<char>(0x80 | ((point >> 6) & 0x3F)));
      bytes.push_back(static_cast<char>(0x80 | (point & 0x3F)));
    }
  }
  return bytes;
}

bool is_unicode_space(char32_t point) {
  // The White_Space property of Unicode 15 (PropList.txt), listed out: it is short and stable.
  switch (point) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return point >= 0x2000 && point <= 0x200A;
  }
}

std::u32string normalize_text(std::u32string_view text, const TextNormalization& normalization) {
  std::u32string result;
  result.reserve(text.size());
  bool pending_space = false;
  for (char32_t point : text) {
    if (normalization.collapse_whitespace && is_unicode_space(point)) {
      pending_space = !result.empty();  // leading whitespace is dropped
      continue;
    }
    if (pending_space) result.push_back(U' '), pending_space = false;
    if (normalization.lowercase && point <= 0x10FFFF) {
      point = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(point)));
    }
    result.push_back(point);
  }
  return result;  // trailing whitespace never got its pending ' ' written
}

std::vector<std::u32string> split_words(std::u32string_view text) {
  std::vector<std::u32string> words;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && is_unicode_space(text[pos])) ++pos;
    std::size_t start = pos;
    while (pos < text.size() && !is_unicode_space(text[pos])) ++pos;
    if (pos > start) words.emplace_back(text.substr(start, pos - start));
  }
  return words;
}

}  // namespace perpo
