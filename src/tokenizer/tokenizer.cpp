// Tokenizer: SentencePiece plus added tokens, split the way transformers' legacy LlamaTokenizer
// splits them (see tokenizer.h).
#include "perpo/tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>

#include "perpo/core/error.h"
#include "proto_wire.h"

namespace perpo {

struct Tokenizer::Impl {
  std::filesystem::path path;
  sentencepiece::SentencePieceProcessor processor;
  // Non-legacy mode: the same model with its dummy prefix switched off.
  std::unique_ptr<sentencepiece::SentencePieceProcessor> no_prefix;
  std::vector<AddedToken> added;  // sorted by id
  // Texts split out of the input before SentencePiece sees it: added tokens and the control
  // pieces <s>, </s>, <unk> (transformers treats those as special tokens too).
  std::vector<std::pair<std::string, int>> split_tokens;

  int sp_size() const { return processor.GetPieceSize(); }

  // The earliest special text in `text` at or after `from`; the longest one wins a tie.
  // Returns npos when there is none.
  std::size_t find_split(std::string_view text, std::size_t from, std::size_t* length,
                         int* id) const {
    std::size_t best = std::string_view::npos;
    for (const auto& [token, token_id] : split_tokens) {
      std::size_t at = text.find(token, from);
      if (at == std::string_view::npos) continue;
      if (at < best || (at == best && token.size() > *length)) {
        best = at;
        *length = token.size();
        *id = token_id;
      }
    }
    return best;
  }

  void encode_piece(std::string_view text, std::vector<int>& out) const {
    if (text.empty()) return;
    std::vector<int> ids;
    const auto status = (no_prefix ? *no_prefix : processor).Encode(text, &ids);
    PERPO_CHECK(status.ok(), "SentencePiece failed to encode text with ", path.string(), ": ",
                status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }
};

namespace {

// --- A minimal protobuf walk: switch NormalizerSpec.add_dummy_prefix off in a serialized
// ModelProto (ModelProto field 3 = normalizer_spec; NormalizerSpec field 3 = add_dummy_prefix).
// Debian installs no sentencepiece_model.pb.h, so the message is edited as bytes.

std::string without_dummy_prefix(std::string_view model) {
  std::string out;
  std::string normalizer;
  for (const ProtoField& field : proto_fields(model)) {
    if (field.number != 3) {
      out += field.raw;
      continue;
    }
    for (const ProtoField& inner : proto_fields(field.payload)) {
      if (inner.number != 3) normalizer += inner.raw;
    }
  }
  normalizer += std::string("\x18\x00", 2);  // field 3, varint: add_dummy_prefix = false
  out += '\x1a';                             // field 3, length-delimited: normalizer_spec
  write_varint(normalizer.size(), out);
  out += normalizer;
  return out;
}

std::vector<AddedToken> default_added_tokens(int sp_size) {
  return {{"<image>", sp_size}, {"<pad>", sp_size + 1}};
}

}  // namespace

Tokenizer::Tokenizer(const std::filesystem::path& model_path, std::vector<AddedToken> added_tokens,
                     bool legacy)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = model_path;
  if (!std::filesystem::is_regular_file(model_path)) {
    throw input_error("tokenizer model ", model_path.string(), " does not exist")
        .hint("set tokenizer.path to a SentencePiece tokenizer.model");
  }
  const auto status = impl_->processor.Load(model_path.string());
  if (!status.ok()) {
    throw input_error("cannot load tokenizer model ", model_path.string(), ": ", status.ToString())
        .hint("tokenizer.path must be a SentencePiece model (tokenizer.model), not tokenizer.json");
  }
  if (!legacy) {
    impl_->no_prefix = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto no_prefix_status = impl_->no_prefix->LoadFromSerializedProto(
        without_dummy_prefix(impl_->processor.serialized_model_proto()));
    PERPO_CHECK(no_prefix_status.ok(), "cannot switch off the dummy prefix of ",
                model_path.string(), ": ", no_prefix_status.ToString());
  }
  const int sp_size = impl_->sp_size();
  if (added_tokens.empty()) added_tokens = default_added_tokens(sp_size);
  std::sort(added_tokens.begin(), added_tokens.end(),
            [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  for (std::size_t i = 0; i < added_tokens.size(); ++i) {
    const AddedToken& token = added_tokens[i];
    PERPO_CHECK_INPUT(!token.text.empty(), "added token ", token.id, " of ", model_path.string(),
                      " has no text");
    PERPO_CHECK_INPUT(token.id >= sp_size, "added token '", token.text, "' has id ", token.id,
                      ", inside the SentencePiece vocabulary of ", model_path.string(), " (",
                      sp_size, " pieces)");
    PERPO_CHECK_INPUT(i == 0 || added_tokens[i - 1].id != token.id, "added tokens '",
                      added_tokens[i - 1].text, "' and '", token.text, "' share id ", token.id);
    impl_->split_tokens.emplace_back(token.text, token.id);
  }
  impl_->added = std::move(added_tokens);
  for (int id : {impl_->processor.bos_id(), impl_->processor.eos_id(), impl_->processor.unk_id()}) {
    if (id >= 0) impl_->split_tokens.emplace_back(impl_->processor.IdToPiece(id), id);
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_config(const TokenizerConfig& config,
                                 const std::filesystem::path& model_dir) {
  std::filesystem::path path = config.path;
  if (path.empty()) {
    PERPO_CHECK_INPUT(!model_dir.empty(),
                      "tokenizer.path is empty and there is no model folder to take it from");
    path = model_dir / "tokenizer.model";
  }
  std::vector<AddedToken> added;
  const std::filesystem::path config_json =
      (model_dir.empty() ? path.parent_path() : model_dir) / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config_json)) {
    sentencepiece::SentencePieceProcessor probe;
    if (probe.Load(path.string()).ok())
      added = read_added_tokens(config_json, probe.GetPieceSize());
  }
  Tokenizer tokenizer(path, added, config.legacy);
  if (!tokenizer.added_token_id(config.image_token)) {
    throw input_error("tokenizer ", path.string(), " has no added token '", config.image_token, "'")
        .hint("set tokenizer.image_token to the image placeholder of this tokenizer");
  }
  return tokenizer;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  std::vector<int> ids;
  if (add_bos) ids.push_back(bos_id());
  // Non-legacy (transformers' legacy=False): "▁" is prepended to the whole text once and no
  // piece gets a dummy prefix of its own.
  std::string prefixed;
  if (impl_->no_prefix && !text.empty()) {
    prefixed = "\xe2\x96\x81";  // ▁
    for (std::size_t at = 0; at < text.size();) {
      if (text.compare(at, 3, "\xe2\x96\x81") == 0) {  // a literal ▁ in the text is a space
        prefixed += ' ';
        at += 3;
      } else {
        prefixed += text[at++];
      }
    }
    text = prefixed;
  }
  const std::size_t first_token = ids.size();
  std::size_t from = 0;
  while (from < text.size()) {
    std::size_t length = 0;
    int id = -1;
    const std::size_t at = impl_->find_split(text, from, &length, &id);
    if (at == std::string_view::npos) {
      impl_->encode_piece(text.substr(from), ids);
      break;
    }
    impl_->encode_piece(text.substr(from, at - from), ids);
    ids.push_back(id);
    from = at + length;
  }
  // transformers drops the prepended "▁" when the text starts with a special token.
  if (impl_->no_prefix && ids.size() >= first_token + 2) {
    std::size_t length = 0;
    int id = -1;
    if (impl_->find_split(text, 3, &length, &id) == 3 &&
        impl_->processor.IdToPiece(ids[first_token]) == "\xe2\x96\x81") {
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(first_token));
    }
  }
  if (add_eos) ids.push_back(eos_id());
  return ids;
}

std::string Tokenizer::decode(std::span<const int> ids, bool skip_special) const {
  std::string text;
  std::vector<int> run;  // consecutive ordinary SentencePiece ids, decoded together
  auto flush = [&] {
    if (run.empty()) return;
    std::string piece_text;
    const auto status = impl_->processor.Decode(run, &piece_text);
    PERPO_CHECK(status.ok(), "SentencePiece failed to decode ids: ", status.ToString());
    text += piece_text;
    run.clear();
  };
  for (int id : ids) {
    if (id >= 0 && id < impl_->sp_size() && !is_special(id)) {
      run.push_back(id);
      continue;
    }
    flush();
    const std::string piece = id_to_piece(id);  // throws for ids outside the vocabulary
    if (!skip_special) text += piece;
  }
  flush();
  return text;
}

int Tokenizer::bos_id() const { return impl_->processor.bos_id(); }
int Tokenizer::eos_id() const { return impl_->processor.eos_id(); }
int Tokenizer::unk_id() const { return impl_->processor.unk_id(); }

int Tokenizer::pad_id() const {
  if (impl_->processor.pad_id() >= 0) return impl_->processor.pad_id();
  return added_token_id("<pad>").value_or(-1);
}

int Tokenizer::vocab_size() const {
  return impl_->added.empty() ? impl_->sp_size() : impl_->added.back().id + 1;
}

int Tokenizer::sentencepiece_vocab_size() const { return impl_->sp_size(); }

int Tokenizer::piece_to_id(std::string_view piece) const {
  if (auto id = added_token_id(piece)) return *id;
  return impl_->processor.PieceToId(piece);
}

std::string Tokenizer::id_to_piece(int id) const {
  if (id >= 0 && id < impl_->sp_size()) return impl_->processor.IdToPiece(id);
  for (const AddedToken& token : impl_->added) {
    if (token.id == id) return token.text;
  }
  throw runtime_error("token id ", id, " is outside the vocabulary of ", impl_->path.string(), " (",
                      vocab_size(), " ids)");
}

std::optional<int> Tokenizer::added_token_id(std::string_view text) const {
  for (const AddedToken& token : impl_->added) {
    if (token.text == text) return token.id;
  }
  return std::nullopt;
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }

bool Tokenizer::is_special(int id) const {
  if (id >= impl_->sp_size()) return true;
  return impl_->processor.IsControl(id) || impl_->processor.IsUnknown(id);
}

const std::filesystem::path& Tokenizer::model_path() const { return impl_->path; }
bool Tokenizer::legacy() const { return impl_->no_prefix == nullptr; }

std::vector<AddedToken> read_added_tokens(const std::filesystem::path& tokenizer_config_json,
                                          int first_id) {
  std::ifstream in(tokenizer_config_json);
  PERPO_CHECK_INPUT(in.good(), "cannot open ", tokenizer_config_json.string());
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw input_error(tokenizer_config_json.string(), " is not valid JSON: ", e.what());
  }
  std::vector<AddedToken> added;
  if (!config.is_object() || !config.contains("added_tokens_decoder")) return added;
  for (const auto& [key, value] : config["added_tokens_decoder"].items()) {
    int id = -1;
    try {
      id = std::stoi(key);
    } catch (const std::exception&) {
      throw input_error(tokenizer_config_json.string(), ": added_tokens_decoder key '", key,
                        "' is not a token id");
    }
    if (id < first_id) continue;  // <unk>, <s>, </s> live inside the SentencePiece vocabulary
    PERPO_CHECK_INPUT(
        value.is_object() && value.contains("content") && value["content"].is_string(),
        tokenizer_config_json.string(), ": added_tokens_decoder entry ", key,
        " has no string \"content\"");
    added.push_back({value["content"].get<std::string>(), id});
  }
  return added;
}

}  // namespace perpo
