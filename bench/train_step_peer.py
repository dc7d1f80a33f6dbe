#!/usr/bin/env python3
"""The authors' computation of one PerPO training step, for bench_train_step to compare against.

As their released trainer does it: each of the N answers of a list is a full sequence (image +
prompt + answer), so the image and the prompt are processed N times; the reference model runs the
same N sequences every step (a live frozen copy, no gradient); the loss is the reward-gap weighted
listwise logistic loss; then backward and an AdamW step. Same model shape and thread count as the
C++ side (see bench/train_step.cpp), transformers' LlavaForConditionalGeneration in fp32, eager
attention off (sdpa, transformers' default).

  python bench/train_step_peer.py --shape bench --threads 2 --iterations 3
or, as `perpo bench` runs it, on the model of a config.json (its vision tower frozen, as perpo bench
trains), on a device and dtype:
  python bench/train_step_peer.py --config config.json --prompt 620 --answers 20 \
      --answer-tokens 15 --device cuda --dtype bf16 --freeze-vision
prints one line:  peer lists_per_s=<float> s_per_list=<float> cpu_s_per_list=<float>
peak_memory_mb=<float> (CPU: peak resident set of the process; CUDA: torch.cuda.max_memory_allocated
over the timed steps).
"""
import argparse
import copy
import resource
import time

import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

SHAPES = {
    # name: (vision image size, patch, prompt tokens P, answers N, answer tokens T)
    "bench": (32, 8, 600, 20, 15),
    "image576": (336, 14, 620, 20, 15),
}
VOCAB = 1000
IMAGE_TOKEN = 999


def build(image_size, patch):
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                              num_attention_heads=4, image_size=image_size, patch_size=patch)
    text = LlamaConfig(vocab_size=VOCAB, hidden_size=256, intermediate_size=688,
                       num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=2048)
    image_tokens = (image_size // patch) ** 2
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN,
                         image_seq_length=image_tokens)
    return LlavaForConditionalGeneration(config), image_tokens


def build_from_config(path, device, dtype):
    """transformers' model of a config.json written by perpo (model_config_json), built on `device`
    in `dtype` directly (random weights), and its number of image tokens."""
    config = LlavaConfig.from_json_file(path)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, torch_dtype=dtype)
    return model, config.image_seq_length


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def answer_logps(model, ids, pixels, prompt_len):
    logits = model(input_ids=ids, pixel_values=pixels).logits  # (N, P + T, V)
    logps = torch.log_softmax(logits[:, prompt_len - 1:-1].float(), -1)  # (N, T, V)
    return logps.gather(-1, ids[:, prompt_len:].unsqueeze(-1)).squeeze(-1).sum(-1)  # (N)


def perpo_loss(policy, reference, rewards, beta=0.1, gamma=0.5):
    s = policy - reference  # (N)
    gap = rewards[:, None] - rewards[None, :]  # (N, N)
    better = gap > 0
    w = torch.where(better, gap.abs().pow(gamma), torch.zeros_like(gap))
    w = w / w.sum().clamp_min(1e-12)
    return (w * F.softplus(-beta * (s[:, None] - s[None, :]))).sum()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="bench", choices=sorted(SHAPES))
    parser.add_argument("--config", help="config.json of the model (instead of --shape)")
    parser.add_argument("--prompt", type=int, default=620, help="prompt tokens P (--config)")
    parser.add_argument("--answers", type=int, default=20, help="answers N (--config)")
    parser.add_argument("--answer-tokens", type=int, default=15, help="tokens T (--config)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--freeze-vision", action="store_true", help="vision tower not trained")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="recompute each decoder layer in backward (the authors' 7B runs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    if args.config:
        policy, image_tokens = build_from_config(args.config, device, dtype)
        image_token, vocab = policy.config.image_token_index, policy.config.text_config.vocab_size
        image_size = policy.config.vision_config.image_size
        P, N, T = args.prompt, args.answers, args.answer_tokens
        first_image = 1
    else:
        image_size, patch, P, N, T = SHAPES[args.shape]
        policy, image_tokens = build(image_size, patch)
        image_token, vocab, first_image = IMAGE_TOKEN, VOCAB, 10
    if args.freeze_vision:
        for name, parameter in policy.named_parameters():
            if "vision_tower" in name:
                parameter.requires_grad_(False)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    if args.gradient_checkpointing:
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy.train()
    optim = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-5,
                              weight_decay=0.0)

    top = min(vocab, image_token)
    prompt = torch.randint(3, top, (P,), device=device)
    prompt[first_image:first_image + image_tokens] = image_token
    answers = torch.randint(3, top, (N, T), device=device)
    ids = torch.cat([prompt.expand(N, P), answers], 1)  # (N, P + T): the prompt N times
    pixels = torch.randn(1, 3, image_size, image_size, device=device, dtype=dtype)
    pixels = pixels.expand(N, -1, -1, -1).contiguous()  # the image N times
    rewards = torch.rand(N, device=device)

    def step():
        with torch.no_grad():
            ref = answer_logps(reference, ids, pixels, P)
        loss = perpo_loss(answer_logps(policy, ids, pixels, P), ref, rewards)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)

    step()  # warm-up
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.iterations):
        step()
    synchronize(device)
    per_list = (time.perf_counter() - start) / args.iterations
    cpu_per_list = (time.process_time() - cpu_start) / args.iterations
    print(f"peer lists_per_s={1.0 / per_list:.4f} s_per_list={per_list:.4f} "
          f"cpu_s_per_list={cpu_per_list:.4f} peak_memory_mb={peak_memory_mb(device):.1f}",
          flush=True)


if __name__ == "__main__":
    main()
