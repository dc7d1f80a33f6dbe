// TensorBoard event files, written directly (no TensorFlow / protobuf library): scalars only.
//
//   perpo::TensorBoardWriter tb("runs/x");           // runs/x/events.out.tfevents.<time>.<host>
//   tb.add_scalar("train/loss", step, 0.41f);
//   tb.flush();
//
// File format: a sequence of TFRecords,
//   uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32
//   masked_crc32c(data)
// masked_crc32c(x) = rotate_right(crc32c(x), 15) + 0xa282ead8. Each data is a serialized
// tensorflow.Event protobuf; the first holds file_version "brain.Event:2", the others a Summary:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace perpo {

/// CRC-32C (Castagnoli), the checksum of TFRecords. crc32c("123456789") = 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t size);
/// TFRecord's masked form of crc32c.
std::uint32_t masked_crc32c(const void* data, std::size_t size);

class TensorBoardWriter {
 public:
  /// Creates `dir` if needed and a new event file in it (never appends to an old one).
  explicit TensorBoardWriter(const std::filesystem::path& dir);

  void add_scalar(const std::string& tag, std::int64_t step, float value);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace perpo
