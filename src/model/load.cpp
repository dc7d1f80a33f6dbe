// load_model: a configuration -> a ready model (see load.h).
#include "perpo/model/load.h"

#include <torch/nn/init.h>
#include <torch/types.h>

#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/strings.h"
#include "perpo/model/attention.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/lora.h"
#include "perpo/runtime/runtime.h"

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
void check_tokenizer_fits(const Tokenizer& tokenizer, const ModelConfig& model,
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

}  // namespace

LoadedModel load_model(const Config& config, const LoadOptions& options) {
  seed_all(config.run.seed);
  apply_attention_setting(config.model.attention);
  LoadedModel loaded;
  const ModelSectionConfig& section = config.model;
  std::string source;
  if (!section.path.empty()) {
    loaded.dir = section.path;
    source = loaded.dir.string();
    loaded.config = load_model_config(loaded.dir);
    check_checkpoint_shapes(loaded.config, loaded.dir);  // from the headers, before building
    loaded.tokenizer =
        std::make_shared<Tokenizer>(Tokenizer::from_config(config.tokenizer, loaded.dir));
  } else {
    if (config.tokenizer.path.empty()) {
      throw input_error("the built-in tiny model (model.path empty) needs tokenizer.path")
          .hint(
              "set tokenizer.path=DIR/tokenizer.model (perpo data synth writes one), or "
              "model.path=<a Hugging Face LLaVA folder>");
    }
    source = "(built-in tiny model)";
    loaded.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_config(config.tokenizer));
    const auto image_id = loaded.tokenizer->added_token_id(config.tokenizer.image_token);
    PERPO_CHECK_INPUT(image_id.has_value(), "tokenizer ", config.tokenizer.path, " has no ",
                      config.tokenizer.image_token, " token");
    loaded.config = tiny_model_config(section.tiny, loaded.tokenizer->vocab_size(), *image_id);
    loaded.config.text.bos_token_id = loaded.tokenizer->bos_id();
    loaded.config.text.eos_token_id = loaded.tokenizer->eos_id();
    loaded.config.text.pad_token_id = loaded.tokenizer->pad_id();
  }
  loaded.tokenizer_path = loaded.tokenizer->model_path();
  check_tokenizer_fits(*loaded.tokenizer, loaded.config, config, source);
  if (config.image.size != loaded.config.vision.image_size) {
    throw input_error("image.size is ", config.image.size, " but the vision tower of ", source,
                      " takes ", loaded.config.vision.image_size, "-pixel images")
        .hint("set image.size=" + std::to_string(loaded.config.vision.image_size));
  }

  loaded.model = LlavaModel(loaded.config);
  if (loaded.dir.empty()) {
    init_weights(*loaded.model);
  } else {
    load_weights(*loaded.model, loaded.dir, &loaded.config);  // logs what it loaded
  }
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
