#!/usr/bin/env python3
"""Regenerates tests/fixtures/model/qwen2_5_vl/{batch,tied}/: two tiny random Qwen2.5-VL models
(transformers' Qwen2_5_VLForConditionalGeneration, eager attention, float32) with their mRoPE
position ids, logits, answer log-probs, fp32 gradients and greedy generations, which
tests/model/qwen2_5_vl_test.cpp compares with perpo::Qwen2_5VLModel.

    nice -n 19 /work/main/.venv/bin/python tools/make_qwen2_5_vl_fixtures.py

The models (vocab 160; image_token_id 150, vision_start 148, vision_end 149, video 151):
  batch  text: 2 layers, hidden 64, 4 heads of 16 (8 rotary frequencies), 2 key/value heads,
         mrope_section [2, 3, 3], rope_theta 100, untied lm_head. Vision: depth 2, block 0 window
         attention (window_size 84 = 3 x 3 merged tokens), block 1 full attention.
         Row 0: text, image (1, 8, 12) = 4 x 6 merged tokens, text, image (1, 6, 10) = 3 x 5, text
         (two images of different sizes, windows partly filled). Row 1: LEFT padded, text, image
         (1, 8, 8) = 4 x 4, text.
  tied   text: 1 layer, hidden 48, 6 heads of 8 (4 frequencies), 2 key/value heads,
         mrope_section [1, 1, 2], rope_theta 1000, tie_word_embeddings. Vision: depth 1 (full
         attention). One row: text, image (1, 4, 10) = 2 x 5 merged, text.
The small rope_theta values make every frequency turn within the sequence, so a wrong section
or position row changes the logits.

Outputs per model (about 0.5 MB each):
  config.json           as transformers 4.57 writes it
  model.safetensors     every weight under the Hub's names (visual.*, model.*, lm_head.weight
                        when untied), stored as F16: the model ran in float32 on exactly these
                        values (rounded to fp16 first), so widening them gives the same model
  expected.safetensors  input_ids (B, T), attention_mask (B, T), image_grid_thw (I, 3),
                        image_salts (I,) (pixel_values of image i: pixel_values(rows, salt_i) of
                        make_qwen_vision_fixtures.py, computed by both sides),
                        position_ids (3, B, T) and rope_deltas (B,) of get_rope_index,
                        logits (B, T, V), answer_mask (B, T) (the answer tokens: the last ones of
                        each row) and answer_logps (B, T): log p(token t | tokens < t) at the
                        answer tokens, 0 elsewhere,
                        grad_logits (B, T, V) F16 (g: the loss is sum(logits * g); 0 at padding)
                        and grad.<Hub name> for every parameter (float32; a tied head's gradient
                        is in model.embed_tokens.weight; "batch" leaves out the patch embedding's,
                        150 kB, which "tied" holds),
                        generated_batch (B, 6): generate(do_sample=False, max_new_tokens=6) on
                        the whole (left padded) batch, generated_batch_logits (B, 6, V) the
                        logits of each step (greedy: no logits processor); generated_first (1, 6):
                        the same ids for row 0 alone (no padding)
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_qwen_vision_fixtures import pixel_values  # noqa: E402  (the shared pixel formula)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model",
                    "qwen2_5_vl")
IMAGE, START, END, VIDEO = 150, 148, 149, 151
VOCAB = 160
NEW_TOKENS = 6


def vision(depth, fullatt, out):
    return dict(depth=depth, hidden_size=32, hidden_act="silu", intermediate_size=48, num_heads=2,
                in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                window_size=84, out_hidden_size=out, fullatt_block_indexes=fullatt)


MODELS = {
    "batch": dict(
        text=dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, rope_theta=100.0,
                  rms_norm_eps=1e-6, tie_word_embeddings=False, max_position_embeddings=512,
                  rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}),
        vision=vision(2, [1], 64),
        # rows: list of ("text", n) / ("image", (t, h, w, salt)); row 1 is left padded
        rows=[[("text", 3), ("image", (1, 8, 12, 11)), ("text", 2), ("image", (1, 6, 10, 12)),
               ("text", 4)],
              [("text", 4), ("image", (1, 8, 8, 13)), ("text", 6)]],
        answers=[3, 4],
        skip_grad="patch_embed",  # its (32, 1176) gradient alone is 150 kB; "tied" has it
        seed=20250601),
    "tied": dict(
        text=dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=6, num_key_value_heads=2, rope_theta=1000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=True, max_position_embeddings=512,
                  rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}),
        vision=vision(1, [0], 48),
        rows=[[("text", 5), ("image", (1, 4, 10, 21)), ("text", 5)]],
        answers=[3],
        skip_grad="-",
        seed=20250602),
}


def build_row(parts, gen):
    """Token ids of one row: random text ids below 140, <vision_start> image tokens <vision_end>."""
    ids, images = [], []
    for kind, value in parts:
        if kind == "text":
            ids += torch.randint(0, 140, (value,), generator=gen).tolist()
        else:
            t, h, w, salt = value
            ids += [START] + [IMAGE] * (t * h * w // 4) + [END]
            images.append(value)
    return ids, images


def hub_name(name):
    for old, new in (("model.language_model.", "model."), ("model.visual.", "visual.")):
        if name.startswith(old):
            return new + name[len(old):]
    assert name == "lm_head.weight", name
    return name


def randomise(model):
    """Norm weights 1 + 0.1 N, biases 0.1 N, matrices N / sqrt(fan_in), embeddings 0.5 N; all
    rounded to fp16-representable values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_q" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
            p.copy_(p.half().float())


def make(name, spec):
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    config = Qwen2_5_VLConfig(vision_config=spec["vision"], text_config=spec["text"],
                              image_token_id=IMAGE, video_token_id=VIDEO,
                              vision_start_token_id=START, vision_end_token_id=END)
    config.text_config.eos_token_id = None
    config.text_config.pad_token_id = None
    model = Qwen2_5_VLForConditionalGeneration._from_config(config, attn_implementation="eager",
                                                            dtype=torch.float32)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    assert model.config.text_config._attn_implementation == "eager"
    tied = spec["text"]["tie_word_embeddings"]
    assert (model.lm_head.weight is model.model.language_model.embed_tokens.weight) == tied
    randomise(model)

    rows = [build_row(parts, gen) for parts in spec["rows"]]
    T = max(len(ids) for ids, _ in rows)
    input_ids = torch.zeros(len(rows), T, dtype=torch.long)  # pad id 0, as generate pads
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for b, (ids, _) in enumerate(rows):
        input_ids[b, T - len(ids):] = torch.tensor(ids)
        mask[b, T - len(ids):] = 1
    images = [image for _, row_images in rows for image in row_images]
    grid = torch.tensor([[t, h, w] for t, h, w, _ in images], dtype=torch.long)
    salts = torch.tensor([salt for *_, salt in images], dtype=torch.long)
    pixels = torch.cat([pixel_values(t * h * w, salt) for t, h, w, salt in images])

    positions, deltas = model.model.get_rope_index(input_ids, grid, None, attention_mask=mask)

    model.train()  # no dropout anywhere (attention_dropout 0); autograd only
    model.zero_grad()
    model.model.rope_deltas = None
    logits = model(input_ids=input_ids, attention_mask=mask, pixel_values=pixels,
                   image_grid_thw=grid, use_cache=False).logits  # (B, T, V)
    g = torch.randn(logits.shape, generator=gen).half().float() * mask.unsqueeze(-1)
    (logits * g).sum().backward()
    expected = {"input_ids": input_ids, "attention_mask": mask, "image_grid_thw": grid,
                "image_salts": salts, "position_ids": positions, "rope_deltas": deltas.view(-1),
                "logits": logits.detach(), "grad_logits": g}
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, pname
        if spec["skip_grad"] not in pname:
            expected["grad." + hub_name(pname)] = p.grad.detach().clone()

    answer_mask = torch.zeros_like(mask)
    for b, n in enumerate(spec["answers"]):
        answer_mask[b, T - n:] = 1
    logps = torch.log_softmax(logits.detach()[:, :-1], -1).gather(-1, input_ids[:, 1:, None])[..., 0]
    expected["answer_mask"] = answer_mask
    expected["answer_logps"] = torch.cat([torch.zeros(len(rows), 1), logps], 1) * answer_mask

    model.eval()
    with torch.no_grad():
        def generate(ids, attention, pix, grid_thw):
            model.model.rope_deltas = None
            out = model.generate(input_ids=ids, attention_mask=attention, pixel_values=pix,
                                 image_grid_thw=grid_thw, do_sample=False,
                                 max_new_tokens=NEW_TOKENS, output_scores=True,
                                 return_dict_in_generate=True)
            for step in out.scores:  # no near-ties: a rounding difference cannot flip a token
                top = step.topk(2, -1).values
                assert (top[:, 0] - top[:, 1]).min() > 1e-3, (top[:, 0] - top[:, 1]).min()
            return out.sequences[:, ids.shape[1]:], torch.stack(out.scores, 1)
        expected["generated_batch"], expected["generated_batch_logits"] = generate(
            input_ids, mask, pixels, grid)
        first_ids, first_images = rows[0]
        first_rows = sum(t * h * w for t, h, w, _ in first_images)
        expected["generated_first"], _ = generate(
            torch.tensor([first_ids]), torch.ones(1, len(first_ids), dtype=torch.long),
            pixels[:first_rows], grid[:len(first_images)])
        if len(rows) > 1:  # the padded batch's row 0 generates what row 0 alone does
            assert torch.equal(expected["generated_batch"][:1], expected["generated_first"])

    out_dir = os.path.join(ROOT, name)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(json.dumps(json.loads(config.to_json_string()), indent=2, sort_keys=True) + "\n")
    weights = {hub_name(k): v.half().contiguous() for k, v in model.state_dict().items()
               if not (tied and k == "lm_head.weight")}
    save_file(weights, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    expected["grad_logits"] = g.half()  # exact: g was rounded to fp16 values
    save_file({k: v.contiguous() for k, v in expected.items()},
              os.path.join(out_dir, "expected.safetensors"), metadata={"format": "pt"})
    for f in ("model.safetensors", "expected.safetensors"):
        os.chmod(os.path.join(out_dir, f), 0o644)
    print(f"{name}: T {T}, logits std {logits.std():.3f}, rope_deltas {deltas.view(-1).tolist()}, "
          f"generated {expected['generated_batch'].tolist()}", file=sys.stderr)


def main():
    assert transformers.__version__.startswith("4.57"), transformers.__version__
    for name, spec in MODELS.items():
        make(name, spec)


if __name__ == "__main__":
    main()
