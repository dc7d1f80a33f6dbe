// load_tokenizer: the tokenizer of a checkpoint family (see text_tokenizer.h).
#include "perpo/tokenizer/text_tokenizer.h"

#include "perpo/tokenizer/bpe_tokenizer.h"
#include "perpo/tokenizer/tokenizer.h"

namespace perpo {

std::shared_ptr<TextTokenizer> load_tokenizer(const TokenizerConfig& config,
                                              const std::filesystem::path& model_dir,
                                              const std::string& model_type) {
  if (model_type == "qwen2_5_vl") {
    return std::make_shared<BpeTokenizer>(config.path.empty() ? model_dir
                                                              : std::filesystem::path(config.path));
  }
  return std::make_shared<Tokenizer>(Tokenizer::from_config(config, model_dir));
}

}  // namespace perpo
