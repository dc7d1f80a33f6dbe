// Training checkpoint -> Hugging Face folder (export.h).
#include "perpo/train/export.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/load.h"
#include "perpo/model/safetensors.h"
#include "perpo/train/run_checkpoint.h"

namespace perpo {
namespace fs = std::filesystem;

ConvertSummary export_training_checkpoint(const fs::path& checkpoint_dir, const fs::path& out_dir,
                                          const ConvertOptions& options) {
  if (options.layout != "new" && options.layout != "old") {
    throw input_error("unknown checkpoint layout '", options.layout, "'")
        .hint("use 'new' (transformers >= 4.52) or 'old'");
  }
  if (options.dtype != "fp32" && options.dtype != "bf16") {
    throw input_error("unknown export dtype '", options.dtype, "'").hint("use 'fp32' or 'bf16'");
  }
  CheckpointContent content = load_run_checkpoint(checkpoint_dir);
  Config config;
  merge_yaml(config, content.config_yaml, (checkpoint_dir / "config.yaml").string());
  config.run.device = "cpu";  // export on the host, in fp32 (bf16 only when writing, if asked)
  config.run.dtype = "fp32";
  config.model.gradient_checkpointing = false;
  LoadedModel model = load_model(config);
  {
    torch::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> weights(content.weights.begin(), content.weights.end());
    for (auto& item : model.model->named_parameters()) {
      auto it = weights.find(item.key());
      if (it == weights.end()) continue;
      PERPO_CHECK_INPUT(it->second.sizes() == item.value().sizes(), checkpoint_dir.string(),
                        ": tensor '", item.key(), "' has shape ", it->second.sizes(),
                        ", the model needs ", item.value().sizes());
      item.value().copy_(it->second.to(torch::kFloat32));
    }
  }
  model.model->eval();
  ExportOptions export_options;
  export_options.layout = options.layout;
  export_options.to_bfloat16 = options.dtype == "bf16";
  // The tokenizer the run was trained with, whatever its file is called: the export must be
  // usable on its own (eval, transformers).
  const fs::path tokenizer = config.tokenizer.path;
  if (!config.model.path.empty()) {
    export_options.tokenizer_dir = config.model.path;
  } else if (!tokenizer.empty()) {
    export_options.tokenizer_dir =
        fs::is_directory(tokenizer) ? tokenizer : tokenizer.parent_path();
  }
  if (!tokenizer.empty() && fs::is_regular_file(tokenizer)) {
    export_options.tokenizer_model = tokenizer;
  } else if (!tokenizer.empty() && fs::is_directory(tokenizer)) {
    export_options.tokenizer_dir = tokenizer;
  }
  export_checkpoint(*model.model, model.config, out_dir, export_options);

  ConvertSummary summary;
  summary.input_layout = "perpo training checkpoint (step " + std::to_string(content.step) + ")";
  summary.output_layout = options.layout;
  summary.dtype = options.dtype;
  SafetensorsCheckpoint written(out_dir);
  summary.tensors = static_cast<int>(written.names().size());
  const auto& tokenizer_names = tokenizer_file_names();
  for (const auto& entry : fs::directory_iterator(out_dir)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    summary.files.push_back(name);
    if (entry.path().extension() == ".safetensors") summary.weight_bytes += entry.file_size();
    if (std::find(tokenizer_names.begin(), tokenizer_names.end(), name) != tokenizer_names.end()) {
      summary.tokenizer_files.push_back(name);
    }
  }
  std::sort(summary.files.begin(), summary.files.end());
  std::sort(summary.tokenizer_files.begin(), summary.tokenizer_files.end());
  return summary;
}

std::vector<fs::path> training_checkpoint_inputs(const fs::path& checkpoint_dir) {
  const fs::path file = checkpoint_dir / "config.yaml";
  PERPO_CHECK_INPUT(fs::is_regular_file(file), checkpoint_dir.string(),
                    " is not a complete training checkpoint: it has no config.yaml");
  Config config;
  merge_yaml(config, read_file(file), file.string());
  std::vector<fs::path> inputs = {checkpoint_dir};
  if (!config.model.path.empty()) inputs.emplace_back(config.model.path);
  if (!config.tokenizer.path.empty()) inputs.emplace_back(config.tokenizer.path);
  return inputs;
}

}  // namespace perpo
