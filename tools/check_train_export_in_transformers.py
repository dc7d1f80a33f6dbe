#!/usr/bin/env python3
"""Checks that a LoRA training run exported by `perpo export` loads in transformers and gives the
trained model's logits.

    .venv/bin/python tools/check_train_export_in_transformers.py [--perpo build/perpo]

Runs a short LoRA `perpo train` on the built-in tiny model (tests' fixture tokenizer and image),
exports its last checkpoint with `perpo export --checkpoint RUN/checkpoints/step-N`, and compares:
  (a) LlavaForConditionalGeneration.from_pretrained(export) logits, against
  (b) the same architecture loaded with the checkpoint's own tensors, each adapted layer's weight
      merged here in Python as W + (alpha / r) * B @ A from the unmerged lora_A / lora_B.
Exits 1 when the export leaves keys unloaded / unused or the logits differ by more than 1e-4.
perpo's side (the exported weights reload in perpo with the trained model's logits) is the C++
test Trainer.ExportedLoraRunGivesTheTrainedLogits. Not part of CI (no transformers there).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import yaml
from safetensors.torch import load_file
from transformers import LlavaConfig, LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4


def write_lists(path):
    image = os.path.join(ROOT, "tests", "fixtures", "data", "images", "gradient_8x6.png")
    with open(path, "w") as out:
        for k in range(3):
            answers = [f"[0.{i + 1}{k}, 0.{9 - i}, 0.5, 0.6]" for i in range(4)]
            out.write(json.dumps({"id": f"l{k}", "image": image, "prompt": f"Box of object {k}",
                                  "ground_truth": "[0.1, 0.2, 0.5, 0.6]", "answers": answers,
                                  "rewards": [1.0, 0.6, 0.3, 0.0],
                                  "ref_logps": [-20.0, -21.0, -22.0, -23.0]}) + "\n")


def hf_name(canonical):
    if canonical.startswith(("vision_tower.", "multi_modal_projector.", "language_model.")):
        return "model." + canonical
    return canonical


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--perpo", default=os.path.join(ROOT, "build", "perpo"))
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="perpo_train_export_")
    lists = os.path.join(tmp, "lists.jsonl")
    write_lists(lists)
    run_dir = os.path.join(tmp, "run")
    tokenizer = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "tiny.model")
    overrides = ["model.path=", "model.freeze_vision=false", "model.tiny.vision_hidden=16",
                 "model.tiny.vision_layers=1", "model.tiny.vision_heads=2",
                 "model.tiny.image_size=16", "model.tiny.patch_size=8", "model.tiny.hidden=32",
                 "model.tiny.layers=2", "model.tiny.heads=4", "model.tiny.kv_heads=2",
                 "model.tiny.intermediate=64", f"tokenizer.path={tokenizer}",
                 "tokenizer.chat_template=plain", "image.size=16", f"data.train={lists}",
                 "model.lora.enabled=true", "model.lora.r=4", "model.lora.alpha=8",
                 "model.lora.dropout=0", "optim.lr=0.05", "train.max_steps=3",
                 f"run.dir={run_dir}"]
    subprocess.run([args.perpo, "train", *overrides], check=True, capture_output=True)
    checkpoint = os.path.join(run_dir, "checkpoints", "step-3")
    export = os.path.join(tmp, "export")
    subprocess.run([args.perpo, "export", "--checkpoint", checkpoint, "--output", export],
                   check=True, capture_output=True)

    exported, info = LlavaForConditionalGeneration.from_pretrained(
        export, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        print(f"loading the export left problems: {problems}")
        return 1

    # (b): the checkpoint's tensors, adapters merged here.
    with open(os.path.join(checkpoint, "config.yaml")) as f:
        lora = yaml.safe_load(f)["model"]["lora"]
    scale = lora["alpha"] / lora["r"]
    tensors = load_file(os.path.join(checkpoint, "weights.safetensors"))
    state = {}
    for name, value in tensors.items():
        if name.endswith(("lora_A", "lora_B")):
            continue
        layer = name[: -len(".weight")] if name.endswith(".weight") else None
        if layer and layer + ".lora_A" in tensors:
            value = value + scale * tensors[layer + ".lora_B"] @ tensors[layer + ".lora_A"]
        state[hf_name(name)] = value
    reference = LlavaForConditionalGeneration(LlavaConfig.from_pretrained(export)).eval()
    missing, unexpected = reference.load_state_dict(state, strict=False)
    missing = [k for k in missing if "lm_head" not in k or not reference.config.tie_word_embeddings]
    if missing or unexpected:
        print(f"checkpoint tensors: missing {missing}, unexpected {unexpected}")
        return 1
    exported.eval()
    torch.manual_seed(0)
    config = exported.config
    image_tokens = (config.vision_config.image_size // config.vision_config.patch_size) ** 2
    ids = torch.randint(3, 300, (1, 12))
    ids[0, 1:1 + image_tokens] = config.image_token_index
    pixels = torch.randn(1, 3, config.vision_config.image_size, config.vision_config.image_size)
    with torch.no_grad():
        a = exported(input_ids=ids, pixel_values=pixels).logits
        b = reference(input_ids=ids, pixel_values=pixels).logits
    # The adapters must matter, or the comparison would prove nothing: the base weights alone.
    base = {hf_name(n): v for n, v in tensors.items() if not n.endswith(("lora_A", "lora_B"))}
    reference.load_state_dict(base, strict=False)
    with torch.no_grad():
        c = reference(input_ids=ids, pixel_values=pixels).logits
    diff = (a - b).abs().max().item()
    moved = (a - c).abs().max().item()
    adapted = sum(1 for n in tensors if n.endswith("lora_A"))
    print(f"LoRA run ({adapted} adapted layers) exported: max |logit difference| {diff:.3g} "
          f"(tolerance {TOLERANCE}); the adapters move the logits by {moved:.3g}")
    return 0 if diff <= TOLERANCE and moved > 10 * TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
