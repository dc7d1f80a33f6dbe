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

// Order matters for hf -> canonical: the more specific old-layout head comes before its decoder.
constexpr PrefixRule kRules[] = {
    {"lm_head.weight", "language_model.lm_head.weight", "lm_head.weight"},
    {"language_model.", "language_model.model.", "model.language_model."},
    {"vision_tower.", "vision_tower.", "model.vision_tower."},
    {"multi_modal_projector.", "multi_modal_projector.", "model.multi_modal_projector."},
};

bool is_exact(const char* prefix) { return !ends_with(prefix, "."); }

// Names that transformers 5 writes beside the two layouts above, rewritten to them before the
// layout is detected (the tensors are the same; only their names moved):
//   model.language_model.model.X  (5.4 - 5.5)  -> model.language_model.X
//   vision_tower.embeddings.X     (5.6 and later; no vision_model level) ->
//   vision_tower.vision_model.X model.vision_tower.encoder.X  (a 5.x state_dict)  ->
//   model.vision_tower.vision_model.encoder.X
std::string normalized_key(const std::string& key) {
  static const std::string doubled = "model.language_model.model.";
  if (starts_with(key, doubled)) return "model.language_model." + key.substr(doubled.size());
  for (const std::string tower : {"vision_tower.", "model.vision_tower."}) {
    if (starts_with(key, tower) && !starts_with(key, tower + "vision_model.")) {
      return tower + "vision_model." + key.substr(tower.size());
    }
  }
  return key;
}

// The head's two spellings: either layout's loader takes either (transformers 5.4 - 5.5 wrote
// language_model.lm_head.weight beside new-layout names).
bool is_head(const std::string& key) {
  return key == "lm_head.weight" || key == "language_model.lm_head.weight";
}

bool matches(const std::string& key, const char* prefix) {
  return is_exact(prefix) ? key == prefix : starts_with(key, prefix);
}

}  // namespace

std::string hf_layout_name(HfLayout layout) { return layout == HfLayout::kOld ? "old" : "new"; }

HfLayout parse_hf_layout(const std::string& name) {
  if (name == "old") return HfLayout::kOld;
  if (name == "new") return HfLayout::kNew;
  throw input_error("unknown Hugging Face key layout '", name, "'")
      .hint(
          "use 'new' (model.language_model.*, transformers >= 4.52) or 'old' "
          "(language_model.model.*)");
}

HfLayout detect_hf_layout(const std::vector<std::string>& hf_keys) {
  int old_votes = 0, new_votes = 0;
  std::string old_example, new_example;
  for (const std::string& hf_key : hf_keys) {
    const std::string key = normalized_key(hf_key);
    if (is_head(key)) continue;  // either spelling in either layout
    // Keys that only one layout produces; vision_tower.* / multi_modal_projector.* without the
    // "model." prefix are old-only too.
    if (starts_with(key, "language_model.model.") || starts_with(key, "vision_tower.") ||
        starts_with(key, "multi_modal_projector.")) {
      if (old_votes++ == 0) old_example = key;
    } else if (starts_with(key, "model.language_model.") ||
               starts_with(key, "model.vision_tower.") ||
               starts_with(key, "model.multi_modal_projector.")) {
      if (new_votes++ == 0) new_example = key;
    }
  }
  if (old_votes > 0 && new_votes > 0) {
    throw input_error("the checkpoint mixes the old and the new Hugging Face LLaVA key layouts ('",
                      old_example, "' and '", new_example, "')")
        .hint("re-save it with one version of transformers");
  }
  if (old_votes > 0) return HfLayout::kOld;
  if (new_votes > 0) return HfLayout::kNew;
  std::string examples;
  for (std::size_t i = 0; i < hf_keys.size() && i < 3; ++i)
    examples += (i ? ", " : "") + hf_keys[i];
  throw input_error("the checkpoint's tensor names are not those of a Hugging Face LLaVA model (",
                    hf_keys.empty() ? std::string("no tensors") : "e.g. " + examples, ")")
      .hint("expected language_model.model.* or model.language_model.* keys");
}

bool is_ignored_hf_key(const std::string& hf_key) {
  return ends_with(hf_key, ".rotary_emb.inv_freq") || ends_with(hf_key, ".position_ids");
}

std::optional<std::string> hf_to_canonical(const std::string& raw_key, HfLayout layout) {
  const std::string hf_key = normalized_key(raw_key);
  if (is_head(hf_key)) return std::string("lm_head.weight");
  for (const PrefixRule& rule : kRules) {
    const char* from = layout == HfLayout::kOld ? rule.old_hf : rule.new_hf;
    if (!matches(hf_key, from)) continue;
    if (is_exact(from)) return std::string(rule.canonical);
    return rule.canonical + hf_key.substr(std::char_traits<char>::length(from));
  }
  return std::nullopt;
}

std::string canonical_to_hf(const std::string& canonical, HfLayout layout) {
  for (const PrefixRule& rule : kRules) {
    if (!matches(canonical, rule.canonical)) continue;
    const char* to = layout == HfLayout::kOld ? rule.old_hf : rule.new_hf;
    if (is_exact(rule.canonical)) return to;
    return to + canonical.substr(std::char_traits<char>::length(rule.canonical));
  }
  throw runtime_error("parameter '", canonical, "' is not a canonical LLaVA name")
      .hint(
          "names start with vision_tower., multi_modal_projector., language_model. or are "
          "lm_head.weight");
}

}  // namespace perpo
