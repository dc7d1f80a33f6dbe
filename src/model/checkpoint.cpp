#include "perpo/model/checkpoint.h"

#include <torch/torch.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/signals.h"
#include "perpo/core/strings.h"
#include "perpo/model/hf_names.h"
#include "perpo/model/lora_linear.h"
#include "perpo/model/model_size.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

bool is_adapter(const std::string& name) {
  return ends_with(name, ".lora_A") || ends_with(name, ".lora_B") || name == "lora_A" ||
         name == "lora_B";
}

std::string shape_text(c10::IntArrayRef sizes) {
  std::ostringstream out;
  out << sizes;
  return out.str();
}

std::string list_some(const std::vector<std::string>& names, std::size_t limit = 5) {
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i)
    text += (i ? ", " : "") + ("'" + names[i] + "'");
  if (names.size() > limit) text += ", ... (" + std::to_string(names.size()) + " in all)";
  return text;
}

// "vision_tower.vision_model.encoder.layers.23.mlp.fc1.weight" -> 23; -1 when not an encoder layer.
int vision_layer_index(const std::string& canonical) {
  static const std::string prefix = "vision_tower.vision_model.encoder.layers.";
  if (!starts_with(canonical, prefix)) return -1;
  std::size_t end = canonical.find('.', prefix.size());
  try {
    return std::stoi(canonical.substr(prefix.size(), end - prefix.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

// Parts of the CLIP tower that LLaVA never reads (post_layernorm; encoder layers after the feature
// layer): a model may leave them out, and then the checkpoint's copies are skipped.
bool is_unused_vision_part(const std::string& canonical, int model_vision_layers) {
  if (starts_with(canonical, "vision_tower.vision_model.post_layernorm.")) return true;
  int layer = vision_layer_index(canonical);
  return layer >= 0 && layer >= model_vision_layers;
}

// Where config.json keeps the key that ties the head, for hints.
std::string tie_key_place(HfFamily family) {
  return family == HfFamily::kLlava
             ? "text_config (transformers ignores the top-level key)"
             : "text_config (or at the top level when config.json has no text_config)";
}

}  // namespace

LoadReport load_hf_weights(torch::nn::Module& model, const SafetensorsCheckpoint& checkpoint,
                           HfFamily family) {
  const std::string family_name = hf_family_name(family);
  LoadReport report;
  report.files = checkpoint.file_count();
  std::vector<std::string> keys;
  for (const std::string& key : checkpoint.names()) {
    if (is_ignored_hf_key(key)) {
      report.skipped.push_back(key);
    } else {
      keys.push_back(key);
    }
  }
  HfLayout layout = detect_hf_layout(keys, family);
  report.layout = hf_layout_name(layout);

  std::map<std::string, torch::Tensor> params;  // canonical name -> parameter (adapters excluded)
  int model_vision_layers = 0;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (is_adapter(item.key())) continue;
    params[item.key()] = item.value();
    model_vision_layers = std::max(model_vision_layers, vision_layer_index(item.key()) + 1);
  }

  // Pass 1: map every key and check it, so nothing is half-loaded when the checkpoint does not fit.
  std::vector<std::pair<std::string, std::string>> plan;  // (hf key, canonical)
  std::vector<std::string> unexpected;
  for (const std::string& key : keys) {
    std::optional<std::string> canonical = hf_to_canonical(key, layout, family);
    if (!canonical) {
      unexpected.push_back(key);
      continue;
    }
    auto param = params.find(*canonical);
    if (param == params.end()) {
      if (*canonical == "lm_head.weight" && params.count("language_model.embed_tokens.weight")) {
        // The model ties lm_head to embed_tokens: accept the checkpoint's copy only if it is one.
        std::string embed_key =
            canonical_to_hf("language_model.embed_tokens.weight", layout, family);
        if (checkpoint.contains(embed_key) &&
            torch::equal(checkpoint.tensor(key), checkpoint.tensor(embed_key))) {
          report.skipped.push_back(key);
          continue;
        }
        throw input_error("checkpoint ", checkpoint.dir().string(), ": tensor '", key,
                          "' differs from embed_tokens but the model ties lm_head to embed_tokens")
            .hint("set tie_word_embeddings to false in config.json's " + tie_key_place(family));
      }
      if (is_unused_vision_part(*canonical, model_vision_layers)) {
        report.skipped.push_back(key);
        continue;
      }
      unexpected.push_back(key);
      continue;
    }
    const SafetensorsEntry& entry = checkpoint.entry(key);
    if (param->second.is_floating_point() && !c10::isFloatingType(entry.dtype)) {
      throw input_error("tensor '", key, "' in ", checkpoint.file_of(key).string(), " holds ",
                        safetensors_dtype_name(entry.dtype), " values but the model's parameter '",
                        *canonical, "' is floating point; integers are not converted to weights")
          .hint("the checkpoint is corrupt or not a " + family_name + " weight file");
    }
    if (c10::IntArrayRef(entry.shape) != param->second.sizes()) {
      throw input_error("tensor '", key, "' in ", checkpoint.file_of(key).string(), " has shape ",
                        shape_text(entry.shape), " but the model's parameter '", *canonical,
                        "' has shape ", shape_text(param->second.sizes()))
          .hint("config.json does not describe this checkpoint's weights");
    }
    plan.emplace_back(key, *canonical);
  }
  if (!unexpected.empty()) {
    throw input_error("checkpoint ", checkpoint.dir().string(), " has ", unexpected.size(),
                      " tensor(s) the model does not have (", report.layout,
                      " layout): ", list_some(unexpected), "; the first in ",
                      checkpoint.file_of(unexpected.front()).string())
        .hint("the checkpoint is not a " + family_name + " model matching config.json");
  }
  std::set<std::string> planned;
  for (const auto& item : plan) planned.insert(item.second);
  std::vector<std::string> missing;
  for (const auto& item : params) {
    if (!planned.count(item.first)) missing.push_back(item.first);
  }
  if (!missing.empty()) {
    throw input_error("checkpoint ", checkpoint.dir().string(), " lacks ", missing.size(),
                      " parameter(s) of the model: ", list_some(missing), "; as ", report.layout,
                      "-layout keys: '", canonical_to_hf(missing.front(), layout, family), "'")
        .hint(missing.front() == "lm_head.weight"
                  ? "the checkpoint ties lm_head to embed_tokens: set tie_word_embeddings to true "
                    "in config.json's " +
                        tie_key_place(family)
                  : "the checkpoint is incomplete or of another model");
  }

  // Pass 2: copy (with dtype / device conversion).
  torch::NoGradGuard no_grad;
  std::set<std::string> done;
  for (const auto& [key, canonical] : plan) {
    torch::Tensor& param = params.at(canonical);
    param.copy_(checkpoint.tensor(key));
    done.insert(canonical);
    ++report.loaded;
    report.loaded_elements += param.numel();
  }
  // Verify: every parameter was set (guards against a plan / params mismatch above).
  for (const auto& item : params) {
    PERPO_CHECK(done.count(item.first), "parameter '", item.first, "' was not loaded from ",
                checkpoint.dir().string());
  }
  return report;
}

LoadReport load_weights_from(torch::nn::Module& model, const SafetensorsCheckpoint& checkpoint,
                             ModelConfig* config) {
  LoadReport report = load_hf_weights(model, checkpoint, HfFamily::kLlava);
  if (config != nullptr) config->key_layout = report.layout;
  return report;
}

void check_hf_checkpoint_shapes(const std::vector<ParameterShape>& parameters, const fs::path& dir,
                                HfFamily family) {
  SafetensorsCheckpoint checkpoint(dir);  // headers only: the data is mapped, not read
  std::vector<std::string> keys;
  for (const std::string& key : checkpoint.names()) {
    if (!is_ignored_hf_key(key)) keys.push_back(key);
  }
  const HfLayout layout = detect_hf_layout(keys, family);
  std::map<std::string, std::string> hf_of;  // canonical -> checkpoint key
  for (const std::string& key : keys) {
    if (auto canonical = hf_to_canonical(key, layout, family)) hf_of[*canonical] = key;
  }
  for (const ParameterShape& parameter : parameters) {
    auto it = hf_of.find(parameter.name);
    if (it == hf_of.end()) continue;  // missing tensors: the strict load names them
    const std::vector<std::int64_t>& stored = checkpoint.entry(it->second).shape;
    if (stored != parameter.shape) {
      throw input_error(dir.string(), ": tensor '", it->second, "' in ",
                        checkpoint.file_of(it->second).filename().string(), " has shape ",
                        shape_text(stored), " but config.json makes it ",
                        shape_text(parameter.shape))
          .hint("config.json and the weights must belong to the same model");
    }
  }
}

void check_checkpoint_shapes(const ModelConfig& config, const fs::path& dir) {
  check_hf_checkpoint_shapes(model_parameter_shapes(config), dir, HfFamily::kLlava);
}

LoadReport load_weights(torch::nn::Module& model, const fs::path& dir, ModelConfig* config) {
  SafetensorsCheckpoint checkpoint(dir);
  LoadReport report = load_weights_from(model, checkpoint, config);
  PERPO_LOG_INFO("loaded ", report.loaded, " tensors (", report.loaded_elements, " weights) from ",
                 dir.string(), " (", report.files, " file(s), ", report.layout, " key layout, ",
                 report.skipped.size(), " key(s) skipped)");
  return report;
}

NamedTensors canonical_state(torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> merged;  // "<layer>.weight" -> W + scale B A
  for (const auto& item : model.named_modules()) {
    auto* layer = dynamic_cast<LoraLinearImpl*>(item.value().get());
    if (layer == nullptr || !layer->lora_enabled()) continue;
    merged[item.key().empty() ? "weight" : item.key() + ".weight"] = layer->merged_weight();
  }
  NamedTensors state;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (is_adapter(item.key())) continue;
    auto it = merged.find(item.key());
    state.emplace_back(item.key(), it != merged.end() ? it->second : item.value().detach());
  }
  return state;
}

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {"tokenizer.model",
                                                 "tokenizer.json",
                                                 "tokenizer_config.json",
                                                 "special_tokens_map.json",
                                                 "added_tokens.json",
                                                 "preprocessor_config.json",
                                                 "processor_config.json",
                                                 "chat_template.json",
                                                 "chat_template.jinja",
                                                 "generation_config.json",
                                                 "vocab.json",
                                                 "merges.txt",
                                                 "video_preprocessor_config.json"};
  return names;
}

std::size_t export_hf_folder(torch::nn::Module& model, HfFamily family,
                             const std::string& config_json, const fs::path& out_dir,
                             const ExportOptions& options) {
  HfLayout layout = parse_hf_layout(options.layout);
  NamedTensors tensors;
  for (auto& [name, tensor] : canonical_state(model)) {
    torch::Tensor value = tensor;
    if (options.to_bfloat16 && value.is_floating_point()) value = value.to(torch::kBFloat16);
    tensors.emplace_back(canonical_to_hf(name, layout, family), value);
  }

  // Build the folder beside its target, then swap it in: out_dir is complete or absent.
  fs::path target = fs::absolute(out_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  fs::path parent = target.parent_path();
  fs::create_directories(parent);
  std::string stem = "." + target.filename().string() + ".partial-" + std::to_string(::getpid());
  fs::path staging = parent / stem;
  fs::remove_all(staging);
  fs::create_directories(staging);
  TempPathGuard staging_guard(staging);  // removed if SIGINT / SIGTERM end perpo meanwhile
  try {
    write_safetensors_checkpoint(staging, tensors, options.max_shard_bytes);
    write_file_atomic(staging / "config.json", config_json);
    if (!options.tokenizer_dir.empty()) {
      for (const std::string& name : tokenizer_file_names()) {
        fs::path source = options.tokenizer_dir / name;
        if (fs::exists(source))
          fs::copy_file(source, staging / name, fs::copy_options::overwrite_existing);
      }
    }
    if (!options.tokenizer_model.empty()) {
      fs::copy_file(options.tokenizer_model, staging / "tokenizer.model",
                    fs::copy_options::overwrite_existing);
    }
    fs::path old =
        parent / ("." + target.filename().string() + ".old-" + std::to_string(::getpid()));
    if (fs::exists(target)) fs::rename(target, old);
    fs::rename(staging, target);
    fs::remove_all(old);
    fsync_path(parent);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(staging);
    throw runtime_error("exporting the model to ", target.string(), " failed: ", e.what());
  } catch (...) {
    fs::remove_all(staging);
    throw;
  }
  PERPO_LOG_INFO("exported ", tensors.size(), " tensors to ", target.string(), " (",
                 hf_family_name(family), ", ", hf_layout_name(layout), " key layout)");
  return tensors.size();
}

void export_checkpoint(torch::nn::Module& model, const ModelConfig& config, const fs::path& out_dir,
                       const ExportOptions& options) {
  parse_hf_layout(options.layout);  // a bad name fails before anything is computed
  ModelConfig saved = config;
  saved.key_layout = options.layout;
  export_hf_folder(model, HfFamily::kLlava, model_config_json(saved), out_dir, options);
}

}  // namespace perpo
