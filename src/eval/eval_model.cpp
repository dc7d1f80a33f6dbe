#include "perpo/eval/eval_model.h"

#include <torch/torch.h>

#include "perpo/config/config_io.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/model/run_checkpoint.h"

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
  const std::size_t copied =
      load_trained_weights(*loaded.model, content.weights, checkpoint.string(),
                           /*every_trained_parameter=*/false);
  PERPO_LOG_INFO("evaluating training checkpoint ", checkpoint.string(), " (step ", content.step,
                 ", ", copied, " trained tensors)");
  return loaded;
}

}  // namespace perpo
