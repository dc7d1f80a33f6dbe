#!/usr/bin/env python3
"""Builds tiny random LLaVA checkpoints with transformers and records the logits it computes.

    .venv/bin/python tools/make_model_fixtures.py   # writes tests/fixtures/model/<name>/

Each fixture folder (all fp32, about 250 KB; 500 KB for both) holds:
  config.json         transformers' LlavaConfig of the tiny model
  model.safetensors   the weights, in the "old" (language_model.model.*, vision_tower.*) or the
                      "new" (model.language_model.*, model.vision_tower.*) key layout
  inputs.safetensors  input_ids (B, S) int64 with image_tokens() copies of the image token per
                      image (as LlavaProcessor expands them), pixel_values (B, 3, H, W) and the
                      expected logits (B, S, V) of LlavaForConditionalGeneration (eager attention)
  padded.safetensors  the settings users run:
                      - right_ids / right_mask / right_logits: the batch with row 1 cut short by 4
                        tokens and right-padded with pad_token_id (training batches);
                      - left_ids / left_mask / left_positions / left_logits: the same row
                        left-padded, with position_ids = cumsum(mask) - 1 (generation batches);
                        logits are compared at real tokens only;
                      - answer_ids / answer_mask (N, T): 3 answers of lengths 5, 3, 4 to prompt 0,
                        right-padded, one holding pad_token_id as a real token; answer_logps (N, T)
                        = log p(answer token | prompt, earlier answer tokens), 0 on padding;
                      - grad.<perpo name>: the gradient of answer_logps.sum() with respect to a few
                        parameters (embeddings, a decoder attention and MLP weight, the final norm,
                        the projector, a CLIP weight, lm_head when untied), fp32.

Fixtures:
  tiny_old_untied_gqa   old key layout, separate lm_head, 4 query heads on 2 key/value heads,
                        quick_gelu CLIP, vision_feature_layer -2, "default" strategy (CLS dropped)
  tiny_new_tied         new key layout, tie_word_embeddings, plain multi-head attention, gelu CLIP,
                        vision_feature_layer -1, "full" strategy (CLS kept), rope_theta 500000,
                        linear rope scaling (factor 2)
  (tiny_tf5_rope, saved by transformers 5 itself, is written by tools/make_model_fixtures_tf5.py
  with these helpers.)
Weights are drawn larger than transformers' init (std 0.02 would make every logit ~0 and the
parity test unable to fail).
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig,
                          LlavaForConditionalGeneration)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "model")

VOCAB = 96
IMAGE_TOKEN = 95


def make_config(tied, kv_heads, vision_act, feature_layer, strategy, rope_theta, rope_scaling):
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                              num_attention_heads=2, image_size=32, patch_size=8,
                              projection_dim=16, hidden_act=vision_act)
    text = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=kv_heads,
                       rms_norm_eps=1e-6, rope_theta=rope_theta, rope_scaling=rope_scaling,
                       tie_word_embeddings=tied, pad_token_id=0)
    patches = (32 // 8) ** 2
    image_tokens = patches + (1 if strategy == "full" else 0)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN,
                         vision_feature_layer=feature_layer,
                         vision_feature_select_strategy=strategy, tie_word_embeddings=tied,
                         image_seq_length=image_tokens)
    return config, image_tokens


def randomize(model, generator):
    """Weights of order one so the logits spread out (and differences would show)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))
            elif "embed" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) * 1.5 / fan_in ** 0.5)


def old_layout(key):
    """transformers >= 4.52 names -> the names llava-hf checkpoints were written with."""
    if key.startswith("model.language_model."):
        return "language_model.model." + key[len("model.language_model."):]
    if key == "lm_head.weight":
        return "language_model.lm_head.weight"
    if key.startswith("model."):
        return key[len("model."):]
    return key


def make_inputs(image_tokens, generator):
    """Two prompts: text, image tokens, text (different lengths of text around the image)."""
    rows = []
    for before, after in ((3, 6), (5, 4)):
        text_a = torch.randint(1, IMAGE_TOKEN, (before,), generator=generator)
        text_b = torch.randint(1, IMAGE_TOKEN, (after,), generator=generator)
        rows.append(torch.cat([text_a, torch.full((image_tokens,), IMAGE_TOKEN), text_b]))
    input_ids = torch.stack(rows).to(torch.int64)  # (2, S)
    pixel_values = torch.randn((2, 3, 32, 32), generator=generator)
    return input_ids, pixel_values


# perpo's canonical parameter names (hf_param_name gives transformers' module names).
GRAD_PARAMS = [
    "language_model.embed_tokens.weight",
    "language_model.layers.0.self_attn.q_proj.weight",
    "language_model.layers.1.mlp.down_proj.weight",
    "language_model.norm.weight",
    "multi_modal_projector.linear_1.weight",
    "vision_tower.vision_model.encoder.layers.0.self_attn.v_proj.weight",
]


def hf_param_name(canonical, params):
    """The module name in transformers 4.57 or, where params lacks it, in transformers 5 (whose
    CLIPVisionModel has no vision_model level)."""
    name = canonical if canonical == "lm_head.weight" else "model." + canonical
    if name not in params:
        name = name.replace(".vision_model.", ".", 1)
    return name


def padded_batches(model, input_ids, pixel_values, pad_id):
    """Right- and left-padded versions of the batch (row 1 four tokens shorter) and their logits."""
    S = input_ids.shape[1]
    short = input_ids[1, : S - 4]
    right_ids = input_ids.clone()
    right_ids[1] = torch.cat([short, torch.full((4,), pad_id)])
    right_mask = torch.ones_like(input_ids)
    right_mask[1, S - 4:] = 0
    left_ids = input_ids.clone()
    left_ids[1] = torch.cat([torch.full((4,), pad_id), short])
    left_mask = torch.ones_like(input_ids)
    left_mask[1, :4] = 0
    left_positions = (left_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        right_logits = model(input_ids=right_ids, pixel_values=pixel_values,
                             attention_mask=right_mask).logits.float()
        left_logits = model(input_ids=left_ids, pixel_values=pixel_values, attention_mask=left_mask,
                            position_ids=left_positions).logits.float()
    return {"right_ids": right_ids, "right_mask": right_mask, "right_logits": right_logits,
            "left_ids": left_ids, "left_mask": left_mask, "left_positions": left_positions,
            "left_logits": left_logits}


def answer_gradients(model, input_ids, pixel_values, pad_id, tied, generator):
    """Log-probs of 3 right-padded answers to prompt 0 and the gradients of their sum."""
    lengths = [5, 3, 4]
    T = max(lengths)
    answers = torch.randint(1, IMAGE_TOKEN, (len(lengths), T), generator=generator)
    answers[0, 2] = pad_id  # the pad id as a real token: its embedding row takes no gradient
    mask = torch.zeros_like(answers)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    answers = answers.masked_fill(mask == 0, pad_id)
    N, P = len(lengths), input_ids.shape[1]
    prompt = input_ids[:1].expand(N, P)
    ids = torch.cat([prompt, answers], 1)  # (N, P + T)
    attention = torch.cat([torch.ones(N, P, dtype=torch.int64), mask], 1)
    pixels = pixel_values[:1].expand(N, -1, -1, -1)
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, pixel_values=pixels, attention_mask=attention).logits.float()
    logps = torch.log_softmax(logits[:, P - 1: P + T - 1], -1)  # (N, T, V)
    answer_logps = logps.gather(-1, answers.unsqueeze(-1)).squeeze(-1) * mask  # (N, T)
    answer_logps.sum().backward()
    params = dict(model.named_parameters())
    out = {"answer_ids": answers, "answer_mask": mask, "answer_logps": answer_logps.detach()}
    for canonical in GRAD_PARAMS + ([] if tied else ["lm_head.weight"]):
        out["grad." + canonical] = params[hf_param_name(canonical, params)].grad.detach().clone()
    return out


def build(name, layout, seed, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    config, image_tokens = make_config(**kwargs)
    config._attn_implementation = "eager"
    model = LlavaForConditionalGeneration(config).eval()
    randomize(model, generator)
    input_ids, pixel_values = make_inputs(image_tokens, generator)
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits.float()

    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    config_dict = config.to_dict()
    config_dict.pop("_attn_implementation_autoset", None)
    config_dict["architectures"] = ["LlavaForConditionalGeneration"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config_dict, f, indent=2, sort_keys=True)
    state = {}
    for key, value in model.state_dict().items():
        if kwargs["tied"] and key == "lm_head.weight":
            continue  # tied checkpoints store only embed_tokens
        state[old_layout(key) if layout == "old" else key] = value.contiguous()
    save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    save_file({"input_ids": input_ids, "pixel_values": pixel_values, "logits": logits},
              os.path.join(folder, "inputs.safetensors"))
    pad_id = config.text_config.pad_token_id
    padded = padded_batches(model, input_ids, pixel_values, pad_id)
    padded.update(answer_gradients(model, input_ids, pixel_values, pad_id, kwargs["tied"],
                                   generator))
    save_file({k: v.contiguous() for k, v in padded.items()},
              os.path.join(folder, "padded.safetensors"))
    print(f"{name}: {len(state)} tensors, logits {tuple(logits.shape)}, "
          f"logit std {logits.std().item():.3f}")


def main():
    build("tiny_old_untied_gqa", "old", seed=1, tied=False, kv_heads=2, vision_act="quick_gelu",
          feature_layer=-2, strategy="default", rope_theta=10000.0, rope_scaling=None)
    build("tiny_new_tied", "new", seed=2, tied=True, kv_heads=4, vision_act="gelu",
          feature_layer=-1, strategy="full", rope_theta=500000.0,
          rope_scaling={"type": "linear", "factor": 2.0})


if __name__ == "__main__":
    main()
