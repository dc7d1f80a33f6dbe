#!/usr/bin/env python3
"""The authors' computation of one PerPO training step, for bench_train_step to compare against.

As their released trainer does it: each of the N answers of a list is a full sequence (image +
prompt + answer), so the image and the prompt are processed N times; the reference model runs the
same N sequences every step (a live frozen copy, no gradient); the loss is the reward-gap weighted
listwise logistic loss; then backward and an AdamW step. Same model shape and thread count as the
C++ side (see bench/train_step.cpp), transformers' LlavaForConditionalGeneration in fp32, eager
attention off (sdpa, transformers' default).

  python bench/train_step_peer.py --shape bench --threads 2 --iterations 3
prints one line:  peer lists_per_s=<float> s_per_list=<float>
"""
import argparse
import copy
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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image_size, patch, P, N, T = SHAPES[args.shape]
    policy, image_tokens = build(image_size, patch)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    policy.train()
    optim = torch.optim.AdamW(policy.parameters(), lr=1e-5, weight_decay=0.0)

    prompt = torch.randint(1, IMAGE_TOKEN, (P,))
    prompt[10:10 + image_tokens] = IMAGE_TOKEN
    answers = torch.randint(1, IMAGE_TOKEN, (N, T))
    ids = torch.cat([prompt.expand(N, P), answers], 1)  # (N, P + T): the prompt N times
    pixels = torch.randn(1, 3, image_size, image_size).expand(N, -1, -1, -1).contiguous()
    rewards = torch.rand(N)

    def step():
        with torch.no_grad():
            ref = answer_logps(reference, ids, pixels, P)
        loss = perpo_loss(answer_logps(policy, ids, pixels, P), ref, rewards)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.iterations):
        step()
    per_list = (time.perf_counter() - start) / args.iterations
    print(f"peer lists_per_s={1.0 / per_list:.4f} s_per_list={per_list:.4f}", flush=True)


if __name__ == "__main__":
    main()
