// TextTokenizer: what prompt building, decoding and the commands ask of a tokenizer, whichever
// family's it is: SentencePiece with LLaVA's added tokens (tokenizer.h) or Qwen2's byte-level BPE
// (bpe_tokenizer.h). load_tokenizer picks one for a configuration and a checkpoint folder.
//
//   std::shared_ptr<perpo::TextTokenizer> tokenizer =
//       perpo::load_tokenizer(config.tokenizer, "Qwen2.5-VL-3B-Instruct", "qwen2_5_vl");
//   std::vector<int> ids = tokenizer->encode("<|im_start|>user\nHi");
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "perpo/config/config.h"

namespace perpo {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;

  /// Token ids of `text`; BOS / EOS added when asked and the tokenizer has them (Qwen2 has no
  /// BOS: add_bos adds nothing there).
  virtual std::vector<int> encode(std::string_view text, bool add_bos = false,
                                  bool add_eos = false) const = 0;
  /// Text of `ids`; with `skip_special`, control and special added tokens are left out.
  virtual std::string decode(std::span<const int> ids, bool skip_special = true) const = 0;

  /// -1 where the tokenizer has none.
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  /// The smallest embedding table the ids fit (largest id + 1).
  virtual int vocab_size() const = 0;
  /// Id of an added token, if `text` is one.
  virtual std::optional<int> added_token_id(std::string_view text) const = 0;
  /// Id of a vocabulary piece or added token; unk_id() when there is none.
  virtual int piece_to_id(std::string_view piece) const = 0;
  /// Piece or added token text of `id`. Throws perpo::Error for an id outside the vocabulary.
  virtual std::string id_to_piece(int id) const = 0;
  /// True for control and special added tokens.
  virtual bool is_special(int id) const = 0;
  /// Ids that end a generated answer (eos_id(), and Qwen2's <|im_end|> / <|endoftext|>).
  virtual std::vector<int> stop_ids() const = 0;
  /// The file the vocabulary came from (tokenizer.model, tokenizer.json, vocab.json).
  virtual const std::filesystem::path& model_path() const = 0;
};

/// The tokenizer of a checkpoint family (config.json's model_type; "" or "llava" = LLaVA's
/// SentencePiece): `config.path`, else the file in `model_dir` (tokenizer.model for LLaVA,
/// tokenizer.json or vocab.json + merges.txt for Qwen2.5-VL). Throws perpo::Error (input) naming
/// the file when it is missing or of another kind.
std::shared_ptr<TextTokenizer> load_tokenizer(const TokenizerConfig& config,
                                              const std::filesystem::path& model_dir = {},
                                              const std::string& model_type = {});

}  // namespace perpo
