// BpeTokenizer (Qwen2's byte-level BPE) and ChatMlTemplate against ids that transformers'
// Qwen2TokenizerFast / Qwen2_5_VLProcessor produced on a tiny trained tokenizer with Qwen2's
// pipeline: tools/make_qwen2_tokenizer_fixture.py -> tests/fixtures/tokenizer/qwen2/.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "perpo/core/error.h"
#include "perpo/tokenizer/bpe_tokenizer.h"
#include "perpo/tokenizer/chatml_template.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

fs::path fixture_dir() { return fs::path(test::kTestsDir) / "fixtures" / "tokenizer" / "qwen2"; }

Json read_json(const fs::path& file) {
  std::ifstream in(file);
  return Json::parse(in);
}

const Json& expected() {
  static const Json json = read_json(fixture_dir() / "expected.json");
  return json;
}

const BpeTokenizer& qwen2() {
  static const BpeTokenizer tokenizer(fixture_dir());
  return tokenizer;
}

void write_json(const fs::path& file, const Json& json) { std::ofstream(file) << json.dump(1); }

// A copy of the fixture's tokenizer.json, changed by `edit`, alone in a fresh scratch folder.
fs::path edited_tokenizer(const std::string& name, const std::function<void(Json&)>& edit) {
  const fs::path dir = test::fresh_scratch_dir("bpe_tokenizer", name);
  Json json = read_json(fixture_dir() / "tokenizer.json");
  edit(json);
  write_json(dir / "tokenizer.json", json);
  return dir / "tokenizer.json";
}

void expect_encodes_like_python(const BpeTokenizer& tokenizer) {
  for (const Json& item : expected()["encode"]) {
    const std::string text = item["text"];
    EXPECT_EQ(tokenizer.encode(text), item["ids"].get<std::vector<int>>()) << text;
  }
}

TEST(BpeTokenizer, SpecialIdsMatchPython) {
  const Json& json = expected();
  EXPECT_EQ(qwen2().vocab_size(), json["vocab_size"].get<int>());
  EXPECT_EQ(qwen2().model_vocab_size(), json["model_vocab_size"].get<int>());
  EXPECT_EQ(qwen2().eos_id(), json["eos_id"].get<int>());  // <|im_end|> from tokenizer_config
  EXPECT_EQ(qwen2().pad_id(), json["pad_id"].get<int>());  // <|endoftext|>
  EXPECT_TRUE(json["bos_id"].is_null());
  EXPECT_EQ(qwen2().bos_id(), -1);
  EXPECT_EQ(qwen2().unk_id(), -1);
  const int im_end = json["im_end_id"], endoftext = json["endoftext_id"];
  EXPECT_EQ(qwen2().stop_ids(),
            (std::vector<int>{std::min(im_end, endoftext), std::max(im_end, endoftext)}));
  EXPECT_EQ(qwen2().path(), fixture_dir() / "tokenizer.json");
}

TEST(BpeTokenizer, AddedTokensAndPiecesMatchPython) {
  const auto& added = qwen2().added_tokens();
  ASSERT_EQ(added.size(), expected()["added_tokens"].size());
  for (std::size_t i = 0; i < added.size(); ++i) {
    const Json& want = expected()["added_tokens"][i];
    EXPECT_EQ(added[i].content, want["content"].get<std::string>());
    EXPECT_EQ(added[i].id, want["id"].get<int>());
    EXPECT_EQ(qwen2().added_token_id(added[i].content), want["id"].get<int>());
    EXPECT_EQ(qwen2().is_special(added[i].id), want["special"].get<bool>()) << added[i].content;
    EXPECT_EQ(qwen2().id_to_piece(added[i].id), added[i].content);
  }
  for (const auto& [piece, id] : expected()["pieces"].items()) {
    EXPECT_EQ(qwen2().piece_to_id(piece), id.get<int>()) << piece;
    EXPECT_EQ(qwen2().id_to_piece(id.get<int>()), piece);
    EXPECT_FALSE(qwen2().is_special(id.get<int>()));
  }
  EXPECT_EQ(qwen2().piece_to_id("no-such-piece"), -1);
  EXPECT_FALSE(qwen2().added_token_id("<|IM_START|>"));
  EXPECT_THROW(qwen2().id_to_piece(qwen2().vocab_size()), Error);
  EXPECT_THROW(qwen2().id_to_piece(-1), Error);
}

TEST(BpeTokenizer, EncodeMatchesTransformers) {
  for (const Json& item : expected()["encode"]) {
    const std::string text = item["text"];
    const std::vector<int> ids = qwen2().encode(text);
    EXPECT_EQ(ids, item["ids"].get<std::vector<int>>()) << text;
    std::vector<std::string> pieces;
    for (int id : ids) pieces.push_back(qwen2().id_to_piece(id));
    EXPECT_EQ(pieces, item["pieces"].get<std::vector<std::string>>()) << text;
  }
}

TEST(BpeTokenizer, DecodeMatchesTransformers) {
  for (const Json& item : expected()["encode"]) {
    const std::vector<int> ids = item["ids"];
    EXPECT_EQ(qwen2().decode(ids, /*skip_special=*/false), item["decoded"].get<std::string>());
    EXPECT_EQ(qwen2().decode(ids, /*skip_special=*/true),
              item["decoded_skip_special"].get<std::string>());
  }
  // Byte tokens that are not valid UTF-8 on their own: U+FFFD as the tokenizers library puts it.
  for (const Json& item : expected()["decode"]) {
    const std::vector<int> ids = item["ids"];
    EXPECT_EQ(qwen2().decode(ids, false), item["decoded"].get<std::string>()) << item["ids"];
    EXPECT_EQ(qwen2().decode(ids, true), item["decoded_skip_special"].get<std::string>())
        << item["ids"];
  }
  // Ids past the last token (embedding rows without a token) decode to nothing, as in Python.
  const std::vector<int> beyond = {qwen2().piece_to_id("a"), qwen2().vocab_size() + 5};
  EXPECT_EQ(qwen2().decode(beyond), "a");
  EXPECT_THROW(qwen2().decode(std::vector<int>{-1}), Error);
}

TEST(BpeTokenizer, VocabJsonAndMergesTxtEncodeTheSame) {
  // The slow Qwen2Tokenizer's files (the fixture script checks it gives the same ids).
  const BpeTokenizer slow(fixture_dir() / "vocab_merges");
  EXPECT_EQ(slow.path(), fixture_dir() / "vocab_merges" / "vocab.json");
  EXPECT_EQ(slow.vocab_size(), qwen2().vocab_size());
  EXPECT_EQ(slow.eos_id(), qwen2().eos_id());
  EXPECT_EQ(slow.added_tokens().size(), qwen2().added_tokens().size());
  expect_encodes_like_python(slow);
}

TEST(BpeTokenizer, MergesAsStringsOrPairsEncodeTheSame) {
  // Qwen2's own tokenizer.json writes merges as "a b"; newer `tokenizers` as ["a", "b"].
  const fs::path file = edited_tokenizer("string_merges", [](Json& json) {
    Json strings = Json::array();
    for (const Json& pair : json["model"]["merges"]) {
      ASSERT_TRUE(pair.is_array());
      strings.push_back(pair[0].get<std::string>() + " " + pair[1].get<std::string>());
    }
    json["model"]["merges"] = strings;
  });
  const BpeTokenizer strings(file);  // a file, without tokenizer_config.json beside it
  expect_encodes_like_python(strings);
  // Without tokenizer_config.json: Qwen2Tokenizer's defaults, <|endoftext|> for EOS and PAD.
  EXPECT_EQ(strings.eos_id(), expected()["endoftext_id"].get<int>());
  EXPECT_EQ(strings.pad_id(), expected()["endoftext_id"].get<int>());
}

TEST(BpeTokenizer, AddedTokenFlagsMatchTokenizers) {
  // Tokens with lstrip / rstrip / single_word / normalized (Qwen2's own leave them false).
  const Json& flags = expected()["flags"];
  const fs::path file = edited_tokenizer("flags", [&](Json& json) {
    for (const Json& token : flags["added_tokens"]) json["added_tokens"].push_back(token);
  });
  const BpeTokenizer tokenizer(file);
  for (const Json& item : flags["encode"]) {
    const std::string text = item["text"];
    EXPECT_EQ(tokenizer.encode(text), item["ids"].get<std::vector<int>>()) << text;
  }
}

TEST(ChatMlTemplate, PromptMatchesQwen25VlProcessor) {
  for (const Json& item : expected()["chat"]) {
    const std::string question = item["question"], answer = item["answer"];
    const int image_tokens = item["image_tokens"];
    const bool has_image = image_tokens > 0;
    const ChatMlTemplate chat(qwen2(), item["system"].is_null() ? "" : item["system"]);
    EXPECT_EQ(chat.prompt_text(question, has_image), item["prompt_text"].get<std::string>());
    const std::vector<int> prompt =
        chat.encode_prompt(question, has_image, std::max(1, image_tokens));
    EXPECT_EQ(prompt, item["prompt_ids"].get<std::vector<int>>()) << question;

    // apply_chat_template's whole conversation = prompt + answer + <|im_end|> + "\n".
    const ChatTokens tokens = chat.encode(question, answer, has_image, std::max(1, image_tokens));
    std::vector<int> full = tokens.ids;
    for (int id : qwen2().encode("\n")) full.push_back(id);
    EXPECT_EQ(full, item["full_ids"].get<std::vector<int>>()) << question;
    EXPECT_EQ(tokens.prompt_length, static_cast<int>(prompt.size()));
    EXPECT_EQ(tokens.ids.back(), chat.im_end_id());
    ASSERT_EQ(tokens.answer_mask.size(), tokens.ids.size());
    for (std::size_t i = 0; i < tokens.ids.size(); ++i)
      EXPECT_EQ(tokens.answer_mask[i], i >= prompt.size() ? 1 : 0);
  }
}

TEST(ChatMlTemplate, DefaultsAndTruncation) {
  const ChatMlTemplate chat(qwen2());
  EXPECT_EQ(chat.system_prompt(), kQwen2SystemPrompt);
  EXPECT_EQ(chat.image_token_id(), *qwen2().added_token_id("<|image_pad|>"));
  bool truncated = true;
  const std::vector<int> whole = chat.encode_answer("[1, 2, 3, 4]", 0, &truncated);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(whole.back(), *qwen2().added_token_id("<|im_end|>"));
  const std::vector<int> cut = chat.encode_answer("[1, 2, 3, 4]", 3, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(cut, std::vector<int>(whole.begin(), whole.begin() + 3));
  EXPECT_THROW(chat.encode_prompt("x", true, 0), Error);
}

TEST(BpeTokenizer, LoadErrorsNameTheFile) {
  std::string message = test::error_of([] { BpeTokenizer("/no/such/qwen2"); });
  EXPECT_NE(message.find("/no/such/qwen2"), std::string::npos) << message;

  const fs::path empty = test::fresh_scratch_dir("bpe_tokenizer", "empty");
  message = test::error_of([&] { BpeTokenizer{empty}; });
  EXPECT_NE(message.find("no tokenizer.json"), std::string::npos) << message;

  const fs::path garbage = test::fresh_scratch_dir("bpe_tokenizer", "garbage") / "tokenizer.json";
  std::ofstream(garbage) << "{ not json";
  message = test::error_of([&] { BpeTokenizer{garbage}; });
  EXPECT_NE(message.find(garbage.string()), std::string::npos) << message;
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;

  const auto load_error = [](const std::string& name, const std::function<void(Json&)>& edit) {
    const fs::path file = edited_tokenizer(name, edit);
    try {
      BpeTokenizer tokenizer(file);
    } catch (const Error& e) {
      EXPECT_TRUE(e.is_input_error()) << e.what();
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
      return std::string(e.what());
    }
    ADD_FAILURE() << name << ": expected a perpo::Error";
    return std::string();
  };
  // A tokenizer of another model: a Unigram model, a SentencePiece-style pipeline.
  EXPECT_NE(load_error("unigram", [](Json& j) { j["model"]["type"] = "Unigram"; }).find("Unigram"),
            std::string::npos);
  EXPECT_NE(load_error("lowercase",
                       [](Json& j) {
                         j["normalizer"] = Json{{"type", "Lowercase"}};
                       })
                .find("normalizer Lowercase"),
            std::string::npos);
  EXPECT_NE(load_error("metaspace",
                       [](Json& j) {
                         j["pre_tokenizer"] = Json{{"type", "Metaspace"}};
                         j["decoder"] = Json{{"type", "Metaspace"}};
                       })
                .find("Metaspace"),
            std::string::npos);
  EXPECT_NE(load_error("template",
                       [](Json& j) {
                         j["post_processor"] = Json{{"type", "TemplateProcessing"}};
                       })
                .find("TemplateProcessing"),
            std::string::npos);
  EXPECT_NE(load_error("bad_merge",
                       [](Json& j) {
                         j["model"]["merges"].push_back({"zzz_not", "in_vocab"});
                       })
                .find("outside the vocabulary"),
            std::string::npos);
  EXPECT_NE(load_error("no_model", [](Json& j) { j.erase("model"); }).find("unexpected content"),
            std::string::npos);
}

TEST(BpeTokenizer, BadInputIsRefused) {
  EXPECT_THROW(qwen2().encode("bad \xE4\xB8 utf8"), Error);
  // A byte-level BPE without Qwen2.5-VL's vision tokens cannot build its ChatML prompt.
  const fs::path file = edited_tokenizer("no_vision", [](Json& json) {
    Json kept = Json::array();
    for (const Json& token : json["added_tokens"])
      if (token["content"] != "<|image_pad|>") kept.push_back(token);
    json["added_tokens"] = kept;
  });
  const BpeTokenizer no_vision(file);
  const std::string message = test::error_of([&] { ChatMlTemplate chat(no_vision); });
  EXPECT_NE(message.find("<|image_pad|>"), std::string::npos) << message;
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
}

}  // namespace
}  // namespace perpo
