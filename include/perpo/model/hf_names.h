// Hugging Face parameter names <-> perpo's canonical names, per model family. One mechanism for
// every family: a table of prefix rules (canonical, old layout, new layout) and a layout detector
// that votes with the keys only one layout produces.
//
// LLaVA (model_config.h):
//   canonical                  old layout (transformers < 4.52)   new layout (>= 4.52)
//   language_model.X           language_model.model.X             model.language_model.X
//   lm_head.weight             language_model.lm_head.weight      lm_head.weight
//   vision_tower.X             vision_tower.X                     model.vision_tower.X
//   multi_modal_projector.X    multi_modal_projector.X            model.multi_modal_projector.X
// transformers 5 writes variants that are read as these layouts: model.language_model.model.X
// (5.4 - 5.5), vision_tower.X without the vision_model level (5.6 and later), and the head as
// either lm_head.weight or language_model.lm_head.weight in either layout.
//
// Qwen2.5-VL (qwen2_5_vl.h):
//   canonical                  old layout (the Hub's files;       new layout (transformers
//                              4.52 - 4.57's save_pretrained)      >= 4.52 in memory, 5's files)
//   language_model.X           model.X                            model.language_model.X
//   visual.X                   visual.X                           model.visual.X
//   lm_head.weight             lm_head.weight                     lm_head.weight
//
//   HfLayout layout = detect_hf_layout(checkpoint.names());            // LLaVA (the default)
//   std::optional<std::string> name = hf_to_canonical("language_model.model.norm.weight", layout);
//   // -> "language_model.norm.weight"
//   detect_hf_layout(keys, HfFamily::kQwen2_5VL);                       // Qwen2.5-VL's keys
//   canonical_to_hf("visual.merger.ln_q.weight", HfLayout::kNew, HfFamily::kQwen2_5VL);
//   // -> "model.visual.merger.ln_q.weight"
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace perpo {

enum class HfLayout {
  kOld,  // LLaVA: language_model.model.*, ...; Qwen2.5-VL: model.*, visual.* (the tables above)
  kNew,  // LLaVA: model.language_model.*, ...; Qwen2.5-VL: model.language_model.*, model.visual.*
};

/// Whose names: each family has its own table of rules (above).
enum class HfFamily {
  kLlava,      // LlavaForConditionalGeneration
  kQwen2_5VL,  // Qwen2_5_VLForConditionalGeneration
};

/// "old" | "new".
std::string hf_layout_name(HfLayout layout);
/// Parses "old" | "new"; throws perpo::Error (input) otherwise.
HfLayout parse_hf_layout(const std::string& name);
/// "LLaVA" | "Qwen2.5-VL", for messages.
std::string hf_family_name(HfFamily family);

/// The layout of a checkpoint's keys. Throws perpo::Error (input) when the keys mix both layouts
/// or follow neither (the message quotes a few keys).
HfLayout detect_hf_layout(const std::vector<std::string>& hf_keys,
                          HfFamily family = HfFamily::kLlava);

/// True for keys HF checkpoints may carry that are buffers, not parameters
/// (`*.rotary_emb.inv_freq`, `*.rotary_pos_emb.inv_freq`, `*.position_ids`): loading skips them.
bool is_ignored_hf_key(const std::string& hf_key);

/// The canonical name of an HF key, or nullopt when the key does not belong to `layout`.
std::optional<std::string> hf_to_canonical(const std::string& hf_key, HfLayout layout,
                                           HfFamily family = HfFamily::kLlava);

/// The HF key of a canonical name in `layout`. Throws perpo::Error for names outside the family's
/// canonical scheme (LLaVA: vision_tower., multi_modal_projector., language_model.,
/// lm_head.weight; Qwen2.5-VL: visual., language_model., lm_head.weight).
std::string canonical_to_hf(const std::string& canonical, HfLayout layout,
                            HfFamily family = HfFamily::kLlava);

}  // namespace perpo
