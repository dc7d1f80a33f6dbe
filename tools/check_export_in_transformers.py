#!/usr/bin/env python3
"""Checks that `perpo export` writes folders transformers loads and runs to the same logits.

    .venv/bin/python tools/check_export_in_transformers.py [--perpo build/perpo]

For every fixture under tests/fixtures/model/ (tools/make_model_fixtures.py) and both key layouts
("new", "old"), runs `perpo export --checkpoint FIXTURE --output TMP/... --layout L`, loads the
export with LlavaForConditionalGeneration.from_pretrained (fp32, eager attention), runs the
fixture's input_ids / pixel_values and prints the largest |logit difference| against the logits
stored in the fixture. Exits 1 when any export fails, leaves keys unloaded or unused, or differs by
more than 1e-4. Not part of the C++ tests (CI has no transformers); run it by hand after touching
export or the model's names.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "model")
TOLERANCE = 1e-4


def check_one(perpo, fixture, layout, out_root):
    source = os.path.join(FIXTURES, fixture)
    out = os.path.join(out_root, f"{fixture}_{layout}")
    run = subprocess.run([perpo, "export", "--checkpoint", source, "--output", out,
                          "--layout", layout], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"{fixture} -> {layout}: perpo export failed ({run.returncode}): "
              f"{run.stderr.strip() or run.stdout.strip()}")
        return False
    model, info = LlavaForConditionalGeneration.from_pretrained(
        out, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    model.eval()
    problems = {k: v for k, v in info.items() if v}
    inputs = load_file(os.path.join(source, "inputs.safetensors"))
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"]).logits
    diff = (logits.float() - inputs["logits"]).abs().max().item()
    ok = diff <= TOLERANCE and not problems
    print(f"{fixture} -> {layout}: max |logit diff| {diff:.3e} over {tuple(logits.shape)}"
          f"{'' if not problems else f', loading info {problems}'}  {'ok' if ok else 'FAIL'}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perpo", default=os.path.join(ROOT, "build", "perpo"),
                        help="the perpo executable (default: build/perpo)")
    args = parser.parse_args()
    fixtures = sorted(d for d in os.listdir(FIXTURES)
                      if os.path.isfile(os.path.join(FIXTURES, d, "inputs.safetensors")))
    if not fixtures:
        print(f"no fixtures under {FIXTURES}")
        return 1
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="perpo_export_check_") as out_root:
        for fixture in fixtures:
            for layout in ("new", "old"):
                all_ok &= check_one(args.perpo, fixture, layout, out_root)
    print("all exports match transformers" if all_ok else "some exports do NOT match")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
