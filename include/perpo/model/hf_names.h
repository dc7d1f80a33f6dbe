// Hugging Face LLaVA parameter names <-> perpo's canonical names (model_config.h).
//
//   canonical                           old layout (transformers < 4.52)      new layout
//   language_model.X                    language_model.model.X model.language_model.X
//   lm_head.weight                      language_model.lm_head.weight         lm_head.weight
//   vision_tower.X                      vision_tower.X                        model.vision_tower.X
//   multi_modal_projector.X             multi_modal_projector.X model.multi_modal_projector.X
//
// transformers 5 writes variants that are read as these layouts: model.language_model.model.X
// (5.4 - 5.5), vision_tower.X without the vision_model level (5.6 and later), and the head as
// either lm_head.weight or language_model.lm_head.weight in either layout.
//
//   HfLayout layout = detect_hf_layout(checkpoint.names());
//   std::optional<std::string> name = hf_to_canonical("language_model.model.norm.weight", layout);
//   // -> "language_model.norm.weight"
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace perpo {

enum class HfLayout {
  kOld,  // language_model.model.*, language_model.lm_head.weight, vision_tower.*, ...
  kNew,  // model.language_model.*, lm_head.weight, model.vision_tower.*, ...
};

/// "old" | "new".
std::string hf_layout_name(HfLayout layout);
/// Parses "old" | "new"; throws perpo::Error (input) otherwise.
HfLayout parse_hf_layout(const std::string& name);

/// The layout of a checkpoint's keys. Throws perpo::Error (input) when the keys mix both layouts
/// or follow neither (the message quotes a few keys).
HfLayout detect_hf_layout(const std::vector<std::string>& hf_keys);

/// True for keys HF checkpoints may carry that are buffers, not parameters
/// (`*.rotary_emb.inv_freq`, `*.position_ids`): loading skips them.
bool is_ignored_hf_key(const std::string& hf_key);

/// The canonical name of an HF key, or nullopt when the key does not belong to `layout`.
std::optional<std::string> hf_to_canonical(const std::string& hf_key, HfLayout layout);

/// The HF key of a canonical name in `layout`. Throws perpo::Error for names outside the canonical
/// scheme (vision_tower., multi_modal_projector., language_model., lm_head.weight).
std::string canonical_to_hf(const std::string& canonical, HfLayout layout);

}  // namespace perpo
