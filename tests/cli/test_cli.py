#!/usr/bin/python3
"""End-to-end tests of the zeropoint CLI, with NumPy as an independent oracle.

Run by ctest as: /usr/bin/python3 tests/cli/test_cli.py path/to/zeropoint
The expected codes and parameters are recomputed here in NumPy from the formulas of
docs/math.md (float64 for the parameters, float32 for the division, ties to even), so a
mistake in the C++ would have to be repeated independently here to go unnoticed.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ZEROPOINT = None


def run(*args, check=True):
    p = subprocess.run([ZEROPOINT, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"zeropoint {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p


def run_on_a_full_disk(*args, limit=256 << 10):
    """run(), with every file the process writes limited to `limit` bytes: past it a write fails
    (EFBIG) as it would on a full disk (ENOSPC)."""
    def limit_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return subprocess.run([ZEROPOINT, *map(str, args)], capture_output=True, text=True, preexec_fn=limit_files)


# Runs argv[1:] and prints its peak resident memory in KiB (from wait4), exiting with its status.
# A small process of its own forks it: the peak of a child forked from the test runner would count
# the runner's memory too (the high-water mark survives exec).
_PEAK_RSS = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_for_peak_rss(*args):
    """run(), returning the process's peak resident memory in bytes; its stdout is discarded."""
    p = subprocess.run([sys.executable, "-c", _PEAK_RSS, ZEROPOINT, *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"zeropoint {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return int(p.stdout.split()[-1]) * 1024


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def code_range(bits, signed, narrow):
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return (lo + 1 if narrow else lo), hi


def oracle_params(lo, hi, bits, signed, symmetric, narrow):
    """scale and zero point per docs/math.md §3, integer zero point."""
    qmin, qmax = code_range(bits, signed, narrow)
    lo = np.minimum(lo.astype(np.float64), 0.0)
    hi = np.maximum(hi.astype(np.float64), 0.0)
    if symmetric:
        amax = np.maximum(-lo, hi)
        divisor = qmax if narrow else (qmax - qmin) / 2.0
        scale = (amax / divisor).astype(np.float32)
        zp = np.full(scale.shape, 0 if signed else 1 << (bits - 1), dtype=np.int64)
    else:
        scale = ((hi - lo) / (qmax - qmin)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = qmin - np.round(lo / scale.astype(np.float64))
        zp = np.clip(np.nan_to_num(zp), qmin, qmax).astype(np.int64)
    degenerate = ~(scale >= np.finfo(np.float32).tiny)
    scale = np.where(degenerate, np.float32(1), scale).astype(np.float32)
    if not symmetric:
        zp = np.where(degenerate, 0, zp)
    return scale, zp, qmin, qmax


def oracle_quantize(x, scale, zp, qmin, qmax, recip=False):
    x = x.astype(np.float32)
    if recip:  # PyTorch / ggml: multiply by the float32 reciprocal
        q = np.round(x * (np.float32(1) / scale)) + zp
    else:
        q = np.round(x / scale) + zp  # float32 division, ties to even
    return np.clip(q, qmin, qmax).astype(np.int64)


def unpack(codes, n, bits, signed):
    """Codes as stored: 2-bit four per byte, 3-4 bit two per byte, element 0 lowest."""
    cbits = 2 if bits <= 2 else 4 if bits <= 4 else 8 if bits <= 8 else 16
    if cbits >= 8:
        return codes.astype(np.int64).reshape(-1)
    per = 8 // cbits
    fields = [(codes >> (k * cbits)) & ((1 << cbits) - 1) for k in range(per)]
    flat = np.stack(fields, axis=1).reshape(-1)[:n].astype(np.int64)
    if signed:
        flat = np.where(flat >= 1 << (cbits - 1), flat - (1 << cbits), flat)
    return flat


class QuantizeMatchesNumpyOracle(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        rng = np.random.default_rng(1234)
        w = rng.standard_normal((12, 40)).astype(np.float32) * 0.1
        w[3, 7] = 2.5  # an outlier, as real weights have
        w[5] += 0.3  # a channel whose range does not straddle zero symmetrically
        self.w = w
        self.src = os.path.join(self.dir, "w.npy")
        np.save(self.src, w)

    def tearDown(self):
        self.tmp.cleanup()

    def quantize(self, scheme):
        out = os.path.join(self.dir, "q.npz")
        report = json.loads(run("quantize", self.src, "--scheme", scheme, "-o", out, "--json").stdout)
        return np.load(out), report

    def groups(self, gran):
        """Per-group (min, max) and a function that expands group arrays to the tensor's shape."""
        w = self.w
        if gran == "tensor":
            return np.array([w.min()]), np.array([w.max()]), lambda a: a[0]
        if gran == "channel0":
            return w.min(axis=1), w.max(axis=1), lambda a: a[:, None]
        if gran == "channel1":
            return w.min(axis=0), w.max(axis=0), lambda a: a[None, :]
        if gran == "block8":  # 40 / 8 = 5 blocks per row along the last axis
            b = w.reshape(12, 5, 8)
            return b.min(axis=2), b.max(axis=2), lambda a: np.repeat(a, 8, axis=1)
        if gran == "block5axis0":  # 12 rows in blocks of 5: the last block has 2 rows
            pad = np.concatenate([w, np.full((3, 40), np.nan, np.float32)])
            b = pad.reshape(3, 5, 40)
            return np.nanmin(b, axis=1), np.nanmax(b, axis=1), lambda a: np.repeat(a, 5, axis=0)[:12]
        raise ValueError(gran)

    def check(self, scheme, bits, signed, symmetric, narrow, gran):
        z, report = self.quantize(scheme)
        self.assertEqual(str(z["scheme"]), scheme)
        lo, hi, expand = self.groups(gran)
        scale, zp, qmin, qmax = oracle_params(lo, hi, bits, signed, symmetric, narrow)
        np.testing.assert_array_equal(z["scale"], scale, err_msg=scheme)
        if symmetric:  # fixed by the scheme, so not stored
            self.assertNotIn("zero_point", z.files)
        else:
            self.assertEqual(z["zero_point"].dtype, z["codes"].dtype if bits > 4 else (np.int8 if signed else np.uint8))
            np.testing.assert_array_equal(z["zero_point"], zp, err_msg=scheme)
        expected = oracle_quantize(self.w, expand(scale), expand(zp), qmin, qmax, recip=scheme.endswith(":recip"))
        got = unpack(z["codes"], self.w.size, bits, signed).reshape(self.w.shape)
        np.testing.assert_array_equal(got, expected, err_msg=scheme)
        # dequantize: x = (q - zp) * scale in float32
        dq = os.path.join(self.dir, "dq.npy")
        run("dequantize", os.path.join(self.dir, "q.npz"), "-o", dq)
        values = np.load(dq)
        want = ((expected - expand(zp)).astype(np.float32) * expand(scale)).astype(np.float32)
        np.testing.assert_array_equal(values, want, err_msg=scheme)
        # the report's metrics agree with NumPy's
        err = self.w.astype(np.float64) - values
        self.assertAlmostEqual(report["error"]["mse"], float(np.mean(err**2)), delta=1e-12)
        self.assertAlmostEqual(report["error"]["max_abs_error"], float(np.abs(err).max()), delta=1e-9)
        return report

    def test_per_tensor_int8_symmetric(self):
        self.check("int8", 8, True, True, True, "tensor")

    def test_per_tensor_pytorch_full_range(self):
        self.check("int8:full", 8, True, True, False, "tensor")

    def test_per_tensor_uint8_asymmetric(self):
        self.check("uint8:asym", 8, False, False, False, "tensor")

    def test_reciprocal_quotient(self):
        self.check("int8:channel=0:full:recip", 8, True, True, False, "channel0")

    def test_per_channel_axis0(self):
        report = self.check("int8:channel=0", 8, True, True, True, "channel0")
        self.assertEqual(report["params"]["shape"], [12])

    def test_per_channel_innermost_axis(self):
        self.check("int8:channel=1:asym", 8, True, False, False, "channel1")

    def test_per_block_int4(self):
        self.check("int4:block=8", 4, True, True, True, "block8")

    def test_per_block_uint4_asym(self):
        self.check("uint4:block=8:asym", 4, False, False, False, "block8")

    def test_per_block_partial_last_block_on_axis0(self):
        self.check("int4:block=5:axis=0:asym", 4, True, False, False, "block5axis0")

    def test_two_bit_and_sixteen_bit(self):
        self.check("int2:channel=0", 2, True, True, True, "channel0")
        self.check("uint16:asym", 16, False, False, False, "tensor")
        self.check("int3:asym", 3, True, False, False, "tensor")

    def test_symmetric_unsigned_with_an_all_zero_channel(self):
        self.w[4] = 0.0  # a degenerate group: scale 1, and the zero point stays at 128
        np.save(self.src, self.w)
        self.check("uint8:channel=0:sym", 8, False, True, False, "channel0")

    def test_float_offset_scheme(self):
        z, _ = self.quantize("uint4:block=8:asym:zp=float")
        self.assertNotIn("zero_point", z.files)
        lo, hi, expand = self.groups("block8")
        scale = ((hi.astype(np.float64) - lo) / 15).astype(np.float32)
        np.testing.assert_array_equal(z["scale"], scale)
        np.testing.assert_array_equal(z["offset"], lo)
        q = np.clip(np.round((self.w - expand(lo)) / expand(scale)), 0, 15)
        np.testing.assert_array_equal(unpack(z["codes"], self.w.size, 4, False).reshape(self.w.shape), q)

    def test_float16_and_float64_inputs(self):
        for dtype in (np.float16, np.float64):
            np.save(self.src, self.w.astype(dtype))
            z, report = self.quantize("int8")
            self.assertEqual(report["dtype"], {np.float16: "f16", np.float64: "f64"}[dtype])
            x = self.w.astype(dtype).astype(np.float32)
            scale, zp, qmin, qmax = oracle_params(np.array([x.min()]), np.array([x.max()]), 8, True, True, True)
            np.testing.assert_array_equal(z["codes"], oracle_quantize(x, scale[0], 0, qmin, qmax))

    def test_dequantize_dtypes(self):
        out = os.path.join(self.dir, "q.npz")
        run("quantize", self.src, "-o", out)
        for dtype, np_dtype in (("f16", np.float16), ("f64", np.float64), ("f32", np.float32)):
            dq = os.path.join(self.dir, f"dq_{dtype}.npy")
            report = json.loads(run("dequantize", out, "-o", dq, "--dtype", dtype, "--json").stdout)
            self.assertEqual(report["dtype"], dtype)
            self.assertEqual(np.load(dq).dtype, np_dtype)

    def test_text_report(self):
        out = run("quantize", self.src, "--scheme", "int8:channel=0", "-o", os.path.join(self.dir, "q.npz")).stdout
        for needle in ("int8:channel=0", "scale", "zero point", "bits per value", "SQNR", "cosine", "[12, 40]"):
            self.assertIn(needle, out)

    def test_default_output_name(self):
        run("quantize", self.src)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "w.npz")))
        run("dequantize", os.path.join(self.dir, "w.npz"))
        np.testing.assert_allclose(np.load(os.path.join(self.dir, "w.npy")), self.w, atol=0.02)


class Explain(unittest.TestCase):
    def explain(self, *args):
        return json.loads(run("explain", *args, "--json").stdout)

    def test_seed_symmetric_example(self):
        j = self.explain("--range", -10, 10, "--type", "int8", "--values", 0, 10, -10, 5, -7.5)
        self.assertEqual(j["scale"], float(np.float32(10 / 127)))
        self.assertEqual([v["code"] for v in j["values"]], [0, 127, -127, 64, -95])
        self.assertNotIn("article", j)

    def test_pytorch_full_range(self):
        j = self.explain("--range", -10, 10, "--type", "int8:full", "--values", -7.5)
        self.assertEqual(j["values"][0]["code"], -96)

    def test_seed_asymmetric_example_and_the_article(self):
        j = self.explain("--range", 10, 260, "--type", "uint8", "--values", 10, 260)
        self.assertEqual(j["scale"], float(np.float32(260 / 255)))
        self.assertEqual(j["zero_point"], 0)
        self.assertEqual([v["code"] for v in j["values"]], [10, 255])
        self.assertEqual(j["article"]["zero_point"], -10)
        self.assertEqual(j["article"]["codes"], [20, 275])
        text = run("explain", "--range", 10, 260, "--type", "uint8", "--values", 10, 260).stdout
        self.assertIn("Where the seed article differs", text)
        self.assertIn("Q(260) = 275", text)
        self.assertIn("q = round(x / scale) + zp", text)

    def test_float_offset_mode(self):
        j = self.explain("--range", 10, 260, "--type", "uint8:asym:zp=float", "--values", 10, 260)
        self.assertEqual(j["scale"], float(np.float32(250 / 255)))
        self.assertEqual(j["offset"], 10.0)
        self.assertEqual([v["code"] for v in j["values"]], [0, 255])

    def test_text_shows_each_formula_with_numbers(self):
        out = run("explain", "--range", -10, 10, "--type", "int8", "--values", 5).stdout
        self.assertIn("scale = amax / qmax = 10 / 127 = 0.07874015748", out)
        self.assertIn("63.5", out)
        self.assertIn("tie", out)

    def test_a_range_widened_to_zero_shows_its_magnitudes_without_a_minus_sign(self):
        out = run("explain", "--range", 1, 2, "--type", "int8", "--values", 1).stdout
        self.assertIn("amax = max(|min|, |max|) = max(0, 2) = 2", out)


class BadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.good = os.path.join(self.dir, "good.npy")
        np.save(self.good, np.arange(12, dtype=np.float32).reshape(3, 4))

    def tearDown(self):
        self.tmp.cleanup()

    def fails(self, *args, needles=()):
        p = run(*args, check=False)
        self.assertNotEqual(p.returncode, 0, f"{args} succeeded")
        self.assertEqual(p.stdout, "")
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"not one line: {p.stderr!r}")
        self.assertTrue(lines[0].startswith("zeropoint: error: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        self.assertNotIn("internal error", lines[0])
        return lines[0]

    def leftovers(self):
        return sorted(f for f in os.listdir(self.dir) if f not in ("good.npy",) and not f.startswith("in"))

    def test_nan_names_file_and_index(self):
        bad = os.path.join(self.dir, "in_nan.npy")
        x = np.ones((3, 4), np.float32)
        x[2, 1] = np.nan
        np.save(bad, x)
        self.fails("quantize", bad, "-o", os.path.join(self.dir, "out.npz"),
                   needles=("in_nan.npy", "NaN at index [2, 1]", "--ignore-nonfinite"))
        self.assertEqual(self.leftovers(), [])
        run("quantize", bad, "-o", os.path.join(self.dir, "out.npz"), "--ignore-nonfinite")
        self.assertEqual(self.leftovers(), ["out.npz"])

    def test_infinity(self):
        bad = os.path.join(self.dir, "in_inf.npy")
        np.save(bad, np.array([1.0, -np.inf], np.float32))
        self.fails("quantize", bad, needles=("-inf at index [1]",))

    def test_empty_tensor(self):
        bad = os.path.join(self.dir, "in_empty.npy")
        np.save(bad, np.zeros((0, 4), np.float32))
        self.fails("quantize", bad, needles=("empty",))

    def test_bad_schemes(self):
        for scheme, needle in (("int9", "9 bits"), ("int1", "1 bits"), ("int8:channel=2", "axis 2 is out of range"),
                               ("int4:block=1", "at least 2"), ("uint8:sym:narrow", "symmetric unsigned"),
                               ("float8", "unknown type")):
            self.fails("quantize", self.good, "--scheme", scheme, "-o", os.path.join(self.dir, "o.npz"),
                       needles=(needle,))
        self.assertEqual(self.leftovers(), [])

    def test_not_npy_and_truncated(self):
        junk = os.path.join(self.dir, "in_junk.npy")
        with open(junk, "wb") as f:
            f.write(b"this is not a numpy file at all")
        self.fails("quantize", junk, needles=("in_junk.npy",))
        data = read_bytes(self.good)
        trunc = os.path.join(self.dir, "in_trunc.npy")
        with open(trunc, "wb") as f:
            f.write(data[:-5])
        self.fails("quantize", trunc, needles=("in_trunc.npy",))
        self.fails("quantize", os.path.join(self.dir, "in_missing.npy"), needles=("in_missing.npy",))

    def test_unsupported_dtype_and_fortran_order(self):
        cplx = os.path.join(self.dir, "in_complex.npy")
        np.save(cplx, np.ones(3, np.complex64))
        self.fails("quantize", cplx, needles=("in_complex.npy",))
        ints = os.path.join(self.dir, "in_ints.npy")
        np.save(ints, np.ones(3, np.int32))
        self.fails("quantize", ints, needles=("i32",))
        fort = os.path.join(self.dir, "in_fortran.npy")
        np.save(fort, np.asfortranarray(np.ones((3, 4), np.float32)))
        self.fails("quantize", fort, needles=("Fortran",))

    def test_output_equal_to_input_is_refused(self):
        before = read_bytes(self.good)
        self.fails("quantize", self.good, "-o", self.good, needles=("overwrite the input",))
        self.assertEqual(read_bytes(self.good), before)

    def test_unwritable_output_leaves_nothing_and_keeps_old_file(self):
        self.fails("quantize", self.good, "-o", os.path.join(self.dir, "no", "such", "dir", "o.npz"))
        old = os.path.join(self.dir, "old.npz")
        with open(old, "wb") as f:
            f.write(b"previous content")
        # A failing job (bad scheme for this shape) must not touch an existing output.
        self.fails("quantize", self.good, "--scheme", "int8:channel=5", "-o", old)
        self.assertEqual(read_bytes(old), b"previous content")
        self.assertEqual(self.leftovers(), ["old.npz"])

    def test_dequantize_rejects_foreign_or_lying_archives(self):
        plain = os.path.join(self.dir, "in_plain.npz")
        np.savez(plain, a=np.ones(3))
        self.fails("dequantize", plain, needles=("in_plain.npz", "format"))
        q = os.path.join(self.dir, "in_q.npz")
        run("quantize", self.good, "--scheme", "int4", "-o", q)
        z = dict(np.load(q))
        lying = os.path.join(self.dir, "in_lying.npz")
        z["scale"] = np.float32(-1)
        np.savez(lying, **z)
        self.fails("dequantize", lying, needles=("in_lying.npz", "scale"))
        z = dict(np.load(q))
        z["shape"] = np.array([5, 4], np.int64)  # more values than the codes hold
        np.savez(lying, **z)
        self.fails("dequantize", lying, needles=("in_lying.npz", "codes"))
        z = dict(np.load(q))
        z["codes"] = np.full_like(z["codes"], 0x88)  # -8 is outside int4's narrow range
        np.savez(lying, **z)
        self.fails("dequantize", lying, needles=("outside the range",))
        self.fails("dequantize", q, "--dtype", "bf16", needles=("bf16",))

    def test_usage_errors_are_one_line(self):
        self.fails("quantize")
        self.fails("explain", "--range", 1)
        self.fails("explain", "--range", 2, 1, needles=("min > max",))
        self.fails("frobnicate")


class Help(unittest.TestCase):
    def test_every_command_has_help_with_an_example(self):
        for cmd in ([], ["explain"], ["quantize"], ["dequantize"], ["bench"]):
            p = run(*cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn("Example", p.stdout, cmd)


if __name__ == "__main__":
    ZEROPOINT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
