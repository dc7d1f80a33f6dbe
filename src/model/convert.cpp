// export_hf_checkpoint (a Hugging Face LLaVA folder) and export_training_checkpoint (a perpo
// training checkpoint): a strict load into a model, then export_checkpoint.
#include "perpo/model/convert.h"

#include <algorithm>
#include <sstream>
#include <system_error>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/llava.h"
#include "perpo/model/load.h"
#include "perpo/model/model_config.h"
#include "perpo/model/qwen_checkpoint.h"
#include "perpo/model/run_checkpoint.h"
#include "perpo/model/safetensors.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

void check_options(const ConvertOptions& options) {
  if (options.layout != "new" && options.layout != "old") {
    throw input_error("unknown checkpoint layout '", options.layout, "'")
        .hint("use 'new' (transformers >= 4.52) or 'old'");
  }
  if (options.dtype != "fp32" && options.dtype != "bf16") {
    throw input_error("unknown export dtype '", options.dtype, "'").hint("use 'fp32' or 'bf16'");
  }
}

void check_input_folder(const fs::path& in_dir, const std::string& family = "LLaVA") {
  const std::string hint =
      "pass a Hugging Face " + family + " folder holding config.json and *.safetensors";
  if (!fs::is_directory(in_dir)) {
    throw input_error("checkpoint folder ", in_dir.string(), " does not exist or is not a folder")
        .hint(hint);
  }
  if (!fs::is_regular_file(in_dir / "config.json")) {
    throw input_error("checkpoint folder ", in_dir.string(), " has no config.json").hint(hint);
  }
}

/// What export wrote into `out_dir`: tensors, bytes, files, tokenizer files.
ConvertSummary summarize_export(const fs::path& out_dir, const std::string& input_layout,
                                const ConvertOptions& options) {
  ConvertSummary summary;
  summary.input_layout = input_layout;
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

bool same_folder(const fs::path& a, const fs::path& b) {
  std::error_code error;
  if (fs::exists(b, error) && fs::equivalent(a, b, error)) return true;
  return fs::weakly_canonical(a, error) == fs::weakly_canonical(b, error);
}

}  // namespace

std::string ConvertSummary::to_text() const {
  std::ostringstream out;
  out << "layout: " << input_layout << " -> " << output_layout << "\n";
  out << "dtype: " << dtype << "\n";
  out << "tensors: " << tensors << "\n";
  out << "weight bytes: " << weight_bytes << "\n";
  out << "files:";
  for (const std::string& name : files) out << " " << name;
  out << "\n";
  out << "tokenizer files copied: " << tokenizer_files.size() << "\n";
  return out.str();
}

ConvertSummary export_hf_checkpoint(const fs::path& in_dir, const fs::path& out_dir,
                                    const ConvertOptions& options) {
  check_options(options);
  check_input_folder(in_dir);
  if (read_model_type(in_dir) == "qwen2_5_vl") {  // the family of config.json's model_type
    return export_qwen2_5_vl_hf_checkpoint(in_dir, out_dir, options);
  }
  if (same_folder(in_dir, out_dir)) {
    throw input_error("export output ", out_dir.string(), " is the checkpoint folder itself")
        .hint("pass a different --output folder; export replaces its output");
  }

  ModelConfig config = load_model_config(in_dir);
  LlavaModel model(config);
  LoadReport report = load_weights(*model, in_dir, &config);
  model->eval();

  ExportOptions export_options;
  export_options.layout = options.layout;
  export_options.tokenizer_dir = in_dir;
  export_options.to_bfloat16 = options.dtype == "bf16";
  export_checkpoint(*model, config, out_dir, export_options);

  return summarize_export(out_dir, report.layout, options);
}

ConvertSummary export_qwen2_5_vl_hf_checkpoint(const fs::path& in_dir, const fs::path& out_dir,
                                               const ConvertOptions& options) {
  check_options(options);
  check_input_folder(in_dir, "Qwen2.5-VL");
  if (same_folder(in_dir, out_dir)) {
    throw input_error("export output ", out_dir.string(), " is the checkpoint folder itself")
        .hint("pass a different --output folder; export replaces its output");
  }
  LoadReport report;
  Qwen2_5VLModel model = load_qwen2_5_vl(in_dir, &report);
  model->eval();

  ExportOptions export_options;
  export_options.layout = options.layout;
  export_options.tokenizer_dir = in_dir;
  export_options.to_bfloat16 = options.dtype == "bf16";
  export_qwen2_5_vl(*model, out_dir, export_options);
  return summarize_export(out_dir, report.layout, options);
}

ConvertSummary export_training_checkpoint(const fs::path& checkpoint_dir, const fs::path& out_dir,
                                          const ConvertOptions& options) {
  check_options(options);
  CheckpointContent content = load_run_checkpoint(checkpoint_dir);
  Config config;
  merge_yaml(config, content.config_yaml, (checkpoint_dir / "config.yaml").string());
  config.run.device = "cpu";  // export on the host, in fp32 (bf16 only when writing, if asked)
  config.run.dtype = "fp32";
  config.model.gradient_checkpointing = false;
  LoadedModel model = load_model(config);
  load_trained_weights(*model.model, content.weights, checkpoint_dir.string(),
                       /*every_trained_parameter=*/false);  // fp32 copies, strict names
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
  model.model->export_hf(out_dir, export_options);
  return summarize_export(
      out_dir, "perpo training checkpoint (step " + std::to_string(content.step) + ")", options);
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
