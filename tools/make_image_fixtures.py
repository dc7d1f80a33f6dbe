#!/usr/bin/env python3
"""Regenerates tests/fixtures/image/: small test images and the pixel values that LLaVA-1.5's
image path (expand2square + transformers' CLIPImageProcessor, which resizes through PIL) gives
for them. The C++ test tests/image/test_preprocess_parity.cpp compares perpo against these.

    /work/main/.venv/bin/python tools/make_image_fixtures.py

Outputs (all small; total well under 300 KB):
  *.png / *.jpg / *.bmp       the input images (synthetic, deterministic)
  <image>.rgb                 JPEGs only: the image as PIL decodes it, (H, W, 3) uint8
  <image>.<aspect><size>.f32  transformers' pixel_values, (3, size, size) float32 little-endian
  smooth_36x24.png.pad336.png for size 336 the float output would be 1.3 MB, so the fixture holds
                              the 8-bit resized image instead; this script asserts that normalising
                              it reproduces transformers' pixel_values exactly
  cases.json                  the list of cases with their shapes and file names
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from transformers import CLIPImageProcessor

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "image")
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# Images whose "crop" output is stored too (every image gets "pad"); keeps the fixtures small.
ASPECTS = {name: ("pad", "crop") for name in
           ("rgb_64x48.png", "rgba_50x70.png", "grey_40x30.png", "rgb_64x48.jpg")}


def expand_to_square(image, background):
    """LLaVA-1.5's padding: a square of the longer side, image pasted centred (offsets floored)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new(image.mode, (side, side), background)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def llava_pixel_values(path, size, aspect):
    """pixel_values exactly as LLaVA-1.5 computes them: (3, size, size) float32."""
    processor = CLIPImageProcessor(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    image = Image.open(path).convert("RGB")
    if aspect == "pad":
        image = expand_to_square(image, tuple(int(x * 255) for x in processor.image_mean))
    return processor.preprocess(image, return_tensors="np")["pixel_values"][0]


def synthetic_rgb(width, height, seed, noise=12.0):
    """Smooth gradients, a sharp-edged disc and some noise: exercises the filter at edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 128 + 127 * np.sin(x / 3.0) * np.cos(y / 5.0)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.25) ** 2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[disc] = [250, 20, 30]
    rgb += rng.normal(0, noise, rgb.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def write_images():
    """Returns the names of the images written."""
    rgb = synthetic_rgb(64, 48, seed=1)
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb_64x48.png"))
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb_64x48.jpg"), quality=90)  # 4:2:0
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb_64x48_444.jpg"), quality=95,
                                     subsampling=0)

    rgba = np.dstack([synthetic_rgb(50, 70, seed=2), np.zeros((70, 50), np.uint8)])
    rgba[..., 3] = np.linspace(0, 255, 50, dtype=np.uint8)[None, :]  # alpha ramp, dropped by RGB
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "rgba_50x70.png"))

    grey = synthetic_rgb(40, 30, seed=3)[..., 1]
    Image.fromarray(grey, "L").save(os.path.join(OUT, "grey_40x30.png"))

    grey_alpha = np.dstack([synthetic_rgb(30, 20, seed=4)[..., 0], np.full((20, 30), 77, np.uint8)])
    Image.fromarray(grey_alpha, "LA").save(os.path.join(OUT, "grey_alpha_30x20.png"))

    palette = Image.fromarray(synthetic_rgb(24, 36, seed=5), "RGB").quantize(colors=16)
    palette.save(os.path.join(OUT, "palette_24x36.png"))

    Image.fromarray(synthetic_rgb(20, 10, seed=6), "RGB").save(os.path.join(OUT, "rgb_20x10.bmp"))

    # Noise-free, so that its 336x336 result compresses well.
    smooth = synthetic_rgb(36, 24, seed=7, noise=0.0)
    Image.fromarray(smooth, "RGB").save(os.path.join(OUT, "smooth_36x24.png"))
    return ["smooth_36x24.png", "rgb_64x48.png", "rgba_50x70.png", "grey_40x30.png", "grey_alpha_30x20.png",
            "palette_24x36.png", "rgb_20x10.bmp", "rgb_64x48.jpg", "rgb_64x48_444.jpg"]


def normalise(rgb8):
    """transformers' rescale + normalize on an 8-bit (H, W, 3) image -> (3, H, W) float32."""
    rescaled = (rgb8.astype(np.float64) * (1 / 255)).astype(np.float32)
    mean = np.array(CLIP_MEAN, np.float32)
    std = np.array(CLIP_STD, np.float32)
    return ((rescaled - mean) / std).transpose(2, 0, 1)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []
    for name in write_images():
        path = os.path.join(OUT, name)
        decoded = np.asarray(Image.open(path).convert("RGB"))
        entry = {"image": name, "width": decoded.shape[1], "height": decoded.shape[0],
                 "outputs": []}
        if name.endswith(".jpg"):  # PIL's (libjpeg's) decoding, to measure stb's difference
            decoded.tofile(os.path.join(OUT, name + ".rgb"))
            entry["decoded"] = name + ".rgb"
        for aspect in ASPECTS.get(name, ("pad",)):
            values = llava_pixel_values(path, 32, aspect)
            assert values.shape == (3, 32, 32) and values.dtype == np.float32
            file = f"{name}.{aspect}32.f32"
            values.astype("<f4").tofile(os.path.join(OUT, file))
            entry["outputs"].append({"aspect": aspect, "size": 32, "float32": file})
        cases.append(entry)

    # Size 336 (LLaVA-1.5's input), stored as the 8-bit image before rescale/normalise.
    for name in ("smooth_36x24.png",):
        path = os.path.join(OUT, name)
        values = llava_pixel_values(path, 336, "pad")
        mean255 = tuple(int(x * 255) for x in CLIP_MEAN)
        square = expand_to_square(Image.open(path).convert("RGB"), mean255)
        resized = np.asarray(square.resize((336, 336), Image.BICUBIC))
        if not np.array_equal(normalise(resized), values):
            sys.exit(f"{name}: normalised 8-bit image does not reproduce transformers' output")
        file = f"{name}.pad336.png"
        Image.fromarray(resized, "RGB").save(os.path.join(OUT, file), optimize=True)
        entry = next(case for case in cases if case["image"] == name)
        entry["outputs"].append({"aspect": "pad", "size": 336, "rgb8_png": file})

    # Self-check of the 8-bit shortcut at size 32 too: transformers = normalise(PIL resize).
    check = llava_pixel_values(os.path.join(OUT, "rgb_64x48.png"), 32, "crop")
    pil = Image.open(os.path.join(OUT, "rgb_64x48.png")).convert("RGB").resize((42, 32), Image.BICUBIC)
    assert np.array_equal(normalise(np.asarray(pil)[:, 5:37]), check)

    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"mean": CLIP_MEAN, "std": CLIP_STD, "cases": cases}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1024:.1f} KB, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
