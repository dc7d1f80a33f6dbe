// validate(): value ranges and combinations, each failure naming the key and how to fix it.
#include <algorithm>
#include <cmath>

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

}  // namespace

void validate(const Config& c) {
  // model
  const auto& lora = c.model.lora;
  require(lora.r > 0, "model.lora.r", lora.r, "must be > 0", "e.g. model.lora.r=128");
  require(lora.alpha > 0, "model.lora.alpha", lora.alpha, "must be > 0",
          "e.g. model.lora.alpha=256");
  require(lora.dropout >= 0 && lora.dropout < 1, "model.lora.dropout", lora.dropout,
          "must be in [0, 1)", "e.g. model.lora.dropout=0.05");
  require(!lora.targets.empty(), "model.lora.targets", "[]", "must name at least one layer",
          "use [all-linear] or e.g. [q_proj, v_proj]");
  const auto& t = c.model.tiny;
  for (auto [key, value] : {std::pair{"model.tiny.vision_hidden", t.vision_hidden},
                            {"model.tiny.vision_layers", t.vision_layers},
                            {"model.tiny.vision_heads", t.vision_heads},
                            {"model.tiny.image_size", t.image_size},
                            {"model.tiny.patch_size", t.patch_size},
                            {"model.tiny.hidden", t.hidden},
                            {"model.tiny.layers", t.layers},
                            {"model.tiny.heads", t.heads},
                            {"model.tiny.kv_heads", t.kv_heads},
                            {"model.tiny.intermediate", t.intermediate}}) {
    require(value > 0, key, value, "must be > 0", "sizes of the tiny model are positive integers");
  }
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

  // data
  require(c.data.max_prompt_tokens > 0, "data.max_prompt_tokens", c.data.max_prompt_tokens,
          "must be > 0", "e.g. data.max_prompt_tokens=2048");
  require(c.data.max_answer_tokens > 0, "data.max_answer_tokens", c.data.max_answer_tokens,
          "must be > 0", "e.g. data.max_answer_tokens=256");
  for (const auto& task : c.data.synthetic.tasks) {
    require(task == "grounding" || task == "ocr", "data.synthetic.tasks", task,
            "holds an unknown task", "use grounding and/or ocr");
  }
  require(!c.data.synthetic.tasks.empty(), "data.synthetic.tasks", "[]", "must name a task",
          "e.g. data.synthetic.tasks=[grounding]");
  require(c.data.synthetic.train_records > 0, "data.synthetic.train_records",
          c.data.synthetic.train_records, "must be > 0", "e.g. 256");
  require(c.data.synthetic.eval_records > 0, "data.synthetic.eval_records",
          c.data.synthetic.eval_records, "must be > 0", "e.g. 64");

  // tokenizer
  require(c.tokenizer.chat_template != "plain" || c.tokenizer.system_prompt.empty(),
          "tokenizer.system_prompt", "\"" + c.tokenizer.system_prompt + "\"",
          "is set but the plain template has no system prompt",
          "use tokenizer.chat_template=vicuna_v1, or leave tokenizer.system_prompt empty");

  // image
  require(c.image.size > 0, "image.size", c.image.size, "must be > 0", "e.g. image.size=336");
  require(c.image.mean.size() == 3, "image.mean", c.image.mean.size(),
          "must hold 3 values (R, G, B)", "e.g. image.mean=[0.481, 0.458, 0.408]");
  require(c.image.std.size() == 3, "image.std", c.image.std.size(), "must hold 3 values (R, G, B)",
          "e.g. image.std=[0.269, 0.261, 0.276]");
  for (double s : c.image.std) {
    require(s > 0, "image.std", s, "must be > 0 in every channel", "e.g. 0.27");
  }

  // sampling
  const auto& s = c.sampling;
  require(s.num_answers >= 2, "sampling.num_answers", s.num_answers,
          "must be >= 2: a preference list needs at least two answers",
          "e.g. 20 (grounding), 5 (OCR)");
  require(s.temperature >= 0, "sampling.temperature", s.temperature, "must be >= 0",
          "0 is greedy; the authors sample at 1.0");
  require(s.top_p > 0 && s.top_p <= 1, "sampling.top_p", s.top_p, "must be in (0, 1]",
          "1 turns nucleus sampling off");
  require(s.top_k >= 0, "sampling.top_k", s.top_k, "must be >= 0", "0 turns top-k off");
  require(s.max_new_tokens >= 1, "sampling.max_new_tokens", s.max_new_tokens, "must be >= 1",
          "e.g. 32 for boxes");
  require(s.lists_per_batch >= 1, "sampling.lists_per_batch", s.lists_per_batch, "must be >= 1",
          "e.g. 4");
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

  // loss
  require(c.loss.beta > 0, "loss.beta", c.loss.beta, "must be > 0", "the authors use 0.1");
  require(c.loss.gamma >= 0, "loss.gamma", c.loss.gamma, "must be >= 0",
          "the authors use 0.5; 0 weighs every pair with a reward gap equally");
  require(c.loss.nll_weight >= 0, "loss.nll_weight", c.loss.nll_weight, "must be >= 0",
          "0 turns the SFT term off");

  // optim
  const auto& o = c.optim;
  require(o.lr > 0 && std::isfinite(o.lr), "optim.lr", o.lr, "must be a positive number",
          "the authors use 5e-6 with LoRA");
  require(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "must be >= 0", "e.g. 0");
  require(o.beta1 >= 0 && o.beta1 < 1, "optim.beta1", o.beta1, "must be in [0, 1)", "e.g. 0.9");
  require(o.beta2 >= 0 && o.beta2 < 1, "optim.beta2", o.beta2, "must be in [0, 1)", "e.g. 0.999");
  require(o.eps > 0, "optim.eps", o.eps, "must be > 0", "e.g. 1e-8");
  require(o.warmup_steps >= 0, "optim.warmup_steps", o.warmup_steps, "must be >= 0", "e.g. 0");
  require(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "optim.min_lr_ratio", o.min_lr_ratio,
          "must be in [0, 1]", "e.g. 0");
  require(o.max_grad_norm >= 0, "optim.max_grad_norm", o.max_grad_norm, "must be >= 0",
          "0 turns clipping off; the authors use 1.0");

  require(o.vision_lr >= 0 && std::isfinite(o.vision_lr), "optim.vision_lr", o.vision_lr,
          "must be >= 0", "0 = the same as optim.lr");
  require(o.projector_lr >= 0 && std::isfinite(o.projector_lr), "optim.projector_lr",
          o.projector_lr, "must be >= 0", "0 = the same as optim.lr");

  // train
  const auto& tr = c.train;
  require(tr.epochs >= 1, "train.epochs", tr.epochs, "must be >= 1", "e.g. 1");
  require(tr.max_steps >= 0, "train.max_steps", tr.max_steps, "must be >= 0", "0 = run all epochs");
  require(tr.lists_per_step >= 1, "train.lists_per_step", tr.lists_per_step, "must be >= 1",
          "e.g. 2");
  require(tr.grad_accum >= 1, "train.grad_accum", tr.grad_accum, "must be >= 1", "e.g. 1");
  require(tr.log_every >= 1, "train.log_every", tr.log_every, "must be >= 1", "e.g. 1");
  require(tr.checkpoint_every >= 0, "train.checkpoint_every", tr.checkpoint_every, "must be >= 0",
          "0 = only at the end");
  require(tr.keep_checkpoints >= 1, "train.keep_checkpoints", tr.keep_checkpoints, "must be >= 1",
          "e.g. 2");
  require(tr.online_resample_every >= 0, "train.online_resample_every", tr.online_resample_every,
          "must be >= 0", "0 = offline training on fixed lists");

  require(tr.eval_every >= 0, "train.eval_every", tr.eval_every, "must be >= 0", "0 = off");
  require(tr.max_nonfinite_steps >= 1, "train.max_nonfinite_steps", tr.max_nonfinite_steps,
          "must be >= 1", "e.g. 5");

  // eval
  require(c.eval.max_new_tokens >= 1, "eval.max_new_tokens", c.eval.max_new_tokens, "must be >= 1",
          "e.g. 32");
  require(c.eval.batch_size >= 1, "eval.batch_size", c.eval.batch_size, "must be >= 1", "e.g. 8");
  require(c.eval.iou_threshold > 0 && c.eval.iou_threshold <= 1, "eval.iou_threshold",
          c.eval.iou_threshold, "must be in (0, 1]", "the paper reports acc@0.5");
  require(c.eval.limit >= 0, "eval.limit", c.eval.limit, "must be >= 0", "0 = all records");

  // distributed
  require(c.distributed.timeout_s > 0, "distributed.timeout_s", c.distributed.timeout_s,
          "must be > 0", "e.g. 1800");
  bool on_cuda = starts_with(c.run.device, "cuda");
  require(c.distributed.backend != "nccl" || on_cuda, "distributed.backend", c.distributed.backend,
          "nccl needs run.device=cuda", "use gloo (or auto) on CPU");

  // run
  require(!c.run.dir.empty(), "run.dir", "\"\"", "must name a folder", "e.g. run.dir=runs/demo");
  require(is_device_text(c.run.device), "run.device", c.run.device, "must be cpu, cuda or cuda:N",
          "e.g. run.device=cuda:0");
  require(c.run.dtype != "fp16" || on_cuda, "run.dtype", c.run.dtype,
          "fp16 is only supported on CUDA", "use run.dtype=fp32 on CPU (or bf16 on CUDA)");
  require(c.run.threads >= 0, "run.threads", c.run.threads, "must be >= 0",
          "0 = LibTorch's default");
}

}  // namespace perpo
