// Training a small SentencePiece vocabulary on in-memory texts (libsentencepiece_train), for the
// built-in tiny model of the demo and for tests.
//
//   std::vector<std::string> texts = {...prompts..., ...answers...};
//   perpo::TokenizerTrainOptions options;          // vocab_size 160, BPE, box pieces
//   std::filesystem::path model = perpo::train_tokenizer(texts, "run/tokenizer", options);
//   perpo::Tokenizer tokenizer(model);            // run/tokenizer.model; <image>, <pad> added
//
// The pieces that boxes are made of are fixed pieces (SentencePiece's user_defined_symbols), so a
// box "[0.61, 0.10, 0.77, 0.54]" is always "▁[" "0." "6" "1" ",▁" "0." "1" "0" ... "]": 17 tokens
// of few kinds instead of 24 characters, and the model decides a coordinate digit by digit.
// Digits are split (split_digits), so numbers never merge into multi-digit pieces.
// Special ids follow LLaMA: <unk> 0, <s> 1, </s> 2, no pad piece (the Tokenizer adds <pad>).
//
// Training is deterministic (one thread; same texts and options -> the same model bytes). Its
// log goes nowhere unless `verbose`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace perpo {

struct TokenizerTrainOptions {
  int vocab_size = 160;            // pieces incl. <unk>, <s>, </s>; an upper bound (see below)
  std::string model_type = "bpe";  // bpe | unigram | char | word
  // Fixed pieces; a space in them stands for SentencePiece's "▁" (", " is the piece ",▁").
  std::vector<std::string> user_symbols = {"0", "1", "2",  "3",  "4",  "5",  "6", "7",
                                           "8", "9", "0.", "1.", ", ", " [", "[", "]"};
  bool split_digits = true;       // never merge digits into one piece
  bool byte_fallback = false;     // unknown characters as <0xNN> byte pieces (+256 pieces)
  bool hard_vocab_limit = false;  // false: a smaller vocabulary when the texts hold fewer pieces
  double character_coverage = 1.0;
  bool verbose = false;  // SentencePiece's own log on stderr
};

/// Trains on `texts` and writes `<out_prefix>.model` (atomically; its folder is created). Returns
/// that path. Throws perpo::Error (input) for empty texts or bad options, with SentencePiece's
/// message when training fails.
std::filesystem::path train_tokenizer(const std::vector<std::string>& texts,
                                      const std::filesystem::path& out_prefix,
                                      const TokenizerTrainOptions& options = {});

}  // namespace perpo
