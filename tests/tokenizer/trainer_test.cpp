// train_tokenizer: a SentencePiece model that perpo::Tokenizer loads, with the box pieces fixed
// (", " included, which SentencePiece's option syntax cannot carry by itself), deterministic bytes
// and lossless round trips.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/tokenizer/chat_template.h"
#include "perpo/tokenizer/tokenizer.h"
#include "perpo/tokenizer/trainer.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

std::string box_text(int a, int b, int c, int d) {
  char text[64];
  std::snprintf(text, sizeof text, "[%.2f, %.2f, %.2f, %.2f]", a / 100.0, b / 100.0, c / 100.0,
                d / 100.0);
  return text;
}

std::vector<std::string> training_texts() {
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) {
    texts.push_back(box_text(i % 97, (i * 7) % 89, 10 + (i * 3) % 90, (i * 11) % 100));
    texts.push_back(i % 2 ? "Please provide the bounding box of the small red circle"
                          : "Please provide the bounding box of the large blue square");
    texts.push_back(i % 3 ? "red fox" : "blue sky");
  }
  return texts;
}

std::vector<std::string> pieces_of(const Tokenizer& tokenizer, const std::string& text) {
  std::vector<std::string> pieces;
  for (int id : tokenizer.encode(text)) pieces.push_back(tokenizer.id_to_piece(id));
  return pieces;
}

TEST(TrainTokenizer, BoxesAreMadeOfTheFixedPieces) {
  const fs::path dir = test::fresh_scratch_dir("tokenizer", "train");
  const fs::path model = train_tokenizer(training_texts(), dir / "tiny");
  EXPECT_EQ(model, dir / "tiny.model");
  const Tokenizer tokenizer(model);
  EXPECT_EQ(tokenizer.unk_id(), 0);
  EXPECT_EQ(tokenizer.bos_id(), 1);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  EXPECT_EQ(tokenizer.added_token_id("<image>"), tokenizer.sentencepiece_vocab_size());
  EXPECT_EQ(tokenizer.pad_id(), tokenizer.sentencepiece_vocab_size() + 1);
  EXPECT_LE(tokenizer.sentencepiece_vocab_size(), 160);
  // A box never seen in training: 17 pieces, all fixed ones.
  const std::vector<std::string> expected = {"▁[", "0.", "6", "1",  ",▁", "1.", "0", "0", ",▁",
                                             "0.", "7",  "7", ",▁", "0.", "0",  "5", "]"};
  EXPECT_EQ(pieces_of(tokenizer, "[0.61, 1.00, 0.77, 0.05]"), expected);
  // Words of the training texts became whole pieces.
  EXPECT_EQ(pieces_of(tokenizer, "red fox"), (std::vector<std::string>{"▁red", "▁fox"}));
  for (const std::string& text : training_texts()) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  }
}

TEST(TrainTokenizer, WorksWithTheChatTemplate) {
  const fs::path dir = test::fresh_scratch_dir("tokenizer", "template");
  std::vector<std::string> texts = training_texts();
  const Tokenizer tokenizer(train_tokenizer(texts, dir / "tiny"));
  TokenizerConfig config;
  config.chat_template = "plain";
  const ChatTemplate chat(tokenizer, config);
  const std::vector<int> answer = chat.encode_answer("[0.12, 0.34, 0.56, 0.78]");
  ASSERT_EQ(answer.size(), 18u);  // 17 pieces + </s>
  EXPECT_EQ(answer.back(), tokenizer.eos_id());
  EXPECT_EQ(tokenizer.decode(answer), "[0.12, 0.34, 0.56, 0.78]");
  const std::vector<int> prompt = chat.encode_prompt("Please provide the bounding box", true, 4);
  EXPECT_EQ(std::count(prompt.begin(), prompt.end(), *tokenizer.added_token_id("<image>")), 4);
}

TEST(TrainTokenizer, SameTextsGiveTheSameModelBytes) {
  const fs::path dir = test::fresh_scratch_dir("tokenizer", "determinism");
  const fs::path a = train_tokenizer(training_texts(), dir / "a");
  const fs::path b = train_tokenizer(training_texts(), dir / "b");
  EXPECT_EQ(read_file(a), read_file(b));
  TokenizerTrainOptions unigram;
  unigram.model_type = "unigram";
  const fs::path c = train_tokenizer(training_texts(), dir / "c", unigram);
  EXPECT_NE(read_file(a), read_file(c));
}

TEST(TrainTokenizer, BadInputsAreInputErrors) {
  const fs::path dir = test::fresh_scratch_dir("tokenizer", "bad");
  EXPECT_NE(test::error_of([&] { train_tokenizer({}, dir / "x"); }).find("at least one text"),
            std::string::npos);
  TokenizerTrainOptions bad;
  bad.model_type = "lstm";
  const std::string error =
      test::error_of([&] { train_tokenizer(training_texts(), dir / "y", bad); });
  EXPECT_NE(error.find("training the SentencePiece tokenizer failed"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir / "y.model"));
}

}  // namespace
}  // namespace perpo
