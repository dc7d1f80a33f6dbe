// BpeTokenizer: Qwen2's byte-level BPE as the `tokenizers` library runs it (see bpe_tokenizer.h);
// the UTF-8, byte-level and regex helpers are in bpe_text.{h,cpp}.
#include "perpo/tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "bpe_text.h"
#include "perpo/core/error.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using bpe_text::append_lossy;
using bpe_text::byte_level;
using bpe_text::ByteLevelTable;
using bpe_text::code_point_at;
using bpe_text::is_whitespace;
using bpe_text::is_word_character;
using bpe_text::last_code_point;
using bpe_text::nfc;
using bpe_text::Regex;

// Qwen2's pre-tokenizer regex (Qwen2Tokenizer's PRETOKENIZE_REGEX), for vocab.json + merges.txt.
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// GPT-2's, which a ByteLevel pre-tokenizer with use_regex = true applies itself.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kSupported =
    "perpo reads byte-level BPE tokenizers as Qwen2 ships them (NFC normalizer, Split + "
    "ByteLevel pre-tokenizer, ByteLevel decoder)";

// --- reading the files -----------------------------------------------------------------------

Json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw input_error("cannot read tokenizer file ", file.string());
  try {
    return Json::parse(in);
  } catch (const Json::parse_error& e) {
    throw input_error("tokenizer file ", file.string(), " is not valid JSON: ", e.what());
  }
}

std::string type_of(const Json& node) {
  return node.is_object() && node.contains("type") && node["type"].is_string()
             ? node["type"].get<std::string>()
             : std::string(node.is_null() ? "null" : "(no type)");
}

// A token name of tokenizer_config.json: "<|im_end|>" or {"content": "<|im_end|>", ...}.
std::optional<std::string> config_token(const Json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const Json& value = config[key];
  if (value.is_object() && value.contains("content")) return value["content"].get<std::string>();
  return value.get<std::string>();
}

BpeAddedToken added_token_from(const Json& item, int id) {
  BpeAddedToken token;
  token.id = id;
  token.content = item.at("content").get<std::string>();
  token.special = item.value("special", false);
  token.lstrip = item.value("lstrip", false);
  token.rstrip = item.value("rstrip", false);
  token.single_word = item.value("single_word", false);
  token.normalized = item.value("normalized", !token.special);
  return token;
}

}  // namespace

// --- the tokenizer -------------------------------------------------------------------------

struct BpeTokenizer::Impl {
  struct Merge {
    int rank = 0;
    int new_id = 0;
  };
  struct Segment {
    std::string_view text;
    int token_id = -1;  // an added token's id, or -1 for text to pre-tokenize
  };

  fs::path path;
  std::unordered_map<std::string, int> vocab;
  std::vector<std::string> id_to_token;  // "" where the vocabulary has no such id
  std::unordered_map<std::uint64_t, Merge> merges;
  bool normalize_nfc = false;
  std::vector<Regex> splits;  // the Split pre-tokenizers, then GPT-2's if ByteLevel use_regex
  bool ignore_merges = false;
  bool fuse_unk = false;
  int unk = -1;
  std::vector<BpeAddedToken> added;  // sorted by id
  std::unordered_map<std::string, int> added_by_text;
  std::unordered_map<int, std::size_t> added_by_id;  // id -> index in `added`
  std::vector<const BpeAddedToken*> raw_tokens, normalized_tokens;
  int bos = -1, eos = -1, pad = -1;

  static std::uint64_t key(int left, int right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }

  int token_id(const std::string& text) const {
    if (auto it = added_by_text.find(text); it != added_by_text.end()) return it->second;
    if (auto it = vocab.find(text); it != vocab.end()) return it->second;
    return -1;
  }

  void add_merge(const std::string& left, const std::string& right, int rank,
                 const fs::path& file) {
    const auto a = vocab.find(left), b = vocab.find(right), merged = vocab.find(left + right);
    if (a == vocab.end() || b == vocab.end() || merged == vocab.end()) {
      throw input_error("tokenizer ", file.string(), ": merge ", rank + 1, " ('", left, " ", right,
                        "') uses a token outside the vocabulary");
    }
    merges[key(a->second, b->second)] = Merge{rank, merged->second};  // a later duplicate wins
  }

  void set_vocab(const Json& json_vocab) {
    for (const auto& [token, id] : json_vocab.items()) {
      const int value = id.get<int>();
      PERPO_CHECK_INPUT(value >= 0, "tokenizer ", path.string(), ": token '", token,
                        "' has the negative id ", value);
      vocab[token] = value;
      if (value >= static_cast<int>(id_to_token.size())) id_to_token.resize(value + 1);
      id_to_token[value] = token;
    }
    PERPO_CHECK_INPUT(!vocab.empty(), "tokenizer ", path.string(), " has an empty vocabulary");
  }

  void load_tokenizer_json(const Json& json);
  void load_vocab_merges(const fs::path& dir);
  void parse_pre_tokenizer(const Json& node, bool* byte_level_seen);
  void finish_added_tokens();
  void read_config(const fs::path& config_file);

  void split_added(std::string_view text, const std::vector<const BpeAddedToken*>& tokens,
                   std::vector<Segment>& out) const;
  void encode_text(std::string_view text, std::vector<int>& out) const;
  void encode_word(const std::string& word, std::vector<int>& out) const;
};

void BpeTokenizer::Impl::load_tokenizer_json(const Json& json) {
  const std::string file = path.string();
  const Json& model = json.at("model");
  const std::string model_type = model.value("type", std::string("BPE"));
  if (model_type != "BPE") {
    throw input_error("tokenizer ", file, " has a ", model_type, " model, not BPE")
        .hint(std::string(kSupported));
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() > 0) {
    throw input_error("tokenizer ", file, ": BPE dropout is not supported");
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(affix) && !model[affix].is_null() &&
        !model[affix].get<std::string>().empty())
      throw input_error("tokenizer ", file, ": a BPE ", affix, " is not supported")
          .hint(std::string(kSupported));
  }
  if (model.value("byte_fallback", false)) {
    throw input_error("tokenizer ", file,
                      ": BPE byte_fallback (a SentencePiece-style model) is "
                      "not supported")
        .hint(std::string(kSupported));
  }
  ignore_merges = model.value("ignore_merges", false);
  fuse_unk = model.value("fuse_unk", false);
  set_vocab(model.at("vocab"));
  int rank = 0;
  for (const Json& merge : model.at("merges")) {
    if (merge.is_string()) {  // "a b" (older files, Qwen2's own)
      const std::string line = merge.get<std::string>();
      const std::size_t space = line.find(' ');
      if (space == std::string::npos)
        throw input_error("tokenizer ", file, ": merge ", rank + 1, " ('", line,
                          "') is not two tokens separated by a space");
      add_merge(line.substr(0, space), line.substr(space + 1), rank, path);
    } else {  // ["a", "b"]
      if (!merge.is_array() || merge.size() != 2)
        throw input_error("tokenizer ", file, ": merge ", rank + 1, " is not a pair of tokens");
      add_merge(merge[0].get<std::string>(), merge[1].get<std::string>(), rank, path);
    }
    ++rank;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto it = vocab.find(model["unk_token"].get<std::string>());
    PERPO_CHECK_INPUT(it != vocab.end(), "tokenizer ", file, ": unk_token '",
                      model["unk_token"].get<std::string>(), "' is not in the vocabulary");
    unk = it->second;
  }

  // Normalizer: none or NFC (possibly inside a Sequence).
  const Json normalizer = json.value("normalizer", Json());
  std::vector<const Json*> normalizers = {&normalizer};
  while (!normalizers.empty()) {
    const Json& node = *normalizers.back();
    normalizers.pop_back();
    const std::string type = type_of(node);
    if (type == "null") continue;
    if (type == "NFC") {
      normalize_nfc = true;
    } else if (type == "Sequence") {
      for (const Json& inner : node.at("normalizers")) normalizers.push_back(&inner);
    } else {
      throw input_error("tokenizer ", file, " has the normalizer ", type, "; only NFC is supported")
          .hint(std::string(kSupported));
    }
  }

  bool byte_level_seen = false;
  const Json pre_tokenizer = json.value("pre_tokenizer", Json());
  if (!pre_tokenizer.is_null()) parse_pre_tokenizer(pre_tokenizer, &byte_level_seen);
  if (!byte_level_seen) {
    throw input_error("tokenizer ", file, " is not byte-level: its pre_tokenizer is ",
                      type_of(pre_tokenizer), ", without ByteLevel")
        .hint(std::string(kSupported));
  }
  const std::string decoder = type_of(json.value("decoder", Json()));
  if (decoder != "ByteLevel") {
    throw input_error("tokenizer ", file, " has the decoder ", decoder, ", not ByteLevel")
        .hint(std::string(kSupported));
  }
  const std::string post = type_of(json.value("post_processor", Json()));
  if (post != "null" && post != "ByteLevel") {
    throw input_error("tokenizer ", file, " has the post_processor ", post,
                      ", which adds tokens; only ByteLevel (which adds none) is supported")
        .hint(std::string(kSupported));
  }

  const Json added_tokens = json.value("added_tokens", Json::array());
  for (const Json& item : added_tokens)
    added.push_back(added_token_from(item, item.at("id").get<int>()));
}

void BpeTokenizer::Impl::parse_pre_tokenizer(const Json& node, bool* byte_level_seen) {
  const std::string file = path.string();
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const Json& inner : node.at("pretokenizers")) parse_pre_tokenizer(inner, byte_level_seen);
    return;
  }
  PERPO_CHECK_INPUT(!*byte_level_seen, "tokenizer ", file,
                    ": a pre-tokenizer after ByteLevel is not supported");
  if (type == "Split") {
    const Json& pattern = node.at("pattern");
    const std::string behavior = node.value("behavior", std::string("Isolated"));
    if (behavior != "Isolated" || node.value("invert", false)) {
      throw input_error("tokenizer ", file, ": Split with behavior ", behavior,
                        node.value("invert", false) ? " (inverted)" : "",
                        " is not supported, only Isolated")
          .hint(std::string(kSupported));
    }
    if (pattern.contains("Regex")) {
      splits.emplace_back(pattern["Regex"].get<std::string>(), false, path);
    } else {
      splits.emplace_back(pattern.at("String").get<std::string>(), true, path);
    }
  } else if (type == "ByteLevel") {
    if (node.value("add_prefix_space", false)) {
      throw input_error("tokenizer ", file, ": ByteLevel add_prefix_space = true is not supported")
          .hint(std::string(kSupported));
    }
    if (node.value("use_regex", true)) splits.emplace_back(kGpt2Pattern, false, path);
    *byte_level_seen = true;
  } else {
    throw input_error("tokenizer ", file, " has the pre-tokenizer ", type,
                      "; only Split and ByteLevel are supported")
        .hint(std::string(kSupported));
  }
}

void BpeTokenizer::Impl::load_vocab_merges(const fs::path& dir) {
  path = dir / "vocab.json";
  set_vocab(read_json(path));
  const fs::path merges_file = dir / "merges.txt";
  std::ifstream in(merges_file);
  if (!in) throw input_error("cannot read tokenizer file ", merges_file.string());
  std::string line;
  int rank = 0;
  for (int number = 1; std::getline(in, line); ++number) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if ((number == 1 && line.rfind("#version", 0) == 0) || line.empty()) continue;
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      throw input_error(merges_file.string(), ":", number,
                        ": a merge is two tokens separated by "
                        "one space, got '",
                        line, "'");
    }
    add_merge(line.substr(0, space), line.substr(space + 1), rank++, merges_file);
  }
  normalize_nfc = true;  // Qwen2Tokenizer's own pipeline
  splits.emplace_back(kQwen2Pattern, false, path);
  const fs::path config_file = dir / "tokenizer_config.json";
  if (fs::is_regular_file(config_file)) {
    const Json config = read_json(config_file);
    const Json decoder = config.value("added_tokens_decoder", Json::object());
    for (const auto& [id, item] : decoder.items()) {
      char* end = nullptr;
      const long value = std::strtol(id.c_str(), &end, 10);
      PERPO_CHECK_INPUT(!id.empty() && *end == '\0', config_file.string(),
                        ": added_tokens_decoder key '", id, "' is not a token id");
      added.push_back(added_token_from(item, static_cast<int>(value)));
    }
  }
}

void BpeTokenizer::Impl::finish_added_tokens() {
  std::sort(added.begin(), added.end(),
            [](const BpeAddedToken& a, const BpeAddedToken& b) { return a.id < b.id; });
  for (std::size_t i = 0; i < added.size(); ++i) {
    const BpeAddedToken& token = added[i];
    PERPO_CHECK_INPUT(!token.content.empty() && token.id >= 0, "tokenizer ", path.string(),
                      ": added token ", token.id, " has no text or a negative id");
    PERPO_CHECK_INPUT(i == 0 || added[i - 1].id != token.id, "tokenizer ", path.string(),
                      ": added tokens '", added[i - 1].content, "' and '", token.content,
                      "' share id ", token.id);
    added_by_text[token.content] = token.id;
    added_by_id[token.id] = i;
    (token.normalized ? normalized_tokens : raw_tokens).push_back(&token);
  }
}

void BpeTokenizer::Impl::read_config(const fs::path& config_file) {
  const Json config = read_json(config_file);
  const auto id_of = [&](const char* key, int fallback) {
    const auto name = config_token(config, key);
    if (!name) return fallback;
    const int id = token_id(*name);
    PERPO_CHECK_INPUT(id >= 0, config_file.string(), ": ", key, " '", *name, "' is not a token of ",
                      path.string());
    return id;
  };
  try {
    bos = id_of("bos_token", -1);
    eos = id_of("eos_token", eos);
    pad = id_of("pad_token", pad);
  } catch (const Json::exception& e) {
    throw input_error(config_file.string(), ": unexpected content: ", e.what());
  }
}

void BpeTokenizer::Impl::split_added(std::string_view text,
                                     const std::vector<const BpeAddedToken*>& tokens,
                                     std::vector<Segment>& out) const {
  // Leftmost-longest, non-overlapping matches (the library's Aho-Corasick), then the flags.
  // next_at[i]: where tokens[i] next occurs at or after `search` (found again only when passed).
  std::vector<std::size_t> next_at;
  for (const BpeAddedToken* candidate : tokens) next_at.push_back(text.find(candidate->content));
  std::size_t search = 0, start_offset = 0, emitted = 0;
  while (!tokens.empty() && search < text.size()) {
    std::size_t best = std::string_view::npos, best_length = 0;
    const BpeAddedToken* token = nullptr;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const BpeAddedToken* candidate = tokens[i];
      if (next_at[i] < search) next_at[i] = text.find(candidate->content, search);
      const std::size_t at = next_at[i];
      if (at == std::string_view::npos) continue;
      if (at < best || (at == best && candidate->content.size() > best_length)) {
        best = at;
        best_length = candidate->content.size();
        token = candidate;
      }
    }
    if (!token) break;
    std::size_t start = best, stop = best + best_length;
    search = stop;
    if (token->single_word) {
      std::int32_t after = 0;
      const bool word_before =
          start > 0 && is_word_character(last_code_point(text.substr(0, start)));
      const bool word_after =
          stop < text.size() && code_point_at(text, stop, &after) > 0 && is_word_character(after);
      if (word_before || word_after) continue;
    }
    if (token->lstrip) {
      std::size_t left = start;
      while (left > start_offset && is_whitespace(last_code_point(text.substr(0, left)))) {
        --left;
        while (left > 0 && (static_cast<unsigned char>(text[left]) & 0xC0) == 0x80) --left;
      }
      start = std::max(left, start_offset);
    }
    if (token->rstrip) {
      std::int32_t point = 0;
      std::size_t length = 0;
      while (stop < text.size() && (length = code_point_at(text, stop, &point)) > 0 &&
             is_whitespace(point))
        stop += length;
    }
    start = std::max(start, emitted);
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), token->id});
    start_offset = emitted = stop;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

void BpeTokenizer::Impl::encode_text(std::string_view text, std::vector<int>& out) const {
  std::vector<std::string_view> pieces = {text};
  for (const Regex& regex : splits) pieces = regex.split(pieces);
  const ByteLevelTable& table = byte_level();
  std::string word;
  for (std::string_view piece : pieces) {
    word.clear();
    for (char c : piece) word += table.byte_text[static_cast<unsigned char>(c)];
    encode_word(word, out);
  }
}

// BPE on one pre-token (byte-level characters): the library's merge_all, a priority queue of
// pairs by (rank, position), each entry checked against the current pair when it is popped.
void BpeTokenizer::Impl::encode_word(const std::string& word, std::vector<int>& out) const {
  if (ignore_merges) {
    if (auto it = vocab.find(word); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int id;
    int prev;
    int next;
    bool removed;
  };
  std::vector<Symbol> symbols;
  std::string character;
  for (std::size_t at = 0; at < word.size();) {
    std::int32_t point = 0;
    const std::size_t length = std::max<std::size_t>(1, code_point_at(word, at, &point));
    character.assign(word, at, length);
    at += length;
    int id = -1;
    if (auto it = vocab.find(character); it != vocab.end()) {
      id = it->second;
    } else if (unk >= 0) {
      if (fuse_unk && !symbols.empty() && symbols.back().id == unk) continue;
      id = unk;
    } else {
      continue;  // no such character and no unk token: the library drops it too
    }
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({id, index - 1, -1, false});
    if (index > 0) symbols[index - 1].next = index;
  }

  struct Entry {
    int rank;
    int pos;
    int new_id;
  };
  const auto later = [](const Entry& a, const Entry& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(later)> queue(later);
  const auto push_pair = [&](int pos) {
    const int next = symbols[pos].next;
    if (next < 0) return;
    if (auto it = merges.find(key(symbols[pos].id, symbols[next].id)); it != merges.end())
      queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int pos = 0; pos + 1 < static_cast<int>(symbols.size()); ++pos) push_pair(pos);
  while (!queue.empty()) {
    const Entry top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.removed || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const auto it = merges.find(key(left.id, right.id));
    if (it == merges.end() || it->second.new_id != top.new_id) continue;  // an expired entry
    left.id = top.new_id;
    right.removed = true;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& symbol : symbols)
    if (!symbol.removed) out.push_back(symbol.id);
}

BpeTokenizer::BpeTokenizer(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  fs::path dir;
  try {
    if (fs::is_directory(path)) {
      dir = path;
      if (fs::is_regular_file(dir / "tokenizer.json")) {
        impl_->path = dir / "tokenizer.json";
        impl_->load_tokenizer_json(read_json(impl_->path));
      } else if (fs::is_regular_file(dir / "vocab.json") &&
                 fs::is_regular_file(dir / "merges.txt")) {
        impl_->load_vocab_merges(dir);
      } else {
        throw input_error("no tokenizer.json (nor vocab.json + merges.txt) in ", dir.string())
            .hint("give the model folder of a Hugging Face checkpoint, or its tokenizer.json");
      }
    } else if (fs::is_regular_file(path)) {
      dir = path.parent_path();
      impl_->path = path;
      impl_->load_tokenizer_json(read_json(path));
    } else {
      throw input_error("tokenizer ", path.string(), " does not exist")
          .hint("give the model folder of a Hugging Face checkpoint, or its tokenizer.json");
    }
  } catch (const Json::exception& e) {
    throw input_error("tokenizer ", impl_->path.empty() ? path.string() : impl_->path.string(),
                      ": unexpected content: ", e.what())
        .hint(std::string(kSupported));
  }
  impl_->finish_added_tokens();
  const int endoftext = impl_->token_id("<|endoftext|>");
  impl_->eos = impl_->pad = endoftext;  // Qwen2Tokenizer's defaults
  if (fs::is_regular_file(dir / "tokenizer_config.json"))
    impl_->read_config(dir / "tokenizer_config.json");
}

BpeTokenizer::~BpeTokenizer() = default;
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;

std::vector<int> BpeTokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  for (std::size_t at = 0; at < text.size();) {
    std::int32_t point = 0;
    const std::size_t length = code_point_at(text, at, &point);
    PERPO_CHECK_INPUT(length > 0, "text to encode is not valid UTF-8 (byte ", at, ")");
    at += length;
  }
  std::vector<int> ids;
  if (add_bos && bos_id() >= 0) ids.push_back(bos_id());
  std::vector<Impl::Segment> segments, inner;
  impl_->split_added(text, impl_->raw_tokens, segments);
  for (const Impl::Segment& segment : segments) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
      continue;
    }
    const std::string normalized =
        impl_->normalize_nfc ? nfc(segment.text) : std::string(segment.text);
    inner.clear();
    impl_->split_added(normalized, impl_->normalized_tokens, inner);
    for (const Impl::Segment& piece : inner) {
      if (piece.token_id >= 0) {
        ids.push_back(piece.token_id);
      } else {
        impl_->encode_text(piece.text, ids);
      }
    }
  }
  if (add_eos && eos_id() >= 0) ids.push_back(eos_id());
  return ids;
}

std::string BpeTokenizer::decode(std::span<const int> ids, bool skip_special) const {
  const auto& to_byte = byte_level().to_byte;
  std::string text, bytes;
  for (int id : ids) {
    PERPO_CHECK_INPUT(id >= 0, "cannot decode the negative token id ", id);
    if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
      const BpeAddedToken& token = impl_->added[it->second];
      if (skip_special && token.special) continue;
      append_lossy(bytes, text);
      bytes.clear();
      text += token.content;
      continue;
    }
    if (id >= static_cast<int>(impl_->id_to_token.size())) continue;  // no token: as the library
    const std::string& piece = impl_->id_to_token[id];
    std::string piece_bytes;
    bool all_mapped = true;
    for (std::size_t at = 0; at < piece.size() && all_mapped;) {
      std::int32_t point = 0;
      const std::size_t length = std::max<std::size_t>(1, code_point_at(piece, at, &point));
      const auto found = to_byte.find(point);
      all_mapped = found != to_byte.end();
      if (all_mapped) piece_bytes += static_cast<char>(found->second);
      at += length;
    }
    bytes += all_mapped ? piece_bytes : piece;  // a token outside the byte alphabet: its UTF-8
  }
  append_lossy(bytes, text);
  return text;
}

int BpeTokenizer::vocab_size() const {
  int size = static_cast<int>(impl_->id_to_token.size());
  if (!impl_->added.empty()) size = std::max(size, impl_->added.back().id + 1);
  return size;
}

int BpeTokenizer::model_vocab_size() const { return static_cast<int>(impl_->vocab.size()); }

int BpeTokenizer::piece_to_id(std::string_view piece) const {
  const int id = impl_->token_id(std::string(piece));
  return id >= 0 ? id : impl_->unk;
}

std::string BpeTokenizer::id_to_piece(int id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end())
    return impl_->added[it->second].content;
  const bool known = id >= 0 && id < static_cast<int>(impl_->id_to_token.size()) &&
                     !impl_->id_to_token[id].empty();
  PERPO_CHECK_INPUT(known, "token id ", id, " names no token of ", impl_->path.string(),
                    " (vocab_size ", vocab_size(), ")");
  return impl_->id_to_token[id];
}

std::optional<int> BpeTokenizer::added_token_id(std::string_view text) const {
  const auto it = impl_->added_by_text.find(std::string(text));
  if (it == impl_->added_by_text.end()) return std::nullopt;
  return it->second;
}

const std::vector<BpeAddedToken>& BpeTokenizer::added_tokens() const { return impl_->added; }

bool BpeTokenizer::is_special(int id) const {
  const auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

int BpeTokenizer::bos_id() const { return impl_->bos; }
int BpeTokenizer::eos_id() const { return impl_->eos; }
int BpeTokenizer::pad_id() const { return impl_->pad; }
int BpeTokenizer::unk_id() const { return impl_->unk; }

std::vector<int> BpeTokenizer::stop_ids() const {
  std::vector<int> ids;
  for (int id : {eos_id(), impl_->token_id("<|im_end|>"), impl_->token_id("<|endoftext|>")})
    if (id >= 0) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

const std::filesystem::path& BpeTokenizer::path() const { return impl_->path; }

}  // namespace perpo
