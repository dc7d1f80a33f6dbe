#!/usr/bin/env python3
"""Checks that perpo's Qwen2.5-VL exports load in transformers and compute the same logits.

    .venv/bin/python tools/check_qwen_export_in_transformers.py [--test-model build/tests/test_model]

Runs the C++ test QwenExportForTransformers.WritesExportsWhenAsked with PERPO_QWEN_EXPORT_DIR set
(tests/model/qwen_checkpoint_test.cpp): it loads both fixtures of tests/fixtures/model/qwen2_5_vl/
(tools/make_qwen2_5_vl_fixtures.py) and exports each in both key layouts ("old" = the Hub's names
and flat config.json, "new" = transformers >= 4.52's) in fp32 and bf16, plus the "batch" model with
random LoRA adapters merged (and perpo's logits for it). Then every export is loaded with
Qwen2_5_VLForConditionalGeneration.from_pretrained (fp32, eager attention) and run on the
fixture's prompts; the largest |logit difference| at real tokens is compared with
  fp32: the fixture's logits (transformers' own, expected.safetensors);
  bf16: transformers' fixture model with its weights rounded to bf16 (the same rounding);
  LoRA: perpo's logits of the adapted model.
Exits 1 when an export leaves keys missing, unexpected or mis-shaped, its head is not tied as
config.json says, or a difference exceeds 1e-4. Not part of CTest (CI has no transformers); run it
after touching the Qwen2.5-VL export, its names or config.json writer.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_qwen_vision_fixtures import pixel_values  # noqa: E402  (the fixtures' pixel formula)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "model", "qwen2_5_vl")
TOLERANCE = 1e-4


def load(folder):
    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    return model.eval(), {k: v for k, v in info.items() if v}


def logits_of(model, fixture):
    expected = load_file(os.path.join(FIXTURES, fixture, "expected.safetensors"))
    grid = expected["image_grid_thw"]
    pixels = torch.cat([pixel_values(int(g.prod()), int(salt))
                        for g, salt in zip(grid, expected["image_salts"])])
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"],
                       pixel_values=pixels, image_grid_thw=grid, use_cache=False).logits
    return logits, expected


def max_diff(a, b, mask):
    real = mask.bool().unsqueeze(-1).expand_as(a)
    return (a - b).abs()[real].max().item()


def bf16_reference(fixture):
    """transformers' fixture model with every weight rounded to bf16 once."""
    model, _ = load(os.path.join(FIXTURES, fixture))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return logits_of(model, fixture)[0]


def check(folder, fixture, reference, label):
    model, problems = load(folder)
    tied = model.lm_head.weight is model.model.language_model.embed_tokens.weight
    if tied != model.config.text_config.tie_word_embeddings:
        problems["tied"] = f"lm_head tied {tied}, config says otherwise"
    logits, expected = logits_of(model, fixture)
    diff = max_diff(logits, reference, expected["attention_mask"])
    ok = diff <= TOLERANCE and not problems
    print(f"{label}: max |logit diff| {diff:.3e} over {tuple(logits.shape)}, tied {tied}"
          f"{'' if not problems else f', loading info {problems}'}  {'ok' if ok else 'FAIL'}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-model", default=os.path.join(ROOT, "build", "tests", "test_model"),
                        help="the test_model executable (default: build/tests/test_model)")
    args = parser.parse_args()
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="perpo_qwen_export_") as out:
        run = subprocess.run([args.test_model, "--gtest_filter=QwenExportForTransformers.*"],
                             env=dict(os.environ, PERPO_QWEN_EXPORT_DIR=out),
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"the export test failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
            return 1
        for fixture in ("batch", "tied"):
            expected = load_file(os.path.join(FIXTURES, fixture, "expected.safetensors"))
            bf16 = bf16_reference(fixture)
            for layout in ("old", "new"):
                for dtype, reference in (("fp32", expected["logits"]), ("bf16", bf16)):
                    name = f"{fixture}_{layout}_{dtype}"
                    all_ok &= check(os.path.join(out, name), fixture, reference, name)
        lora = load_file(os.path.join(out, "batch_lora_logits.safetensors"))["logits"]
        all_ok &= check(os.path.join(out, "batch_lora_new_fp32"), "batch", lora,
                        "batch_lora_new_fp32 (against perpo's adapted model)")
    print("all Qwen2.5-VL exports match transformers" if all_ok else "some exports do NOT match")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
