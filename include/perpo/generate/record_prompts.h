// Dataset records -> what the decoder takes (prompt ids with the image tokens expanded, pixels),
// with the tokenizer, chat template and image settings checked against the model once.
//
//   perpo::RecordPrompts prompts(*model, tokenizer, config);   // throws on a mismatch
//   perpo::GenerationPrompt prompt = prompts.build(record);    // ids, image, name
//   perpo::ListExample example = prompts.encode_list(list);             // prompt + answer ids
#pragma once

#include <torch/types.h>

#include <string>

#include "perpo/config/config.h"
#include "perpo/data/examples.h"
#include "perpo/data/records.h"
#include "perpo/generate/generator.h"
#include "perpo/model/vlm.h"
#include "perpo/reward/reward.h"
#include "perpo/tokenizer/chat_template.h"
#include "perpo/tokenizer/tokenizer.h"

namespace perpo {

/// "data.jsonl:7 (id refcoco-val-17)": how errors name a record.
std::string record_name(const DatasetRecord& record);

/// Throws perpo::Error (input) when the tokenizer cannot drive the model: more token ids than
/// the model's vocabulary, an image placeholder id other than the model's image token, or image
/// settings the model does not take (LLaVA: image.size other than the vision tower's input
/// size). Names the tokenizer file and the keys.
void check_model_matches(VisionLanguageModel& model, const TextTokenizer& tokenizer,
                         const ChatTemplate& chat, const ImageConfig& image);

/// The image placeholder count of a record's image under `model` (VisionLanguageModel::
/// image_tokens), for ExampleEncoder; errors name the record. Keeps a reference to `model`.
ExampleEncoder::ImageTokens image_token_counter(const VisionLanguageModel& model);

/// The units a model's answers write boxes in (config reward.box_format; auto = the family's,
/// VisionLanguageModel::box_units), where answers meet the ground truth: rewards read answers in
/// them, SFT targets and sampling.add_ground_truth write the (normalised) truth in them. Keeps a
/// reference to `model`.
///
///   BoxConvention boxes(model, config.reward);   // Qwen2.5-VL: pixels of the resized image
///   RewardOptions options = boxes.reward_options(record, reward_options_from(config.reward));
///   std::string target = boxes.target(record);   // {"bbox_2d": [243, 40, 308, 216]}
class BoxConvention {
 public:
  BoxConvention(const VisionLanguageModel& model, const RewardConfig& config);

  BoxUnits units() const { return units_; }
  /// `base` with these units, and for pixels the size of the record's image as the model sees it
  /// (box_frame, from the file's header). Errors name the record.
  RewardOptions reward_options(const DatasetRecord& record, RewardOptions base) const;
  /// The record's ground truth as the model should answer it: a box task's truth (reward iou or
  /// giou, by reward.name or the record's task) holding one usable box rewritten in these units
  /// (format_box_in); anything else, and every truth under normalised units, unchanged.
  std::string target(const DatasetRecord& record) const;
  /// Fields a list sampled under these units carries so that `perpo score` reads its answers the
  /// same way: "box_units" and, for pixels, "image_width" / "image_height" (the frame), each only
  /// where the record has no such field. Nothing for normalised units.
  void annotate(DatasetRecord& record, const RewardOptions& options) const;

 private:
  const VisionLanguageModel& model_;
  std::string reward_name_;
  BoxUnits units_;
};

/// BoxConvention(model, config).target as an ExampleEncoder's SFT target text. Keeps a
/// reference to `model`.
ExampleEncoder::TargetText box_targets(const VisionLanguageModel& model,
                                       const RewardConfig& config);

/// What a command checks of its records before it writes anything (sample, eval).
struct RecordCheck {
  std::string reward_name;       // reward.name ("" = each record's task default)
  RewardOptions reward_options;  // how answers and the truth are parsed
  int max_new_tokens = 32;       // decoding budget that must fit the context
  int context = 0;               // text_config.max_position_embeddings
  bool skip_bad = false;         // data.on_bad_record == "skip": bad records are counted
  std::string hint;              // what the user can do about a prompt over the context
};

class RecordPrompts;

/// The per-record checks that need no image decoding and no model run, over all records before
/// the command creates its outputs: unique ids, a reward for the record's task, a ground truth
/// that reward can use (check_ground_truth), a single image placeholder, a prompt within
/// data.max_prompt_tokens and, with max_new_tokens, within the context. The first bad record
/// throws perpo::Error (input) naming it; with skip_bad every bad record is counted and nothing
/// is thrown (the command skips them again when it reaches them). Returns how many were bad.
std::size_t check_records(const std::vector<DatasetRecord>& records, RecordPrompts& prompts,
                          const RecordCheck& check);

class RecordPrompts {
 public:
  /// Keeps references to `model` and `tokenizer`, which must outlive this object.
  RecordPrompts(VisionLanguageModel& model, const TextTokenizer& tokenizer, const Config& config);
  RecordPrompts(const RecordPrompts&) = delete;
  RecordPrompts& operator=(const RecordPrompts&) = delete;

  /// Prompt ids (errors for prompts over data.max_prompt_tokens) and the image (errors for a
  /// missing or undecodable image), both naming the record. `seeds` is left empty.
  GenerationPrompt build(const DatasetRecord& record);
  /// The prompt ids alone (no image is decoded; Qwen2.5-VL reads its size from the file's
  /// header): the checks of build() without its cost.
  std::vector<int> prompt_ids(const DatasetRecord& record) const;
  /// The record's image in the model family's form (VisionLanguageModel::prepare_image), or
  /// undefined when it has none. Errors name the record.
  ModelImage image(const DatasetRecord& record) const;
  /// Prompt and answer ids of a list (answers cut to data.max_answer_tokens, + EOS).
  ListExample encode_list(const PreferenceList& list);

  const ChatTemplate& chat() const { return chat_; }
  const TextTokenizer& tokenizer() const { return tokenizer_; }
  const BoxConvention& boxes() const { return boxes_; }
  /// Answer text of generated ids (special tokens left out, SentencePiece's leading space gone).
  std::string answer_text(const std::vector<int>& ids) const;

 private:
  VisionLanguageModel& model_;
  const TextTokenizer& tokenizer_;
  ChatTemplate chat_;
  BoxConvention boxes_;
  ExampleEncoder encoder_;
  ImageConfig image_;
};

}  // namespace perpo
