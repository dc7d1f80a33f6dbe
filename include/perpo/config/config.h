// perpo's configuration: typed structs with defaults, one per section of the YAML file.
// YAML is only the storage form (config_io.h); unknown keys and wrong types are errors.
//
// Every field is listed once, in its section's visit(), with its YAML name and a comment that
// shows an example; loading, `a.b.c=v` overrides, validation messages and the commented dump of
// the resolved config are all driven by that list. To add a setting: add the member with its
// default, add one line to visit(), and (if it has constraints) a check in validate().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace perpo {

struct LoraConfig {
  bool enabled = false;   // true: train low-rank adapters only, e.g. true
  int r = 128;            // adapter rank, e.g. 128 (authors' release)
  double alpha = 256;     // scale numerator: adapters are scaled by alpha / r, e.g. 256
  double dropout = 0.05;  // dropout on the adapter input, e.g. 0.05
  std::vector<std::string> targets = {"all-linear"};  // "all-linear" or names: [q_proj, v_proj]
  bool vision = false;  // adapters on the vision tower's linear layers too, e.g. false

  template <typename V>
  void visit(V& v) {
    v.field("enabled", enabled, "train low-rank adapters instead of full weights");
    v.field("r", r, "adapter rank, e.g. 128");
    v.field("alpha", alpha, "adapter scale is alpha / r, e.g. 256");
    v.field("dropout", dropout, "dropout on the adapter input, e.g. 0.05");
    v.field("targets", targets,
            "linear layers that get adapters: [all-linear] or [q_proj, v_proj, ...]");
    v.field("vision", vision,
            "adapters on the vision tower's linear layers too (its own weights stay fixed "
            "with model.freeze_vision)");
  }
};

struct TinyModelConfig {
  // The built-in tiny LLaVA used when model.path is empty (demo, tests).
  int vision_hidden = 64;  // e.g. 64
  int vision_layers = 2;   // e.g. 2
  int vision_heads = 4;    // e.g. 4
  int image_size = 64;     // pixels per side, e.g. 64
  int patch_size = 16;     // pixels per patch side, e.g. 16 -> 16 image tokens
  int hidden = 128;        // decoder width, e.g. 128
  int layers = 2;          // decoder layers, e.g. 2
  int heads = 4;           // attention heads, e.g. 4
  int kv_heads = 2;        // key/value heads (GQA), e.g. 2
  int intermediate = 256;  // MLP width, e.g. 256

  template <typename V>
  void visit(V& v) {
    v.field("vision_hidden", vision_hidden, "vision transformer width, e.g. 64");
    v.field("vision_layers", vision_layers, "vision transformer layers, e.g. 2");
    v.field("vision_heads", vision_heads, "vision attention heads, e.g. 4");
    v.field("image_size", image_size, "input image side in pixels, e.g. 64");
    v.field("patch_size", patch_size, "patch side in pixels, e.g. 16");
    v.field("hidden", hidden, "decoder width, e.g. 128");
    v.field("layers", layers, "decoder layers, e.g. 2");
    v.field("heads", heads, "decoder attention heads, e.g. 4");
    v.field("kv_heads", kv_heads, "decoder key/value heads (grouped-query attention), e.g. 2");
    v.field("intermediate", intermediate, "decoder MLP width, e.g. 256");
  }
};

struct ModelSectionConfig {             // YAML "model:" (perpo::ModelConfig, model_config.h, is the
                                        // architecture)
  std::string path;                     // HF LLaVA / Qwen2.5-VL folder; "" = built-in tiny model
  LoraConfig lora;                      // low-rank adapters
  TinyModelConfig tiny;                 // sizes of the built-in tiny model
  bool freeze_vision = true;            // keep the vision tower fixed, e.g. true
  bool freeze_projector = false;        // keep the projector fixed, e.g. false
  bool freeze_llm = false;              // keep the decoder fixed (only sensible with LoRA off)
  bool gradient_checkpointing = false;  // recompute decoder layers in backward to save memory
  std::string attention = "auto";       // auto | sdpa | reference (model/attention.h)

  template <typename V>
  void visit(V& v) {
    v.field("path", path,
            "Hugging Face LLaVA-1.5 or Qwen2.5-VL checkpoint folder (config.json's model_type "
            "picks the family); empty = built-in tiny model");
    v.section("lora", lora, "low-rank adapters (LoRA)");
    v.section("tiny", tiny, "sizes of the built-in tiny model (used when path is empty)");
    v.field("freeze_vision", freeze_vision, "keep the vision tower fixed");
    v.field("freeze_projector", freeze_projector, "keep the projector fixed");
    v.field("freeze_llm", freeze_llm, "keep the language model fixed");
    v.field("gradient_checkpointing", gradient_checkpointing,
            "recompute each decoder layer in backward (less memory, ~30% more compute)");
    v.choice("attention", attention, {"auto", "sdpa", "reference"},
             "attention: sdpa (at::scaled_dot_product_attention) or reference (explicit "
             "matmuls); auto = sdpa with CUDA, reference on CPU; the environment variable "
             "PERPO_ATTENTION overrides it");
  }
};

struct DataConfig {
  std::string train;                    // dataset or preference-list JSONL for training
  std::string eval;                     // dataset JSONL for evaluation
  std::string format = "auto";          // auto | perpo | authors
  std::string on_bad_record = "error";  // error | skip (skipped records are counted)
  int max_prompt_tokens = 2048;         // longer prompts are an error, e.g. 2048
  int max_answer_tokens = 256;          // longer answers are truncated (and counted), e.g. 256
  bool shuffle = true;                  // shuffle training lists each epoch

  template <typename V>
  void visit(V& v) {
    v.field("train", train, "training JSONL: dataset records (sft, sample) or preference lists");
    v.field("eval", eval, "evaluation JSONL of dataset records");
    v.choice("format", format, {"auto", "perpo", "authors"},
             "list file format: auto-detect, perpo JSONL, or the authors' JSON");
    v.choice("on_bad_record", on_bad_record, {"error", "skip"},
             "stop at a bad record, or skip it (skips are counted and reported)");
    v.field("max_prompt_tokens", max_prompt_tokens, "prompt token limit, e.g. 2048");
    v.field("max_answer_tokens", max_answer_tokens,
            "answers are cut to this many tokens, e.g. 256");
    v.field("shuffle", shuffle, "shuffle training lists every epoch");
  }
};

struct TokenizerConfig {
  std::string path;  // tokenizer.model / tokenizer.json; "" = the one in <model.path>
  std::string chat_template = "auto";  // auto | vicuna_v1 (LLaVA-1.5) | plain | chatml (Qwen2.5-VL)
  std::string image_token = "<image>";  // placeholder replaced by the image features
  bool add_bos = true;                  // prepend BOS to every prompt
  bool legacy = true;  // SentencePiece splitting around added tokens: true = as LLaVA-1.5 trained
  std::string system_prompt;  // "" = the template's own (vicuna_v1: LLaVA-1.5's conv_vicuna_v1)

  template <typename V>
  void visit(V& v) {
    v.field("path", path,
            "SentencePiece model (LLaVA) or tokenizer.json (Qwen2.5-VL); empty = the one in "
            "model.path");
    v.choice("chat_template", chat_template, {"auto", "vicuna_v1", "plain", "chatml"},
             "prompt template: vicuna_v1 (LLaVA-1.5), plain, chatml (Qwen2.5-VL); auto = chatml "
             "when the tokenizer has <|im_start|>, else vicuna_v1");
    v.field("image_token", image_token,
            "image placeholder in prompts, e.g. <image> (chatml always uses <|image_pad|>)");
    v.field("add_bos", add_bos, "prepend the BOS token");
    v.field("legacy", legacy,
            "true: '▁' after <image> as LLaVA-1.5 was trained; false: as transformers' "
            "LlamaTokenizer(legacy=False) / the fast tokenizer");
    v.field("system_prompt", system_prompt,
            "system prompt of vicuna_v1; empty = LLaVA-1.5's own (\"A chat between a curious "
            "user and an artificial intelligence assistant. ...\"); plain has none");
  }
};

struct ImageConfig {
  int size = 336;              // model input side in pixels, e.g. 336
  std::string aspect = "pad";  // pad (LLaVA-1.5: pad to square with mean colour) | crop
  std::vector<double> mean = {0.48145466, 0.4578275, 0.40821073};  // CLIP mean (RGB)
  std::vector<double> std = {0.26862954, 0.26130258, 0.27577711};  // CLIP std (RGB)
  int min_pixels = 0;  // Qwen2.5-VL: smallest resized area; 0 = the checkpoint's, e.g. 3136
  int max_pixels = 0;  // Qwen2.5-VL: largest resized area; 0 = the checkpoint's, e.g. 1003520

  template <typename V>
  void visit(V& v) {
    v.field("size", size, "model input side in pixels (LLaVA), e.g. 336");
    v.choice("aspect", aspect, {"pad", "crop"},
             "pad to square with the mean colour (LLaVA-1.5), or resize + center crop");
    v.field("mean", mean, "normalisation mean per RGB channel");
    v.field("std", std, "normalisation std per RGB channel");
    v.field("min_pixels", min_pixels,
            "Qwen2.5-VL: smallest resized image area in pixels; 0 = preprocessor_config.json's "
            "(else 3136)");
    v.field("max_pixels", max_pixels,
            "Qwen2.5-VL: largest resized image area in pixels; 0 = preprocessor_config.json's "
            "(else 1003520)");
  }
};

struct SamplingConfig {
  int num_answers = 20;           // N answers per prompt, e.g. 20 (grounding) or 5 (OCR)
  double temperature = 1.0;       // e.g. 1.0
  double top_p = 1.0;             // nucleus sampling, 1 = off, e.g. 0.9
  int top_k = 0;                  // 0 = off, e.g. 50
  int max_new_tokens = 32;        // e.g. 32 for boxes, 512 for page OCR
  int lists_per_batch = 4;        // prompts decoded together, e.g. 4
  std::string output;             // preference lists JSONL; "" = <run.dir>/lists.jsonl
  bool reference_logps = true;    // compute and store ref_logps with each list
  bool unique_answers = false;    // drop repeated answers of a prompt and sample more instead
  int max_samples = 0;            // answers drawn per prompt at most with unique_answers; 0 = 4 N
  bool add_ground_truth = false;  // add the ground truth to each list as one more answer
  bool token_logps = false;       // store per-token log-probs of the sampling model (grpo)

  template <typename V>
  void visit(V& v) {
    v.field("num_answers", num_answers, "answers sampled per prompt (N), e.g. 20");
    v.field("temperature", temperature, "sampling temperature, e.g. 1.0");
    v.field("top_p", top_p, "nucleus sampling threshold; 1 = off");
    v.field("top_k", top_k, "keep the k most likely tokens; 0 = off");
    v.field("max_new_tokens", max_new_tokens, "answer length limit in tokens, e.g. 32");
    v.field("lists_per_batch", lists_per_batch, "prompts decoded together, e.g. 4");
    v.field("output", output, "preference-list JSONL to write; empty = <run.dir>/lists.jsonl");
    v.field("reference_logps", reference_logps,
            "store the sampling model's log-probs as ref_logps");
    v.field("unique_answers", unique_answers,
            "drop repeated answers of a prompt and sample again, up to max_samples draws");
    v.field("max_samples", max_samples,
            "answers drawn per prompt at most when unique_answers; 0 = 4 x num_answers");
    v.field("add_ground_truth", add_ground_truth,
            "add the ground truth to each list as one more answer (if not already sampled)");
    v.field("token_logps", token_logps,
            "store the sampling model's per-token log-probs of each answer (sample_token_logps), "
            "the old policy of loss.name grpo's importance ratios");
  }
};

struct RewardConfig {
  std::string name;                   // "" = by task (grounding: iou, ocr: ocr_edit)
  std::string box_select = "first";   // first | last | best: which box of several to score
  bool normalize_whitespace = false;  // OCR: collapse runs of whitespace before scoring
  bool lowercase = false;             // OCR / exact match: compare case-insensitively
  std::string box_format = "auto";    // auto | infer | normalized | pixels | scale_1000

  template <typename V>
  void visit(V& v) {
    v.field("name", name, "iou | giou | ocr_edit | exact_match | numeric; empty = by task");
    v.choice("box_select", box_select, {"first", "last", "best"},
             "which box to score when an answer holds several");
    v.choice("box_format", box_format, {"auto", "infer", "normalized", "pixels", "scale_1000"},
             "units of the boxes the model writes (answers read, SFT targets written): auto = "
             "the model family's (LLaVA-1.5 normalized, Qwen2.5-VL pixels of its resized "
             "image; infer without a model); infer = normalized when all four values lie in "
             "[0, 1], else pixels; scale_1000 = Qwen2-VL's 0-1000");
    v.field("normalize_whitespace", normalize_whitespace, "collapse whitespace before OCR scoring");
    v.field("lowercase", lowercase, "compare text case-insensitively");
  }
};

// loss.name grpo: group-relative policy gradients on the sampled lists (loss/objectives.h).
struct GrpoConfig {
  std::string variant = "grpo";  // grpo | dapo | dr_grpo
  double eps_low = 0.2;          // clip rho below at 1 - eps_low, e.g. 0.2
  double eps_high = 0.2;         // clip rho above at 1 + eps_high, e.g. 0.2 (DAPO: 0.28)
  double kl_beta = 0.0;          // weight of the k3 KL to the reference, e.g. 0 (off)
  double std_eps = 1e-4;         // A = (r - mean) / (std + std_eps), e.g. 1e-4
  bool drop_all_equal = false;   // DAPO's dynamic sampling: leave out lists of equal rewards
  int max_tokens = 0;            // dr_grpo's constant length normaliser; 0 = data.max_answer_tokens

  template <typename V>
  void visit(V& v) {
    v.choice("variant", variant, {"grpo", "dapo", "dr_grpo"},
             "grpo: std-normalised advantages, each answer's token mean; dapo: token mean over "
             "the list; dr_grpo: no std, a constant length normaliser");
    v.field("eps_low", eps_low, "clip the importance ratio below at 1 - eps_low, e.g. 0.2");
    v.field("eps_high", eps_high,
            "clip the importance ratio above at 1 + eps_high, e.g. 0.2 (DAPO's clip-higher: 0.28)");
    v.field("kl_beta", kl_beta, "weight of the per-token k3 KL to the reference; 0 = off");
    v.field("std_eps", std_eps, "added to the list's reward std before dividing, e.g. 1e-4");
    v.field("drop_all_equal", drop_all_equal,
            "leave out lists whose rewards are all equal (DAPO's dynamic sampling)");
    v.field("max_tokens", max_tokens,
            "dr_grpo's constant length normaliser in tokens; 0 = data.max_answer_tokens");
  }
};

struct LossConfig {
  std::string name = "perpo";     // perpo | dpo | lipo | ranking | sft | grpo
  double beta = 0.1;              // scale of the log-ratio margins, e.g. 0.1
  double gamma = 0.5;             // exponent of the reward-gap weights, e.g. 0.5
  bool length_normalize = false;  // mean instead of sum of token log-probs
  bool reference_free = false;    // drop the reference log-probs
  double nll_weight = 0.0;        // weight of an added SFT term, e.g. 0 (off)

  // Where reference log-probs come from: auto | precompute | live | sampler (see visit()).
  std::string reference = "auto";
  GrpoConfig grpo;

  template <typename V>
  void visit(V& v) {
    v.choice("name", name, {"perpo", "dpo", "lipo", "ranking", "sft", "grpo"},
             "training objective");
    v.field("beta", beta, "scale of the policy/reference log-ratios, e.g. 0.1");
    v.field("gamma", gamma, "reward-gap exponent of the pair weights, e.g. 0.5");
    v.field("length_normalize", length_normalize, "average token log-probs instead of summing");
    v.field("reference_free", reference_free, "ignore reference log-probs");
    v.field("nll_weight", nll_weight, "weight of an added SFT (NLL) term; 0 = off");
    v.choice("reference", reference, {"auto", "precompute", "live", "sampler"},
             "reference log-probs: auto = the lists' ref_logps, else computed once with the "
             "initial weights and cached in the run folder; precompute = always that pre-pass; "
             "live = a frozen copy of the initial model scores every step (twice the memory; "
             "re-sampled lists once); sampler = as auto, and in online mode each re-sampled list "
             "is scored by the policy that sampled it (the reference follows the policy)");
    v.section("grpo", grpo, "loss.name grpo: group-relative policy optimisation");
  }
};

struct OptimConfig {
  double lr = 5e-6;                 // peak learning rate, e.g. 5e-6
  double weight_decay = 0.0;        // AdamW decoupled decay, e.g. 0
  double beta1 = 0.9;               // AdamW, e.g. 0.9
  double beta2 = 0.999;             // AdamW, e.g. 0.999
  double eps = 1e-8;                // AdamW, e.g. 1e-8
  std::string schedule = "cosine";  // cosine | linear | constant
  int warmup_steps = 0;             // linear warmup, e.g. 0
  double min_lr_ratio = 0.0;        // final lr = lr * min_lr_ratio, e.g. 0
  double max_grad_norm = 1.0;       // clip the global gradient norm; 0 = off

  // Parameter groups: the vision tower and the projector may take their own lr / decay.
  double vision_lr = 0.0;                // 0 = optim.lr, e.g. 2e-6
  double projector_lr = 0.0;             // 0 = optim.lr, e.g. 2e-5
  double vision_weight_decay = -1.0;     // < 0 = optim.weight_decay
  double projector_weight_decay = -1.0;  // < 0 = optim.weight_decay

  template <typename V>
  void visit(V& v) {
    v.field("lr", lr, "peak learning rate, e.g. 5e-6");
    v.field("weight_decay", weight_decay, "AdamW decoupled weight decay, e.g. 0");
    v.field("beta1", beta1, "AdamW first-moment decay, e.g. 0.9");
    v.field("beta2", beta2, "AdamW second-moment decay, e.g. 0.999");
    v.field("eps", eps, "AdamW epsilon, e.g. 1e-8");
    v.choice("schedule", schedule, {"cosine", "linear", "constant"}, "learning-rate schedule");
    v.field("warmup_steps", warmup_steps, "linear warmup steps, e.g. 0");
    v.field("min_lr_ratio", min_lr_ratio, "final lr as a fraction of lr, e.g. 0");
    v.field("max_grad_norm", max_grad_norm, "clip the global gradient norm; 0 = off");
    v.field("vision_lr", vision_lr, "peak lr of the vision tower; 0 = optim.lr");
    v.field("projector_lr", projector_lr, "peak lr of the projector; 0 = optim.lr");
    v.field("vision_weight_decay", vision_weight_decay,
            "weight decay of the vision tower; negative = optim.weight_decay");
    v.field("projector_weight_decay", projector_weight_decay,
            "weight decay of the projector; negative = optim.weight_decay");
  }
};

struct TrainConfig {
  int epochs = 1;                 // passes over the lists, e.g. 1
  int max_steps = 0;              // stop after this many optimizer steps; 0 = by epochs
  int lists_per_step = 2;         // lists per micro-batch (per process), e.g. 2
  int grad_accum = 1;             // micro-batches per optimizer step, e.g. 1
  int log_every = 1;              // steps between metrics.jsonl lines (and host reads), e.g. 1
  int checkpoint_every = 0;       // steps between checkpoints; 0 = only at the end
  int keep_checkpoints = 2;       // newest checkpoints kept, e.g. 2
  int online_resample_every = 0;  // online mode: re-sample lists every K steps; 0 = offline
  int eval_every = 0;             // steps between evaluations on data.eval; 0 = off
  int max_nonfinite_steps = 5;    // stop after this many non-finite steps in a row, e.g. 5

  template <typename V>
  void visit(V& v) {
    v.field("epochs", epochs, "passes over the training lists, e.g. 1");
    v.field("max_steps", max_steps, "stop after this many optimizer steps; 0 = run all epochs");
    v.field("lists_per_step", lists_per_step,
            "lists (or SFT records) per micro-batch; an optimizer step takes lists_per_step x "
            "grad_accum, e.g. 2");
    v.field("grad_accum", grad_accum, "micro-batches accumulated per optimizer step, e.g. 1");
    v.field("log_every", log_every,
            "optimizer steps between metrics.jsonl lines, e.g. 1; the steps between are not read "
            "to the host (on a GPU, 10 or more keep it busy)");
    v.field("checkpoint_every", checkpoint_every, "steps between checkpoints; 0 = at the end only");
    v.field("keep_checkpoints", keep_checkpoints, "newest checkpoints kept on disk, e.g. 2");
    v.field("online_resample_every", online_resample_every,
            "online mode: re-sample lists from the policy every K steps; 0 = offline");
    v.field("eval_every", eval_every, "steps between evaluations on data.eval; 0 = off");
    v.field("max_nonfinite_steps", max_nonfinite_steps,
            "non-finite loss/gradient steps are skipped; stop after this many in a row, e.g. 5");
  }
};

struct EvalConfig {
  int max_new_tokens = 32;     // greedy answer length limit, e.g. 32
  int batch_size = 8;          // prompts decoded together, e.g. 8
  double iou_threshold = 0.5;  // Acc@t threshold, e.g. 0.5
  int limit = 0;               // evaluate only the first K records; 0 = all

  template <typename V>
  void visit(V& v) {
    v.field("max_new_tokens", max_new_tokens, "greedy answer length limit, e.g. 32");
    v.field("batch_size", batch_size, "prompts decoded together, e.g. 8");
    v.field("iou_threshold", iou_threshold, "IoU counted as a hit for acc@t, e.g. 0.5");
    v.field("limit", limit, "evaluate only the first K records; 0 = all");
  }
};

struct DistributedConfig {
  std::string backend = "auto";  // auto (nccl on CUDA, gloo on CPU) | nccl | gloo
  int timeout_s = 1800;          // collective timeout in seconds, e.g. 1800
  int zero = 0;                  // 0 | 1: shard AdamW's state (moments, fp32 masters) over ranks
  double bucket_mb = 25;         // gradient all-reduce bucket size in MB (DDP's bucket_cap_mb)
  bool overlap = true;           // all-reduce buckets during the step's last backward
  // ZeRO-1: reduce-scatter the gradients and all-gather the weights: auto (NCCL only) | true |
  // false
  std::string reduce_scatter = "auto";

  template <typename V>
  void visit(V& v) {
    v.choice("backend", backend, {"auto", "nccl", "gloo"},
             "c10d backend: auto = nccl on CUDA, gloo on CPU");
    v.field("timeout_s", timeout_s, "collective operation timeout in seconds, e.g. 1800");
    v.field("zero", zero,
            "ZeRO stage: 0 = every rank keeps AdamW's whole state, 1 = each rank keeps its "
            "share (moments, fp32 masters) and sends its updated weights to the others");
    v.field("bucket_mb", bucket_mb,
            "gradients are all-reduced in flattened buckets of about this many MB (PyTorch "
            "DDP's bucket_cap_mb), e.g. 25");
    v.field("overlap", overlap,
            "all-reduce each bucket as soon as the step's last backward has produced its "
            "gradients, while the backward goes on (false: all buckets after the backward)");
    v.choice("reduce_scatter", reduce_scatter, {"auto", "true", "false"},
             "zero 1: reduce-scatter the gradients and all-gather the updated weights (true, "
             "where the backend can), or all-reduce the gradients and the owners broadcast "
             "their weights (false); auto = true on nccl, false on gloo (whose reduce-scatter "
             "is slower than its all-reduce: docs/data-parallel.md)");
  }
};

struct RunConfig {
  std::string dir = "runs/perpo";  // run directory (config, logs, metrics, checkpoints)
  std::uint64_t seed = 42;         // seeds every RNG, e.g. 42
  std::string device = "cpu";      // cpu | cuda | cuda:N
  std::string dtype = "fp32";      // fp32 | bf16 | fp16
  int threads = 0;                 // CPU threads for LibTorch; 0 = auto (runtime.h set_threads)
  std::string log_level = "info";  // trace | debug | info | warn | error
  bool tensorboard = false;        // also write TensorBoard event files, e.g. true

  template <typename V>
  void visit(V& v) {
    v.field("dir", dir, "run directory: config.yaml, log.txt, metrics.jsonl, checkpoints/");
    v.field("seed", seed, "seeds every random number generator, e.g. 42");
    v.field("device", device, "cpu, cuda or cuda:N");
    v.choice("dtype", dtype, {"fp32", "bf16", "fp16"}, "compute dtype: fp32 (CPU) or bf16 (CUDA)");
    v.field("threads", threads,
            "LibTorch CPU threads; 0 = auto: the cores other work leaves free at the start "
            "(OMP_NUM_THREADS when set)");
    v.choice("log_level", log_level, {"trace", "debug", "info", "warn", "error"}, "log verbosity");
    v.field("tensorboard", tensorboard,
            "also write TensorBoard event files into run.dir/tensorboard");
  }
};

// `perpo demo`'s plan of one chain (one tiny model): the synthetic splits, stage 1 (SFT from
// scratch) and the stage-2 arms, which the demo turns into ordinary configs of `perpo train`,
// `perpo sample` and `perpo eval` (the rest of the chain's config: model.tiny, tokenizer, image,
// run, ...). The chains' values, and why, are in configs/demo/*.yaml; other commands ignore it.
struct DemoArmLrConfig {
  double sft = 1.5e-4;  // e.g. 1.5e-4
  double dpo = 5e-5;    // e.g. 5e-5
  double perpo = 1e-4;  // e.g. 1e-4
  double grpo = 2e-4;   // e.g. 2e-4

  template <typename V>
  void visit(V& v) {
    v.field("sft", sft, "learning rate of the sft arm, e.g. 1.5e-4");
    v.field("dpo", dpo, "learning rate of the dpo arm, e.g. 5e-5");
    v.field("perpo", perpo, "learning rate of the perpo arm, e.g. 1e-4");
    v.field("grpo", grpo, "learning rate of the grpo arm, e.g. 2e-4");
  }
};

struct DemoConfig {
  std::vector<std::string> tasks = {"grounding"};  // the tasks this chain's model learns
  int sft_records = 2048;                          // stage-1 prompts per task
  int pref_records = 2048;                         // fresh stage-2 prompts per task
  int val_records = 500;              // validation records per task (settings are chosen there)
  int test_records = 2000;            // test records per task (the reported table)
  int max_shapes = 1;                 // grounding: 1 .. max_shapes shapes per image
  int ocr_max_words = 2;              // OCR: 1 .. ocr_max_words words per line
  int ocr_lexicon = 0;                // OCR: words drawn from this many (0 = all)
  double ocr_min_text_height = 0.26;  // OCR font height, share of the image side
  double ocr_max_text_height = 0.36;
  double ocr_inverted = 0.3;        // OCR: share of light-on-dark lines
  int vocab_size = 160;             // tokenizer pieces (trained on the sft texts), at most
  std::string eval_split = "test";  // val while tuning, test for the reported table
  int sft_steps = 1500;             // stage 1
  int sft_batch = 32;
  double sft_lr = 2e-3;
  std::vector<std::string> arms = {"sft", "dpo", "perpo", "grpo"};  // stage 2, from stage 1
  int pref_steps = 500;                                             // steps of every arm
  int lists_per_step = 8;  // lists (records for sft) per arm step
  int answers = 20;        // N sampled answers per list
  bool ground_truth_in_list = true;
  int resample_every = 25;          // online re-sampling period of dpo / perpo; 0 = offline lists
  double temperature = 0.7;         // sampling temperature of the lists
  std::string reference = "start";  // start (frozen stage-1 model) | sampler
  double beta = 0.1;
  double gamma = 0.5;
  double warmup_share = 0.05;  // the arms' lr warmup as a share of pref_steps
  DemoArmLrConfig arm_lr;
  int curve_points = 5;     // validation points during each arm
  int curve_records = 200;  // records per task of that validation subset

  template <typename V>
  void visit(V& v) {
    v.field("tasks", tasks, "tasks this chain's one model learns: [grounding], [ocr] or both");
    v.field("sft_records", sft_records, "stage-1 (SFT) prompts per task, e.g. 2048");
    v.field("pref_records", pref_records, "fresh stage-2 prompts per task, e.g. 2048");
    v.field("val_records", val_records, "validation records per task, e.g. 500");
    v.field("test_records", test_records, "test records per task, e.g. 2000");
    v.field("max_shapes", max_shapes, "grounding: 1 .. max_shapes shapes per image, e.g. 1");
    v.field("ocr_max_words", ocr_max_words, "OCR: 1 .. ocr_max_words words per line, e.g. 1");
    v.field("ocr_lexicon", ocr_lexicon, "OCR: words drawn from the first K of 140; 0 = all");
    v.field("ocr_min_text_height", ocr_min_text_height,
            "OCR: smallest font height as a share of the image side, e.g. 0.45");
    v.field("ocr_max_text_height", ocr_max_text_height,
            "OCR: largest font height as a share of the image side, e.g. 0.55");
    v.field("ocr_inverted", ocr_inverted, "OCR: share of light-on-dark lines, e.g. 0");
    v.field("vocab_size", vocab_size, "tokenizer pieces at most (trained on the sft texts)");
    v.choice("eval_split", eval_split, {"val", "test"},
             "split of the final evaluation: val while tuning, test for the table");
    v.field("sft_steps", sft_steps, "stage-1 steps (SFT from scratch), e.g. 1500");
    v.field("sft_batch", sft_batch, "stage-1 records per step, e.g. 32");
    v.field("sft_lr", sft_lr, "stage-1 learning rate, e.g. 2e-3");
    v.field("arms", arms, "stage-2 arms, each from the stage-1 model: [sft, dpo, perpo, grpo]");
    v.field("pref_steps", pref_steps, "steps of every arm, e.g. 500");
    v.field("lists_per_step", lists_per_step, "lists (sft: records) per arm step, e.g. 8");
    v.field("answers", answers, "N sampled answers per list, e.g. 20");
    v.field("ground_truth_in_list", ground_truth_in_list,
            "add the ground truth to every list (reward 1)");
    v.field("resample_every", resample_every,
            "dpo / perpo / grpo re-sample their lists from the policy every K steps; 0 = offline");
    v.field("temperature", temperature, "sampling temperature of the lists, e.g. 0.7");
    v.choice("reference", reference, {"start", "sampler"},
             "the arms' reference: start (frozen stage-1 model) or sampler (loss.reference)");
    v.field("beta", beta, "loss.beta of dpo and perpo, e.g. 0.1");
    v.field("gamma", gamma, "loss.gamma of perpo, e.g. 0.5");
    v.field("warmup_share", warmup_share, "the arms' lr warmup as a share of pref_steps");
    v.section("arm_lr", arm_lr, "each arm's learning rate");
    v.field("curve_points", curve_points, "validation points during each arm, e.g. 5; 0 = none");
    v.field("curve_records", curve_records, "records per task of that validation, e.g. 200");
  }
};

struct Config {
  ModelSectionConfig model;
  DataConfig data;
  TokenizerConfig tokenizer;
  ImageConfig image;
  SamplingConfig sampling;
  RewardConfig reward;
  LossConfig loss;
  OptimConfig optim;
  TrainConfig train;
  EvalConfig eval;
  DistributedConfig distributed;
  RunConfig run;
  DemoConfig demo;

  template <typename V>
  void visit(V& v) {
    v.section("model", model, "the multimodal LLM");
    v.section("data", data, "datasets and preference lists");
    v.section("tokenizer", tokenizer, "SentencePiece tokenizer and chat template");
    v.section("image", image, "image preprocessing");
    v.section("sampling", sampling, "perpo sample: answers per prompt and decoding");
    v.section("reward", reward, "discriminative reward");
    v.section("loss", loss, "training objective");
    v.section("optim", optim, "AdamW and learning-rate schedule");
    v.section("train", train, "training loop");
    v.section("eval", eval, "evaluation");
    v.section("distributed", distributed, "data-parallel training (torchrun-style env vars)");
    v.section("run", run, "run directory, seed, device");
    v.section("demo", demo, "perpo demo: the plan of one chain (configs/demo/)");
  }
};

}  // namespace perpo
