// Tokenizer and chat templates against ids that Python produced (sentencepiece + transformers'
// LlamaTokenizer / LlavaProcessor) on the committed tiny model: tools/make_tokenizer_fixture.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "perpo/core/error.h"
#include "perpo/tokenizer/chat_template.h"
#include "perpo/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

fs::path fixture_dir() { return fs::path(test::kTestsDir) / "fixtures" / "tokenizer"; }

const nlohmann::json& expected() {
  static const nlohmann::json json = [] {
    std::ifstream in(fixture_dir() / "expected.json");
    return nlohmann::json::parse(in);
  }();
  return json;
}

const Tokenizer& tiny() {
  static const Tokenizer tokenizer(fixture_dir() / "tiny.model");
  return tokenizer;
}

TEST(Tokenizer, SpecialIdsMatchPython) {
  const auto& json = expected();
  EXPECT_EQ(tiny().sentencepiece_vocab_size(), json["sp_vocab_size"].get<int>());
  EXPECT_EQ(tiny().bos_id(), json["bos_id"].get<int>());
  EXPECT_EQ(tiny().eos_id(), json["eos_id"].get<int>());
  EXPECT_EQ(tiny().unk_id(), json["unk_id"].get<int>());
  EXPECT_EQ(tiny().pad_id(), json["pad_id"].get<int>());
  EXPECT_EQ(tiny().added_token_id("<image>"), json["image_token_id"].get<int>());
  EXPECT_EQ(tiny().vocab_size(), json["sp_vocab_size"].get<int>() + 2);  // <image>, <pad>
}

TEST(Tokenizer, PiecesAndIdsRoundTrip) {
  for (const auto& [piece, id] : expected()["pieces"].items()) {
    EXPECT_EQ(tiny().piece_to_id(piece), id.get<int>()) << piece;
    EXPECT_EQ(tiny().id_to_piece(id.get<int>()), piece);
  }
  EXPECT_EQ(tiny().piece_to_id("<image>"), expected()["image_token_id"].get<int>());
  EXPECT_EQ(tiny().id_to_piece(tiny().pad_id()), "<pad>");
  EXPECT_EQ(tiny().piece_to_id("no-such-piece"), tiny().unk_id());
  EXPECT_THROW(tiny().id_to_piece(tiny().vocab_size()), Error);
  EXPECT_TRUE(tiny().is_special(tiny().bos_id()));
  EXPECT_TRUE(tiny().is_special(tiny().pad_id()));
  EXPECT_FALSE(tiny().is_special(tiny().piece_to_id("▁the")));
}

TEST(Tokenizer, EncodeMatchesPython) {
  for (const auto& item : expected()["encode"]) {
    const std::string text = item["text"];
    EXPECT_EQ(tiny().encode(text), item["ids"].get<std::vector<int>>()) << text;
    EXPECT_EQ(tiny().encode(text, /*add_bos=*/true), item["ids_with_bos"].get<std::vector<int>>())
        << text;
    std::vector<std::string> pieces;
    for (int id : tiny().encode(text)) pieces.push_back(tiny().id_to_piece(id));
    EXPECT_EQ(pieces, item["pieces"].get<std::vector<std::string>>()) << text;
  }
}

TEST(Tokenizer, NonLegacyEncodeMatchesPython) {
  // LlamaTokenizer(legacy=False): no dummy prefix after special tokens (llava-hf's processor).
  const Tokenizer modern(fixture_dir() / "tiny.model", {}, /*legacy=*/false);
  EXPECT_FALSE(modern.legacy());
  EXPECT_TRUE(tiny().legacy());
  for (const auto& item : expected()["nonlegacy_encode"]) {
    const std::string text = item["text"];
    EXPECT_EQ(modern.encode(text), item["ids"].get<std::vector<int>>()) << text;
  }
  // The answer split of the chat template holds in this mode too.
  const ChatTemplate chat(modern, TokenizerConfig{});
  for (const auto& item : expected()["chat"]) {
    if (item["template"] != "vicuna_v1") continue;
    EXPECT_EQ(chat.encode_answer(item["answer"].get<std::string>()),
              item["answer_ids"].get<std::vector<int>>());
  }
}

TEST(Tokenizer, DecodeMatchesPython) {
  for (const auto& item : expected()["decode"]) {
    EXPECT_EQ(tiny().decode(item["ids"].get<std::vector<int>>()), item["text"].get<std::string>());
  }
}

TEST(Tokenizer, DecodeKeepsOrSkipsSpecialTokens) {
  const std::string text = "USER: <image>\nWhat is this?";
  const std::vector<int> ids = tiny().encode(text, /*add_bos=*/true, /*add_eos=*/true);
  // Each piece between special tokens decodes on its own, its dummy-prefix space dropped.
  EXPECT_EQ(tiny().decode(ids), "USER: \nWhat is this?");
  EXPECT_EQ(tiny().decode(ids, /*skip_special=*/false), "<s>USER: <image>\nWhat is this?</s>");
  const std::vector<int> bad = {tiny().vocab_size()};
  EXPECT_THROW(tiny().decode(bad), Error);
}

TEST(Tokenizer, EncodeSplitsTheLongestAddedTokenFirst) {
  // "<image_patch>" shares a prefix with "<image>"; the longer one wins where both match.
  const int n = tiny().sentencepiece_vocab_size();
  Tokenizer tokenizer(fixture_dir() / "tiny.model", {{"<image>", n}, {"<image_patch>", n + 1}});
  EXPECT_EQ(tokenizer.encode("<image_patch><image>"), (std::vector<int>{n + 1, n}));
  EXPECT_EQ(tokenizer.pad_id(), -1);  // no <pad> added, none in the model
}

TEST(Tokenizer, LoadErrorsNameTheFile) {
  try {
    Tokenizer missing("/no/such/tokenizer.model");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_NE(std::string(e.what()).find("/no/such/tokenizer.model"), std::string::npos);
  }
  const fs::path dir = fs::path(test::kScratchDir) / "tokenizer";
  fs::create_directories(dir);
  std::ofstream(dir / "garbage.model") << "not a model";
  try {
    Tokenizer garbage(dir / "garbage.model");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("garbage.model"), std::string::npos) << e.what();
  }
  // An added token inside the SentencePiece vocabulary is refused.
  EXPECT_THROW(Tokenizer(fixture_dir() / "tiny.model", {{"<image>", 5}}), Error);
}

TEST(Tokenizer, FromConfigReadsAddedTokensOfACheckpoint) {
  // A checkpoint folder in the llava-hf layout: tokenizer.model + tokenizer_config.json.
  const fs::path dir = fs::path(test::kScratchDir) / "tokenizer" / "checkpoint";
  fs::create_directories(dir);
  fs::copy_file(fixture_dir() / "tiny.model", dir / "tokenizer.model",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json") << R"({"added_tokens_decoder": {
      "0": {"content": "<unk>"}, "2": {"content": "</s>"},
      "403": {"content": "<pad>"}, "402": {"content": "<img>"}}})";
  TokenizerConfig config;
  config.image_token = "<img>";
  const Tokenizer tokenizer = Tokenizer::from_config(config, dir);
  EXPECT_EQ(tokenizer.added_token_id("<img>"), 402);
  EXPECT_EQ(tokenizer.pad_id(), 403);
  EXPECT_EQ(tokenizer.vocab_size(), 404);
  EXPECT_TRUE(tokenizer.legacy());
  config.legacy = false;  // tokenizer.legacy picks the splitting convention
  EXPECT_FALSE(Tokenizer::from_config(config, dir).legacy());
  config.image_token = "<image>";  // not in this tokenizer
  EXPECT_THROW(Tokenizer::from_config(config, dir), Error);
}

TEST(ChatTemplate, VicunaSystemPromptIsLlava15s) {
  // LLaVA-1.5's conv_vicuna_v1 says "user", not llava_v1's "human" (the fixture reads LLaVA's
  // conv_templates; perpo's constant is checked against it, not the other way round).
  EXPECT_EQ(std::string(kVicunaSystemPrompt), expected()["system_prompt"].get<std::string>());
  EXPECT_NE(std::string(kVicunaSystemPrompt).find("a curious user and"), std::string::npos);
  const ChatTemplate chat(tiny(), TokenizerConfig{});
  EXPECT_EQ(chat.system_prompt(), kVicunaSystemPrompt);
  EXPECT_EQ(chat.prompt_text("Q?", true),
            std::string(kVicunaSystemPrompt) + " USER: <image>\nQ? ASSISTANT:");
  TokenizerConfig plain;
  plain.chat_template = "plain";
  EXPECT_EQ(ChatTemplate(tiny(), plain).system_prompt(), "");
}

TEST(ChatTemplate, PromptAndAnswerIdsMatchLlava) {
  // vicuna_v1 cases: prompt ids from LLaVA's tokenizer_image_token, and the answer mask from
  // LLaVA's training preprocess_v1 (llava_answer_mask), both run by the fixture script.
  int llava_checked = 0;
  for (const auto& item : expected()["chat"]) {
    TokenizerConfig config;
    config.chat_template = item["template"];
    config.system_prompt = item.value("system_prompt", "");
    const ChatTemplate chat(tiny(), config);
    const std::string prompt = item["prompt"];
    const std::string answer = item["answer"];
    const bool has_image = item["has_image"];
    EXPECT_EQ(chat.prompt_text(prompt, has_image), item["prompt_text"].get<std::string>());
    const auto prompt_ids = item["prompt_ids"].get<std::vector<int>>();
    const auto answer_ids = item["answer_ids"].get<std::vector<int>>();
    EXPECT_EQ(chat.encode_prompt(prompt, has_image), prompt_ids) << prompt;
    EXPECT_EQ(chat.encode_answer(answer), answer_ids) << answer;

    const ChatTokens tokens = chat.encode(prompt, answer, has_image);
    ASSERT_EQ(tokens.ids.size(), prompt_ids.size() + answer_ids.size());
    EXPECT_EQ(tokens.prompt_length, static_cast<int>(prompt_ids.size()));
    for (std::size_t i = 0; i < tokens.ids.size(); ++i) {
      EXPECT_EQ(tokens.answer_mask[i], i >= prompt_ids.size() ? 1 : 0) << i;
    }
    EXPECT_EQ(tokens.ids.back(), tiny().eos_id());
    if (item.contains("llava_answer_mask")) {
      EXPECT_EQ(tokens.ids, item["llava_train_ids"].get<std::vector<int>>()) << prompt;
      EXPECT_EQ(tokens.answer_mask, item["llava_answer_mask"].get<std::vector<std::uint8_t>>())
          << prompt;
      ++llava_checked;
    }
  }
  EXPECT_GE(llava_checked, 3);
}

TEST(ChatTemplate, ImageTokenExpansionMatchesLlavaProcessor) {
  for (const auto& item : expected()["expansion"]) {
    TokenizerConfig config;
    config.chat_template = item["template"];
    const ChatTemplate chat(tiny(), config);
    EXPECT_EQ(chat.encode_prompt(item["prompt"].get<std::string>(), true,
                                 item["image_tokens"].get<int>()),
              item["ids"].get<std::vector<int>>());
  }
}

TEST(ChatTemplate, PromptWithItsOwnPlaceholderKeepsItAndBosIsOptional) {
  TokenizerConfig config;
  config.chat_template = "plain";
  config.add_bos = false;
  const ChatTemplate chat(tiny(), config);
  EXPECT_EQ(chat.prompt_text("look: <image> here", true), "look: <image> here");
  const std::vector<int> ids = chat.encode_prompt("look: <image> here", true, 3);
  EXPECT_NE(ids.front(), tiny().bos_id());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), chat.image_token_id()), 3);
}

TEST(ChatTemplate, LongAnswersAreCutWithoutEos) {
  TokenizerConfig config;
  const ChatTemplate chat(tiny(), config);
  const std::vector<int> full = chat.encode_answer("[0.61, 0.1, 0.77, 0.54]");  // 24 pieces + EOS
  bool truncated = true;
  EXPECT_EQ(chat.encode_answer("[0.61, 0.1, 0.77, 0.54]", 100, &truncated), full);
  EXPECT_FALSE(truncated);
  const std::vector<int> cut = chat.encode_answer("[0.61, 0.1, 0.77, 0.54]", 5, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(cut, std::vector<int>(full.begin(), full.begin() + 5));
}

TEST(ChatTemplate, UnknownTemplateOrImageTokenIsAnInputError) {
  TokenizerConfig config;
  config.chat_template = "chatml";
  EXPECT_THROW(ChatTemplate(tiny(), config), Error);
  config.chat_template = "plain";
  config.image_token = "<video>";
  EXPECT_THROW(ChatTemplate(tiny(), config), Error);
}

}  // namespace
}  // namespace perpo
