// Safetensors files: the weight format of Hugging Face checkpoints.
//
// Layout of a file: 8 bytes little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// then the data section; offsets are relative to its start, tensors are packed without holes.
//
//   perpo::SafetensorsFile file("model.safetensors");      // memory-maps the file
//   torch::Tensor w = file.tensor("lm_head.weight");       // zero-copy view of the mapping
//
//   perpo::SafetensorsCheckpoint ckpt("llava-1.5-7b-hf/");  // single file or sharded (index.json)
//   for (const auto& name : ckpt.names()) use(ckpt.tensor(name));
//
// Reading maps the file privately (copy-on-write): tensors are views of the mapping, created with
// torch::from_blob; each keeps the mapping alive through a shared_ptr, so they stay valid after the
// SafetensorsFile is gone, and writing into them never touches the file. A tensor whose offset is
// not aligned to its element size is copied instead. Truncated files, bad headers, offsets out of
// range, shapes whose byte count overflows, duplicate names, tensors that overlap or leave gaps and
// bytes after the last tensor throw perpo::Error naming the file and the tensor, when the file is
// opened. A shard index may name only files in its own folder.
#pragma once

#include <c10/core/ScalarType.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace perpo {

/// One tensor's entry in a safetensors header.
struct SafetensorsEntry {
  std::string name;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets in the data section, [begin, end)
  std::uint64_t end = 0;
};

/// "F32" -> Float, "BF16" -> BFloat16, ... Throws perpo::Error (input) for unknown names.
c10::ScalarType safetensors_dtype_from_name(const std::string& name);
/// Float -> "F32", ... Throws perpo::Error for dtypes safetensors cannot hold.
std::string safetensors_dtype_name(c10::ScalarType dtype);

struct MappedFile;  // a private (copy-on-write) memory mapping of one file

/// A memory-mapped safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  /// Tensor names in data order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  /// Throws perpo::Error naming the file when `name` is not in it.
  const SafetensorsEntry& entry(const std::string& name) const;
  /// A CPU tensor over the mapping (see the file comment).
  torch::Tensor tensor(const std::string& name) const;
  /// The header's "__metadata__" (string to string), empty when absent.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Size of the whole file in bytes.
  std::uint64_t file_size() const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<MappedFile> mapping_;
  std::uint64_t data_start_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// The weights of a checkpoint folder: `model.safetensors.index.json` (sharded: its weight_map
/// names the shard of every tensor), else `model.safetensors`, else every `*.safetensors` file in
/// the folder. A tensor found in two files is an error.
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  /// Every tensor name, sorted.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return owner_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;
  /// The shard file holding `name`.
  const std::filesystem::path& file_of(const std::string& name) const;
  std::size_t file_count() const { return files_.size(); }

 private:
  const SafetensorsFile& owner(const std::string& name) const;

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::size_t> owner_;  // tensor name -> index in files_
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// Writes `tensors` (any device; copied to CPU, made contiguous) to one safetensors file,
/// atomically (temporary file + rename). Tensors are ordered by element size (largest first),
/// then name, so every tensor starts aligned to its element size; the header is padded to a
/// multiple of 8 bytes. Duplicate names throw.
void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

/// Writes `tensors` into `dir` as `model.safetensors` when their data fits in `max_shard_bytes`,
/// else as `model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json`.
/// Returns the files written (names relative to `dir`).
std::vector<std::string> write_safetensors_checkpoint(const std::filesystem::path& dir,
                                                      const NamedTensors& tensors,
                                                      std::uint64_t max_shard_bytes);

}  // namespace perpo
