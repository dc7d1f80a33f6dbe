// BpeTokenizer: the byte-level BPE tokenizer of Qwen2 / Qwen2.5-VL, read from a Hugging Face
// tokenizer.json (or vocab.json + merges.txt), encoding and decoding exactly as transformers'
// Qwen2TokenizerFast (the `tokenizers` library) does. No Python at run time.
//
// Encoding, in the library's order:
//   1. added tokens (tokenizer.json's `added_tokens`, ids read from the file) are split out of the
//      raw text: leftmost-longest match, case sensitive, with each token's lstrip / rstrip /
//      single_word flags; a typed "<|im_start|>" becomes the control token. Tokens marked
//      `normalized` are matched after step 2 instead.
//   2. the text between them is normalised (NFC, utf8proc);
//   3. pre-tokenised: the Split regex of tokenizer.json (Qwen2's, with \p{L}, \p{N}, `\s+(?!\S)`;
//      PCRE2 with UTF + UCP), pieces and gaps both kept ("Isolated"), so digits come one by one;
//   4. each piece's bytes become GPT-2's byte-level characters (bytes_to_unicode) and are merged
//      by BPE, lowest merge rank first, leftmost first among equal ranks.
// No BOS or EOS is ever added (Qwen2 has none; its post-processor adds nothing).
//
// Decoding maps byte-level characters back to bytes; the bytes between two kept added tokens are
// turned into text as Rust's String::from_utf8_lossy does (each maximal invalid subsequence
// becomes one U+FFFD), and an added token's text is copied as it is. With `skip_special`, added
// tokens marked special are left out (and do not split the byte run). Ids that name no token
// (an embedding row past the last token, as Qwen2's 151936 rows have) decode to nothing, as in
// the library.
//
//   perpo::BpeTokenizer tokenizer("Qwen2.5-VL-3B-Instruct");   // folder or tokenizer.json
//   std::vector<int> ids = tokenizer.encode("<|im_start|>user\nHi<|im_end|>");
//   std::string text = tokenizer.decode(ids, /*skip_special=*/false);
//
// Qwen2.5-VL's ChatML prompt over this tokenizer: chatml_template.h. PCRE2 and utf8proc are
// reached only from src/tokenizer/bpe_text.cpp.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "perpo/tokenizer/text_tokenizer.h"

namespace perpo {

/// A token of tokenizer.json's `added_tokens`, with the flags that decide how it is matched.
struct BpeAddedToken {
  std::string content;       // e.g. "<|im_start|>"
  int id = -1;               // e.g. 151644
  bool special = false;      // left out by decode(skip_special = true)
  bool lstrip = false;       // also takes the whitespace before it
  bool rstrip = false;       // also takes the whitespace after it
  bool single_word = false;  // only where no word character touches it
  bool normalized = false;   // matched in the NFC-normalised text instead of the raw text
};

class BpeTokenizer : public TextTokenizer {
 public:
  /// Loads `path`: a folder holding tokenizer.json (else vocab.json + merges.txt, with Qwen2's
  /// normaliser and regex and the added tokens of tokenizer_config.json's
  /// `added_tokens_decoder`), or a tokenizer.json file. tokenizer_config.json beside it, when
  /// present, gives eos_token, pad_token and bos_token. Throws perpo::Error (input)
  /// naming the file when it is missing, not JSON, or not a byte-level BPE tokenizer.
  explicit BpeTokenizer(const std::filesystem::path& path);
  ~BpeTokenizer() override;
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;

  /// Token ids of `text` (file comment). Throws perpo::Error (input) for invalid UTF-8. BOS /
  /// EOS are added when asked and the file names them (Qwen2 names no BOS).
  std::vector<int> encode(std::string_view text, bool add_bos = false,
                          bool add_eos = false) const override;
  /// Text of `ids` (file comment). With `skip_special`, special added tokens are left out.
  std::string decode(std::span<const int> ids, bool skip_special = true) const override;

  /// Largest id + 1 over the BPE vocabulary and the added tokens (len(tokenizer) in Python when
  /// the ids have no gaps).
  int vocab_size() const override;
  /// Entries of the BPE vocabulary alone.
  int model_vocab_size() const;

  /// Id of a byte-level piece ("Ġthe") or added token's text; unk_id() (-1 for Qwen2) if none.
  int piece_to_id(std::string_view piece) const override;
  /// Piece or added token text of `id`. Throws perpo::Error for an id that names no token.
  std::string id_to_piece(int id) const override;
  /// Id of an added token, if `text` is one.
  std::optional<int> added_token_id(std::string_view text) const override;
  /// The added tokens, sorted by id.
  const std::vector<BpeAddedToken>& added_tokens() const;
  /// True for added tokens marked special (<|im_start|>, <|image_pad|>, ...; not <tool_call>).
  bool is_special(int id) const override;

  /// tokenizer_config.json's bos_token; -1 when null (Qwen2). encode() never adds it.
  int bos_id() const override;
  /// tokenizer_config.json's eos_token (<|im_end|> for Qwen2.5-VL-Instruct), else
  /// <|endoftext|>, else -1.
  int eos_id() const override;
  /// tokenizer_config.json's pad_token, else <|endoftext|>, else -1.
  int pad_id() const override;
  /// The BPE model's unk_token; -1 when it has none (Qwen2).
  int unk_id() const override;
  /// Ids that end a generated answer: eos_id() and, when present, <|im_end|> and <|endoftext|>
  /// (sorted, no duplicates).
  std::vector<int> stop_ids() const override;

  /// The file the vocabulary came from (tokenizer.json or vocab.json).
  const std::filesystem::path& path() const;
  const std::filesystem::path& model_path() const override { return path(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace perpo
