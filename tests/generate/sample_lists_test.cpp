// Lists from records: N answers per record, rewards with notes, ref_logps equal to a plain full
// forward of prompt + answer; the same lists whatever the batch; unique answers, the ground truth
// as an answer; bad records and mismatched tokenizers as clear errors (or skips).
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <cmath>

#include <set>

#include "generate_test_util.h"
#include "perpo/core/atomic_file.h"
#include "perpo/data/jsonl.h"
#include "perpo/generate/list_logps.h"
#include "perpo/generate/logps_file.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/generate/sample_lists.h"
#include "test_util.h"

namespace perpo {
namespace {

/// log p(answer | prompt, image) by one plain forward over prompt + answer ids.
double full_forward_logp(LlavaModel& model, const GenerationPrompt& prompt,
                         const std::vector<int>& answer_ids) {
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> ids(prompt.prompt_ids.begin(), prompt.prompt_ids.end());
  const auto P = static_cast<std::int64_t>(ids.size());
  ids.insert(ids.end(), answer_ids.begin(), answer_ids.end());
  torch::Tensor logps = torch::log_softmax(
      model->forward(torch::tensor(ids).unsqueeze(0), prompt.pixel_values.unsqueeze(0))[0], -1);
  double total = 0;
  for (std::size_t t = 0; t < answer_ids.size(); ++t) {
    total += logps[P - 1 + t][answer_ids[t]].item<double>();
  }
  return total;
}

class SampleLists : public test::TinyRecordsTest {
 protected:
  SampleLists() : TinyRecordsTest("generate", 3) {}
};

TEST_F(SampleLists, ListsHoldScoredAnswersWithFullForwardRefLogps) {
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  ListSampler sampler(*model, prompts, config);
  SampledBatch batch = sampler.sample(records);
  ASSERT_EQ(batch.lists.size(), 5u);
  EXPECT_GT(batch.stats.generated_tokens, 0);
  int distinct = 0;
  for (std::size_t r = 0; r < records.size(); ++r) {
    const PreferenceList& list = batch.lists[r];
    EXPECT_EQ(list.record.id, records[r].id);
    ASSERT_EQ(list.answers.size(), 4u);
    ASSERT_EQ(list.rewards.size(), 4u);
    ASSERT_EQ(list.ref_logps.size(), 4u);
    ASSERT_EQ(list.record.extra["reward_notes"].size(), 4u);
    GenerationPrompt prompt = prompts.build(records[r]);
    for (std::size_t n = 0; n < 4; ++n) {
      EXPECT_GE(list.rewards[n], 0.0);
      EXPECT_LE(list.rewards[n], 1.0);
      const std::vector<int> answer_ids = prompts.chat().encode_answer(list.answers[n]);
      EXPECT_NEAR(list.ref_logps[n], full_forward_logp(model, prompt, answer_ids), 1e-5)
          << list.answers[n];
      EXPECT_LT(list.ref_logps[n], 0.0);
      distinct += list.answers[n] != list.answers[0];
    }
  }
  EXPECT_GT(distinct, 0);
}

TEST_F(SampleLists, SameListsWhateverTheBatch) {
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  ListSampler sampler(*model, prompts, config);
  SampledBatch all = sampler.sample(records);
  std::vector<PreferenceList> in_pieces;
  for (auto [first, count] : {std::pair<int, int>{0, 1}, {1, 3}, {4, 1}}) {
    std::vector<DatasetRecord> part(records.begin() + first, records.begin() + first + count);
    for (PreferenceList& list : sampler.sample(part).lists) in_pieces.push_back(std::move(list));
  }
  std::vector<DatasetRecord> reversed(records.rbegin(), records.rend());
  SampledBatch backwards = sampler.sample(reversed);
  ASSERT_EQ(in_pieces.size(), 5u);
  for (std::size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(all.lists[r].answers, in_pieces[r].answers);
    EXPECT_EQ(all.lists[r].answers, backwards.lists[4 - r].answers);
    for (std::size_t n = 0; n < 4; ++n) {
      EXPECT_NEAR(all.lists[r].ref_logps[n], in_pieces[r].ref_logps[n], 1e-5);
    }
  }
  Config other_seed = config;
  other_seed.run.seed = 8;
  ListSampler reseeded(*model, prompts, other_seed);
  EXPECT_NE(reseeded.sample(records).lists[0].answers, all.lists[0].answers);
}

TEST_F(SampleLists, UniqueAnswersDropRepeatsWithinTheBudget) {
  config.sampling.unique_answers = true;
  config.sampling.max_samples = 6;
  config.sampling.temperature = 1e-4;  // practically greedy: every draw gives the same answer
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  SampledBatch batch = ListSampler(*model, prompts, config).sample({records[0], records[1]});
  ASSERT_EQ(batch.lists.size(), 2u);
  for (const PreferenceList& list : batch.lists) {
    ASSERT_EQ(list.answers.size(), 2u);  // one distinct answer, repeated to make a list
    EXPECT_EQ(list.answers[0], list.answers[1]);
  }
  EXPECT_EQ(batch.duplicates_dropped, 2u * 5u);  // 6 draws per record, 1 kept
  EXPECT_EQ(batch.short_lists, 2u);

  config.sampling.temperature = 1.0;  // a random model's samples rarely repeat
  RecordPrompts prompts2(*model, test::tiny_tokenizer(), config);
  SampledBatch varied = ListSampler(*model, prompts2, config).sample(records);
  for (const PreferenceList& list : varied.lists) {
    std::set<std::string> distinct(list.answers.begin(), list.answers.end());
    EXPECT_EQ(distinct.size(), list.answers.size());
    EXPECT_EQ(list.answers.size(), 4u);
  }
}

TEST_F(SampleLists, GroundTruthAddedAsAnAnswer) {
  config.sampling.add_ground_truth = true;
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  SampledBatch batch = ListSampler(*model, prompts, config).sample({records[2]});
  const PreferenceList& list = batch.lists.at(0);
  ASSERT_EQ(list.answers.size(), 5u);
  EXPECT_EQ(list.answers.back(), "[0.1, 0.2, 0.5, 0.6]");
  EXPECT_DOUBLE_EQ(list.rewards.back(), 1.0);  // IoU of the truth with itself
  EXPECT_EQ(list.record.extra["reward_notes"].back(), "ok");
  GenerationPrompt prompt = prompts.build(records[2]);
  EXPECT_NEAR(list.ref_logps.back(),
              full_forward_logp(model, prompt, prompts.chat().encode_answer(list.answers.back())),
              1e-5);
}

TEST_F(SampleLists, BoxFormatWritesTheTruthAndReadsAnswersInItsUnits) {
  // LLaVA answers in normalised boxes (the test above: the truth as written); reward.box_format
  // overrides the family's units, here with Qwen2-VL's 0-1000.
  config.sampling.add_ground_truth = true;
  config.reward.box_format = "scale_1000";
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  EXPECT_EQ(prompts.boxes().units(), BoxUnits::kScale1000);
  SampledBatch batch = ListSampler(*model, prompts, config).sample({records[2]});
  const PreferenceList& list = batch.lists.at(0);
  const std::string target = "<|box_start|>(100,200),(500,600)<|box_end|>";  // [0.1, 0.2, 0.5, 0.6]
  EXPECT_EQ(list.answers.back(), target);
  EXPECT_DOUBLE_EQ(list.rewards.back(), 1.0);
  EXPECT_EQ(list.record.extra["box_units"], "scale_1000");
  EXPECT_FALSE(list.record.extra.contains("image_width"));      // only pixels need a frame
  EXPECT_EQ(list.record.ground_truth, "[0.1, 0.2, 0.5, 0.6]");  // the dataset's truth is kept

  // SFT trains on the same text (train_data's encoder).
  ChatTemplate chat(test::tiny_tokenizer(), config.tokenizer);
  ExampleEncoder encoder(chat, config.data, image_token_counter(*model));
  const std::vector<int> plain = encoder.encode_sft(records[2]).answer_ids;
  EXPECT_EQ(plain, chat.encode_answer(records[2].ground_truth));
  encoder.set_target_text(box_targets(*model, config.reward));
  EXPECT_EQ(encoder.encode_sft(records[2]).answer_ids, chat.encode_answer(target));
  // A task whose reward is not a box reward keeps its truth.
  DatasetRecord ocr = records[2];
  ocr.task = "ocr";
  ocr.ground_truth = "[0.1, 0.2, 0.5, 0.6]";
  EXPECT_EQ(prompts.boxes().target(ocr), ocr.ground_truth);
}

TEST_F(SampleLists, BadRecordsAreNamedOrSkipped) {
  records[1].image_path = dir / "missing.png";
  records[1].image = "missing.png";
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  ListSampler strict(*model, prompts, config);
  std::string message = test::error_of([&] { strict.sample(records); });
  EXPECT_NE(message.find("data.jsonl:2"), std::string::npos) << message;
  EXPECT_NE(message.find("missing.png"), std::string::npos) << message;

  config.data.on_bad_record = "skip";
  ListSampler skipping(*model, prompts, config);
  SampledBatch batch = skipping.sample(records);
  EXPECT_EQ(batch.lists.size(), 4u);
  ASSERT_EQ(batch.skipped.size(), 1u);
  EXPECT_NE(batch.skipped[0].find("missing.png"), std::string::npos);

  config.data.on_bad_record = "error";
  config.sampling.max_new_tokens = 2040;  // prompt + answer beyond the tiny model's 2048
  ListSampler long_answers(*model, prompts, config);
  message = test::error_of([&] { long_answers.sample({records[0]}); });
  EXPECT_NE(message.find("(id r0)"), std::string::npos) << message;
  EXPECT_NE(message.find("context of 2048"), std::string::npos) << message;

  config.sampling.max_new_tokens = 6;
  config.reward.name = "iuo";
  message = test::error_of([&] { ListSampler(*model, prompts, config); });
  EXPECT_NE(message.find("iuo"), std::string::npos) << message;

  config.reward.name = "";
  records[0].task = "counting";  // no default reward
  message = test::error_of([&] { ListSampler(*model, prompts, config).sample({records[0]}); });
  EXPECT_NE(message.find("data.jsonl:1 (id r0)"), std::string::npos) << message;
}

TEST_F(SampleLists, MismatchedTokenizerAndModelAreErrors) {
  Config small = config;
  LlavaModel small_vocab(tiny_model_config(config.model.tiny, 300, 200));  // vocab < 402
  std::string message =
      test::error_of([&] { RecordPrompts prompts(*small_vocab, test::tiny_tokenizer(), config); });
  EXPECT_NE(message.find("402 token ids"), std::string::npos) << message;
  EXPECT_NE(message.find("tiny.model"), std::string::npos) << message;

  LlavaModel pad_image(tiny_model_config(config.model.tiny, 402, 401));  // <pad> as image token
  message =
      test::error_of([&] { RecordPrompts prompts(*pad_image, test::tiny_tokenizer(), config); });
  EXPECT_NE(message.find("image_token_index 401"), std::string::npos) << message;

  small.image.size = 32;
  message = test::error_of([&] { RecordPrompts prompts(*model, test::tiny_tokenizer(), small); });
  EXPECT_NE(message.find("image.size"), std::string::npos) << message;
}

TEST_F(SampleLists, RefLogpsEqualPerpoLogps) {
  // ref_logps come from the keys/values the answers were decoded from (prompts of different
  // lengths, right-padded into one batch); `perpo logps` runs each prompt again on its own.
  config.sampling.add_ground_truth = true;
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  ListSampler sampler(*model, prompts, config);
  SampledBatch batch = sampler.sample(records);
  ASSERT_EQ(batch.lists.size(), 5u);
  std::set<std::size_t> prompt_lengths;
  std::string lines;
  for (const PreferenceList& list : batch.lists) {
    prompt_lengths.insert(prompts.build(list.record).prompt_ids.size());
    lines += to_json(list).dump() + "\n";
  }
  EXPECT_GT(prompt_lengths.size(), 1u);  // padding in the sampled batch
  write_file_atomic(dir / "lists.jsonl", lines);
  logps_file(*model, prompts, config, dir / "lists.jsonl", dir / "logps.jsonl", "perpo");
  ReadOptions options;
  options.require_rewards = false;
  const std::vector<PreferenceList> again = read_lists(dir / "logps.jsonl", "perpo", options);
  ASSERT_EQ(again.size(), 5u);
  for (std::size_t r = 0; r < 5; ++r) {
    ASSERT_EQ(again[r].ref_logps.size(), batch.lists[r].ref_logps.size());
    ASSERT_GE(again[r].ref_logps.size(), 4u);
    for (std::size_t n = 0; n < again[r].ref_logps.size(); ++n) {
      EXPECT_NEAR(batch.lists[r].ref_logps[n], again[r].ref_logps[n], 1e-5) << r << " " << n;
    }
  }
}

TEST_F(SampleLists, ListLogpsDoNotDependOnChunking) {
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  PreferenceList list;
  list.record = records[0];
  list.answers = {"[0.1, 0.2, 0.3, 0.4]", "a box", "", "[0.5, 0.5, 0.9, 0.9] is it"};
  list.rewards = {0, 0, 0, 0};
  const ModelImage pixels = prompts.image(records[0]);
  std::vector<double> whole = list_logps(*model, prompts.encode_list(list), pixels);
  std::vector<double> pieces = list_logps(*model, prompts.encode_list(list), pixels, 3);
  ASSERT_EQ(whole.size(), 4u);
  // Chunks change the batch shape, and with SDPA on some CPUs the float32 reduction order: equal
  // to float32 rounding of each token's log-prob (relative 1e-7 of the sum).
  for (std::size_t n = 0; n < 4; ++n) {
    EXPECT_NEAR(whole[n], pieces[n], 1e-6 + 1e-7 * std::abs(whole[n]));
  }
}

}  // namespace
}  // namespace perpo
