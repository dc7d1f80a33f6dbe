// The protobuf wire format for SentencePiece models (proto_wire.h).
#include "proto_wire.h"

#include "perpo/core/error.h"

namespace perpo {

std::uint64_t read_varint(std::string_view bytes, std::size_t& at) {
  std::uint64_t value = 0;
  for (int shift = 0; at < bytes.size() && shift < 64; shift += 7) {
    const auto byte = static_cast<unsigned char>(bytes[at++]);
    value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return value;
  }
  throw runtime_error("malformed SentencePiece model (bad varint)");
}

void write_varint(std::uint64_t value, std::string& out) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

std::vector<ProtoField> proto_fields(std::string_view bytes) {
  std::vector<ProtoField> fields;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::size_t start = at;
    const std::uint64_t tag = read_varint(bytes, at);
    std::string_view payload;
    switch (tag & 7) {
      case 0:
        read_varint(bytes, at);
        break;
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      case 2: {
        const std::uint64_t length = read_varint(bytes, at);
        PERPO_CHECK(at + length <= bytes.size(), "malformed SentencePiece model (bad length)");
        payload = bytes.substr(at, length);
        at += length;
        break;
      }
      default:
        throw runtime_error("malformed SentencePiece model (wire type ", tag & 7, ")");
    }
    PERPO_CHECK(at <= bytes.size(), "malformed SentencePiece model (truncated)");
    fields.push_back(
        {tag >> 3, static_cast<int>(tag & 7), bytes.substr(start, at - start), payload});
  }
  return fields;
}

}  // namespace perpo
