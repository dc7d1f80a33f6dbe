// A JSON number too large for a double (1e400) makes nlohmann throw out_of_range, not
// parse_error; every JSON file the model module reads reports it as bad input (exit 2) naming the
// file. Found by fuzzing the safetensors header (fuzz/safetensors_header.cpp; the crashing input is
// tests/fixtures/fuzz/safetensors_header/number_overflow).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/model_config.h"
#include "perpo/model/safetensors.h"
#include "perpo/model/safetensors_header.h"
#include "test_util.h"

namespace perpo {
namespace {
using ::testing::HasSubstr;

using test::input_error_of;

std::string safetensors_bytes(const std::string& header) {
  std::string bytes(8, '\0');
  const std::uint64_t size = header.size();
  std::memcpy(bytes.data(), &size, 8);
  return bytes + header + std::string(4, '\0');
}

TEST(JsonNumbers, SafetensorsHeaderWithAHugeNumberIsBadInput) {
  const std::string bytes =
      safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})");
  const std::string message = input_error_of([&] {
    parse_safetensors_header(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                             "x.safetensors");
  });
  EXPECT_THAT(message, HasSubstr("x.safetensors: the header is not valid JSON"));
  const auto dir = test::fresh_scratch_dir("json_numbers", "header");
  write_file_atomic(dir / "model.safetensors", bytes);
  EXPECT_THAT(input_error_of([&] { SafetensorsFile file(dir / "model.safetensors"); }),
              HasSubstr("not valid JSON"));
}

TEST(JsonNumbers, ShardIndexWithAHugeNumberIsBadInput) {
  const auto dir = test::fresh_scratch_dir("json_numbers", "index");
  write_file_atomic(dir / "model.safetensors.index.json",
                    R"({"metadata": {"total_size": 1e400}, "weight_map": {}})");
  EXPECT_THAT(input_error_of([&] { SafetensorsCheckpoint checkpoint(dir); }),
              HasSubstr("model.safetensors.index.json is not valid JSON"));
}

TEST(JsonNumbers, ConfigJsonWithAHugeNumberIsBadInput) {
  EXPECT_THAT(input_error_of([&] {
                parse_model_config(
                    R"({"model_type": "llava", "text_config": {"rope_theta": 1e400}})",
                    "ckpt/config.json");
              }),
              HasSubstr("ckpt/config.json is not valid JSON"));
}

TEST(SafetensorsHeader, ParsesEntriesInDataOrderWithoutLibTorch) {
  // "b" is listed first but lies after "a" in the data section; F32 [2] = 8 bytes, BF16 [3] = 6.
  const std::string bytes =
      safetensors_bytes(
          R"({"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
          R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}})") +
      std::string(10, '\0');  // 4 + 10 = 14 data bytes
  const SafetensorsHeader header = parse_safetensors_header(
      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), "x.safetensors");
  ASSERT_EQ(header.entries.size(), 2u);
  EXPECT_EQ(header.entries[0].name, "a");
  EXPECT_EQ(header.entries[0].element_size, 4u);
  EXPECT_EQ(header.entries[1].name, "b");
  EXPECT_EQ(header.entries[1].dtype, "BF16");
  EXPECT_EQ(header.entries[1].shape, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(header.data_start, bytes.size() - 14);
  EXPECT_EQ(header.metadata.at("format"), "pt");
  EXPECT_EQ(safetensors_element_size("F8_E4M3"), 0u);
}

}  // namespace
}  // namespace perpo
