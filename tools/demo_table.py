#!/usr/bin/env python3
"""Tables over seeds of `perpo demo` runs: reads each RUN/summary.json, prints Markdown.

    python3 tools/demo_table.py runs/demo-s1 runs/demo-s2 runs/demo-s3 runs/demo-s4 runs/demo-s5

1. Per task, each arm's mean over the runs with the spread of the seeds (sample std) in
   parentheses; shares of records (acc@*, exact_match, f1) in percent, as perpo's report shows them.
2. Per task, the headline metric (grounding Acc@0.5, OCR edit distance) of every arm in every seed.
3. Per task, for every pair of arms, the mean paired per-seed difference of the headline metric with
   its 95% interval (Student's t over the seeds: mean +- t(0.975, k - 1) * sd / sqrt(k)). The
   seeds share everything but the seed, so pairing removes the stage-1 spread that the means carry.
Stage seconds are averaged too.
"""
import itertools
import json
import math
import statistics
import sys

METRICS = {
    "grounding": ["acc@0.5", "acc@0.75", "mean_iou"],
    "ocr": ["edit_distance", "f1", "exact_match"],
}
HEADLINE = {"grounding": "acc@0.5", "ocr": "edit_distance"}
LOWER_IS_BETTER = {"edit_distance"}
# t(0.975, df) for df = 1 .. 10.
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def is_percent(metric):
    return metric.startswith("acc@") or metric in ("exact_match", "f1", "unparsable")


def header(metric):
    return f"{metric} (%)" if is_percent(metric) else metric


def fmt(value, metric):
    return f"{value * 100:.1f}" if is_percent(metric) else f"{value:.3f}"


def cell(values, metric):
    mean = statistics.mean(values)
    if len(values) < 2:
        return fmt(mean, metric)
    return f"{fmt(mean, metric)} ({fmt(statistics.stdev(values), metric)})"


def paired_interval(differences):
    """Mean and half-width of the 95% t interval of paired differences (k >= 2)."""
    k = len(differences)
    mean = statistics.mean(differences)
    if k < 2:
        return mean, float("nan")
    t = T_975[k - 2] if k - 1 <= len(T_975) else 1.96
    return mean, t * statistics.stdev(differences) / math.sqrt(k)


def tables(runs):
    arms = list(runs[0]["arms"].keys())
    seeds = [r["seed"] for r in runs]
    out = [f"Seeds {', '.join(str(s) for s in seeds)}: mean (std over seeds); (%): percent of "
           "the records.\n"]
    for task, metrics in METRICS.items():
        if task not in runs[0]["arms"][arms[0]]:
            continue
        n = int(runs[0]["arms"][arms[0]][task]["n"])
        out.append(f"| {task} (n={n} per seed) | " + " | ".join(header(m) for m in metrics) + " |")
        out.append("|---" * (len(metrics) + 1) + "|")
        for arm in arms:
            cells = [cell([r["arms"][arm][task][m] for r in runs], m) for m in metrics]
            out.append(f"| {arm} | " + " | ".join(cells) + " |")
        out.append("")
        metric = HEADLINE[task]
        out.append(f"| {task}: {header(metric)} per seed | "
                   + " | ".join(f"seed {s}" for s in seeds) + " |")
        out.append("|---" * (len(seeds) + 1) + "|")
        for arm in arms:
            out.append(f"| {arm} | "
                       + " | ".join(fmt(r["arms"][arm][task][metric], metric) for r in runs)
                       + " |")
        out.append("")
        better = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        out.append(f"| {task}: {header(metric)}, A - B ({better}) | mean paired difference "
                   "| 95% interval (t) |")
        out.append("|---|---|---|")
        for b, a in itertools.combinations(arms, 2):  # each later arm against an earlier one
            diffs = [r["arms"][a][task][metric] - r["arms"][b][task][metric] for r in runs]
            mean, half = paired_interval(diffs)
            if math.isnan(half):
                interval = "n/a (one seed)"
            else:
                interval = f"[{fmt(mean - half, metric)}, {fmt(mean + half, metric)}]"
            out.append(f"| {a} - {b} | {fmt(mean, metric)} | {interval} |")
        out.append("")
    stages = runs[0]["stage_seconds"].keys()
    parts = [f"{s} {statistics.mean(r['stage_seconds'][s] for r in runs):.0f}" for s in stages]
    total = statistics.mean(r["total_seconds"] for r in runs)
    out.append(f"Stage seconds (mean): {', '.join(parts)}; total {total:.0f} s.")
    return "\n".join(out)


def main(paths):
    runs = []
    for path in paths:
        with open(f"{path}/summary.json") as f:
            runs.append(json.load(f))
    print(tables(runs))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
