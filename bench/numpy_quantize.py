#!/usr/bin/python3
"""NumPy comparison row for docs/benchmarks.md: per-tensor symmetric int8 quantization.

Quantizes a float32 array (4 MiB: in cache; 256 MiB: from DRAM) to int8 with
scale = max|x| / 127 and q = clip(round(x / scale), -127, 127), three ways:

  straightforward  the textbook expression, every step a new temporary array
  in-place         the same steps with out= buffers allocated once (no temporaries)
  chunked          in-place, 64 Ki elements at a time, so the float buffer stays in cache

and times two copies as yardsticks in the same run: np.copyto float32 -> float32 (memcpy) and
np.copyto float32 -> int8 (read floats, write bytes: the memory traffic of quantize itself).
Figures are GB/s of float32 input (1e9 bytes of x per second), fastest of several repeats.

Run with Debian's NumPy (python3-numpy), the way docs/benchmarks.md records it:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/numpy_quantize.py

Add --json for one JSON object instead of the table.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

CHUNK = 64 * 1024  # elements: 256 KiB of float32, well inside L2


def straightforward(x):
    amax = np.abs(x).max()
    scale = amax / 127
    return np.clip(np.round(x / scale), -127, 127).astype(np.int8)


def in_place(x, tmp, out):
    # max(|min|, |max|) is max|x| without the |x| temporary (two reads of x, nothing written).
    amax = max(-x.min(), x.max())
    scale = np.float32(amax / np.float32(127))
    np.divide(x, scale, out=tmp)
    np.rint(tmp, out=tmp)  # np.round(decimals=0) is rint: ties to even
    np.clip(tmp, -127, 127, out=tmp)
    np.copyto(out, tmp, casting="unsafe")
    return out


def chunked(x, tmp, out):
    amax = max(-x.min(), x.max())
    scale = np.float32(amax / np.float32(127))
    t = tmp[:CHUNK]
    for start in range(0, x.size, CHUNK):
        stop = min(start + CHUNK, x.size)
        c = t[: stop - start]
        np.divide(x[start:stop], scale, out=c)
        np.rint(c, out=c)
        np.clip(c, -127, 127, out=c)
        np.copyto(out[start:stop], c, casting="unsafe")
    return out


def best_seconds(fn, repeats):
    fn()  # warm-up: page faults, caches
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(mib, repeats):
    n = mib * (1 << 20) // 4
    rng = np.random.default_rng(42)
    x = rng.standard_normal(n, dtype=np.float32)
    tmp = np.empty_like(x)
    out = np.empty(n, dtype=np.int8)
    copy = np.empty_like(x)

    expected = straightforward(x)
    for fn in (in_place, chunked):  # the faster ways must give the same codes
        if not np.array_equal(fn(x, tmp, out), expected):
            raise SystemExit(f"{fn.__name__} disagrees with the straightforward expression")

    cases = [
        ("np.copyto f32 -> f32 (memcpy yardstick)", lambda: np.copyto(copy, x)),
        ("np.copyto f32 -> i8 (quantize's traffic)", lambda: np.copyto(out, x, casting="unsafe")),
        ("quantize: straightforward", lambda: straightforward(x)),
        ("quantize: in-place, out= buffers", lambda: in_place(x, tmp, out)),
        ("quantize: in-place, chunked", lambda: chunked(x, tmp, out)),
    ]
    return [(name, x.nbytes / best_seconds(fn, repeats) / 1e9) for name, fn in cases]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 256], help="array sizes in MiB of float32")
    ap.add_argument("--repeats", type=int, default=0, help="repeats per case (default: 50 below 64 MiB, else 5)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    results = {}
    for mib in args.sizes:
        repeats = args.repeats or (50 if mib < 64 else 5)
        results[mib] = measure(mib, repeats)

    meta = {
        "python": sys.executable,
        "python_version": platform.python_version(),
        "numpy": np.__version__,
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps({**meta, "results": [
            {"case": name, "size_mib": mib, "gb_per_s": gbps} for mib, rows in results.items() for name, gbps in rows
        ]}, indent=2))
        return
    print(f"{meta['python']} {meta['python_version']}, NumPy {meta['numpy']}, "
          f"load average {' '.join(f'{v:.2f}' for v in meta['load_average'])}")
    print("GB/s of float32 input, fastest of the repeats; % of the f32 -> i8 copy in the same run\n")
    width = max(len(name) for rows in results.values() for name, _ in rows)
    for mib, rows in results.items():
        stream = dict(rows)["np.copyto f32 -> i8 (quantize's traffic)"]
        print(f"{mib} MiB")
        for name, gbps in rows:
            print(f"  {name:<{width}}  {gbps:7.2f} GB/s  {100 * gbps / stream:5.0f}%")
        print()


if __name__ == "__main__":
    main()
