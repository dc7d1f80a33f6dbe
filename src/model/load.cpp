// load_model: a configuration -> a ready model (see load.h).
#include "perpo/model/load.h"

#include <torch/nn/init.h>
#include <torch/types.h>

#include "config_fields.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/strings.h"
#include "perpo/model/attention.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/lora.h"
#include "perpo/model/qwen_checkpoint.h"
#include "perpo/runtime/runtime.h"
#include "perpo/tokenizer/text_tokenizer.h"

namespace perpo {
namespace fs = std::filesystem;

void init_weights(torch::nn::Module& model, double std) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (p.dim() >= 2 || ends_with(name, "class_embedding")) {
      p.normal_(0.0, std);
    } else if (ends_with(name, "bias")) {
      p.zero_();
    } else {
      p.fill_(1.0);  // RMSNorm / LayerNorm scales
    }
  }
}

namespace {

// The tokenizer must produce ids the model can embed, with the image placeholder where the model
// splices image features.
void check_tokenizer_fits(const TextTokenizer& tokenizer, const ModelConfig& model,
                          const Config& config, const std::string& model_source) {
  if (tokenizer.vocab_size() > model.text.vocab_size) {
    throw input_error("tokenizer ", tokenizer.model_path().string(), " has ",
                      tokenizer.vocab_size(), " ids but the model ", model_source, " embeds only ",
                      model.text.vocab_size)
        .hint("tokenizer.path must be the tokenizer this model was trained with");
  }
  const auto image_id = tokenizer.added_token_id(config.tokenizer.image_token);
  if (!image_id || *image_id != model.image_token_index) {
    throw input_error(
        "tokenizer ", tokenizer.model_path().string(), " gives ", config.tokenizer.image_token,
        " the id ", image_id ? std::to_string(*image_id) : std::string("(none)"), " but the model ",
        model_source, " expects image_token_index ", model.image_token_index)
        .hint("tokenizer.path / tokenizer.image_token must match the model's config.json");
  }
}

void check_image_size(const Config& config, const ModelConfig& model, const std::string& source) {
  if (config.image.size != model.vision.image_size) {
    throw input_error("image.size is ", config.image.size, " but the vision tower of ", source,
                      " takes ", model.vision.image_size, "-pixel images")
        .hint("set image.size=" + std::to_string(model.vision.image_size));
  }
}

/// A LLaVA checkpoint folder (config.json model_type "llava").
void load_llava_checkpoint(LoadedModel& loaded, const Config& config) {
  const std::string source = loaded.dir.string();
  loaded.config = load_model_config(loaded.dir);
  check_checkpoint_shapes(loaded.config, loaded.dir);  // from the headers, before building
  loaded.tokenizer = load_tokenizer(config.tokenizer, loaded.dir, "llava");
  check_tokenizer_fits(*loaded.tokenizer, loaded.config, config, source);
  check_image_size(config, loaded.config, source);
  auto model = std::make_shared<LlavaModelImpl>(loaded.config);
  load_weights(*model, loaded.dir, &loaded.config);  // logs what it loaded
  loaded.model = model;
}

/// The image processor's settings in a Qwen2.5-VL folder's preprocessor_config.json (min / max
/// pixels, either as min_pixels / max_pixels or as size.shortest_edge / longest_edge; mean, std),
/// then image.min_pixels / max_pixels when set.
void read_qwen_image_options(const fs::path& dir, const ImageConfig& image,
                             QwenVlImageOptions& options) {
  const fs::path file = dir / "preprocessor_config.json";
  if (fs::exists(file)) {
    const nlohmann::json root = model_detail::parse_json_object(read_file(file), file.string());
    model_detail::FieldReader f(root, file.string(), "");
    options.min_pixels = f.get_int64("min_pixels", options.min_pixels);
    options.max_pixels = f.get_int64("max_pixels", options.max_pixels);
    if (const nlohmann::json* size = f.find("size"); size != nullptr && size->is_object()) {
      const model_detail::FieldReader edges(*size, file.string(), "size.");
      options.min_pixels = edges.get_int64("shortest_edge", options.min_pixels);
      options.max_pixels = edges.get_int64("longest_edge", options.max_pixels);
    }
    options.mean = f.get_doubles("image_mean", 3, options.mean);
    options.std = f.get_doubles("image_std", 3, options.std);
  }
  if (image.min_pixels > 0) options.min_pixels = image.min_pixels;
  if (image.max_pixels > 0) options.max_pixels = image.max_pixels;
  PERPO_CHECK_INPUT(options.min_pixels >= 1 && options.max_pixels >= options.min_pixels,
                    file.string(), ": min_pixels ", options.min_pixels, " and max_pixels ",
                    options.max_pixels, " do not make a range (image.min_pixels / max_pixels)");
}

/// A Qwen2.5-VL checkpoint folder (config.json model_type "qwen2_5_vl").
void load_qwen2_5_vl_checkpoint(LoadedModel& loaded, const Config& config) {
  Qwen2_5VLModel model = load_qwen2_5_vl(loaded.dir);  // config, header shapes, strict weights
  read_qwen_image_options(loaded.dir, config.image, model->image_options);
  loaded.tokenizer = load_tokenizer(config.tokenizer, loaded.dir, "qwen2_5_vl");
  if (loaded.tokenizer->vocab_size() > model->vocab_size()) {
    throw input_error("tokenizer ", loaded.tokenizer->model_path().string(), " has ",
                      loaded.tokenizer->vocab_size(), " ids but the model ", loaded.dir.string(),
                      " embeds only ", model->vocab_size())
        .hint("tokenizer.path must be the tokenizer this model was trained with");
  }
  loaded.model = model.ptr();
}

/// The model families perpo loads, by config.json's model_type. A new family adds one line.
struct Family {
  const char* model_type;
  void (*load)(LoadedModel& loaded, const Config& config);
};
constexpr Family kFamilies[] = {
    {"llava", load_llava_checkpoint},
    {"qwen2_5_vl", load_qwen2_5_vl_checkpoint},
};

}  // namespace

LoadedModel load_model(const Config& config, const LoadOptions& options) {
  seed_all(config.run.seed);
  apply_attention_setting(config.model.attention);
  LoadedModel loaded;
  const ModelSectionConfig& section = config.model;
  if (!section.path.empty()) {
    loaded.dir = section.path;
    const std::string type = read_model_type(loaded.dir);
    const Family* family = nullptr;
    std::string known;
    for (const Family& f : kFamilies) {
      if (type == f.model_type) family = &f;
      known += std::string(known.empty() ? "" : ", ") + f.model_type;
    }
    if (family == nullptr) {
      throw input_error((loaded.dir / "config.json").string(), ": model_type is '", type,
                        "': unknown architecture; perpo loads ", known)
          .hint(
              "model.path must be a LLaVA-1.5 or Qwen2.5-VL checkpoint in the Hugging Face "
              "layout");
    }
    family->load(loaded, config);
  } else {
    if (config.tokenizer.path.empty()) {
      throw input_error("the built-in tiny model (model.path empty) needs tokenizer.path")
          .hint(
              "set tokenizer.path=DIR/tokenizer.model (perpo data synth writes one), or "
              "model.path=<a Hugging Face LLaVA folder>");
    }
    const std::string source = "(built-in tiny model)";
    auto tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_config(config.tokenizer));
    const auto image_id = tokenizer->added_token_id(config.tokenizer.image_token);
    PERPO_CHECK_INPUT(image_id.has_value(), "tokenizer ", config.tokenizer.path, " has no ",
                      config.tokenizer.image_token, " token");
    loaded.config = tiny_model_config(section.tiny, tokenizer->vocab_size(), *image_id);
    loaded.config.text.bos_token_id = tokenizer->bos_id();
    loaded.config.text.eos_token_id = tokenizer->eos_id();
    loaded.config.text.pad_token_id = tokenizer->pad_id();
    loaded.tokenizer = tokenizer;
    check_tokenizer_fits(*loaded.tokenizer, loaded.config, config, source);
    check_image_size(config, loaded.config, source);
    auto model = std::make_shared<LlavaModelImpl>(loaded.config);
    init_weights(*model);
    loaded.model = model;
  }
  loaded.tokenizer_path = loaded.tokenizer->model_path();
  if (section.lora.enabled && options.apply_lora) {
    const int adapted = apply_lora(*loaded.model, section.lora);
    set_trainable(*loaded.model, !section.freeze_vision, !section.freeze_projector,
                  /*llm=*/false);
    PERPO_LOG_INFO("LoRA r=", section.lora.r, " alpha=", section.lora.alpha, " on ", adapted,
                   " layers");
  } else {
    set_trainable(*loaded.model, !section.freeze_vision, !section.freeze_projector,
                  !section.freeze_llm);
  }
  loaded.model->set_gradient_checkpointing(section.gradient_checkpointing);
  const c10::Device device = parse_device(config.run.device);
  if (options.cast_to_run_dtype) {
    loaded.model->to(device, parse_dtype(config.run.dtype));
  } else {
    loaded.model->to(device);
  }
  return loaded;
}

}  // namespace perpo
