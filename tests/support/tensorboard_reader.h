// Reads TensorBoard event files back (tests only, not in the perpo binary): the TFRecord framing
// with both CRCs of every record checked, and the scalar summaries inside.
//
//   for (const perpo::test::ScalarEvent& e : perpo::test::read_tensorboard_scalars(file)) ...
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/train/tensorboard.h"

namespace perpo::test {

/// One scalar read back from an event file.
struct ScalarEvent {
  std::string tag;
  std::int64_t step = 0;
  float value = 0;
  double wall_time = 0;
};

// A protobuf message being read: varint (type 0), fixed64 (1), length-delimited (2), fixed32 (5).
struct EventReader {
  const std::string& data;
  std::size_t pos = 0;
  const std::string& where;

  bool done() const { return pos >= data.size(); }
  std::uint64_t varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      PERPO_CHECK(pos < data.size(), where, ": truncated varint");
      const auto byte = static_cast<unsigned char>(data[pos++]);
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    throw runtime_error(where, ": varint too long");
  }
  template <typename T>
  T fixed() {
    PERPO_CHECK(pos + sizeof(T) <= data.size(), where, ": truncated fixed field");
    T value;
    std::memcpy(&value, data.data() + pos, sizeof(T));
    pos += sizeof(T);
    return value;
  }
  std::string bytes() {
    const std::uint64_t size = varint();
    PERPO_CHECK(pos + size <= data.size(), where, ": truncated bytes field");
    std::string out = data.substr(pos, size);
    pos += size;
    return out;
  }
  void skip(int wire_type) {
    if (wire_type == 0)
      varint();
    else if (wire_type == 1)
      fixed<std::uint64_t>();
    else if (wire_type == 2)
      bytes();
    else if (wire_type == 5)
      fixed<std::uint32_t>();
    else
      throw runtime_error(where, ": unsupported protobuf wire type ", wire_type);
  }
};

/// Every scalar of an event file; throws perpo::Error naming the file and the record on a
/// framing or CRC mismatch. Also returns the file_version of the first record when asked.
inline std::vector<ScalarEvent> read_tensorboard_scalars(const std::filesystem::path& path,
                                                         std::string* file_version = nullptr) {
  std::ifstream in(path, std::ios::binary);
  PERPO_CHECK(in.good(), "cannot open the event file ", path.string());
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<ScalarEvent> scalars;
  std::size_t pos = 0;
  for (int record = 0; pos < all.size(); ++record) {
    const std::string where = path.string() + " record " + std::to_string(record);
    PERPO_CHECK(pos + 12 <= all.size(), where, ": truncated record header");
    std::uint64_t length;
    std::uint32_t length_crc;
    std::memcpy(&length, all.data() + pos, 8);
    std::memcpy(&length_crc, all.data() + pos + 8, 4);
    PERPO_CHECK(length_crc == masked_crc32c(all.data() + pos, 8), where, ": bad length CRC");
    PERPO_CHECK(pos + 12 + length + 4 <= all.size(), where, ": truncated record data");
    std::string data = all.substr(pos + 12, length);
    std::uint32_t data_crc;
    std::memcpy(&data_crc, all.data() + pos + 12 + length, 4);
    PERPO_CHECK(data_crc == masked_crc32c(data.data(), data.size()), where, ": bad data CRC");
    pos += 12 + length + 4;

    EventReader event{data, 0, where};
    double wall_time = 0;
    std::int64_t step = 0;
    std::vector<std::pair<std::string, float>> values;
    while (!event.done()) {
      const std::uint64_t key = event.varint();
      const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
      if (field == 1 && wire == 1) {
        wall_time = event.fixed<double>();
      } else if (field == 2 && wire == 0) {
        step = static_cast<std::int64_t>(event.varint());
      } else if (field == 3 && wire == 2) {
        std::string version = event.bytes();
        if (file_version && record == 0) *file_version = version;
      } else if (field == 5 && wire == 2) {
        std::string summary_bytes = event.bytes();
        EventReader summary{summary_bytes, 0, where};
        while (!summary.done()) {
          const std::uint64_t skey = summary.varint();
          if (skey != (1 << 3 | 2)) {
            summary.skip(static_cast<int>(skey & 7));
            continue;
          }
          std::string value_bytes = summary.bytes();
          EventReader value{value_bytes, 0, where};
          std::string tag;
          float simple = 0;
          while (!value.done()) {
            const std::uint64_t vkey = value.varint();
            if (vkey == (1 << 3 | 2))
              tag = value.bytes();
            else if (vkey == (2 << 3 | 5))
              simple = value.fixed<float>();
            else
              value.skip(static_cast<int>(vkey & 7));
          }
          values.emplace_back(tag, simple);
        }
      } else {
        event.skip(wire);
      }
    }
    for (const auto& [tag, value] : values) scalars.push_back({tag, step, value, wall_time});
  }
  return scalars;
}

}  // namespace perpo::test
