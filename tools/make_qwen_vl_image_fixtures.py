#!/usr/bin/env python3
"""Regenerates tests/fixtures/image/qwen_vl/: what transformers' Qwen2VLImageProcessor (the slow,
PIL-based processor that Qwen2.5-VL uses; no torchvision needed) and Pillow give for small test
images. tests/image/qwen_vl_preprocess_test.cpp compares perpo's image module against them.

    nice -n 19 /work/main/.venv/bin/python tools/make_qwen_vl_image_fixtures.py

Outputs (about 40 KB in all):
  rgb_<W>x<H>.png             the input images (synthetic, deterministic, lossless)
  resize/<image>.<W>x<H>.png  Pillow's Image.resize((W, H), BICUBIC) of an input: upscaling and
                              downscaling on each axis, sizes where Pillow skips a pass, and
                              both pass orders (Pillow 13 resizes the height first when it
                              shrinks by more than twice the width's pixels)
  <case>.resized.png          the processor's resized 8-bit image (its PIL resize) per case
  <case>.codes.png            the processor's pixel_values, (N, 1176), stored compactly: value
                              [i, j] is value_table[channel of column j][code[i, j]] exactly
                              (this script asserts it), so an 8-bit grey PNG holds the codes
  value_table.f32             (3, 256) float32 little-endian: transformers' rescale + normalize
                              of every byte value per channel (the processor's own methods)
  cases.json                  settings, smart_resize table, resize and processor cases
"""
import json
import os
import re
import sys

import numpy as np
import PIL
import transformers
from PIL import Image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import (
    Qwen2VLImageProcessor,
    smart_resize,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "image",
                   "qwen_vl")
PATCH, MERGE, TEMPORAL = 14, 2, 2
FACTOR = PATCH * MERGE

# (width, height) of the input images: odd sizes, wide and tall. No side of 1 or 3: transformers
# would take such an axis for the channel axis (infer_channel_dimension_format).
IMAGES = [(30, 47), (57, 29), (200, 13)]

# Pillow-only resize checks: (image, width, height).
RESIZES = [
    ((30, 47), 45, 31),   # wider (upscale x), shorter (downscale y)
    ((57, 29), 19, 40),   # downscale x by 3, upscale y
    ((200, 13), 37, 13),  # downscale x only: Pillow skips the vertical pass
    ((30, 47), 30, 71),   # upscale y only: Pillow skips the horizontal pass
    ((57, 29), 61, 43),   # upscale both
    ((200, 13), 7, 5),    # strong downscale both (support stretched ~29x horizontally)
    ((30, 47), 30, 47),   # same size: a copy
    # Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many
    # pixels as the width (in_h - h > 2 * (in_w - w)); 45x31, 61x43 above also do. The boundary:
    ((30, 47), 25, 37),   # 10 == 2 * 5: horizontal first
    ((30, 47), 25, 36),   # 11 > 2 * 5: vertical first
]

# Processor cases: (image, min_pixels, max_pixels); small limits keep the outputs small.
CASES = [
    ((30, 47), 28 * 28, 28 * 28 * 4),  # -> 56x28: taller, narrower
    ((57, 29), 28 * 28, 28 * 28 * 4),  # -> 28x56: slight downscale both ways
    ((200, 13), 28 * 28, 28 * 28 * 4),  # min-pixels branch -> 28x112
    ((57, 29), 28 * 28, 28 * 28),      # max-pixels branch, clamped to one factor -> 28x28
    ((30, 47), 28 * 28, 28 * 28),      # -> 28x28, Pillow resizes the height first (19 > 2 * 2)
]


def synthetic_rgb(width, height, seed):
    """Gradients, a sharp disc and noise: exercises the filter's taps, clamping and rounding."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 128 + 127 * np.sin(x / 3.0) * np.cos(y / 5.0)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.3) ** 2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[disc] = [255, 0, 30]  # saturated edges: the cubic's overshoot must clamp
    rgb += rng.normal(0, 10.0, rgb.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def image_name(size):
    return f"rgb_{size[0]}x{size[1]}.png"


def smart_resize_table():
    """Rows [height, width, factor, min_pixels, max_pixels, out_height, out_width], or with
    "error" in place of the output when transformers raises."""
    default = (FACTOR, 56 * 56, 14 * 14 * 4 * 1280)
    qwen25 = (FACTOR, 3136, 12845056)  # Qwen2.5-VL checkpoints' preprocessor_config.json
    small = (FACTOR, 28 * 28, 28 * 28 * 4)
    sizes = [
        # exact halves of the factor: Python rounds them to even, std::round away from zero
        (14, 14, default), (42, 42, default), (70, 70, default), (70, 98, default),
        (98, 126, default), (126, 154, default), (14, 70, small), (42, 70, small),
        (70, 98, small), (182, 210, default), (1022, 1050, default),
        # the max-pixels branch (floor), and its clamp to one factor for thin images
        (4000, 3000, default), (1080, 1920, default), (15, 2900, (FACTOR, 3136, 12544)),
        (2900, 15, (FACTOR, 3136, 12544)), (29, 57, (FACTOR, 784, 784)), (8000, 6000, qwen25),
        # the min-pixels branch (ceil), which never clamps and may pass max_pixels
        (10, 10, default), (1, 1, default), (5, 900, default), (13, 200, small),
        (2, 2, (FACTOR, 100000, 1000)),
        # no branch
        (480, 640, default), (47, 30, small), (224, 224, default), (333, 500, qwen25),
        # aspect ratio: exactly 200 passes, above 200 raises
        (2, 400, default), (400, 2, default), (1, 201, default), (201, 1, default),
        (3, 601, default), (13, 2700, default),
        # other factors (patch 16 x merge 2, patch 14 x merge 1)
        (500, 375, (32, 56 * 56, 14 * 14 * 4 * 1280)), (99, 77, (14, 196, 196 * 16)),
    ]
    rng = np.random.default_rng(23)
    for _ in range(120):  # random sizes against the three settings
        height, width = (int(v) for v in rng.integers(1, 5000, size=2))
        if rng.random() < 0.3:
            height = max(1, height // 100)
        sizes.append((height, width, [default, qwen25, small][int(rng.integers(0, 3))]))
    rows = []
    for height, width, (factor, min_pixels, max_pixels) in sizes:
        row = [height, width, factor, min_pixels, max_pixels]
        try:
            row += list(smart_resize(height, width, factor, min_pixels, max_pixels))
        except ValueError as error:
            assert "aspect ratio" in str(error), error
            row += ["error"]
        rows.append(row)
    halves = sum(1 for r in rows if r[5] != "error" and (r[0] / r[2]) % 1 == 0.5)
    assert halves >= 8, halves
    return rows


def value_table(processor):
    """(3, 256) float32: the processor's rescale then normalize of byte v in channel c."""
    every_byte = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)  # (256, 1, 3)
    rescaled = processor.rescale(every_byte, scale=processor.rescale_factor,
                                 input_data_format="channels_last")
    normalized = processor.normalize(rescaled, mean=processor.image_mean, std=processor.image_std,
                                     input_data_format="channels_last")
    assert normalized.dtype == np.float32
    return np.ascontiguousarray(normalized[:, 0, :].T)  # (3, 256)


def codes_of(pixel_values, table):
    """The byte code of every value of pixel_values; asserts each value is a table entry."""
    channel_of_column = np.arange(pixel_values.shape[1]) // (TEMPORAL * PATCH * PATCH)
    codes = np.zeros(pixel_values.shape, np.uint8)
    for c in range(3):
        columns = channel_of_column == c
        values = pixel_values[:, columns]
        index = np.searchsorted(table[c], values)  # the table rises with the byte value
        index = np.clip(index, 0, 255)
        if not np.array_equal(table[c][index], values):
            sys.exit("pixel_values holds a value that is no rescale+normalize of a byte")
        codes[:, columns] = index
    return codes


def compact_lists(text):
    """JSON text with every list of plain values on one line."""
    return re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\s*\n\s*", " ", m.group(0))
                  .replace("[ ", "[").replace(" ]", "]"), text)


def main():
    os.makedirs(os.path.join(OUT, "resize"), exist_ok=True)
    for index, size in enumerate(IMAGES):
        Image.fromarray(synthetic_rgb(*size, seed=31 + index), "RGB").save(
            os.path.join(OUT, image_name(size)), optimize=True)

    resizes = []
    for size, width, height in RESIZES:
        source = Image.open(os.path.join(OUT, image_name(size))).convert("RGB")
        file = f"resize/{image_name(size)}.{width}x{height}.png"
        source.resize((width, height), Image.BICUBIC).save(os.path.join(OUT, file), optimize=True)
        resizes.append({"image": image_name(size), "width": width, "height": height,
                        "expected": file})

    base = Qwen2VLImageProcessor()  # defaults: CLIP mean/std, patch 14, merge 2, temporal 2
    table = value_table(base)
    assert table.shape == (3, 256) and np.all(np.diff(table, axis=1) > 0)
    table.astype("<f4").tofile(os.path.join(OUT, "value_table.f32"))

    cases = []
    for size, min_pixels, max_pixels in CASES:
        processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
        source = Image.open(os.path.join(OUT, image_name(size))).convert("RGB")
        output = processor(images=[source], return_tensors="np")
        pixel_values, grid = output["pixel_values"], output["image_grid_thw"]
        assert pixel_values.dtype == np.float32 and grid.shape == (1, 3)
        t, gh, gw = (int(v) for v in grid[0])
        height, width = gh * PATCH, gw * PATCH
        assert [height, width] == list(smart_resize(size[1], size[0], FACTOR, min_pixels,
                                                    max_pixels))
        stem = f"{image_name(size)}.min{min_pixels}.max{max_pixels}"
        resized = source.resize((width, height), Image.BICUBIC)  # what the processor resized
        resized.save(os.path.join(OUT, stem + ".resized.png"), optimize=True)
        codes = codes_of(pixel_values, table)
        Image.fromarray(codes, "L").save(os.path.join(OUT, stem + ".codes.png"), optimize=True)
        cases.append({
            "image": image_name(size), "min_pixels": min_pixels, "max_pixels": max_pixels,
            "resized_height": height, "resized_width": width, "resized": stem + ".resized.png",
            "grid_thw": [t, gh, gw], "image_tokens": t * gh * gw // (MERGE * MERGE),
            "shape": list(pixel_values.shape), "codes": stem + ".codes.png",
        })

    with open(os.path.join(OUT, "cases.json"), "w") as f:
        f.write(compact_lists(json.dumps({
            "generated_by": "tools/make_qwen_vl_image_fixtures.py",
            "transformers": transformers.__version__, "pillow": PIL.__version__,
            "patch_size": PATCH, "merge_size": MERGE, "temporal_patch_size": TEMPORAL,
            "image_mean": list(base.image_mean), "image_std": list(base.image_std),
            "value_table": "value_table.f32",
            "smart_resize": smart_resize_table(), "resize": resizes, "cases": cases,
        }, indent=1)) + "\n")
    files = [os.path.join(root, name) for root, _, names in os.walk(OUT) for name in names]
    total = sum(os.path.getsize(path) for path in files)
    print(f"wrote {len(files)} files, {total / 1024:.1f} KB, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
