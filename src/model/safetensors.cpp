#include "perpo/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/safetensors_header.h"

namespace perpo {
namespace fs = std::filesystem;
using json = nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; perpo reads it in place");

namespace {

// safetensors dtype names and the LibTorch types they map to.
const std::vector<std::pair<std::string, c10::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, c10::ScalarType>> table = {
      {"F64", c10::ScalarType::Double}, {"F32", c10::ScalarType::Float},
      {"F16", c10::ScalarType::Half},   {"BF16", c10::ScalarType::BFloat16},
      {"I64", c10::ScalarType::Long},   {"I32", c10::ScalarType::Int},
      {"I16", c10::ScalarType::Short},  {"I8", c10::ScalarType::Char},
      {"U8", c10::ScalarType::Byte},    {"BOOL", c10::ScalarType::Bool},
  };
  return table;
}

}  // namespace

c10::ScalarType safetensors_dtype_from_name(const std::string& name) {
  for (const auto& [text, dtype] : dtype_table()) {
    if (text == name) return dtype;
  }
  std::string known;
  for (const auto& entry : dtype_table()) known += (known.empty() ? "" : ", ") + entry.first;
  throw input_error("unsupported safetensors dtype '", name, "'").hint("perpo reads " + known);
}

std::string safetensors_dtype_name(c10::ScalarType dtype) {
  for (const auto& [text, type] : dtype_table()) {
    if (type == dtype) return text;
  }
  throw runtime_error("dtype ", c10::toString(dtype), " cannot be stored in safetensors by perpo");
}

// ---------------------------------------------------------------------------------------------
// Reading

struct MappedFile {
  void* base = nullptr;
  std::uint64_t size = 0;
  ~MappedFile() {
    if (base != nullptr) ::munmap(base, size);
  }
};

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw input_error("cannot open ", path.string(), ": ", std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    int saved = errno;
    ::close(fd);
    throw input_error("cannot stat ", path.string(), ": ", std::strerror(saved));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw input_error(path.string(), " is ",
                      S_ISDIR(info.st_mode) ? "a folder" : "not a regular file",
                      ", not a safetensors file")
        .hint("a checkpoint folder holds model.safetensors (or model-*-of-*.safetensors) files");
  }
  auto size = static_cast<std::uint64_t>(info.st_size);
  if (size < 8) {
    ::close(fd);
    throw input_error(path.string(), " is truncated: ", size,
                      " bytes, too short for the 8-byte header length of a safetensors file");
  }
  mapping_ = std::make_shared<MappedFile>();
  // Private and writable: copy-on-write pages, so tensors may be modified without touching the
  // file.
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int saved = errno;
  ::close(fd);
  if (base == MAP_FAILED)
    throw runtime_error("cannot memory-map ", path.string(), ": ", std::strerror(saved));
  mapping_->base = base;
  mapping_->size = size;

  SafetensorsHeader header =
      parse_safetensors_header(static_cast<const unsigned char*>(base), size, path.string());
  data_start_ = header.data_start;
  metadata_ = std::move(header.metadata);
  for (SafetensorsHeaderEntry& parsed : header.entries) {  // in data order
    SafetensorsEntry entry;
    entry.name = parsed.name;
    entry.dtype = safetensors_dtype_from_name(parsed.dtype);
    entry.shape = std::move(parsed.shape);
    entry.begin = parsed.begin;
    entry.end = parsed.end;
    names_.push_back(parsed.name);
    entries_[parsed.name] = std::move(entry);
  }
}

std::uint64_t SafetensorsFile::file_size() const { return mapping_->size; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw input_error(path_.string(), " has no tensor '", name, "'");
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  auto options = torch::TensorOptions().dtype(e.dtype).device(torch::kCPU);
  char* data = static_cast<char*>(mapping_->base) + data_start_ + e.begin;
  std::size_t element = c10::elementSize(e.dtype);
  if (reinterpret_cast<std::uintptr_t>(data) % element != 0) {
    // Misaligned for its element type (possible when a writer did not pad the header): copy.
    torch::Tensor copy = torch::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), data, e.end - e.begin);
    return copy;
  }
  std::shared_ptr<MappedFile> keep_alive = mapping_;
  return torch::from_blob(
      data, e.shape, [keep_alive](void*) {}, options);
}

// ---------------------------------------------------------------------------------------------
// Checkpoint folders

SafetensorsCheckpoint::SafetensorsCheckpoint(const fs::path& dir) : dir_(dir) {
  if (!fs::is_directory(dir)) {
    throw input_error("checkpoint folder ", dir.string(), " does not exist")
        .hint("model.path must be a Hugging Face checkpoint folder (config.json + *.safetensors)");
  }
  std::vector<fs::path> files;
  std::map<std::string, std::string> index;  // tensor -> shard file name, from index.json
  fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    json parsed;
    try {
      parsed = json::parse(read_file(index_path));
    } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
      throw input_error(index_path.string(), " is not valid JSON (", e.what(), ")");
    }
    auto map = parsed.find("weight_map");
    if (map == parsed.end() || !map->is_object()) {
      throw input_error(index_path.string(), " has no \"weight_map\" object");
    }
    std::set<std::string> shards;
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string()) {
        throw input_error(index_path.string(), ": weight_map entry '", it.key(),
                          "' is not a file name");
      }
      index[it.key()] = it.value().get<std::string>();
      shards.insert(it.value().get<std::string>());
    }
    for (const std::string& shard : shards) {
      const fs::path shard_path(shard);
      if (shard.empty() || shard_path.is_absolute() || shard_path.has_parent_path() ||
          shard == "." || shard == "..") {
        throw input_error(index_path.string(), " names shard '", shard,
                          "', a path outside the checkpoint folder")
            .hint("weight_map values must be file names in the folder of the index");
      }
      if (!fs::exists(dir / shard)) {
        throw input_error(index_path.string(), " names shard ", shard, " but ",
                          (dir / shard).string(), " does not exist")
            .hint("the checkpoint download is incomplete");
      }
      files.push_back(dir / shard);
    }
  } else if (fs::exists(dir / "model.safetensors")) {
    files.push_back(dir / "model.safetensors");
  } else {
    for (const auto& item : fs::directory_iterator(dir)) {
      if (item.path().extension() == ".safetensors") files.push_back(item.path());
    }
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) {
    throw input_error("checkpoint folder ", dir.string(), " holds no *.safetensors file")
        .hint(
            "perpo reads safetensors only; convert .bin checkpoints with transformers' "
            "save_pretrained");
  }
  for (const fs::path& file : files) {
    files_.push_back(std::make_unique<SafetensorsFile>(file));
    for (const std::string& name : files_.back()->names()) {
      auto [it, inserted] = owner_.emplace(name, files_.size() - 1);
      if (!inserted) {
        throw input_error("tensor '", name, "' appears in both ",
                          files_[it->second]->path().string(), " and ", file.string());
      }
    }
  }
  for (const auto& [name, shard] : index) {
    auto it = owner_.find(name);
    if (it == owner_.end() || files_[it->second]->path().filename() != shard) {
      throw input_error(index_path.string(), " puts tensor '", name, "' in ", shard,
                        " but that shard does not hold it")
          .hint("the checkpoint download is incomplete or mixes two versions");
    }
  }
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(owner_.size());
  for (const auto& item : owner_) out.push_back(item.first);
  return out;
}

const SafetensorsFile& SafetensorsCheckpoint::owner(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end())
    throw input_error("checkpoint ", dir_.string(), " has no tensor '", name, "'");
  return *files_[it->second];
}

const SafetensorsEntry& SafetensorsCheckpoint::entry(const std::string& name) const {
  return owner(name).entry(name);
}
torch::Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  return owner(name).tensor(name);
}
const fs::path& SafetensorsCheckpoint::file_of(const std::string& name) const {
  return owner(name).path();
}

// ---------------------------------------------------------------------------------------------
// Writing

void write_safetensors(const fs::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> order;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    PERPO_CHECK(tensor.defined(), "cannot write undefined tensor '", name, "' to ", path.string());
    PERPO_CHECK(seen.insert(name).second, "tensor '", name, "' given twice for ", path.string());
    order.emplace_back(name, tensor.detach());  // moved to the CPU one at a time, below
  }
  // Largest elements first keeps every tensor aligned to its element size without padding.
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    std::size_t ea = a.second.element_size(), eb = b.second.element_size();
    return ea != eb ? ea > eb : a.first < b.first;
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : order) {
    std::uint64_t bytes = tensor.numel() * tensor.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(tensor.scalar_type())},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  std::uint64_t header_size = text.size();

  AtomicFileWriter writer(path);
  std::ostream& out = writer.stream();
  out.write(reinterpret_cast<const char*>(&header_size), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& item : order) {
    torch::Tensor tensor = item.second.to(torch::kCPU).contiguous();
    out.write(static_cast<const char*>(tensor.data_ptr()),
              static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
  }
  writer.commit();
}

std::vector<std::string> write_safetensors_checkpoint(const fs::path& dir,
                                                      const NamedTensors& tensors,
                                                      std::uint64_t max_shard_bytes) {
  std::vector<NamedTensors> shards(1);
  std::uint64_t total = 0, current = 0;
  for (const auto& item : tensors) {
    std::uint64_t bytes = item.second.numel() * item.second.element_size();
    if (current > 0 && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(item);
    current += bytes;
    total += bytes;
  }
  if (shards.size() == 1) {
    write_safetensors(dir / "model.safetensors", tensors);
    return {"model.safetensors"};
  }
  std::vector<std::string> written;
  json weight_map = json::object();
  char name[64];
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_safetensors(dir / name, shards[i]);
    for (const auto& item : shards[i]) weight_map[item.first] = name;
    written.emplace_back(name);
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  written.emplace_back("model.safetensors.index.json");
  return written;
}

}  // namespace perpo
