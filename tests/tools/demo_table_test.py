#!/usr/bin/env python3
"""tools/demo_table.py on three hand-made summary.json files. Paired differences worked by hand:
  grounding acc@0.5, perpo - dpo per seed: 0.81 - 0.80, 0.15 - 0.13, 0.07 - 0.06
    = 0.01, 0.02, 0.01 -> mean 0.013333 (1.3 %), sd = sqrt(((-1/3)^2 + (2/3)^2 + (-1/3)^2) / 2)
    * 0.01 = 0.0057735; half-width t(0.975, 2) = 4.303 * 0.0057735 / sqrt(3) = 0.014343
    -> [-0.1, 2.8] in percent.
  ocr edit distance, perpo - dpo: 0.05 - 0.06, 0.10 - 0.12, 0.20 - 0.21 = -0.01, -0.02, -0.01
    -> mean -0.013, the same interval mirrored: [-0.028, 0.001].
Run by CTest (tools_demo_table_test) with the project's .venv Python; plain stdlib."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "demo_table.py")

ACC = {"dpo": [0.80, 0.13, 0.06], "perpo": [0.81, 0.15, 0.07]}
ED = {"dpo": [0.06, 0.12, 0.21], "perpo": [0.05, 0.10, 0.20]}


def summary(seed, k):
    arms = {}
    for arm in ("dpo", "perpo"):
        arms[arm] = {
            "grounding": {"acc@0.5": ACC[arm][k], "acc@0.75": 0.5, "mean_iou": 0.4, "n": 2000},
            "ocr": {"edit_distance": ED[arm][k], "f1": 0.9, "exact_match": 0.8, "n": 2000},
        }
    return {"seed": seed, "arms": arms, "stage_seconds": {"data": 10.0, "eval": 20.0},
            "total_seconds": 30.0}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for k, seed in enumerate((1, 2, 3)):
            run = os.path.join(tmp, f"s{seed}")
            os.makedirs(run)
            with open(os.path.join(run, "summary.json"), "w") as f:
                json.dump(summary(seed, k), f)
            runs.append(run)
        result = subprocess.run([sys.executable, TOOL, *runs], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        checks = [
            "| perpo - dpo | 1.3 | [-0.1, 2.8] |",          # grounding, percent
            "| perpo - dpo | -0.013 | [-0.028, 0.001] |",   # OCR edit distance
            "| perpo | 81.0 | 15.0 | 7.0 |",               # per-seed Acc@0.5
            "| grounding (n=2000 per seed) | acc@0.5 (%) | acc@0.75 (%) | mean_iou |",
            "| perpo | 34.3 (40.6) | 50.0 (0.0) | 0.400 (0.000) |",  # sd of 81, 15, 7
            "| ocr (n=2000 per seed) | edit_distance | f1 (%) | exact_match (%) |",
            "Stage seconds (mean): data 10, eval 20; total 30 s.",
        ]
        for check in checks:
            assert check in out, f"missing {check!r} in:\n{out}"
    print("ok")


if __name__ == "__main__":
    main()
