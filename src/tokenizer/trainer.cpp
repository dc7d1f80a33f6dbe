// Training a SentencePiece model in memory (see trainer.h).
//
// SentencePiece takes its options as "key=value" strings and splits list options at commas, so a
// fixed piece that holds a comma (", ") cannot be passed as it is. Such pieces are trained under a
// stand-in character from Unicode's private use area (the texts are rewritten the same way), and
// the finished model's piece is then renamed in the serialized ModelProto.
#include "perpo/tokenizer/trainer.h"

#include <sentencepiece_trainer.h>

#include <cstdint>
#include <string_view>
#include <unordered_map>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "proto_wire.h"

namespace perpo {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSpaceMark = "\xe2\x96\x81";  // U+2581 "▁", SentencePiece's space

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

// U+E000 + k in UTF-8: a stand-in that no training text holds.
std::string stand_in(int k) {
  const std::uint32_t cp = 0xE000 + static_cast<std::uint32_t>(k);
  std::string out;
  out += static_cast<char>(0xE0 | (cp >> 12));
  out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out += static_cast<char>(0x80 | (cp & 0x3F));
  return out;
}

class TextIterator : public sentencepiece::SentenceIterator {
 public:
  explicit TextIterator(const std::vector<std::string>& texts) : texts_(texts) {}
  bool done() const override { return at_ >= texts_.size(); }
  void Next() override { ++at_; }
  const std::string& value() const override { return texts_[at_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& texts_;
  std::size_t at_ = 0;
};

// --- Protobuf wire format, just enough to rename pieces of a ModelProto ---------------------
// ModelProto field 1 = repeated SentencePiece; SentencePiece field 1 = piece (string).

// Calls edit(field_number, payload) for every length-delimited field of `message`; the field is
// rewritten with the returned payload. Other fields are copied as they are.
template <typename Edit>
std::string rewrite_fields(std::string_view message, Edit edit) {
  std::string out;
  for (const ProtoField& field : proto_fields(message)) {
    if (field.wire_type != 2) {
      out.append(field.raw);
      continue;
    }
    const std::string payload = edit(field.number, field.payload);
    write_varint(field.number << 3 | 2, out);
    write_varint(payload.size(), out);
    out += payload;
  }
  return out;
}

std::string rename_pieces(std::string_view model,
                          const std::vector<std::pair<std::string, std::string>>& renames) {
  return rewrite_fields(model, [&](std::uint64_t field, std::string_view payload) {
    if (field != 1) return std::string(payload);  // not a piece
    return rewrite_fields(payload, [&](std::uint64_t inner, std::string_view text) {
      if (inner == 1) {
        for (const auto& [from, to] : renames) {
          if (text == from) return to;
        }
      }
      return std::string(text);
    });
  });
}

}  // namespace

fs::path train_tokenizer(const std::vector<std::string>& texts, const fs::path& out_prefix,
                         const TokenizerTrainOptions& options) {
  PERPO_CHECK_INPUT(!texts.empty(), "train_tokenizer needs at least one text");
  PERPO_CHECK_INPUT(!out_prefix.filename().empty(), "train_tokenizer needs an output prefix, got '",
                    out_prefix.string(), "'");
  PERPO_CHECK_INPUT(options.vocab_size >= 8, "tokenizer vocab_size must be >= 8, got ",
                    options.vocab_size);

  // Fixed pieces in SentencePiece's spelling; those with a comma get a stand-in for training.
  std::vector<std::string> symbols;
  std::vector<std::pair<std::string, std::string>> stand_ins;  // (stand-in, piece)
  std::vector<std::string> training_texts = texts;
  for (const std::string& symbol : options.user_symbols) {
    PERPO_CHECK_INPUT(!symbol.empty(), "tokenizer user symbols must not be empty");
    const std::string piece = replace_all(symbol, " ", kSpaceMark);
    if (piece.find(',') == std::string::npos) {
      symbols.push_back(piece);
      continue;
    }
    const std::string mark = stand_in(static_cast<int>(stand_ins.size()));
    stand_ins.emplace_back(mark, piece);
    symbols.push_back(mark);
    for (std::string& text : training_texts) text = replace_all(text, symbol, mark);
  }

  const std::unordered_map<std::string, std::string> kwargs = {
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"hard_vocab_limit", options.hard_vocab_limit ? "true" : "false"},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"user_defined_symbols", join(symbols, ",")},
      {"split_digits", options.split_digits ? "true" : "false"},
      {"byte_fallback", options.byte_fallback ? "true" : "false"},
      {"normalization_rule_name", "identity"},  // keep text as written (no NFKC tables)
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"num_threads", "1"},  // deterministic
      {"minloglevel", options.verbose ? "0" : "2"},
  };
  TextIterator iterator(training_texts);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, &iterator, &model);
  if (!status.ok()) {
    throw input_error("training the SentencePiece tokenizer failed: ", status.ToString())
        .hint("a larger tokenizer vocab_size or more varied texts usually fix this");
  }
  PERPO_CHECK(!model.empty(), "the SentencePiece trainer returned an empty model");
  if (!stand_ins.empty()) model = rename_pieces(model, stand_ins);

  fs::path path = out_prefix;
  path += ".model";
  write_file_atomic(path, model);
  return path;
}

}  // namespace perpo
