#!/usr/bin/python3
"""End-to-end tests of `zeropoint calibrate`, with NumPy as the oracle.

Run by ctest as: /usr/bin/python3 tests/cli/test_calibrate.py path/to/zeropoint
minmax must give NumPy's extremes of the finite values exactly, and the scale and zero point of
docs/math.md §3 recomputed here; percentile must lie within one histogram bin of
numpy.percentile; NaN and infinity are counted and skipped; bad input fails with a message.
"""
import json
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402
from test_cli import run  # noqa: E402


def calibrate_json(*args):
    return json.loads(run("calibrate", *args, "--json").stdout)


def oracle_params(lo, hi, qmin, qmax, symmetric, narrow):
    """Scale and integer zero point per docs/math.md §3, in float64, the scale stored as float32."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        divisor = qmax if narrow else (qmax - qmin) / 2.0
        scale = np.float32(max(-lo, hi) / divisor)
        zp = 0 if qmin < 0 else (qmax + 1) // 2
    else:
        scale = np.float32((hi - lo) / (qmax - qmin))
        zp = int(np.clip(qmin - np.round(lo / np.float64(scale)), qmin, qmax))
    if not scale >= np.finfo(np.float32).tiny:
        return np.float32(1), (zp if symmetric else 0)
    return scale, zp


class Calibrate(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(7)
        # Three batches of one activation, of different sizes and spreads; skewed like a GELU output.
        self.batches = [
            (rng.standard_normal((4, 1000)) * 0.5 + 0.3).astype(np.float32),
            (rng.standard_normal((2, 3000)) * 1.5 + 0.3).astype(np.float32),
            np.abs(rng.standard_normal(25000)).astype(np.float32) * 2.0,
        ]
        self.paths = []
        for k, b in enumerate(self.batches):
            path = os.path.join(self.tmp.name, f"act_{k}.npy")
            np.save(path, b)
            self.paths.append(path)
        self.all = np.concatenate([b.reshape(-1) for b in self.batches])

    def tearDown(self):
        self.tmp.cleanup()

    def save(self, name, array):
        path = os.path.join(self.tmp.name, name)
        np.save(path, array)
        return path

    def test_minmax_is_numpys_extremes_and_params(self):
        for scheme, qmin, qmax, symmetric, narrow in (("uint8:asym", 0, 255, False, False),
                                                      ("int8", -127, 127, True, True),
                                                      ("int8:asym", -128, 127, False, False)):
            with self.subTest(scheme=scheme):
                r = calibrate_json(*self.paths, "--method", "minmax", "--scheme", scheme)
                self.assertEqual(r["method"], "minmax")
                self.assertEqual(r["batches"], 3)
                self.assertEqual(r["count"], self.all.size)
                self.assertEqual(r["nan_count"], 0)
                self.assertEqual(np.float32(r["min"]), self.all.min())
                self.assertEqual(np.float32(r["max"]), self.all.max())
                scale, zp = oracle_params(self.all.min(), self.all.max(), qmin, qmax, symmetric, narrow)
                self.assertEqual(np.float32(r["scale"]), scale)
                self.assertEqual(r["zero_point"], zp)

    def test_percentile_within_one_bin_of_numpy(self):
        for p in (99.0, 99.99):
            with self.subTest(percentile=p):
                r = calibrate_json(*self.paths, "--method", "percentile", "--percentile", p, "--scheme", "uint8:asym")
                w = r["bin_width"]
                # The width is the finest power of two that fits: the values span over half the bins.
                self.assertLess(w, 2 * (self.all.max() - self.all.min()) / r["bins"])
                lo, hi = np.percentile(self.all.astype(np.float64), [100 - p, p])
                self.assertLessEqual(abs(r["min"] - lo), w)
                self.assertLessEqual(abs(r["max"] - hi), w)
                scale, zp = oracle_params(r["min"], r["max"], 0, 255, False, False)
                self.assertEqual(np.float32(r["scale"]), scale)
                self.assertEqual(r["zero_point"], zp)

                s = calibrate_json(*self.paths, "--method", "percentile", "--percentile", p, "--scheme", "int8")
                t = np.percentile(np.abs(self.all.astype(np.float64)), p)
                self.assertLessEqual(abs(s["max"] - t), s["bin_width"])
                self.assertAlmostEqual(s["min"], max(-s["max"], float(self.all.min())), places=5)

    def test_nan_and_infinity_are_reported_not_fatal(self):
        dirty = self.batches[1].copy()
        dirty[0, :3] = np.nan
        dirty[1, 5] = np.inf
        dirty[1, 6] = -np.inf
        path = self.save("dirty.npy", dirty)
        for method in ("minmax", "percentile", "entropy", "mse", "moving_average"):
            with self.subTest(method=method):
                r = calibrate_json(self.paths[0], path, "--method", method)
                self.assertEqual(r["nan_count"], 3)
                self.assertEqual(r["inf_count"], 2)
                finite = np.concatenate([self.batches[0].reshape(-1), dirty[np.isfinite(dirty)]])
                self.assertEqual(r["count"], finite.size)
                self.assertEqual(np.float32(r["observed_min"]), finite.min())
                self.assertEqual(np.float32(r["observed_max"]), finite.max())
                self.assertTrue(finite.min() <= r["min"] <= r["max"] <= finite.max())
        text = run("calibrate", path).stdout
        self.assertIn("3 NaN and 2 infinities skipped", text)
        self.assertIn("zero point", text)

    def test_clipping_methods_stay_inside_the_observed_range(self):
        for method in ("entropy", "mse"):
            for scheme in ("uint8:asym", "int8", "uint4:asym:zp=float"):
                with self.subTest(method=method, scheme=scheme):
                    r = calibrate_json(*self.paths, "--method", method, "--scheme", scheme)
                    self.assertTrue(self.all.min() <= r["min"] <= r["max"] <= self.all.max())
                    self.assertEqual(r["scheme"], scheme)
                    self.assertIn("offset" if "zp=float" in scheme else "zero_point", r)

    def test_float16_and_float64_batches(self):
        p16 = self.save("h.npy", self.batches[0].astype(np.float16))
        p64 = self.save("d.npy", self.batches[1].astype(np.float64))
        r = calibrate_json(p16, p64)
        expected = np.concatenate([self.batches[0].astype(np.float16).astype(np.float32).reshape(-1),
                                   self.batches[1].reshape(-1)])
        self.assertEqual(np.float32(r["min"]), expected.min())
        self.assertEqual(np.float32(r["max"]), expected.max())

    def fails(self, *args, needles=()):
        p = run("calibrate", *args, check=False)
        self.assertNotEqual(p.returncode, 0, args)
        self.assertIn("error", p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        return p

    def test_bad_input(self):
        self.fails(os.path.join(self.tmp.name, "missing.npy"))
        self.fails(self.save("nan.npy", np.full(10, np.nan, np.float32)), needles=("no finite value", "10 NaN"))
        self.fails(self.save("ints.npy", np.arange(10, dtype=np.int32)), needles=("must be float",))
        self.fails(self.paths[0], "--method", "kl", needles=("minmax", "entropy"))
        self.fails(self.paths[0], "--method", "percentile", "--percentile", 0, needles=("percentile",))
        self.fails(self.paths[0], "--scheme", "int8:channel=0", needles=("per tensor",))
        self.fails(self.paths[0], "--bins", 4, needles=("bins",))
        not_npy = os.path.join(self.tmp.name, "text.npy")
        with open(not_npy, "w") as f:
            f.write("not an array")
        self.fails(not_npy)
        self.fails()

    def test_help_has_an_example(self):
        p = run("calibrate", "--help")
        self.assertIn("Example", p.stdout)
        self.assertIn("--method", p.stdout)


if __name__ == "__main__":
    test_cli.ZEROPOINT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
