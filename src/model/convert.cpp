// export_hf_checkpoint: strict load of a Hugging Face LLaVA folder, then export_checkpoint.
#include "perpo/model/convert.h"

#include <algorithm>
#include <sstream>
#include <system_error>

#include "perpo/core/error.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
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

void check_input_folder(const fs::path& in_dir) {
  if (!fs::is_directory(in_dir)) {
    throw input_error("checkpoint folder ", in_dir.string(), " does not exist or is not a folder")
        .hint("pass a Hugging Face LLaVA folder holding config.json and *.safetensors");
  }
  if (!fs::is_regular_file(in_dir / "config.json")) {
    throw input_error("checkpoint folder ", in_dir.string(), " has no config.json")
        .hint("pass a Hugging Face LLaVA folder holding config.json and *.safetensors");
  }
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

  ConvertSummary summary;
  summary.input_layout = report.layout;
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

}  // namespace perpo
