// Collation shapes and masks, checked by hand; records -> ids -> tensors with the tiny tokenizer.
// This executable links LibTorch and SentencePiece together: that it starts and tokenizes like
// Python (Pipeline.* below) is the check that the two do not clash in one process.
#include <gtest/gtest.h>
#include <link.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "perpo/batch/collate.h"
#include "perpo/core/error.h"
#include "perpo/data/examples.h"
#include "perpo/data/jsonl.h"
#include "perpo/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

fs::path fixtures() { return fs::path(test::kTestsDir) / "fixtures"; }

PixelValues constant_pixels(int size, float value) {
  PixelValues pixels;
  pixels.height = size;
  pixels.width = size;
  pixels.data.assign(3 * size * size, value);
  return pixels;
}

std::vector<std::int64_t> row(const at::Tensor& tensor, std::int64_t index) {
  const at::Tensor r = tensor[index].contiguous();
  return std::vector<std::int64_t>(r.data_ptr<std::int64_t>(),
                                   r.data_ptr<std::int64_t>() + r.numel());
}

TEST(CollateSft, PadsRightAndMasksEverythingButTheAnswer) {
  // Example 0: prompt [1, 5, 6], answer [7, 2] -> 5 tokens (the longest, T = 5).
  // Example 1: prompt [1],       answer [9, 2] -> 3 tokens + 2 padding (pad id 0 here).
  std::vector<SftExample> examples(2);
  examples[0].prompt_ids = {1, 5, 6};
  examples[0].answer_ids = {7, 2};
  examples[1].prompt_ids = {1};
  examples[1].answer_ids = {9, 2};
  const SftBatch batch =
      collate_sft(examples, {constant_pixels(4, 0.5f), constant_pixels(4, -1.f)}, 0);
  EXPECT_EQ(batch.input_ids.sizes(), (at::IntArrayRef{2, 5}));
  EXPECT_EQ(batch.input_ids.scalar_type(), torch::kInt64);
  EXPECT_EQ(row(batch.input_ids, 0), (std::vector<std::int64_t>{1, 5, 6, 7, 2}));
  EXPECT_EQ(row(batch.input_ids, 1), (std::vector<std::int64_t>{1, 9, 2, 0, 0}));
  EXPECT_EQ(row(batch.labels, 0), (std::vector<std::int64_t>{-100, -100, -100, 7, 2}));
  EXPECT_EQ(row(batch.labels, 1), (std::vector<std::int64_t>{-100, 9, 2, -100, -100}));
  EXPECT_EQ(row(batch.attention_mask, 0), (std::vector<std::int64_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(row(batch.attention_mask, 1), (std::vector<std::int64_t>{1, 1, 1, 0, 0}));
  EXPECT_EQ(batch.pixel_values.sizes(), (at::IntArrayRef{2, 3, 4, 4}));
  EXPECT_FLOAT_EQ(batch.pixel_values[0].sum().item<float>(), 0.5f * 48);  // 3 * 4 * 4 = 48 values
  EXPECT_FLOAT_EQ(batch.pixel_values[1].sum().item<float>(), -48.f);
  EXPECT_EQ(row(batch.answer_start.unsqueeze(0), 0), (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(row(batch.answer_mask, 0), (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(row(batch.answer_mask, 1), (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(batch.tokens, 8);

  // Images belong to the examples that have one, in order: fewer images than examples is fine,
  // none gives no pixel tensor, more is an error.
  EXPECT_EQ(collate_sft(examples, {constant_pixels(4, 0.f)}, 0).pixel_values.size(0), 1);
  EXPECT_FALSE(collate_sft(examples, {}, 0).pixel_values.defined());
  EXPECT_THROW(
      collate_sft(examples,
                  {constant_pixels(4, 0.f), constant_pixels(4, 0.f), constant_pixels(4, 0.f)}, 0),
      Error);
  EXPECT_THROW(collate_sft(examples, {constant_pixels(4, 0.f), constant_pixels(5, 0.f)}, 0), Error);
}

TEST(CollateList, OnePrefixAndNPaddedAnswers) {
  // N = 3 answers of 2, 4 and 1 tokens -> (3, 4), padded with pad id 401.
  ListExample example;
  example.prompt_ids = {1, 400, 400, 17, 18};
  example.answer_ids = {{30, 2}, {31, 32, 33, 2}, {2}};
  example.rewards = {0.5, 1.0, 0.0};
  example.ref_logps = {-1.5, -2.0, -0.25};
  PixelValues pixels = constant_pixels(2, 0.f);
  pixels.data[5] = 3.f;  // channel 1 (values 4..7), row 0, column 1
  const ListBatch batch = collate_list(example, pixels, 401);
  EXPECT_EQ(batch.prefix_ids.sizes(), (at::IntArrayRef{5}));
  EXPECT_EQ(batch.prefix_ids[1].item<std::int64_t>(), 400);
  EXPECT_EQ(batch.pixel_values.sizes(), (at::IntArrayRef{1, 3, 2, 2}));
  EXPECT_FLOAT_EQ(batch.pixel_values[0][1][0][1].item<float>(), 3.f);
  EXPECT_EQ(batch.answer_ids.sizes(), (at::IntArrayRef{3, 4}));
  EXPECT_EQ(row(batch.answer_ids, 0), (std::vector<std::int64_t>{30, 2, 401, 401}));
  EXPECT_EQ(row(batch.answer_ids, 1), (std::vector<std::int64_t>{31, 32, 33, 2}));
  EXPECT_EQ(row(batch.answer_ids, 2), (std::vector<std::int64_t>{2, 401, 401, 401}));
  EXPECT_EQ(row(batch.answer_mask, 0), (std::vector<std::int64_t>{1, 1, 0, 0}));
  EXPECT_EQ(row(batch.answer_mask, 1), (std::vector<std::int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(row(batch.answer_mask, 2), (std::vector<std::int64_t>{1, 0, 0, 0}));
  EXPECT_EQ(batch.rewards.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(batch.rewards, torch::tensor({0.5f, 1.0f, 0.0f})));
  EXPECT_TRUE(torch::equal(batch.ref_logps, torch::tensor({-1.5f, -2.0f, -0.25f})));

  example.ref_logps.clear();
  EXPECT_FALSE(collate_list(example, pixels, 401).ref_logps.defined());
  example.rewards.pop_back();  // 2 rewards for 3 answers
  EXPECT_THROW(collate_list(example, pixels, 401), Error);
}

const nlohmann::json& expected_ids() {
  static const nlohmann::json json = [] {
    std::ifstream in(fixtures() / "tokenizer" / "expected.json");
    return nlohmann::json::parse(in);
  }();
  return json;
}

// The grounding case of the fixture: vicuna_v1, 4 image tokens (LlavaProcessor, 28 px / 14 px).
const nlohmann::json& grounding_case(const std::string& section) {
  for (const auto& item : expected_ids()[section]) {
    if (item["template"] == "vicuna_v1" &&
        item["prompt"].get<std::string>().find("man in red shirt") != std::string::npos) {
      return item;
    }
  }
  throw std::runtime_error("fixture case missing");
}

TEST(Pipeline, ListRecordToTensorsMatchesPythonIds) {
  const Tokenizer tokenizer(fixtures() / "tokenizer" / "tiny.model");
  const ChatTemplate chat(tokenizer, TokenizerConfig{});
  DataConfig config;
  ExampleEncoder encoder(chat, config, /*image_tokens=*/4);

  const nlohmann::json& chat_case = grounding_case("chat");
  PreferenceList list;
  list.record.prompt = chat_case["prompt"];
  list.record.image = "images/gradient_8x6.png";
  list.record.image_path = fixtures() / "data" / "images" / "gradient_8x6.png";
  list.answers = {chat_case["answer"].get<std::string>(), "[0.1, 0.2, 0.3, 0.4]"};
  list.rewards = {1.0, 0.0};
  const ListExample example = encoder.encode_list(list);
  EXPECT_EQ(example.prompt_ids, grounding_case("expansion")["ids"].get<std::vector<int>>());
  EXPECT_EQ(example.answer_ids[0], chat_case["answer_ids"].get<std::vector<int>>());

  ImageConfig image;
  image.size = 8;
  const ListBatch batch =
      collate_list(example, load_pixels(list.record, image), tokenizer.pad_id());
  EXPECT_EQ(batch.prefix_ids.size(0), static_cast<std::int64_t>(example.prompt_ids.size()));
  EXPECT_EQ((batch.prefix_ids == 400).sum().item<std::int64_t>(), 4);  // <image> x 4
  EXPECT_EQ(batch.pixel_values.sizes(), (at::IntArrayRef{1, 3, 8, 8}));
  EXPECT_EQ(batch.answer_ids.size(0), 2);
  EXPECT_EQ(batch.answer_mask.sum().item<std::int64_t>(),
            static_cast<std::int64_t>(example.answer_ids[0].size() + example.answer_ids[1].size()));
}

// Names of the shared libraries loaded into this process.
std::vector<std::string> loaded_libraries() {
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        static_cast<std::vector<std::string>*>(out)->push_back(info->dlpi_name ? info->dlpi_name
                                                                               : "");
        return 0;
      },
      &names);
  return names;
}

TEST(Pipeline, SentencePieceAndLibTorchShareTheProcess) {
  // architecture.md: a LibTorch linked with the system libprotobuf crashes beside Debian's
  // libsentencepiece. This process holds both; it got here, so it started. Now both work.
  bool has_sentencepiece = false, has_torch = false;
  for (const std::string& name : loaded_libraries()) {
    has_sentencepiece = has_sentencepiece || name.find("libsentencepiece") != std::string::npos;
    has_torch = has_torch || name.find("libtorch_cpu") != std::string::npos;
  }
  EXPECT_TRUE(has_sentencepiece);
  EXPECT_TRUE(has_torch);
  const Tokenizer tokenizer(fixtures() / "tokenizer" / "tiny.model");
  const auto& item = expected_ids()["encode"][1];  // "glass behind burger"
  const std::vector<int> ids = tokenizer.encode(item["text"].get<std::string>());
  EXPECT_EQ(ids, item["ids"].get<std::vector<int>>());
  const at::Tensor tensor = torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()));
  EXPECT_EQ(tensor.sum().item<std::int64_t>(),
            std::accumulate(ids.begin(), ids.end(), std::int64_t{0}));
}

TEST(Pipeline, SftFromDatasetRecordsAndLimits) {
  const Tokenizer tokenizer(fixtures() / "tokenizer" / "tiny.model");
  const ChatTemplate chat(tokenizer, TokenizerConfig{});
  DataConfig config;
  config.max_answer_tokens = 6;
  ExampleEncoder encoder(chat, config, 4);
  const auto records = read_dataset(fixtures() / "data" / "lists.jsonl", ReadOptions{});
  ASSERT_EQ(records.size(), 2u);
  std::vector<SftExample> examples;
  std::vector<PixelValues> pixels;
  ImageConfig image;
  image.size = 6;
  for (const DatasetRecord& record : records) {
    examples.push_back(encoder.encode_sft(record));
    pixels.push_back(load_pixels(record, image));
  }
  // Answers (the ground truths): "[0.61, 0.1, 0.77, 0.54]" is 24 pieces + EOS and "Total: 42"
  // is 9 pieces + EOS in the tiny vocabulary; both are cut to max_answer_tokens = 6.
  EXPECT_EQ(examples[0].answer_ids.size(), 6u);
  EXPECT_EQ(encoder.truncated_answers(), 2u);
  const SftBatch batch = collate_sft(examples, pixels, tokenizer.pad_id());
  EXPECT_EQ(batch.input_ids.size(0), 2);
  EXPECT_EQ((batch.labels != kIgnoreLabel).sum().item<std::int64_t>(), 12);  // 6 + 6 answer ids
  EXPECT_EQ(batch.pixel_values.sizes(), (at::IntArrayRef{2, 3, 6, 6}));

  config.max_prompt_tokens = 10;
  ExampleEncoder strict(chat, config, 4);
  try {
    strict.encode_sft(records[1]);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lists.jsonl:3: the prompt has"), std::string::npos)
        << e.what();
  }
}

TEST(Pipeline, LoadPixelsErrorNamesTheRecord) {
  DatasetRecord record;
  record.image_path = fixtures() / "data" / "images" / "truncated.png";
  record.source = {"set.jsonl", 7};
  try {
    load_pixels(record, ImageConfig{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("set.jsonl:7: "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace perpo
