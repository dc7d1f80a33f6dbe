// Hostile or broken safetensors files and shard indexes: every one is refused with a message that
// names the file and the tensor, before any tensor is handed out. The files are built here byte
// by byte (8-byte little-endian header length, JSON header, data section).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "io_test_model.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/hf_names.h"
#include "perpo/model/safetensors.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using test::error_of;
using ::testing::HasSubstr;

fs::path scratch(const std::string& name) { return test::fresh_scratch_dir("model_hostile", name); }

/// A safetensors file with `header` verbatim and `data_bytes` zero bytes of data.
fs::path write_raw(const fs::path& dir, const std::string& header, std::size_t data_bytes,
                   const std::string& name = "x.safetensors") {
  std::string bytes(8, '\0');
  std::uint64_t size = header.size();
  std::memcpy(bytes.data(), &size, 8);
  write_file_atomic(dir / name, bytes + header + std::string(data_bytes, '\0'));
  return dir / name;
}

std::string open_error(const fs::path& path) {
  return error_of([&] { SafetensorsFile file(path); });
}

TEST(SafetensorsHostile, ByteCountThatWrapsAroundIsRefused) {
  // 2^62 x 4 float32 elements: numel * 4 = 2^66 wraps to 0 in uint64, matching offsets [0, 0].
  fs::path path =
      write_raw(scratch("wrap"),
                R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0);
  std::string message = open_error(path);
  EXPECT_THAT(message, HasSubstr(path.string()));
  EXPECT_THAT(message, HasSubstr("tensor 'w'"));
  EXPECT_THAT(message, HasSubstr("too large"));
  // A dimension beyond int64 is refused as well.
  EXPECT_THAT(
      open_error(write_raw(
          scratch("wrap2"),
          R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0)),
      HasSubstr("too large"));
}

TEST(SafetensorsHostile, OverlappingOrGappedOffsetsAreRefused) {
  // a = bytes [0, 16), b = bytes [8, 24): b's first half is a's second half.
  std::string message =
      open_error(write_raw(scratch("overlap"),
                           R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},
                                                 "b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                           24));
  EXPECT_THAT(message, HasSubstr("tensor 'b'"));
  EXPECT_THAT(message, HasSubstr("overlaps"));
  // A gap of 8 unused bytes between a and b.
  EXPECT_THAT(open_error(write_raw(scratch("gap"),
                                   R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},
                                       "b":{"dtype":"F32","shape":[4],"data_offsets":[24,40]}})",
                                   40)),
              HasSubstr("gap"));
}

TEST(SafetensorsHostile, DuplicateNamesAreRefused) {
  // JSON parsers keep the last of two equal keys; the first tensor would silently vanish.
  std::string message =
      open_error(write_raw(scratch("duplicate"),
                           R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                                 "w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                           16));
  EXPECT_THAT(message, HasSubstr("tensor 'w' appears twice"));
}

TEST(SafetensorsHostile, TrailingBytesAreRefused) {
  std::string message = open_error(write_raw(
      scratch("trailing"), R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8 + 5));
  EXPECT_THAT(message, HasSubstr("5 bytes after the last tensor"));
  // The same file without the extra bytes opens.
  SafetensorsFile good(
      write_raw(scratch("exact"), R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8));
  EXPECT_EQ(good.tensor("w").numel(), 2);
}

TEST(SafetensorsHostile, IntegerTensorIsNotLoadedIntoFloatWeights) {
  auto model = test::make_mini_llava();
  fs::path dir = scratch("int_weights");
  NamedTensors tensors;
  const std::string target = "language_model.layers.0.mlp.up_proj.weight";
  for (auto& [name, tensor] : canonical_state(*model)) {
    torch::Tensor value = name == target ? torch::ones(tensor.sizes(), torch::kInt) : tensor;
    tensors.emplace_back(canonical_to_hf(name, HfLayout::kNew), value);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  std::string message = error_of([&] { load_weights(*model, dir); });
  EXPECT_THAT(message, HasSubstr("'" + canonical_to_hf(target, HfLayout::kNew) + "'"));
  EXPECT_THAT(message, HasSubstr("I32"));
  // Float types convert: the same checkpoint with BF16 weights loads.
  for (auto& item : tensors) {
    if (item.first == canonical_to_hf(target, HfLayout::kNew))
      item.second = torch::ones(item.second.sizes(), torch::kBFloat16);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  load_weights(*model, dir);
  EXPECT_EQ(model->named_parameters()[target].sum().item<double>(),
            static_cast<double>(model->named_parameters()[target].numel()));
}

TEST(SafetensorsHostile, ShardIndexMayNotNameFilesOutsideTheFolder) {
  fs::path root = scratch("escape");
  fs::create_directories(root / "ckpt");
  write_safetensors(root / "outside.safetensors", {{"a", torch::ones({2})}});
  for (const std::string& shard :
       {std::string("../outside.safetensors"), (root / "outside.safetensors").string(),
        std::string("sub/../../outside.safetensors")}) {
    write_file_atomic(root / "ckpt" / "model.safetensors.index.json",
                      R"({"weight_map": {"a": ")" + shard + R"("}})");
    std::string message = error_of([&] { SafetensorsCheckpoint checkpoint(root / "ckpt"); });
    EXPECT_THAT(message, HasSubstr("model.safetensors.index.json")) << shard;
    EXPECT_THAT(message, HasSubstr("outside the checkpoint folder")) << shard;
  }
}

}  // namespace
}  // namespace perpo
