#!/usr/bin/env python3
"""RefCOCO / RefCOCO+ / RefCOCOg annotations -> perpo dataset records (JSONL), one per referring
expression, with the authors' grounding prompt and the box normalised to [0, 1].

    python3 tools/convert_refcoco.py --refs data/refcoco/refs(unc).p \
        --instances data/refcoco/instances.json --images coco/train2014 \
        --split val --dataset refcoco --out data/refcoco-val.jsonl

Inputs, as distributed with the refer toolkit (lichengunc/refer):
  refs(unc).p / refs(umd).p / refs(google).p   a pickled list of refs: {ref_id, ann_id,
      image_id, split, sentences: [{sent_id, sent, ...}], ...}
  instances.json   COCO format: images [{id, file_name, width, height}],
      annotations [{id, image_id, bbox: [x, y, w, h] in pixels}]
Output: one record per sentence of each ref in --split (or only each ref's first sentence with
--first-sentence):
  {"id": "refcoco-val-<ref_id>-<sent_id>", "task": "grounding", "image": "<images>/<file_name>",
   "prompt": "Please provide the bounding box coordinate of the region this sentence describes:
   <sentence>", "ground_truth": "[x1, y1, x2, y2]", "ref_id": ..., "ann_id": ..., "image_id": ...}
Boxes: [x, y, w, h] pixels -> corners divided by the image's width and height (--box-frame
image, default), or by the side of the image padded to a square around its centre (--box-frame
square, the frame LLaVA-1.5 sees after expand2square), written with two decimals like the
authors' data. Image paths are written relative to the output file's folder when the images lie
below it, else absolute. Only the Python standard library is needed.
"""
import argparse
import json
import os
import pickle
import sys

PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: "


def load_refs(path):
    with open(path, "rb") as f:
        try:
            return pickle.load(f)
        except UnicodeDecodeError:  # pickled by Python 2 with non-ASCII bytes
            f.seek(0)
            return pickle.load(f, encoding="latin1")


def normalised_box(bbox, width, height, frame):
    x, y, w, h = (float(v) for v in bbox)
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height}")
    if frame == "square":
        side = float(max(width, height))
        x += (side - width) / 2.0
        y += (side - height) / 2.0
        width = height = side
    corners = [x / width, y / height, (x + w) / width, (y + h) / height]
    corners = [min(1.0, max(0.0, v)) for v in corners]
    return "[" + ", ".join(f"{v:.2f}" for v in corners) + "]"


def image_field(images_dir, file_name, out_dir):
    path = os.path.abspath(os.path.join(images_dir, file_name))
    rel = os.path.relpath(path, out_dir)
    return path if rel.startswith("..") else rel


def convert(refs, instances, images_dir, split, dataset, out_path, frame, first_sentence, limit):
    images = {img["id"]: img for img in instances["images"]}
    annotations = {ann["id"]: ann for ann in instances["annotations"]}
    out_dir = os.path.dirname(os.path.abspath(out_path))
    records, missing = [], 0
    for ref in refs:
        if split != "all" and ref.get("split") != split:
            continue
        ann = annotations.get(ref["ann_id"])
        image = images.get(ref["image_id"])
        if ann is None or image is None:
            missing += 1
            continue
        box = normalised_box(ann["bbox"], image["width"], image["height"], frame)
        sentences = ref["sentences"][:1] if first_sentence else ref["sentences"]
        for sentence in sentences:
            text = " ".join(str(sentence.get("sent", sentence.get("raw", ""))).split())
            records.append({
                "id": f"{dataset}-{ref.get('split', split)}-{ref['ref_id']}-{sentence['sent_id']}",
                "task": "grounding",
                "image": image_field(images_dir, image["file_name"], out_dir),
                "prompt": PROMPT + text,
                "ground_truth": box,
                "ref_id": ref["ref_id"],
                "ann_id": ref["ann_id"],
                "image_id": ref["image_id"],
            })
            if limit and len(records) >= limit:
                return records, missing
    return records, missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", required=True, help="refs(unc).p, refs(umd).p or refs(google).p")
    parser.add_argument("--instances", required=True, help="instances.json (COCO format)")
    parser.add_argument("--images", required=True, help="folder of the COCO images (train2014)")
    parser.add_argument("--split", default="val", help="val, test, testA, testB, train or all")
    parser.add_argument("--dataset", default="refcoco", help="id prefix, e.g. refcoco+")
    parser.add_argument("--out", required=True, help="JSONL file to write")
    parser.add_argument("--box-frame", choices=["image", "square"], default="image")
    parser.add_argument("--first-sentence", action="store_true",
                        help="one record per ref (its first sentence)")
    parser.add_argument("--limit", type=int, default=0, help="stop after this many records")
    args = parser.parse_args(argv)

    refs = load_refs(args.refs)
    with open(args.instances) as f:
        instances = json.load(f)
    records, missing = convert(refs, instances, args.images, args.split, args.dataset, args.out,
                               args.box_frame, args.first_sentence, args.limit)
    if not records:
        print(f"convert_refcoco: no refs of split '{args.split}' in {args.refs}", file=sys.stderr)
        return 2
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {len(records)} records to {args.out}"
          + (f" ({missing} refs without annotation or image skipped)" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
