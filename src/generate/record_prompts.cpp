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

BoxConvention::BoxConvention(const VisionLanguageModel& model, const RewardConfig& config)
    : model_(model),
      reward_name_(config.name),
      units_(config.box_format == "auto" ? model.box_units() : parse_box_units(config.box_format)) {
}

RewardOptions BoxConvention::reward_options(const DatasetRecord& record, RewardOptions base) const {
  base.box_parse.units = units_;
  if (units_ == BoxUnits::kPixels && !record.image.empty()) {
    const ImageDims frame =
        naming_record(record, [&] { return model_.box_frame(record.image_path); });
    base.box_parse.image_width = frame.width;
    base.box_parse.image_height = frame.height;
  }
  return base;
}

std::string BoxConvention::target(const DatasetRecord& record) const {
  if (units_ == BoxUnits::kNormalized || units_ == BoxUnits::kInfer) return record.ground_truth;
  std::string reward = reward_name_;
  if (reward.empty()) {
    if (record.task != "grounding") return record.ground_truth;  // the task's reward is iou
    reward = default_reward_for_task(record.task);
  }
  if (reward != "iou" && reward != "giou") return record.ground_truth;
  const RewardOptions options = reward_options(record, {});
  const auto boxes = parse_boxes(record.ground_truth, truth_parse_options(options.box_parse));
  const BoxCandidate* box = select_box(boxes, BoxSelect::kFirst);
  if (box == nullptr || box->note != BoxNote::kOk || boxes.size() != 1) return record.ground_truth;
  return format_box_in(box->box, units_, options.box_parse.image_width,
                       options.box_parse.image_height);
}

void BoxConvention::annotate(DatasetRecord& record, const RewardOptions& options) const {
  if (units_ == BoxUnits::kNormalized || units_ == BoxUnits::kInfer) return;
  nlohmann::json& extra = record.extra;
  if (!extra.contains("box_units")) extra["box_units"] = box_units_name(units_);
  if (units_ != BoxUnits::kPixels || extra.contains("image_width") ||
      extra.contains("image_height") || options.box_parse.image_width <= 0) {
    return;
  }
  extra["image_width"] = static_cast<std::int64_t>(options.box_parse.image_width);
  extra["image_height"] = static_cast<std::int64_t>(options.box_parse.image_height);
}

ExampleEncoder::TargetText box_targets(const VisionLanguageModel& model,
                                       const RewardConfig& config) {
  return [boxes = BoxConvention(model, config)](const DatasetRecord& record) {
    return boxes.target(record);
  };
}

RecordPrompts::RecordPrompts(VisionLanguageModel& model, const TextTokenizer& tokenizer,
                             const Config& config)
    : model_(model),
      tokenizer_(tokenizer),
      chat_(tokenizer, config.tokenizer),
      boxes_(model, config.reward),
      encoder_(chat_, config.data, image_token_counter(model)),
      image_(config.image) {
  check_model_matches(model, tokenizer, chat_, config.image);
  encoder_.set_target_text(box_targets(model, config.reward));
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
