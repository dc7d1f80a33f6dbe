// How big a model is before it exists: the parameters LlavaModel(config) or
// Qwen2_5VLModel(config) registers, their count and bytes, weighed against the machine's free
// memory. Both constructors refuse a config that does not fit, so a config.json with absurd sizes
// fails with a message instead of allocating without bound.
//
//   perpo::ModelSize size = perpo::model_size(config);   // size.parameters, size.fp32_bytes
//   perpo::check_model_fits_memory(config);                // throws perpo::Error (input) if not
//
// Qwen2.5-VL-3B-Instruct's config gives 3,754,622,976 parameters (tied head; vision tower
// 668,684,288) and Qwen2.5-VL-7B-Instruct's 8,292,166,656 (untied; vision 676,550,144), the totals
// the Hub lists (model_size_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "perpo/model/model_config.h"
#include "perpo/model/qwen2_5_vl_config.h"

namespace perpo {

/// One parameter of the model: canonical name (model_config.h) and shape.
struct ParameterShape {
  std::string name;
  std::vector<std::int64_t> shape;
};

/// Every parameter LlavaModel(config) registers, LoRA adapters aside, in no particular order.
/// Lists each layer, so it is as long as the model has tensors: use model_size for the totals.
std::vector<ParameterShape> model_parameter_shapes(const ModelConfig& config);

struct ModelSize {
  std::int64_t parameters = 0;   // elements of all parameters (a tied lm_head counted once)
  std::uint64_t fp32_bytes = 0;  // bytes as perpo builds the model: fp32, before any dtype cast
};

/// Totals of model_parameter_shapes(config), computed per layer without listing every layer.
/// Throws perpo::Error (input) when a count overflows 64 bits.
ModelSize model_size(const ModelConfig& config);

/// Every parameter Qwen2_5VLModel(config) registers (visual.*, language_model.*, lm_head.weight
/// unless tied), LoRA adapters aside, in no particular order.
std::vector<ParameterShape> model_parameter_shapes(const Qwen2_5VLConfig& config);

/// Totals of model_parameter_shapes(config) for Qwen2.5-VL, per layer as for LLaVA.
ModelSize model_size(const Qwen2_5VLConfig& config);

/// MemAvailable of /proc/meminfo in bytes; nullopt where it cannot be read.
std::optional<std::uint64_t> available_memory_bytes();

/// Throws perpo::Error (input) with a hint when the model's fp32 bytes exceed `available` (by
/// default the machine's available memory; no check when that is unknown).
void check_model_fits_memory(const ModelConfig& config,
                             std::optional<std::uint64_t> available = available_memory_bytes());

/// The same check for a Qwen2.5-VL config.
void check_model_fits_memory(const Qwen2_5VLConfig& config,
                             std::optional<std::uint64_t> available = available_memory_bytes());

/// "7.06e+09" parameters / "26.3 GiB": short forms for messages.
std::string format_bytes(std::uint64_t bytes);

}  // namespace perpo
