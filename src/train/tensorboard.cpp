// TensorBoard event files: TFRecord framing + a minimal protobuf encoder (tensorboard.h).
#include "perpo/train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "perpo/core/error.h"

namespace perpo {
namespace {

std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    table[i] = crc;
  }
  return table;
}

// --- protobuf wire format: varint (type 0), fixed64 (1), length-delimited (2), fixed32 (5) ---
void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | wire_type);
}
template <typename T>
void put_fixed(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // little endian hosts (x86, ARM)
  out.append(bytes, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string event_header(double wall_time) {
  std::string event;
  put_tag(event, 1, 1);
  put_fixed<double>(event, wall_time);
  put_bytes(event, 3, "brain.Event:2");
  return event;
}

std::string scalar_event(double wall_time, std::int64_t step, const std::string& tag, float v) {
  std::string value;
  put_bytes(value, 1, tag);
  put_tag(value, 2, 5);
  put_fixed<float>(value, v);
  std::string summary;
  put_bytes(summary, 1, value);
  std::string event;
  put_tag(event, 1, 1);
  put_fixed<double>(event, wall_time);
  put_tag(event, 2, 0);
  put_varint(event, static_cast<std::uint64_t>(step));
  put_bytes(event, 5, summary);
  return event;
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = make_crc32c_table();
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(const void* data, std::size_t size) {
  const std::uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  const double now = now_seconds();
  std::string name = "events.out.tfevents." + std::to_string(static_cast<std::int64_t>(now)) + "." +
                     host + "." + std::to_string(::getpid());
  path_ = dir / name;
  out_.open(path_, std::ios::binary | std::ios::trunc);
  PERPO_CHECK(out_.good(), "cannot create the TensorBoard event file ", path_.string());
  write_record(event_header(now));
  flush();
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string header;
  put_fixed<std::uint64_t>(header, data.size());
  const std::uint32_t header_crc = masked_crc32c(header.data(), header.size());
  put_fixed<std::uint32_t>(header, header_crc);
  std::string footer;
  put_fixed<std::uint32_t>(footer, masked_crc32c(data.data(), data.size()));
  out_ << header << data << footer;
}

void TensorBoardWriter::add_scalar(const std::string& tag, std::int64_t step, float value) {
  write_record(scalar_event(now_seconds(), step, tag, value));
}

void TensorBoardWriter::flush() {
  out_.flush();
  PERPO_CHECK(out_.good(), "writing the TensorBoard event file ", path_.string(), " failed");
}

}  // namespace perpo
