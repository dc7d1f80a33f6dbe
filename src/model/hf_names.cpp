#include "perpo/model/hf_names.h"

#include "perpo/core/error.h"
#include "perpo/core/strings.h"

namespace perpo {
namespace {

struct PrefixRule {
  const char* canonical;  // canonical prefix (or full name when it has no trailing '.')
  const char* old_hf;
  const char* new_hf;
};

/// One family's names: its rules (order matters for hf -> canonical: a more specific prefix comes
/// before a shorter one it starts with), the spellings of its head, and what to expect in errors.
struct FamilyNames {
  const char* name;
  std::vector<PrefixRule> rules;
  std::vector<std::string> head_keys;  // HF keys of lm_head.weight, accepted in either layout
  const char* expected_keys;           // for the hint when keys follow neither layout
};

const FamilyNames& names_of(HfFamily family) {
  static const FamilyNames llava = {
      "LLaVA",
      {
          {"lm_head.weight", "language_model.lm_head.weight", "lm_head.weight"},
          {"language_model.", "language_model.model.", "model.language_model."},
          {"vision_tower.", "vision_tower.", "model.vision_tower."},
          {"multi_modal_projector.", "multi_modal_projector.", "model.multi_modal_projector."},
      },
      // transformers 5.4 - 5.5 wrote language_model.lm_head.weight beside new-layout names
      {"lm_head.weight", "language_model.lm_head.weight"},
      "expected language_model.model.* or model.language_model.* keys"};
  static const FamilyNames qwen2_5_vl = {
      "Qwen2.5-VL",
      {
          {"lm_head.weight", "lm_head.weight", "lm_head.weight"},
          {"language_model.", "model.", "model.language_model."},
          {"visual.", "visual.", "model.visual."},
      },
      {"lm_head.weight"},
      "expected the Hub's model.* / visual.* keys or transformers 5's model.language_model.* / "
      "model.visual.* keys"};
  return family == HfFamily::kQwen2_5VL ? qwen2_5_vl : llava;
}

bool is_exact(const char* prefix) { return !ends_with(prefix, "."); }

// LLaVA names that transformers 5 writes beside the two layouts, rewritten to them before the
// layout is detected (the tensors are the same; only their names moved):
//   model.language_model.model.X  (5.4 - 5.5)  -> model.language_model.X
//   vision_tower.embeddings.X     (5.6 and later; no vision_model level) ->
//   vision_tower.vision_model.X model.vision_tower.encoder.X  (a 5.x state_dict)  ->
//   model.vision_tower.vision_model.encoder.X
// Qwen2.5-VL's keys are taken as they are.
std::string normalized_key(const std::string& key, HfFamily family) {
  if (family != HfFamily::kLlava) return key;
  static const std::string doubled = "model.language_model.model.";
  if (starts_with(key, doubled)) return "model.language_model." + key.substr(doubled.size());
  for (const std::string tower : {"vision_tower.", "model.vision_tower."}) {
    if (starts_with(key, tower) && !starts_with(key, tower + "vision_model.")) {
      return tower + "vision_model." + key.substr(tower.size());
    }
  }
  return key;
}

bool is_head(const std::string& key, const FamilyNames& names) {
  for (const std::string& head : names.head_keys) {
    if (key == head) return true;
  }
  return false;
}

bool matches(const std::string& key, const char* prefix) {
  return is_exact(prefix) ? key == prefix : starts_with(key, prefix);
}

/// Whether `key` has a prefix only `from` (old_hf or new_hf of the rules) produces.
bool has_layout_prefix(const std::string& key, const FamilyNames& names,
                       const char* PrefixRule::*from) {
  for (const PrefixRule& rule : names.rules) {
    const char* prefix = rule.*from;
    if (!is_exact(prefix) && starts_with(key, prefix)) return true;
  }
  return false;
}

}  // namespace

std::string hf_layout_name(HfLayout layout) { return layout == HfLayout::kOld ? "old" : "new"; }

HfLayout parse_hf_layout(const std::string& name) {
  if (name == "old") return HfLayout::kOld;
  if (name == "new") return HfLayout::kNew;
  throw input_error("unknown Hugging Face key layout '", name, "'")
      .hint(
          "use 'new' (model.language_model.*, transformers >= 4.52) or 'old' "
          "(language_model.model.* for LLaVA, model.* for Qwen2.5-VL)");
}

std::string hf_family_name(HfFamily family) { return names_of(family).name; }

HfLayout detect_hf_layout(const std::vector<std::string>& hf_keys, HfFamily family) {
  const FamilyNames& names = names_of(family);
  int old_votes = 0, new_votes = 0;
  std::string old_example, new_example;
  for (const std::string& hf_key : hf_keys) {
    const std::string key = normalized_key(hf_key, family);
    if (is_head(key, names)) continue;  // either spelling in either layout
    // The new layout's prefixes first: Qwen2.5-VL's old "model." starts its new ones.
    if (has_layout_prefix(key, names, &PrefixRule::new_hf)) {
      if (new_votes++ == 0) new_example = key;
    } else if (has_layout_prefix(key, names, &PrefixRule::old_hf)) {
      if (old_votes++ == 0) old_example = key;
    }
  }
  if (old_votes > 0 && new_votes > 0) {
    throw input_error("the checkpoint mixes the old and the new Hugging Face ", names.name,
                      " key layouts ('", old_example, "' and '", new_example, "')")
        .hint("re-save it with one version of transformers");
  }
  if (old_votes > 0) return HfLayout::kOld;
  if (new_votes > 0) return HfLayout::kNew;
  std::string examples;
  for (std::size_t i = 0; i < hf_keys.size() && i < 3; ++i)
    examples += (i ? ", " : "") + hf_keys[i];
  throw input_error("the checkpoint's tensor names are not those of a Hugging Face ", names.name,
                    " model (", hf_keys.empty() ? std::string("no tensors") : "e.g. " + examples,
                    ")")
      .hint(names.expected_keys);
}

bool is_ignored_hf_key(const std::string& hf_key) {
  return ends_with(hf_key, ".rotary_emb.inv_freq") ||
         ends_with(hf_key, ".rotary_pos_emb.inv_freq") || ends_with(hf_key, ".position_ids");
}

std::optional<std::string> hf_to_canonical(const std::string& raw_key, HfLayout layout,
                                           HfFamily family) {
  const FamilyNames& names = names_of(family);
  const std::string hf_key = normalized_key(raw_key, family);
  if (is_head(hf_key, names)) return std::string("lm_head.weight");
  for (const PrefixRule& rule : names.rules) {
    const char* from = layout == HfLayout::kOld ? rule.old_hf : rule.new_hf;
    if (!matches(hf_key, from)) continue;
    if (is_exact(from)) return std::string(rule.canonical);
    return rule.canonical + hf_key.substr(std::char_traits<char>::length(from));
  }
  return std::nullopt;
}

std::string canonical_to_hf(const std::string& canonical, HfLayout layout, HfFamily family) {
  const FamilyNames& names = names_of(family);
  std::string known;
  for (const PrefixRule& rule : names.rules) {
    known += (known.empty() ? "" : ", ") + std::string(rule.canonical);
    if (!matches(canonical, rule.canonical)) continue;
    const char* to = layout == HfLayout::kOld ? rule.old_hf : rule.new_hf;
    if (is_exact(rule.canonical)) return to;
    return to + canonical.substr(std::char_traits<char>::length(rule.canonical));
  }
  throw runtime_error("parameter '", canonical, "' is not a canonical ", names.name, " name")
      .hint("names start with one of: " + known);
}

}  // namespace perpo
