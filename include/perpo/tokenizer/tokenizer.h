// Tokenizer: text <-> token ids with a SentencePiece model (LLaMA's tokenizer.model) plus "added
// tokens" that live after the SentencePiece vocabulary, as Hugging Face's LLaVA tokenizers have
// them (llava-hf/llava-1.5-7b-hf: `<image>` = 32000, `<pad>` = 32001).
//
// Encoding follows transformers' LlamaTokenizer. Added tokens (and the text of the control pieces
// `<s>`, `</s>`, `<unk>`) are split out of the text first; the pieces of text between them are
// encoded by SentencePiece. Two conventions exist for those pieces, picked by `legacy`:
//   legacy (default): every piece is encoded on its own with the model's "▁" dummy prefix. This
//     is how LLaVA-1.5 was trained (LLaVA's tokenizer_image_token encodes the chunks around
//     <image> separately): "<image>\nWhat" -> <image> ▁ <0x0A> ...
//   non-legacy: only the start of the text gets the "▁"; pieces after a special token get none.
//     This is transformers' LlamaTokenizer(legacy=False) and LlamaTokenizerFast, hence what
//     llava-hf's LlavaProcessor produces: "<image>\nWhat" -> <image> <0x0A> ...
//   perpo::Tokenizer tokenizer("tokenizer.model");                 // <image>, <pad> added
//   std::vector<int> ids = tokenizer.encode("USER: <image>\nWhat is it?", /*add_bos=*/true);
//   std::string text = tokenizer.decode(ids);                      // "USER: \nWhat is it?"
//
// SentencePiece is reached only from tokenizer.cpp (pimpl), so no header of it leaks into perpo.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/tokenizer/text_tokenizer.h"

namespace perpo {

/// A token outside the SentencePiece vocabulary, matched literally in text.
struct AddedToken {
  std::string text;  // e.g. "<image>"
  int id = -1;       // e.g. 32000; must be >= the SentencePiece vocabulary size
};

class Tokenizer : public TextTokenizer {
 public:
  /// Loads a SentencePiece model file. `added_tokens` get their given ids; an empty list adds
  /// `<image>` and `<pad>` right after the SentencePiece vocabulary (the llava-hf layout).
  /// `legacy` picks the splitting convention (file comment).
  /// Throws perpo::Error (input) naming the file when it is missing or not a SentencePiece model.
  explicit Tokenizer(const std::filesystem::path& model_path,
                     std::vector<AddedToken> added_tokens = {}, bool legacy = true);
  ~Tokenizer() override;
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  /// The tokenizer a config asks for: `config.path`, or `<model_dir>/tokenizer.model` when it is
  /// empty. Added tokens come from `<model_dir>/tokenizer_config.json` ("added_tokens_decoder")
  /// when that file exists, else the llava-hf default; `config.image_token` must be among them.
  static Tokenizer from_config(const TokenizerConfig& config,
                               const std::filesystem::path& model_dir = {});

  /// Token ids of `text` (see the file comment for the splitting rules).
  std::vector<int> encode(std::string_view text, bool add_bos = false,
                          bool add_eos = false) const override;
  /// Text of `ids`. With `skip_special`, BOS/EOS/PAD/UNK and added tokens are left out.
  std::string decode(std::span<const int> ids, bool skip_special = true) const override;

  int bos_id() const override;
  int eos_id() const override;
  int unk_id() const override;
  /// SentencePiece's pad id when the model has one, else the added `<pad>` token, else -1.
  int pad_id() const override;
  /// SentencePiece pieces plus added tokens: the smallest embedding table these ids fit.
  int vocab_size() const override;
  int sentencepiece_vocab_size() const;

  /// Id of a piece or added token; unk_id() when there is none.
  int piece_to_id(std::string_view piece) const override;
  /// Piece (or added token text) of `id`. Throws perpo::Error for an id outside the vocabulary.
  std::string id_to_piece(int id) const override;
  /// Id of an added token, if `text` is one.
  std::optional<int> added_token_id(std::string_view text) const override;
  const std::vector<AddedToken>& added_tokens() const;
  /// True for control pieces (<s>, </s>, <unk>, pad) and added tokens.
  bool is_special(int id) const override;

  /// {eos_id()}.
  std::vector<int> stop_ids() const override { return {eos_id()}; }
  const std::filesystem::path& model_path() const override;
  bool legacy() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Reads the added tokens (ids >= `first_id`) of a Hugging Face tokenizer_config.json. Throws
/// perpo::Error (input) naming the file when it is not valid JSON.
std::vector<AddedToken> read_added_tokens(const std::filesystem::path& tokenizer_config_json,
                                          int first_id);

}  // namespace perpo
