#!/usr/bin/python3
"""Document-like images for PaddleOCR's text detector, as calibration samples (.npy, one each).

  /usr/bin/python3 scripts/make-onnx-samples.py DIR [--count 8] [--size 320] [--seed 0]

Each sample is a white page with dark, text-like strokes, normalized with ImageNet's mean and
standard deviation as PaddleOCR's detector expects: float32 [1, 3, size, size].
"""
import argparse
import os

import numpy as np


def document(rng, h, w):
    page = np.ones((3, h, w), np.float32)
    for _ in range(max(1, h * w // 3400)):
        y0, x0 = rng.integers(0, h - 14), rng.integers(0, w - 60)
        hh, ww = rng.integers(6, 14), rng.integers(10, 60)
        ink = rng.random((hh, ww)) < 0.7
        page[:, y0:y0 + hh, x0:x0 + ww][:, ink] = 0.1 * rng.random()
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    return ((page - mean) / std)[None].astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    for i in range(a.count):
        np.save(os.path.join(a.dir, f"page{i:02d}.npy"), document(rng, a.size, a.size))
    print(f"{a.count} samples [1, 3, {a.size}, {a.size}] in {a.dir}")


if __name__ == "__main__":
    main()
