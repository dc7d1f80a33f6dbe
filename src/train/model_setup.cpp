// The trained model from the config (model_setup.h).
#include "perpo/train/model_setup.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/lora.h"
#include "perpo/runtime/runtime.h"

namespace perpo {

TrainModel load_train_model(const Config& config) {
  TrainModel out;
  out.dir = config.model.path;
  if (config.model.path.empty() && config.tokenizer.path.empty()) {
    throw input_error("the built-in tiny model (model.path empty) needs key 'tokenizer.path'")
        .hint("set tokenizer.path=path/to/tokenizer.model, or model.path to a LLaVA checkpoint");
  }
  out.tokenizer =
      std::make_shared<Tokenizer>(Tokenizer::from_config(config.tokenizer, config.model.path));
  seed_all(config.run.seed);  // the tiny model's init (and LoRA's A) depend on it
  if (config.model.path.empty()) {
    auto image_id = out.tokenizer->added_token_id(config.tokenizer.image_token);
    PERPO_CHECK_INPUT(image_id.has_value(), "the tokenizer has no image token '",
                      config.tokenizer.image_token, "' (key tokenizer.image_token)");
    out.config = tiny_model_config(config.model.tiny, out.tokenizer->vocab_size(), *image_id);
    out.model = LlavaModel(out.config);
  } else {
    out.config = load_model_config(config.model.path);
    out.model = LlavaModel(out.config);
    load_weights(*out.model, config.model.path, &out.config);
  }
  if (config.image.size != out.config.vision.image_size) {
    throw input_error("key 'image.size' is ", config.image.size, " but the model's images are ",
                      out.config.vision.image_size, " pixels wide")
        .hint("set image.size=" + std::to_string(out.config.vision.image_size));
  }
  const auto& m = config.model;
  if (m.lora.enabled) {
    apply_lora(*out.model, m.lora);  // adapters train, everything else frozen
    set_trainable(*out.model, !m.freeze_vision, !m.freeze_projector, /*llm=*/false);
  } else {
    set_trainable(*out.model, !m.freeze_vision, !m.freeze_projector, !m.freeze_llm);
  }
  out.model->set_gradient_checkpointing(m.gradient_checkpointing);
  out.model->to(parse_device(config.run.device), parse_dtype(config.run.dtype));
  return out;
}

}  // namespace perpo
