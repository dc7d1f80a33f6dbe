// Checkpoint folder -> Hugging Face LLaVA (or Qwen2.5-VL) folder, the work behind `perpo export`.
//
//   perpo::ConvertOptions options;
//   options.layout = "old";                    // HF key layout of the output
//   perpo::ConvertSummary s = perpo::export_hf_checkpoint("llava-hf/", "out/", options);
//
// The input is loaded strictly into a LlavaModel (checkpoint.h), so a checkpoint that loads is one
// perpo can run, and the output is written by export_checkpoint: merged weights, config.json and
// the tokenizer / processor files found in the input folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace perpo {

struct ConvertOptions {
  std::string layout = "new";  // HF key layout of the output: "new" | "old"
  std::string dtype = "fp32";  // stored weight dtype: "fp32" | "bf16"
};

struct ConvertSummary {
  std::string input_layout;                  // "old" | "new": the layout found in the input
  std::string output_layout;                 // the layout written
  std::string dtype;                         // "fp32" | "bf16"
  int tensors = 0;                           // tensors written across all safetensors files
  std::uint64_t weight_bytes = 0;            // total size of the safetensors files
  std::vector<std::string> files;            // file names written in the output folder, sorted
  std::vector<std::string> tokenizer_files;  // of which copied from the input folder

  /// Several lines for people: layout, tensors, bytes, files.
  std::string to_text() const;
};

/// Loads the Hugging Face LLaVA checkpoint folder `in_dir` (config.json + safetensors) strictly and
/// writes it to `out_dir` in the Hugging Face layout `options.layout`, replacing `out_dir`
/// atomically. Throws perpo::Error (input) naming the path when `in_dir` is not a checkpoint
/// folder, when `out_dir` is `in_dir`, or on a bad layout / dtype name.
ConvertSummary export_hf_checkpoint(const std::filesystem::path& in_dir,
                                    const std::filesystem::path& out_dir,
                                    const ConvertOptions& options = {});

/// The same for a Hugging Face Qwen2.5-VL folder (qwen_checkpoint.h): loaded strictly into a
/// Qwen2_5VLModel, written by export_qwen2_5_vl with the input's tokenizer / processor files.
ConvertSummary export_qwen2_5_vl_hf_checkpoint(const std::filesystem::path& in_dir,
                                               const std::filesystem::path& out_dir,
                                               const ConvertOptions& options = {});

/// A perpo training checkpoint (checkpoints/step-N) as a Hugging Face LLaVA folder: the model is
/// rebuilt from the checkpoint's config.yaml (model.path's base weights, or the tiny model's
/// weights stored in the checkpoint), the trained weights (adapters under LoRA) are loaded over
/// it (load_trained_weights), and export_checkpoint writes merged weights, config.json, the
/// base model's tokenizer / processor files and the run's tokenizer as tokenizer.model.
/// Throws perpo::Error (input) naming the folder when `checkpoint_dir` is not a training
/// checkpoint or its base model cannot be found.
ConvertSummary export_training_checkpoint(const std::filesystem::path& checkpoint_dir,
                                          const std::filesystem::path& out_dir,
                                          const ConvertOptions& options = {});

/// What exporting `checkpoint_dir` reads besides the checkpoint itself: the folder, its base
/// model (model.path) and tokenizer (tokenizer.path) as named in its config.yaml. Only that file
/// is read. The export's output may overlap none of them. Throws perpo::Error (input) naming the
/// file when config.yaml is missing or unreadable.
std::vector<std::filesystem::path> training_checkpoint_inputs(
    const std::filesystem::path& checkpoint_dir);

}  // namespace perpo
