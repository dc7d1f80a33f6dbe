#include "perpo/generate/record_prompts.h"

#include <torch/torch.h>

#include <unordered_map>

#include "perpo/batch/collate.h"
#include "perpo/core/error.h"
#include "perpo/reward/text.h"

namespace perpo {

std::string record_name(const DatasetRecord& record) {
  return record.source.to_string() + " (id " + record.id + ")";
}

void check_model_matches(VisionLanguageModel& model, const TextTokenizer& tokenizer,
                         const ChatTemplate& chat, const ImageConfig& image) {
  const std::string file = tokenizer.model_path().string();
  if (tokenizer.vocab_size() > model.vocab_size()) {
    throw input_error("tokenizer ", file, " has ", tokenizer.vocab_size(),
                      " token ids but the model's vocabulary (text_config.vocab_size) has ",
                      model.vocab_size())
        .hint("use the tokenizer that belongs to this model (tokenizer.path)");
  }
  if (chat.image_token_id() != model.image_token_id()) {
    throw input_error("tokenizer ", file, " gives the image placeholder id ", chat.image_token_id(),
                      " but the model expects image_token_index ", model.image_token_id())
        .hint("use the tokenizer that belongs to this model, or set tokenizer.image_token");
  }
  model.check_image_config(image);
}

ExampleEncoder::ImageTokens image_token_counter(const VisionLanguageModel& model) {
  return [&model](const DatasetRecord& record) {
    return naming_record(record, [&] { return model.image_tokens(record.image_path); });
  };
}

RecordPrompts::RecordPrompts(VisionLanguageModel& model, const TextTokenizer& tokenizer,
                             const Config& config)
    : model_(model),
      tokenizer_(tokenizer),
      chat_(tokenizer, config.tokenizer),
      encoder_(chat_, config.data, image_token_counter(model)),
      image_(config.image) {
  check_model_matches(model, tokenizer, chat_, config.image);
}

GenerationPrompt RecordPrompts::build(const DatasetRecord& record) {
  GenerationPrompt prompt;
  prompt.prompt_ids = encoder_.encode_sft(record).prompt_ids;
  const ModelImage prepared = image(record);
  prompt.pixel_values = prepared.pixel_values;
  prompt.grid_thw = prepared.grid_thw;
  prompt.name = record_name(record);
  return prompt;
}

std::vector<int> RecordPrompts::prompt_ids(const DatasetRecord& record) const {
  return encoder_.encode_prompt(record);
}

std::size_t check_records(const std::vector<DatasetRecord>& records, RecordPrompts& prompts,
                          const RecordCheck& check) {
  std::unordered_map<std::string, std::size_t> first_of;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const DatasetRecord& record = records[i];
    const std::string who = record_name(record);
    auto [it, fresh] = first_of.emplace(record.id, i);
    if (!fresh) {  // not skippable: which of the two would be the record?
      throw input_error(record.source.to_string(), ": record id '", record.id,
                        "' was already used at ", records[it->second].source.to_string())
          .hint("record ids must be unique (sample resumes by id, eval reports by id)");
    }
    try {
      const RewardSpec& reward = reward_for_task(record.task, check.reward_name, who);
      check_ground_truth(reward, record.ground_truth, check.reward_options, who);
      GenerationPrompt prompt;
      prompt.prompt_ids = prompts.prompt_ids(record);
      prompt.name = who;
      if (check.context > 0) {
        check_prompt_fits_context(prompt, check.max_new_tokens, check.context, check.hint);
      }
    } catch (const Error& e) {
      if (!check.skip_bad || !e.is_input_error()) throw;
      ++bad;
    }
  }
  return bad;
}

ModelImage RecordPrompts::image(const DatasetRecord& record) const {
  if (record.image.empty()) return {};
  return model_.prepare_image(load_record_image(record), image_);
}

ListExample RecordPrompts::encode_list(const PreferenceList& list) {
  return encoder_.encode_list(list);
}

std::string RecordPrompts::answer_text(const std::vector<int>& ids) const {
  // Byte-fallback pieces can end mid-character: invalid sequences become U+FFFD here, so the
  // text kept in memory (and scored, and re-tokenized for ref_logps) is the text written.
  return encode_utf8(decode_utf8(tokenizer_.decode(ids, /*skip_special=*/true)));
}

}  // namespace perpo
