// The protobuf wire format, as much of it as editing a serialized SentencePiece ModelProto takes
// (Debian installs no sentencepiece_model.pb.h): varints and a flat walk over a message's fields.
// Private to the tokenizer module (tokenizer.cpp, trainer.cpp). Malformed input throws
// perpo::Error (runtime) saying "malformed SentencePiece model".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace perpo {

std::uint64_t read_varint(std::string_view bytes, std::size_t& at);
void write_varint(std::uint64_t value, std::string& out);

/// One field of a message.
struct ProtoField {
  std::uint64_t number;
  int wire_type;             // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  std::string_view raw;      // the whole field, tag included
  std::string_view payload;  // length-delimited fields only
};

/// The fields of `bytes` in order (views into it).
std::vector<ProtoField> proto_fields(std::string_view bytes);

}  // namespace perpo
