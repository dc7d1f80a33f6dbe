#!/usr/bin/env python3
"""Mean over seeds of `perpo demo` runs: reads each RUN/summary.json, prints a Markdown table.

    python3 tools/demo_table.py runs/demo-s1 runs/demo-s2 runs/demo-s3

Each cell is the mean over the runs, with the spread of the seeds (sample std) in parentheses;
n is the number of evaluation records of one run. Stage seconds are averaged too.
"""
import json
import statistics
import sys

METRICS = {
    "grounding": ["acc@0.5", "acc@0.75", "mean_iou"],
    "ocr": ["edit_distance", "f1", "exact_match"],
}


def cell(values, scale):
    mean = statistics.mean(values) * scale
    if len(values) < 2:
        return f"{mean:.1f}" if scale == 100 else f"{mean:.3f}"
    std = statistics.stdev(values) * scale
    return f"{mean:.1f} ({std:.1f})" if scale == 100 else f"{mean:.3f} ({std:.3f})"


def main(paths):
    runs = [json.load(open(f"{p}/summary.json")) for p in paths]
    arms = list(runs[0]["arms"].keys())
    seeds = ", ".join(str(r["seed"]) for r in runs)
    print(f"Seeds {seeds}: mean (std over seeds).\n")
    for task, metrics in METRICS.items():
        if task not in runs[0]["arms"][arms[0]]:
            continue
        n = int(runs[0]["arms"][arms[0]][task]["n"])
        header = " | ".join(metrics)
        print(f"| {task} (n={n} per seed) | {header} |")
        print("|---" * (len(metrics) + 1) + "|")
        for arm in arms:
            cells = []
            for metric in metrics:
                values = [r["arms"][arm][task][metric] for r in runs]
                scale = 100 if metric.startswith("acc") or metric == "exact_match" else 1
                cells.append(cell(values, scale))
            print(f"| {arm} | " + " | ".join(cells) + " |")
        print()
    stages = runs[0]["stage_seconds"].keys()
    parts = [f"{s} {statistics.mean(r['stage_seconds'][s] for r in runs):.0f}" for s in stages]
    total = statistics.mean(r["total_seconds"] for r in runs)
    print(f"Stage seconds (mean): {', '.join(parts)}; total {total:.0f} s.")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
