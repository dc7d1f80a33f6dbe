#!/usr/bin/env python3
"""Regenerates tests/fixtures/model/qwen_vision/: a tiny random Qwen2.5-VL vision tower
(transformers' Qwen2_5_VisionTransformerPretrainedModel, eager attention, float32), its output and
the fp32 gradient of every parameter, which tests/model/qwen_vision_test.cpp compares with
perpo::Qwen2_5VisionTransformer.

    nice -n 19 /work/main/.venv/bin/python tools/make_qwen_vision_fixtures.py

The tower: depth 4 with full attention in blocks 1 and 3 (window attention in 0 and 2), hidden 32,
2 heads (head dim 16: 2-D rotary over 4 + 4 frequencies), intermediate 48, patch 14, temporal
patch 2, merge 2, out_hidden 24, window_size 84 = windows of 3 x 3 merged tokens. The images
(grid_thw in patches; merged grid = h/2 x w/2):
  pair    two images in one call: (1, 8, 12) = 4 x 6 merged and (1, 12, 8) = 6 x 4 merged. With
          3 x 3 windows both have partly filled windows and a whole padded window row or column
          that get_window_index drops (4 x 6: windows of 9, 9, 3, 3 tokens; 6 x 4: 9, 3, 9, 3).
  single  one image alone: (1, 6, 10) = 3 x 5 merged (windows of 9 and 6 tokens, and a padded
          empty row).

Outputs (about 0.9 MB):
  config.json           a whole Qwen2.5-VL config.json (Qwen2_5_VLConfig with this vision_config
                        and a tiny text_config), as transformers 4.57 writes it
  model.safetensors     the tower's weights under "visual." (the Hub key layout), stored as F16:
                        the model ran in float32 on exactly these values (rounded to fp16 before
                        the forward), so widening them to float32 gives the same model
  expected.safetensors  per case (prefix "pair." or "single."): grid_thw (I, 3) int64,
                        output (tokens, 24), grad_output (tokens, 24) (the upstream gradient g:
                        the loss is sum(output * g)) and grad.<parameter name> for every parameter
                        (float32)

pixel_values are not stored: both sides compute them from the formula in pixel_values() below
(exact in float32; the C++ test has the same function).
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import Qwen2_5_VLConfig
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model",
                   "qwen_vision")
VISION = dict(depth=4, hidden_size=32, hidden_act="silu", intermediate_size=48, num_heads=2,
              in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
              window_size=84, out_hidden_size=24, fullatt_block_indexes=[1, 3])
TEXT = dict(hidden_size=24, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, vocab_size=128)
ROW = 3 * 2 * 14 * 14  # 1176 values per patch row
CASES = {
    "pair": [(1, 8, 12, 1), (1, 12, 8, 2)],  # (t, h, w, salt)
    "single": [(1, 6, 10, 3)],
}


def pixel_values(rows, salt):
    """(rows, 1176) float32: value[r, c] = (code - 127.5) / 128 with code the top byte of
    (n * 2654435761) mod 2^32, n = salt * 1000003 + r * 1176 + c (Knuth's multiplicative hash)."""
    n = (salt * 1000003 + np.arange(rows, dtype=np.uint64)[:, None] * ROW
         + np.arange(ROW, dtype=np.uint64)[None, :])
    code = ((n * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(24)
    return torch.from_numpy((code.astype(np.float64) - 127.5) / 128.0).float()


def randomise(model):
    """Weights that make every part matter: norm weights 1 + 0.1 N, biases 0.1 N, matrices
    N / sqrt(fan_in) (attention clearly non-uniform); all rounded to fp16-representable values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or "ln_q" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
            p.copy_(p.half().float())


def run_case(model, images):
    grid_thw = torch.tensor([[t, h, w] for t, h, w, _ in images], dtype=torch.long)
    pixels = torch.cat([pixel_values(t * h * w, salt) for t, h, w, salt in images])
    # The Conv3d patch embedding (kernel = stride = patch) is one matmul over the 1176 values.
    proj = model.patch_embed.proj.weight
    assert torch.allclose(model.patch_embed(pixels), pixels @ proj.view(proj.shape[0], -1).t(),
                          atol=1e-5, rtol=0)
    model.zero_grad()
    output = model(pixels, grid_thw)
    grad_output = torch.randn_like(output)
    (output * grad_output).sum().backward()
    tensors = {"grid_thw": grid_thw, "output": output.detach(), "grad_output": grad_output}
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name
        tensors["grad." + name] = p.grad.detach().clone()
    return tensors


def main():
    assert transformers.__version__.startswith("4.57"), transformers.__version__
    torch.manual_seed(20250523)
    config = Qwen2_5_VLConfig(vision_config=VISION, text_config=TEXT)
    model = Qwen2_5_VisionTransformerPretrainedModel._from_config(
        config.vision_config, attn_implementation="eager", dtype=torch.float32)
    assert model.config._attn_implementation == "eager"
    randomise(model)
    model.train()  # no dropout in the tower; train mode only matters for autograd

    expected = {}
    for case, images in CASES.items():
        for key, tensor in run_case(model, images).items():
            expected[f"{case}.{key}"] = tensor.contiguous()
    # Images never see each other: the pair's rows of each image equal that image alone.
    first = run_case(model, CASES["pair"][:1])["output"]
    assert torch.allclose(first, expected["pair.output"][: first.shape[0]], atol=1e-6)

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        f.write(json.dumps(json.loads(config.to_json_string()), indent=2, sort_keys=True) + "\n")
    weights = {"visual." + k: v.half().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    save_file(expected, os.path.join(OUT, "expected.safetensors"), metadata={"format": "pt"})
    for name in ("model.safetensors", "expected.safetensors"):
        os.chmod(os.path.join(OUT, name), 0o644)
    for case in CASES:
        out = expected[f"{case}.output"]
        print(f"{case}: output {tuple(out.shape)}, std {out.std():.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
