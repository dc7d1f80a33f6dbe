// Qwen2.5-VL's checkpoint in / out: checkpoint.cpp's family-independent functions with
// HfFamily::kQwen2_5VL, model_size.cpp's shapes for the header check, and
// qwen2_5_vl_config_json for the exported config.json.
#include "perpo/model/qwen_checkpoint.h"

#include <torch/torch.h>

#include "perpo/core/log.h"
#include "perpo/model/hf_names.h"
#include "perpo/model/model_size.h"

namespace perpo {
namespace fs = std::filesystem;

void check_qwen2_5_vl_checkpoint_shapes(const Qwen2_5VLConfig& config, const fs::path& dir) {
  check_hf_checkpoint_shapes(model_parameter_shapes(config), dir, HfFamily::kQwen2_5VL);
}

LoadReport load_qwen2_5_vl_weights_from(Qwen2_5VLModelImpl& model,
                                        const SafetensorsCheckpoint& checkpoint) {
  return load_hf_weights(model, checkpoint, HfFamily::kQwen2_5VL);
}

LoadReport load_qwen2_5_vl_weights(Qwen2_5VLModelImpl& model, const fs::path& dir) {
  SafetensorsCheckpoint checkpoint(dir);
  LoadReport report = load_qwen2_5_vl_weights_from(model, checkpoint);
  PERPO_LOG_INFO("loaded ", report.loaded, " Qwen2.5-VL tensors (", report.loaded_elements,
                 " weights) from ", dir.string(), " (", report.files, " file(s), ", report.layout,
                 " key layout, ", report.skipped.size(), " key(s) skipped)");
  return report;
}

Qwen2_5VLModel load_qwen2_5_vl(const fs::path& dir, LoadReport* report) {
  Qwen2_5VLConfig config = load_qwen2_5_vl_config(dir);
  check_qwen2_5_vl_checkpoint_shapes(config, dir);  // from the headers, before building
  Qwen2_5VLModel model(config);
  LoadReport loaded = load_qwen2_5_vl_weights(*model, dir);
  if (report != nullptr) *report = loaded;
  return model;
}

std::size_t export_qwen2_5_vl(Qwen2_5VLModelImpl& model, const fs::path& out_dir,
                              const ExportOptions& options) {
  parse_hf_layout(options.layout);  // a bad name fails before anything is computed
  bool bfloat16 = options.to_bfloat16;
  for (const auto& parameter : model.parameters()) {
    if (parameter.is_floating_point()) {
      bfloat16 = bfloat16 || parameter.scalar_type() == torch::kBFloat16;
      break;
    }
  }
  const std::string config_json =
      qwen2_5_vl_config_json(model.config(), options.layout, bfloat16 ? "bfloat16" : "float32");
  return export_hf_folder(model, HfFamily::kQwen2_5VL, config_json, out_dir, options);
}

}  // namespace perpo
