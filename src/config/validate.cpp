// validate(): value ranges and combinations, each failure naming the key and how to fix it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "perpo/config/config_io.h"
#include "perpo/core/error.h"
#include "perpo/core/strings.h"

namespace perpo {
namespace {

// Throws "key 'K' <problem>; got V" with a hint.
template <typename T>
void require(bool ok, const char* key, const T& value, const char* problem, const char* hint) {
  if (ok) return;
  throw input_error("key '", key, "' ", problem, "; got ", value).hint(hint);
}

bool is_device_text(const std::string& device) {
  if (device == "cpu" || device == "cuda") return true;
  if (!starts_with(device, "cuda:") || device.size() == 5) return false;
  return std::all_of(device.begin() + 5, device.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The numeric-settings table: every numeric key's finite range, in one place. Values outside
// (and NaN, inf, absurdly large numbers that would overflow a step or an allocation) are refused
// before anything runs. The upper bounds are far beyond any sensible value; they only keep
// absurd numbers out. A test checks that every numeric key of Config has a row.
constexpr double kMaxInt = 2147483647.0;
constexpr double kMaxSeed = 18446744073709551615.0;
const std::vector<NumberRange> kNumberRanges = {
    {"model.lora.r", 1, 65536, false, false, "e.g. model.lora.r=128"},
    {"model.lora.alpha", 0, 1e6, true, false, "e.g. model.lora.alpha=256"},
    {"model.lora.dropout", 0, 1, false, true, "e.g. model.lora.dropout=0.05"},
    {"model.tiny.vision_hidden", 1, 65536, false, false, "e.g. 64"},
    {"model.tiny.vision_layers", 1, 1024, false, false, "e.g. 2"},
    {"model.tiny.vision_heads", 1, 1024, false, false, "e.g. 4"},
    {"model.tiny.image_size", 1, 16384, false, false, "e.g. 64"},
    {"model.tiny.patch_size", 1, 16384, false, false, "e.g. 16"},
    {"model.tiny.hidden", 1, 65536, false, false, "e.g. 128"},
    {"model.tiny.layers", 1, 1024, false, false, "e.g. 2"},
    {"model.tiny.heads", 1, 1024, false, false, "e.g. 4"},
    {"model.tiny.kv_heads", 1, 1024, false, false, "e.g. 2"},
    {"model.tiny.intermediate", 1, 262144, false, false, "e.g. 256"},
    {"data.max_prompt_tokens", 1, 1048576, false, false, "e.g. data.max_prompt_tokens=2048"},
    {"data.max_answer_tokens", 1, 1048576, false, false, "e.g. data.max_answer_tokens=256"},
    {"image.size", 1, 16384, false, false, "e.g. image.size=336"},
    {"image.min_pixels", 0, 1e9, false, false, "e.g. image.min_pixels=3136 (0 = the checkpoint's)"},
    {"image.max_pixels", 0, 1e9, false, false,
     "e.g. image.max_pixels=1003520 (0 = the checkpoint's)"},
    {"image.mean", 0, 1, false, false,
     "pixels are in [0, 1]; CLIP's mean is [0.481, 0.458, 0.408]"},
    {"image.std", 1e-3, 10, false, false, "CLIP's std is [0.269, 0.261, 0.276]"},
    {"sampling.num_answers", 2, 4096, false, false,
     "a preference list needs at least two answers; e.g. 20 (grounding), 5 (OCR)"},
    {"sampling.temperature", 0, 100, false, false, "0 is greedy; the authors sample at 1.0"},
    {"sampling.top_p", 0, 1, true, false, "1 turns nucleus sampling off"},
    {"sampling.top_k", 0, 16777216, false, false, "0 turns top-k off"},
    {"sampling.max_new_tokens", 1, 1048576, false, false, "e.g. 32 for boxes"},
    {"sampling.lists_per_batch", 1, 4096, false, false, "e.g. 4"},
    {"sampling.max_samples", 0, 1048576, false, false, "0 = 4 x num_answers"},
    {"loss.beta", 0, 1000, true, false, "the authors use 0.1"},
    {"loss.gamma", 0, 100, false, false,
     "the authors use 0.5; 0 weighs every pair with a reward gap equally"},
    {"loss.nll_weight", 0, 1000, false, false, "0 turns the SFT term off"},
    {"loss.grpo.eps_low", 0, 1, false, true, "the ratio is clipped below at 1 - eps_low; e.g. 0.2"},
    {"loss.grpo.eps_high", 0, 100, false, false,
     "the ratio is clipped above at 1 + eps_high; e.g. 0.2 (DAPO: 0.28)"},
    {"loss.grpo.kl_beta", 0, 1000, false, false, "0 turns the KL term off; e.g. 0.04"},
    {"loss.grpo.std_eps", 0, 1, true, false, "e.g. 1e-4"},
    {"loss.grpo.max_tokens", 0, 1048576, false, false, "0 = data.max_answer_tokens"},
    {"optim.lr", 0, 10, true, false, "the authors use 5e-6 with LoRA"},
    {"optim.weight_decay", 0, 10, false, false, "e.g. 0"},
    {"optim.beta1", 0, 1, false, true, "e.g. 0.9"},
    {"optim.beta2", 0, 1, false, true, "e.g. 0.999"},
    {"optim.eps", 0, 1, true, false, "e.g. 1e-8"},
    {"optim.warmup_steps", 0, kMaxInt, false, false, "e.g. 0"},
    {"optim.min_lr_ratio", 0, 1, false, false, "e.g. 0"},
    {"optim.max_grad_norm", 0, 1e6, false, false, "0 turns clipping off; the authors use 1.0"},
    {"optim.vision_lr", 0, 10, false, false, "0 = the same as optim.lr"},
    {"optim.projector_lr", 0, 10, false, false, "0 = the same as optim.lr"},
    {"optim.vision_weight_decay", -1e6, 10, false, false, "negative = optim.weight_decay"},
    {"optim.projector_weight_decay", -1e6, 10, false, false, "negative = optim.weight_decay"},
    {"train.epochs", 1, 1e6, false, false, "e.g. 1"},
    {"train.max_steps", 0, kMaxInt, false, false, "0 = run all epochs"},
    {"train.lists_per_step", 1, 65536, false, false, "e.g. 2"},
    {"train.grad_accum", 1, 65536, false, false, "e.g. 1"},
    {"train.log_every", 1, kMaxInt, false, false, "e.g. 1"},
    {"train.checkpoint_every", 0, kMaxInt, false, false, "0 = only at the end"},
    {"train.keep_checkpoints", 1, 1e6, false, false, "e.g. 2"},
    {"train.online_resample_every", 0, kMaxInt, false, false,
     "0 = offline training on fixed lists"},
    {"train.eval_every", 0, kMaxInt, false, false, "0 = off"},
    {"train.max_nonfinite_steps", 1, 1e6, false, false, "e.g. 5"},
    {"eval.max_new_tokens", 1, 1048576, false, false, "e.g. 32"},
    {"eval.batch_size", 1, 65536, false, false, "e.g. 8"},
    {"eval.iou_threshold", 0, 1, true, false, "the paper reports acc@0.5"},
    {"eval.limit", 0, kMaxInt, false, false, "0 = all records"},
    {"distributed.timeout_s", 1, 1e7, false, false, "e.g. 1800"},
    {"distributed.zero", 0, 1, false, false, "0 or 1"},
    {"distributed.bucket_mb", 0, 1e6, true, false, "e.g. 25"},
    {"run.seed", 0, kMaxSeed, false, false, "e.g. 42"},
    {"run.threads", 0, 1024, false, false, "0 = auto"},
    {"demo.sft_records", 1, kMaxInt, false, false, "e.g. 2048"},
    {"demo.pref_records", 1, kMaxInt, false, false, "e.g. 2048"},
    {"demo.val_records", 1, kMaxInt, false, false, "e.g. 500"},
    {"demo.test_records", 1, kMaxInt, false, false, "e.g. 2000"},
    {"demo.max_shapes", 1, 8, false, false, "perpo data synth draws up to 8 shapes"},
    {"demo.ocr_max_words", 1, 8, false, false, "e.g. 1"},
    {"demo.ocr_lexicon", 0, 140, false, false, "0 = all 140 words; else 2 .. 140"},
    {"demo.ocr_min_text_height", 0.1, 0.9, false, false, "e.g. 0.45"},
    {"demo.ocr_max_text_height", 0.1, 0.9, false, false, "e.g. 0.55"},
    {"demo.ocr_inverted", 0, 1, false, false, "e.g. 0.3"},
    {"demo.vocab_size", 64, 32000, false, false, "e.g. 160"},
    {"demo.sft_steps", 1, kMaxInt, false, false, "e.g. 1500"},
    {"demo.sft_batch", 1, kMaxInt, false, false, "e.g. 32"},
    {"demo.sft_lr", 0, 10, true, false, "e.g. 2e-3"},
    {"demo.pref_steps", 1, kMaxInt, false, false, "e.g. 500"},
    {"demo.lists_per_step", 1, kMaxInt, false, false, "e.g. 8"},
    {"demo.answers", 2, 4096, false, false, "a list compares two answers or more; e.g. 20"},
    {"demo.resample_every", 0, kMaxInt, false, false, "0 = offline lists"},
    {"demo.temperature", 0, 100, false, false, "0 is greedy; e.g. 0.7"},
    {"demo.beta", 0, 1000, true, false, "e.g. 0.1"},
    {"demo.gamma", 0, 100, false, false, "e.g. 0.5"},
    {"demo.warmup_share", 0, 1, false, false, "e.g. 0.05"},
    {"demo.arm_lr.sft", 0, 10, true, false, "e.g. 1.5e-4"},
    {"demo.arm_lr.dpo", 0, 10, true, false, "e.g. 5e-5"},
    {"demo.arm_lr.perpo", 0, 10, true, false, "e.g. 1e-4"},
    {"demo.arm_lr.grpo", 0, 10, true, false, "e.g. 1e-4"},
    {"demo.curve_points", 0, kMaxInt, false, false, "0 = no validation curve"},
    {"demo.curve_records", 1, kMaxInt, false, false, "e.g. 200"},
};

/// 2048 -> "2048", 1e-08 -> "1e-08": bounds as a user would type them.
std::string bound_text(double value) {
  char buffer[64];
  if (std::fabs(value) < 1e15 && value == std::floor(value)) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.17g", value);
    // shortest text that reads back the same
    for (int precision = 1; precision <= 17; ++precision) {
      char shorter[64];
      std::snprintf(shorter, sizeof(shorter), "%.*g", precision, value);
      if (std::strtod(shorter, nullptr) == value) return shorter;
    }
  }
  return buffer;
}

// A list of names: at least one, each known, none twice.
void check_names(const char* key, const std::vector<std::string>& names,
                 const std::vector<std::string>& known, const char* hint) {
  require(!names.empty(), key, "[]", "must name at least one", hint);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (std::find(known.begin(), known.end(), names[i]) == known.end()) {
      throw input_error("key '", key, "': '", names[i], "' is not ", join(known, " or "))
          .hint(hint);
    }
    require(std::find(names.begin(), names.begin() + i, names[i]) == names.begin() + i, key,
            names[i], "names it twice", hint);
  }
}

void check_number_ranges(const Config& c) {
  for (const NumericField& field : numeric_fields(c)) {
    const NumberRange* range = nullptr;
    for (const NumberRange& row : kNumberRanges) {
      if (field.key == row.key) range = &row;
    }
    PERPO_CHECK(range != nullptr, "config key '", field.key,
                "' has no row in the numeric-settings table (validate.cpp)");
    for (double value : field.values) {
      const bool above_min = range->min_open ? value > range->min : value >= range->min;
      const bool below_max = range->max_open ? value < range->max : value <= range->max;
      if (std::isfinite(value) && above_min && below_max) continue;
      std::ostringstream got;
      got << value;
      throw input_error("key '", field.key, "' must be in ", range->min_open ? "(" : "[",
                        bound_text(range->min), ", ", bound_text(range->max),
                        range->max_open ? ")" : "]", "; got ", got.str())
          .hint(range->hint);
    }
  }
}

}  // namespace

const std::vector<NumberRange>& number_ranges() { return kNumberRanges; }

void validate(const Config& c) {
  check_number_ranges(c);  // every numeric key finite and in its range, first

  // model
  const auto& lora = c.model.lora;
  require(!lora.targets.empty(), "model.lora.targets", "[]", "must name at least one layer",
          "use [all-linear] or e.g. [q_proj, v_proj]");
  const auto& t = c.model.tiny;
  require(t.hidden % t.heads == 0, "model.tiny.hidden", t.hidden,
          "must be divisible by model.tiny.heads", "e.g. hidden=128 with heads=4");
  require(t.heads % t.kv_heads == 0, "model.tiny.heads", t.heads,
          "must be divisible by model.tiny.kv_heads", "e.g. heads=4 with kv_heads=2");
  require(t.vision_hidden % t.vision_heads == 0, "model.tiny.vision_hidden", t.vision_hidden,
          "must be divisible by model.tiny.vision_heads",
          "e.g. vision_hidden=64 with vision_heads=4");
  require(t.image_size % t.patch_size == 0, "model.tiny.image_size", t.image_size,
          "must be divisible by model.tiny.patch_size", "e.g. image_size=64 with patch_size=16");
  bool trains_something =
      lora.enabled || !c.model.freeze_llm || !c.model.freeze_projector || !c.model.freeze_vision;
  require(trains_something || c.loss.name.empty(), "model.freeze_llm", "true",
          "leaves nothing to train (vision, projector and LLM frozen, LoRA off)",
          "set model.lora.enabled=true or model.freeze_llm=false");

  // tokenizer
  require(c.tokenizer.chat_template != "plain" || c.tokenizer.system_prompt.empty(),
          "tokenizer.system_prompt", "\"" + c.tokenizer.system_prompt + "\"",
          "is set but the plain template has no system prompt",
          "use tokenizer.chat_template=vicuna_v1, or leave tokenizer.system_prompt empty");

  // image
  require(c.image.min_pixels == 0 || c.image.max_pixels == 0 ||
              c.image.min_pixels <= c.image.max_pixels,
          "image.max_pixels", c.image.max_pixels, "must be >= image.min_pixels",
          "e.g. image.min_pixels=3136 image.max_pixels=1003520");
  require(c.image.mean.size() == 3, "image.mean", c.image.mean.size(),
          "must hold 3 values (R, G, B)", "e.g. image.mean=[0.481, 0.458, 0.408]");
  require(c.image.std.size() == 3, "image.std", c.image.std.size(), "must hold 3 values (R, G, B)",
          "e.g. image.std=[0.269, 0.261, 0.276]");

  // sampling
  const auto& s = c.sampling;
  require(s.max_samples == 0 || s.max_samples >= s.num_answers, "sampling.max_samples",
          s.max_samples, "must be 0 (= 4 x num_answers) or >= sampling.num_answers",
          "e.g. 4 x num_answers");

  // reward (names as registered in the reward module)
  static const std::vector<std::string> kRewards = {"",         "iou",         "giou",
                                                    "ocr_edit", "exact_match", "numeric"};
  if (std::find(kRewards.begin(), kRewards.end(), c.reward.name) == kRewards.end()) {
    auto error = input_error(
        "key 'reward.name' must be one of iou, giou, ocr_edit, exact_match, "
        "numeric (or empty for the task's default); got '",
        c.reward.name, "'");
    if (auto best = closest_match(c.reward.name, kRewards))
      error.hint("did you mean '" + *best + "'?");
    throw error;
  }

  // distributed
  bool on_cuda = starts_with(c.run.device, "cuda");
  require(c.distributed.backend != "nccl" || on_cuda, "distributed.backend", c.distributed.backend,
          "nccl needs run.device=cuda", "use gloo (or auto) on CPU");

  // run
  require(!c.run.dir.empty(), "run.dir", "\"\"", "must name a folder", "e.g. run.dir=runs/demo");
  require(is_device_text(c.run.device), "run.device", c.run.device, "must be cpu, cuda or cuda:N",
          "e.g. run.device=cuda:0");
  require(c.run.dtype != "fp16" || on_cuda, "run.dtype", c.run.dtype,
          "fp16 is only supported on CUDA", "use run.dtype=fp32 on CPU (or bf16 on CUDA)");

  // demo
  const auto& d = c.demo;
  check_names("demo.tasks", d.tasks, {"grounding", "ocr"}, "e.g. demo.tasks=[grounding]");
  check_names("demo.arms", d.arms, {"sft", "dpo", "perpo", "grpo"},
              "e.g. demo.arms=[sft, dpo, perpo, grpo]");
  require(d.eval_split == "val" || d.eval_split == "test", "demo.eval_split", d.eval_split,
          "must be val or test", "val while tuning, test for the reported table");
  require(d.reference == "start" || d.reference == "sampler", "demo.reference", d.reference,
          "must be start or sampler", "start: the frozen stage-1 model");
  require(d.ocr_lexicon != 1, "demo.ocr_lexicon", d.ocr_lexicon,
          "must be 0 (all words) or at least 2", "e.g. demo.ocr_lexicon=16");
  require(d.ocr_min_text_height <= d.ocr_max_text_height, "demo.ocr_min_text_height",
          d.ocr_min_text_height, "must be at most demo.ocr_max_text_height", "e.g. 0.45 and 0.55");
}

}  // namespace perpo
