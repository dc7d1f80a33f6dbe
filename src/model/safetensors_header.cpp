// Parsing and checking a safetensors header (see safetensors_header.h). No LibTorch here.
#include "perpo/model/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "perpo/core/error.h"

namespace perpo {

using json = nlohmann::json;

namespace {

// The dtype names perpo reads and their element sizes in bytes.
constexpr std::pair<std::string_view, std::size_t> kDtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1},
};

constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the limit of the reference reader

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

// Parses one header entry; every failure names the file and the tensor.
SafetensorsHeaderEntry parse_entry(const std::string& source, const std::string& name,
                                   const json& value, std::uint64_t data_size) {
  auto fail = [&](const std::string& what) {
    return input_error(source, ": tensor '", name, "': ", what)
        .hint("the file is corrupt or was not written as safetensors");
  };
  if (!value.is_object()) throw fail("header entry is not a JSON object");
  SafetensorsHeaderEntry entry;
  entry.name = name;
  auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) throw fail("missing or non-string \"dtype\"");
  entry.dtype = dtype->get<std::string>();
  entry.element_size = safetensors_element_size(entry.dtype);
  if (entry.element_size == 0) {
    std::string known;
    for (const auto& [text, size] : kDtypes)
      known += (known.empty() ? "" : ", ") + std::string(text);
    throw input_error(source, ": tensor '", name, "': unsupported safetensors dtype '", entry.dtype,
                      "'")
        .hint("perpo reads " + known);
  }
  auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) throw fail("missing or non-array \"shape\"");
  std::uint64_t numel = 1;
  for (const json& dim : *shape) {
    if (!dim.is_number_unsigned()) throw fail("\"shape\" holds a negative or non-integer size");
    entry.shape.push_back(dim.get<std::int64_t>());
    numel *= dim.get<std::uint64_t>();
  }
  auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    throw fail("\"data_offsets\" must be two non-negative integers");
  }
  entry.begin = (*offsets)[0].get<std::uint64_t>();
  entry.end = (*offsets)[1].get<std::uint64_t>();
  if (entry.end < entry.begin) throw fail("data_offsets end before they begin");
  if (entry.end > data_size) {
    throw input_error(source, ": tensor '", name, "': data_offsets [", entry.begin, ", ", entry.end,
                      ") run past the end of the data section (", data_size,
                      " bytes); the file is truncated")
        .hint("download or export the checkpoint again");
  }
  std::uint64_t expected = numel * entry.element_size;
  if (entry.end - entry.begin != expected) {
    throw fail("shape " + shape_text(entry.shape) + " of " + entry.dtype + " needs " +
               std::to_string(expected) + " bytes but data_offsets span " +
               std::to_string(entry.end - entry.begin));
  }
  return entry;
}

}  // namespace

std::size_t safetensors_element_size(std::string_view dtype) {
  for (const auto& [text, size] : kDtypes) {
    if (text == dtype) return size;
  }
  return 0;
}

SafetensorsHeader parse_safetensors_header(const unsigned char* bytes, std::uint64_t size,
                                           const std::string& source) {
  if (size < 8) {
    throw input_error(source, " is truncated: ", size,
                      " bytes, too short for the 8-byte header length of a safetensors file");
  }
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian u64 (safetensors.cpp checks the host)
  if (header_size > kMaxHeaderBytes) {
    throw input_error(source, ": the header claims ", header_size,
                      " bytes; this is not a safetensors file");
  }
  if (8 + header_size > size) {
    throw input_error(source, " is truncated: the header needs ", header_size, " bytes but only ",
                      size - 8, " follow the length field");
  }
  json parsed;
  try {
    parsed = json::parse(bytes + 8, bytes + 8 + header_size);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
    throw input_error(source, ": the header is not valid JSON (", e.what(), ")");
  }
  if (!parsed.is_object()) throw input_error(source, ": the header is not a JSON object");

  SafetensorsHeader header;
  header.data_start = 8 + header_size;
  const std::uint64_t data_size = size - header.data_start;
  for (auto it = parsed.begin(); it != parsed.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) throw input_error(source, ": \"__metadata__\" is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (m.value().is_string()) header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    header.entries.push_back(parse_entry(source, it.key(), it.value(), data_size));
  }
  std::stable_sort(header.entries.begin(), header.entries.end(),
                   [](const SafetensorsHeaderEntry& a, const SafetensorsHeaderEntry& b) {
                     return a.begin < b.begin;
                   });
  return header;
}

}  // namespace perpo
