#!/usr/bin/env python3
"""tools/convert_refcoco.py on a hand-made annotation set (tests/fixtures/refcoco/): refs.json is
pickled here into refs(unc).p, the format the refer toolkit distributes. Expected boxes by hand:
  ann 1001: [64, 48, 256, 246] in 640x480 -> [64/640, 48/480, 320/640, 294/480]
            = [0.10, 0.10, 0.50, 0.61]; square frame (side 640, 80 px padding on top):
            [64/640, 128/640, 320/640, 374/640] = [0.10, 0.20, 0.50, 0.58]
  ann 2001: [100, 150, 200, 300] in 400x600 -> [0.25, 0.25, 0.75, 0.75]
            square frame (side 600, 100 px padding left): [0.33, 0.25, 0.67, 0.75]
Run by CTest (tools_convert_refcoco) with the project's .venv Python; plain stdlib."""
import json
import os
import pickle
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "refcoco")
TOOL = os.path.join(ROOT, "tools", "convert_refcoco.py")


def run(tmp, *extra):
    out = os.path.join(tmp, "out", "records.jsonl")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    result = subprocess.run([sys.executable, TOOL, "--refs", os.path.join(tmp, "refs(unc).p"),
                             "--instances", os.path.join(FIXTURES, "instances.json"),
                             "--images", os.path.join(tmp, "out", "train2014"), "--out", out,
                             *extra], capture_output=True, text=True)
    return result, out


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def main():
    failures = []

    def check(condition, message):
        if not condition:
            failures.append(message)

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(FIXTURES, "refs.json")) as f:
            refs = json.load(f)
        with open(os.path.join(tmp, "refs(unc).p"), "wb") as f:
            pickle.dump(refs, f, protocol=2)

        result, out = run(tmp)
        check(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
        check("wrote 3 records" in result.stdout and "1 refs without" in result.stdout,
              result.stdout)
        got = records(out)
        check([r["id"] for r in got] == ["refcoco-val-7-70", "refcoco-val-7-71",
                                         "refcoco-val-9-90"], [r["id"] for r in got])
        first = got[0]
        check(first["task"] == "grounding", first)
        check(first["prompt"] == "Please provide the bounding box coordinate of the region this "
              "sentence describes: the lady with the blue shirt", first["prompt"])
        check(first["ground_truth"] == "[0.10, 0.10, 0.50, 0.61]", first["ground_truth"])
        check(first["image"] == os.path.join("train2014", "COCO_train2014_000000581857.jpg"),
              first["image"])
        check(got[2]["ground_truth"] == "[0.25, 0.25, 0.75, 0.75]", got[2]["ground_truth"])
        check(first["ann_id"] == 1001 and first["image_id"] == 581857, first)

        result, out = run(tmp, "--box-frame", "square", "--first-sentence")
        got = records(out)
        check(len(got) == 2, got)
        check(got[0]["ground_truth"] == "[0.10, 0.20, 0.50, 0.58]", got[0]["ground_truth"])
        check(got[1]["ground_truth"] == "[0.33, 0.25, 0.67, 0.75]", got[1]["ground_truth"])

        result, out = run(tmp, "--split", "testA", "--dataset", "refcoco+")
        got = records(out)
        check([r["id"] for r in got] == ["refcoco+-testA-8-80"], got)
        check(got[0]["ground_truth"] == "[0.50, 0.00, 1.00, 1.00]", got[0]["ground_truth"])

        result, _ = run(tmp, "--split", "testB")
        check(result.returncode == 2 and "no refs of split 'testB'" in result.stderr,
              result.stderr)

    for message in failures:
        print("FAILED:", message)
    print("convert_refcoco: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
