#!/usr/bin/python3
"""Generates data/sample_weight.npy, the demo's bundled tensor (committed; rerun to recreate).

A 128 x 256 float32 matrix shaped like one projection of a small transformer layer: normal
weights (sigma 0.02), a heavier tail (Student-t, 4 degrees of freedom), and two outlier output
channels 8x larger, as real LLM weights have. Deterministic: the same bytes every run.
Run with Debian's python3 (it has numpy): /usr/bin/python3 scripts/make-sample.py
"""
import os

import numpy as np

rng = np.random.default_rng(20261129)
w = rng.standard_t(df=4, size=(128, 256)) * 0.02
w[[17, 90]] *= 8.0
out = os.path.join(os.path.dirname(__file__), "..", "data", "sample_weight.npy")
np.save(out, w.astype(np.float32))
print(f"wrote {os.path.normpath(out)}: {w.shape} float32")
