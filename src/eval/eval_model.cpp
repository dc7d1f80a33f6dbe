#include "perpo/eval/eval_model.h"

#include <torch/torch.h>

#include <map>

#include "perpo/config/config_io.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/train/run_checkpoint.h"

namespace perpo {

LoadedModel load_eval_model(Config& config, const std::filesystem::path& checkpoint) {
  if (checkpoint.empty()) return load_model(config);
  if (!std::filesystem::is_directory(checkpoint)) {
    throw input_error("checkpoint ", checkpoint.string(), " is not a folder")
        .hint("pass a Hugging Face LLaVA folder or a perpo checkpoint (run/checkpoints/step-N)");
  }
  if (!is_run_checkpoint(checkpoint)) {
    config.model.path = checkpoint.string();
    return load_model(config);
  }
  CheckpointContent content = load_run_checkpoint(checkpoint);
  Config trained;
  merge_yaml(trained, content.config_yaml, (checkpoint / "config.yaml").string());
  config.model = trained.model;
  config.tokenizer = trained.tokenizer;
  config.image = trained.image;
  config.model.gradient_checkpointing = false;
  LoadedModel loaded = load_model(config);
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> weights(content.weights.begin(), content.weights.end());
  std::size_t copied = 0;
  for (auto& item : loaded.model->named_parameters()) {
    auto it = weights.find(item.key());
    if (it == weights.end()) continue;
    PERPO_CHECK_INPUT(it->second.sizes() == item.value().sizes(), checkpoint.string(), ": tensor '",
                      item.key(), "' has shape ", it->second.sizes(), ", the model needs ",
                      item.value().sizes());
    item.value().copy_(it->second.to(item.value().options()));
    ++copied;
  }
  PERPO_CHECK_INPUT(copied == weights.size(), checkpoint.string(), ": ", weights.size() - copied,
                    " trained tensor(s) match no parameter of the model its config.yaml describes");
  PERPO_LOG_INFO("evaluating training checkpoint ", checkpoint.string(), " (step ", content.step,
                 ", ", copied, " trained tensors)");
  return loaded;
}

}  // namespace perpo
