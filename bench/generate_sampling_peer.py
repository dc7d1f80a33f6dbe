#!/usr/bin/env python3
"""transformers' side of bench_generate_sampling: sampled tokens/s of
LlavaForConditionalGeneration.generate(do_sample=True, num_return_sequences=N) on the benchmark's
model shape (CLIP 2 layers hidden 64, 32x32 image -> 16 image tokens; LLaMA hidden 256, 4 layers,
4 heads on 2 key/value heads, vocab 1000), a prompt of P tokens, T new tokens per answer (no early
stop: min_new_tokens = max_new_tokens). Random weights (transformers' init), fp32, CPU.

    .venv/bin/python bench/generate_sampling_peer.py --threads 2 --iterations 3
or, as `perpo bench` runs it, on the model of a config.json, on a device and dtype:
    .venv/bin/python bench/generate_sampling_peer.py --config config.json --prompt 620 \
        --answers 20 --new-tokens 16 --device cuda --dtype bf16
Prints one line: "transformers tokens_per_s <x> seconds_per_list <y> torch <v> transformers <v>
peak_memory_mb <z>" (CPU: peak resident set of the process; CUDA: torch.cuda.max_memory_allocated
over the timed calls).
"""
import argparse
import resource
import time

import torch
import transformers
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--prompt", type=int, default=600)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--config", help="config.json of the model (instead of the fixed shape)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    if args.config:
        config = LlavaConfig.from_json_file(args.config)
        config.text_config.pad_token_id = 0
        with torch.device(device):
            model = LlavaForConditionalGeneration._from_config(config, torch_dtype=dtype).eval()
        image_token, image_tokens = config.image_token_index, config.image_seq_length
        top = min(image_token, config.text_config.vocab_size)
        ids = torch.randint(3, top, (1, args.prompt), device=device)
        ids[0, 1:1 + image_tokens] = image_token
        side = config.vision_config.image_size
        pixels = torch.randn(1, 3, side, side, device=device, dtype=dtype)
    else:
        model, ids, pixels = fixed_shape(args.prompt)
    kwargs = dict(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids),
                  do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                  num_return_sequences=args.answers, max_new_tokens=args.new_tokens,
                  min_new_tokens=args.new_tokens, pad_token_id=0, eos_token_id=2)
    with torch.no_grad():
        out = model.generate(**kwargs)  # warm-up
        assert out.shape == (args.answers, args.prompt + args.new_tokens), out.shape
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(args.iterations):
            model.generate(**kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - start) / args.iterations
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    tokens = args.answers * args.new_tokens
    print(f"transformers tokens_per_s {tokens / seconds:.1f} seconds_per_list {seconds:.4f} "
          f"torch {torch.__version__} transformers {transformers.__version__} "
          f"peak_memory_mb {peak:.1f}")


def fixed_shape(prompt):
    """bench_generate_sampling's shape: model, prompt ids (1, prompt) and pixels (1, 3, 32, 32)."""
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, image_size=32, patch_size=8,
                              projection_dim=64)
    text = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=688,
                       num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                       pad_token_id=0)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=999,
                         image_seq_length=16, vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(config).eval()
    ids = torch.randint(1, 999, (1, prompt))
    ids[0, 10:26] = 999  # the image's 16 tokens
    pixels = torch.randn(1, 3, 32, 32)
    return model, ids, pixels


if __name__ == "__main__":
    main()
