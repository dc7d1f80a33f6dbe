// Safetensors reading and writing: files from Python's safetensors (fixtures), perpo's own round
// trip, sharded checkpoints, and the errors for broken files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/safetensors.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path fixture(const std::string& name) {
  return fs::path(test::kTestsDir) / "fixtures" / "model_io" / name;
}

fs::path scratch(const std::string& name) { return test::fresh_scratch_dir("model_io", name); }
using test::error_of;

TEST(Safetensors, ReadsEveryDtypeWrittenByPython) {
  SafetensorsFile file(fixture("dtypes.safetensors"));
  EXPECT_EQ(file.metadata().at("written_by"), "safetensors-python");
  // Values from tools/make_model_io_fixtures.py, recomputed here.
  torch::Tensor f32 = file.tensor("f32");  // arange(6) * 0.5 -> [[0, .5, 1], [1.5, 2, 2.5]]
  EXPECT_EQ(f32.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(f32, torch::tensor({{0.0f, 0.5f, 1.0f}, {1.5f, 2.0f, 2.5f}})));
  torch::Tensor f16 = file.tensor("f16");  // arange(4) * 0.25 - 0.5
  EXPECT_EQ(f16.scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(f16.to(torch::kFloat), torch::tensor({-0.5f, -0.25f, 0.0f, 0.25f})));
  torch::Tensor bf16 = file.tensor("bf16");  // arange(3) * 2 - 1, shape (3, 1)
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(bf16.to(torch::kFloat), torch::tensor({{-1.0f}, {1.0f}, {3.0f}})));
  torch::Tensor i64 = file.tensor("i64");
  EXPECT_EQ(i64.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(i64, torch::tensor({-3L, 0L, 5L, 1L << 40})));
  EXPECT_TRUE(torch::equal(file.tensor("i32"), torch::tensor({{1, 2}, {3, 4}}, torch::kInt)));
  torch::Tensor scalar = file.tensor("scalar");
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<float>(), 7.0f);
  EXPECT_EQ(file.names().size(), 6u);
}

TEST(Safetensors, TensorsOutliveTheFileObjectAndWritesStayPrivate) {
  fs::path dir = scratch("private");
  fs::copy_file(fixture("dtypes.safetensors"), dir / "x.safetensors");
  torch::Tensor f32;
  {
    SafetensorsFile file(dir / "x.safetensors");
    f32 = file.tensor("f32");
  }
  EXPECT_EQ(f32[1][2].item<float>(), 2.5f);  // mapping kept alive by the tensor
  f32.fill_(-1.0f);                          // copy-on-write: the file is unchanged
  SafetensorsFile again(dir / "x.safetensors");
  EXPECT_EQ(again.tensor("f32")[1][2].item<float>(), 2.5f);
}

TEST(Safetensors, WriteThenReadRoundTripsAllDtypes) {
  fs::path path = scratch("roundtrip") / "t.safetensors";
  torch::manual_seed(0);
  NamedTensors tensors = {
      {"half", torch::randn({3, 5}).to(torch::kHalf)},  // 2-byte elements first would misalign
      {"float", torch::randn({7})},                     // the 4-byte ones: the writer reorders
      {"bf16", torch::randn({2, 2, 3}).to(torch::kBFloat16)},
      {"long", torch::arange(5, torch::kLong)},
      {"int", torch::arange(3, torch::kInt)},
      {"strided", torch::randn({4, 6}).t()},  // non-contiguous input
      {"empty", torch::zeros({0, 4})},
  };
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "test"}});
  SafetensorsFile file(path);
  EXPECT_EQ(file.metadata().at("note"), "test");
  ASSERT_EQ(file.names().size(), tensors.size());
  for (const auto& [name, expected] : tensors) {
    torch::Tensor got = file.tensor(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, expected)) << name;
    // Every tensor lies aligned to its element size inside the mapping.
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(got.data_ptr()) % got.element_size(), 0u) << name;
  }
  // The header is padded: the data section starts at a multiple of 8.
  std::uint64_t header_size = 0;
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(&header_size), 8);
  EXPECT_EQ(header_size % 8, 0u);
}

TEST(Safetensors, ReadsAShardedCheckpointThroughItsIndex) {
  SafetensorsCheckpoint checkpoint(fixture("sharded"));
  EXPECT_EQ(checkpoint.file_count(), 2u);
  EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(checkpoint.file_of("c").filename(), "model-00002-of-00002.safetensors");
  EXPECT_TRUE(torch::equal(checkpoint.tensor("b"), torch::full({3}, 2.0f)));
  EXPECT_TRUE(
      torch::equal(checkpoint.tensor("c").to(torch::kFloat), torch::arange(4, torch::kFloat)));
}

TEST(Safetensors, WritesShardsAboveTheSizeLimit) {
  fs::path dir = scratch("shards");
  NamedTensors tensors = {
      {"a", torch::ones({10})}, {"b", torch::ones({10}) * 2}, {"c", torch::ones({10}) * 3}};
  // 40 bytes each, limit 80: [a, b] then [c].
  auto files = write_safetensors_checkpoint(dir, tensors, 80);
  EXPECT_EQ(files, (std::vector<std::string>{"model-00001-of-00002.safetensors",
                                             "model-00002-of-00002.safetensors",
                                             "model.safetensors.index.json"}));
  SafetensorsCheckpoint checkpoint(dir);
  EXPECT_EQ(checkpoint.file_count(), 2u);
  EXPECT_EQ(checkpoint.file_of("c").filename(), "model-00002-of-00002.safetensors");
  EXPECT_EQ(checkpoint.tensor("c")[0].item<float>(), 3.0f);
  // Below the limit: one model.safetensors.
  fs::path single = scratch("single");
  EXPECT_EQ(write_safetensors_checkpoint(single, tensors, 1000),
            (std::vector<std::string>{"model.safetensors"}));
}

TEST(Safetensors, TruncatedFileNamesTheFileAndTheTensor) {
  fs::path path = scratch("truncated") / "model.safetensors";
  write_safetensors(path, {{"alpha", torch::ones({4})}, {"omega", torch::ones({4})}});
  fs::resize_file(path, fs::file_size(path) - 4);  // "omega" (last in data order) loses a float
  std::string message = error_of([&] { SafetensorsFile file(path); });
  EXPECT_THAT(message, HasSubstr(path.string()));
  EXPECT_THAT(message, HasSubstr("'omega'"));
  EXPECT_THAT(message, HasSubstr("truncated"));
  // Cut inside the header.
  fs::resize_file(path, 20);
  EXPECT_THAT(error_of([&] { SafetensorsFile file(path); }),
              HasSubstr("is truncated: the header needs"));
  fs::resize_file(path, 3);
  EXPECT_THAT(error_of([&] { SafetensorsFile file(path); }), HasSubstr("too short"));
}

TEST(Safetensors, BadHeadersAreNamed) {
  fs::path dir = scratch("bad");
  auto write_raw = [&](const std::string& header) {
    std::string bytes(8, '\0');
    std::uint64_t size = header.size();
    std::memcpy(bytes.data(), &size, 8);
    write_file_atomic(dir / "x.safetensors", bytes + header + std::string(16, '\0'));
    return dir / "x.safetensors";
  };
  EXPECT_THAT(error_of([&] { SafetensorsFile f(write_raw("{not json")); }),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(error_of([&] {
                SafetensorsFile f(
                    write_raw(R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})"));
              }),
              HasSubstr("unsupported safetensors dtype 'F8_E4M3'"));
  // 2x2 F32 needs 16 bytes, offsets span 12.
  std::string message = error_of([&] {
    SafetensorsFile f(write_raw(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})"));
  });
  EXPECT_THAT(message, HasSubstr("tensor 'w'"));
  EXPECT_THAT(message, HasSubstr("needs 16 bytes but data_offsets span 12"));
  // Offsets beyond the 16 data bytes.
  EXPECT_THAT(
      error_of([&] {
        SafetensorsFile f(write_raw(R"({"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})"));
      }),
      HasSubstr("run past the end of the data section (16 bytes)"));
}

TEST(Safetensors, CheckpointFolderErrors) {
  fs::path dir = scratch("folder");
  EXPECT_THAT(error_of([&] { SafetensorsCheckpoint c(dir); }), HasSubstr("holds no *.safetensors"));
  write_file_atomic(dir / "model.safetensors.index.json",
                    R"({"weight_map": {"a": "model-00001-of-00001.safetensors"}})");
  EXPECT_THAT(error_of([&] { SafetensorsCheckpoint c(dir); }),
              HasSubstr("names shard model-00001-of-00001.safetensors"));
  write_safetensors(dir / "model-00001-of-00001.safetensors", {{"b", torch::ones({1})}});
  EXPECT_THAT(error_of([&] { SafetensorsCheckpoint c(dir); }), HasSubstr("puts tensor 'a'"));
}

}  // namespace
}  // namespace perpo
