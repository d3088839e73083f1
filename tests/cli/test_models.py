#!/usr/bin/python3
"""End-to-end tests of zeropoint on safetensors checkpoints, with NumPy as the oracle.

Run by ctest as:
  /usr/bin/python3 tests/cli/test_models.py path/to/zeropoint path/to/make-example-model.py [--memory]

The checkpoint is the project's generated Llama-style example (bf16, two shards). Files are read
back here with a few lines of Python (the safetensors layout is simple: a length, a JSON header,
raw little-endian data), independently of zeropoint's own reader. --memory runs only the
resident-memory test on a generated checkpoint of more than 1 GiB.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402
from test_cli import oracle_params, oracle_quantize, run, run_on_a_full_disk, unpack  # noqa: E402

ZEROPOINT = None
MAKE_MODEL = None

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I8": np.int8, "U8": np.uint8,
          "I16": np.int16, "U16": np.uint16, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)}, metadata."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), data[b:e])
    return out, meta


def read_checkpoint(folder):
    tensors, meta = {}, None
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            t, m = read_safetensors(os.path.join(folder, name))
            tensors.update(t)
            meta = meta if meta is not None else m
    return tensors, meta


def as_array(entry):
    dtype, shape, raw = entry
    a = np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape)
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a


def make_model(folder, *extra):
    subprocess.run([sys.executable, MAKE_MODEL, folder, *map(str, extra)], check=True, capture_output=True)


class QuantizedCheckpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.tmp.name, "model")
        make_model(cls.model)
        cls.source, _ = read_checkpoint(cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def out(self, name):
        return os.path.join(self.tmp.name, name)

    def test_int8_per_channel_matches_the_oracle_and_round_trips(self):
        out = self.out("int8")
        report = json.loads(run("quantize", self.model, "-o", out, "--scheme", "int8:channel=0", "--json", "-q").stdout)
        self.assertEqual(report["files"], [os.path.join(out, "model.safetensors")])
        q, meta = read_checkpoint(out)
        described = json.loads(meta["zeropoint"])["tensors"]
        quantized = [t for t in report["tensors"] if t["quantized"]]
        self.assertEqual(len(quantized), 16)  # every matrix; norms stay
        for name, entry in self.source.items():
            if len(entry[1]) < 2:  # kept byte for byte, same dtype and shape
                self.assertEqual(q[name], entry, name)
                self.assertNotIn(name, described)
                continue
            x = as_array(entry)
            self.assertEqual(described[name], {"scheme": "int8:channel=0", "dtype": "BF16", "shape": list(entry[1])})
            codes = as_array(q[name])
            scale = as_array(q[name + "_scale"])
            self.assertEqual(q[name][0], "I8")
            self.assertEqual(scale.shape, (x.shape[0],))
            self.assertNotIn(name + "_zero_point", q)  # symmetric: the zero point is fixed
            e_scale, e_zp, qmin, qmax = oracle_params(x.min(axis=1), x.max(axis=1), 8, True, True, True)
            np.testing.assert_array_equal(scale, e_scale, err_msg=name)
            np.testing.assert_array_equal(codes, oracle_quantize(x, e_scale[:, None], 0, qmin, qmax), err_msg=name)
        # Back to floats: the kept tensors byte for byte, the others within half a step.
        dq = self.out("int8-dq")
        run("dequantize", out, "-o", dq, "-q")
        back, meta_back = read_checkpoint(dq)
        self.assertNotIn("zeropoint", meta_back)
        self.assertEqual(set(back), set(self.source))
        for name, entry in self.source.items():
            if len(entry[1]) < 2:
                self.assertEqual(back[name], entry, name)
                continue
            self.assertEqual(back[name][0], "BF16")  # the dtype it had
            x, y = as_array(entry), as_array(back[name])
            step = as_array(q[name + "_scale"])[:, None]
            # half a step, plus bf16's rounding of the dequantized value (8 bits of mantissa)
            self.assertTrue(np.all(np.abs(x - y) <= step / 2 + np.abs(y) * 2.0 ** -8), name)

    def test_rules_keep_and_packed_asymmetric_codes(self):
        out = self.out("mixed.safetensors")
        run("quantize", self.model, "-o", out, "--scheme", "uint4:block=32:asym", "--keep", "lm_head",
            "--rule", "down_proj=int8", "--rule", "proj=int8:channel=0", "-q")
        q, meta = read_safetensors(out)
        described = json.loads(meta["zeropoint"])["tensors"]
        self.assertNotIn("lm_head.weight", described)
        self.assertEqual(q["lm_head.weight"], self.source["lm_head.weight"])
        # first match wins: down_proj matches both rules
        self.assertEqual(described["model.layers.0.mlp.down_proj.weight"]["scheme"], "int8")
        self.assertEqual(described["model.layers.0.mlp.up_proj.weight"]["scheme"], "int8:channel=0")
        name = "model.embed_tokens.weight"
        self.assertEqual(described[name]["scheme"], "uint4:block=32:asym")
        x = as_array(self.source[name])
        rows, cols = x.shape
        dtype, shape, raw = q[name + "_packed"]
        self.assertEqual((dtype, shape), ("U8", (rows, cols // 2)))
        codes = unpack(np.frombuffer(raw, np.uint8), x.size, 4, False).reshape(rows, cols)
        blocks = x.reshape(rows, cols // 32, 32)
        e_scale, e_zp, qmin, qmax = oracle_params(blocks.min(axis=2), blocks.max(axis=2), 4, False, False, False)
        np.testing.assert_array_equal(as_array(q[name + "_scale"]), e_scale)
        np.testing.assert_array_equal(as_array(q[name + "_zero_point"]), e_zp.astype(np.uint8))
        expected = oracle_quantize(blocks, e_scale[:, :, None], e_zp[:, :, None], qmin, qmax).reshape(rows, cols)
        np.testing.assert_array_equal(codes, expected)

    def test_dry_run_writes_nothing_and_reports_the_plan(self):
        out = self.out("dry")
        report = json.loads(run("quantize", self.model, "-o", out, "--dry-run", "--json").stdout)
        self.assertFalse(os.path.exists(out))
        self.assertTrue(report["dry_run"])
        by_name = {t["name"]: t for t in report["tensors"]}
        norm = by_name["model.norm.weight"]
        self.assertFalse(norm["quantized"])
        self.assertEqual(norm["bytes_in"], norm["bytes_out"])
        q = by_name["model.layers.0.self_attn.q_proj.weight"]
        self.assertEqual(q["scheme"], "int8:channel=0")
        self.assertEqual(q["bytes_out"], 256 * 256 + 256 * 4)  # codes + one float32 scale per row
        text = run("quantize", self.model, "-o", out, "--dry-run").stdout
        self.assertIn("keep (1-D", text)
        self.assertIn("plan (21 tensors)", text)

    def test_sharded_output_and_its_index(self):
        out = self.out("sharded")
        run("quantize", self.model, "-o", out, "--scheme", "int4:block=32", "--max-shard-size", "1MB", "-q")
        files = sorted(os.listdir(out))
        shards = [f for f in files if f.endswith(".safetensors")]
        self.assertGreater(len(shards), 1)
        self.assertEqual(shards[0], f"model-00001-of-{len(shards):05d}.safetensors")
        with open(os.path.join(out, "model.safetensors.index.json")) as f:
            index = json.load(f)
        tensors, _ = read_checkpoint(out)
        self.assertEqual(set(index["weight_map"]), set(tensors))
        self.assertEqual(index["metadata"]["total_size"], sum(len(t[2]) for t in tensors.values()))
        for shard in shards:
            self.assertLessEqual(sum(len(t[2]) for t in read_safetensors(os.path.join(out, shard))[0].values()), 10 ** 6)
        inspect = json.loads(run("inspect", out, "--json").stdout)
        self.assertEqual(len(inspect["tensors"]), 21)
        self.assertEqual(sum(t["quantized"] for t in inspect["tensors"]), 16)
        # a sharded quantized checkpoint dequantizes like a single file
        run("dequantize", os.path.join(out, "model.safetensors.index.json"), "-o", self.out("sharded-dq"), "-q")
        back, _ = read_checkpoint(self.out("sharded-dq"))
        self.assertEqual(set(back), set(self.source))

    def test_analyze_reports_every_matrix_and_scheme(self):
        report = json.loads(run("analyze", self.model, "--schemes", "int8,int4:block=32", "--json").stdout)
        self.assertEqual([s["scheme"] for s in report["summary"]], ["int8", "int4:block=32"])
        self.assertEqual(len(report["tensors"]), 16)
        sqnr = [t["schemes"][1]["error"]["sqnr_db"] for t in report["tensors"]]
        self.assertEqual(sqnr, sorted(sqnr))  # worst first
        # the figures agree with a NumPy measurement of the same quantization
        t = report["tensors"][0]
        x = as_array(self.source[t["name"]]).astype(np.float64)
        s, _, qmin, qmax = oracle_params(x.min(), x.max(), 8, True, True, True)
        y = oracle_quantize(x.astype(np.float32), s, 0, qmin, qmax) * np.float64(s)
        expected = 10 * np.log10(np.sum(x * x) / np.sum((x - y) ** 2))
        self.assertAlmostEqual(t["schemes"][0]["error"]["sqnr_db"], expected, places=6)
        csv = run("analyze", self.model, "--schemes", "int8,int4:block=32", "--csv").stdout.splitlines()
        self.assertEqual(csv[0].split(",")[0], "tensor")
        self.assertEqual(len(csv), 1 + 16 * 2)


class BadCheckpoints(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model = os.path.join(self.tmp.name, "model")
        make_model(self.model, "--layers", 1, "--shards", 1)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def rewrite(self, edit):
        """Re-encodes model.safetensors with `edit(header_dict, data_bytearray)` applied."""
        path = os.path.join(self.model, "model.safetensors")
        with open(path, "rb") as f:
            blob = f.read()
        (n,) = struct.unpack("<Q", blob[:8])
        header, data = json.loads(blob[8:8 + n]), bytearray(blob[8 + n:])
        edit(header, data)
        text = json.dumps(header).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + bytes(data))
        return path

    def assert_fails(self, *args, must_name=()):
        p = run(*args, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)  # one line
        for s in must_name:
            self.assertIn(s, p.stderr)
        return p.stderr

    def test_nan_names_file_and_tensor_and_leaves_no_output(self):
        name = "model.layers.0.mlp.up_proj.weight"

        def poison(header, data):
            b = header[name]["data_offsets"][0]
            data[b + 2 * 77: b + 2 * 78] = struct.pack("<H", 0x7FC0)  # bf16 NaN at flat index 77
        path = self.rewrite(poison)
        out = self.path("out")
        err = self.assert_fails("quantize", self.model, "-o", out, must_name=(path, name, "NaN", "[0, 77]"))
        self.assertIn("--ignore-nonfinite", err)
        self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")))
        self.assertEqual([f for f in os.listdir(out)] if os.path.exists(out) else [], [])
        run("quantize", self.model, "-o", out, "--ignore-nonfinite", "-q")  # and the escape hatch works

    def test_output_over_input_is_refused_and_input_untouched(self):
        path = os.path.join(self.model, "model.safetensors")
        before = open(path, "rb").read()
        self.assert_fails("quantize", path, "-o", path, must_name=("overwrite",))
        self.assertEqual(open(path, "rb").read(), before)

    def test_failure_part_way_leaves_an_existing_output_alone(self):
        # The last matrix holds a NaN: the run fails after most of the output was written.
        name = "lm_head.weight"

        def poison(header, data):
            e = header[name]["data_offsets"][1]
            data[e - 2:e] = struct.pack("<H", 0x7FC0)
        self.rewrite(poison)
        out = self.path("existing.safetensors")
        with open(out, "wb") as f:
            f.write(b"old")
        self.assert_fails("quantize", self.model, "-o", out, must_name=(name, "NaN"))
        self.assertEqual(open(out, "rb").read(), b"old")
        self.assertEqual(sorted(os.listdir(self.tmp.name)), ["existing.safetensors", "model"])  # no temporary left

    def test_a_full_disk_is_a_clear_error_and_leaves_no_output(self):
        out = self.path("out")
        p = run_on_a_full_disk("quantize", self.model, "-o", out, "-q")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(os.path.join(out, "model.safetensors"), p.stderr)
        self.assertIn("write failed", p.stderr)
        self.assertEqual(os.listdir(out) if os.path.exists(out) else [], [])

    def test_unwritable_output_is_a_clear_error(self):
        self.assert_fails("quantize", self.model, "-o", "/proc/zeropoint-test.safetensors",
                          must_name=("/proc/zeropoint-test.safetensors",))
        self.assert_fails("quantize", self.model, "-o", "/proc/zeropoint-test/", must_name=("/proc/zeropoint-test",))

    def test_corrupt_files_name_the_file(self):
        path = os.path.join(self.model, "model.safetensors")
        with open(path, "rb") as f:
            blob = f.read()
        with open(path, "wb") as f:
            f.write(blob[: len(blob) // 2])  # truncated
        self.assert_fails("quantize", self.model, "-o", self.path("o1"), must_name=(path,))
        self.assert_fails("inspect", path, must_name=(path,))
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", 12) + b"not json ok!")
        self.assert_fails("quantize", path, "-o", self.path("o2.safetensors"), must_name=(path,))

    def test_rule_errors(self):
        self.assert_fails("quantize", self.model, "--rule", "mlp=int9", "--dry-run", must_name=("mlp=int9",))
        self.assert_fails("quantize", self.model, "--rule", "norm=int8:channel=1", "--dry-run",
                          must_name=("layernorm.weight", "norm=int8:channel=1"))
        self.assert_fails("quantize", self.model, "--keep", "(", "--dry-run", must_name=("(",))
        self.assert_fails("quantize", self.model, "--max-shard-size", "lots", "--dry-run", must_name=("lots",))

    def test_dequantize_refuses_a_float_checkpoint(self):
        self.assert_fails("dequantize", self.model, "-o", self.path("dq"), must_name=("nothing to dequantize",))


def write_safetensors(path, tensors):
    """tensors: {name: (dtype text, numpy array of that dtype's storage)}, in file order."""
    header, offset, blobs = {}, 0, []
    for name, (dtype, a) in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class TensorsInPieces(unittest.TestCase):
    """Tensors over 16 MiB whose groups are rows (a scale per row, or blocks along a later axis)
    are read and quantized a slab of rows at a time: the bytes must be those of the whole tensor
    quantized at once (the .npy path does that), the error report the same up to the order of its
    sums, and a NaN in a later slab reported at its index in the whole tensor."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(41)
        f32 = (rng.standard_t(4, size=(4100, 1100)) * 0.02).astype(np.float32)  # 18 MB: two pieces
        f32[3000] *= 40  # an outlier row in the second piece
        bf16_values = (rng.standard_t(4, size=(9000, 1024)) * 0.05).astype(np.float32)
        bf16 = (bf16_values.view(np.uint32) >> 16).astype(np.uint16)  # truncated: exact in bf16
        cls.tensors = {"big.f32": ("F32", f32), "big.bf16": ("BF16", bf16),
                       "small": ("F32", rng.standard_normal((64, 64)).astype(np.float32))}
        cls.values = {"big.f32": f32, "big.bf16": (bf16.astype(np.uint32) << 16).view(np.float32)}
        cls.model = os.path.join(cls.tmp.name, "model.safetensors")
        write_safetensors(cls.model, cls.tensors)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_pieces_give_the_whole_tensors_bytes(self):
        for scheme, bits, signed in [("int8:channel=0", 8, True), ("uint4:block=32:asym", 4, False),
                                     ("int4:block=64", 4, True)]:
            out = os.path.join(self.tmp.name, "q.safetensors")
            report = json.loads(run("quantize", self.model, "-o", out, "--scheme", scheme, "--json", "-q").stdout)
            errors = {t["name"]: t["error"] for t in report["tensors"] if t["quantized"]}
            q, _ = read_safetensors(out)
            for name, x in self.values.items():
                src = os.path.join(self.tmp.name, "x.npy")
                np.save(src, x)
                whole = os.path.join(self.tmp.name, "x.npz")
                npy_report = json.loads(run("quantize", src, "--scheme", scheme, "-o", whole, "--json").stdout)
                expected = np.load(whole)
                stored = q[name + "_packed" if bits < 8 else name]  # sub-byte codes: packed, renamed
                codes = unpack(as_array(stored).reshape(-1), x.size, bits, signed)
                np.testing.assert_array_equal(codes, unpack(expected["codes"].reshape(-1), x.size, bits, signed),
                                              err_msg=f"{name} {scheme}")
                np.testing.assert_array_equal(as_array(q[name + "_scale"]).reshape(-1),
                                              expected["scale"].reshape(-1), err_msg=f"{name} {scheme}")
                if name + "_zero_point" in q:
                    np.testing.assert_array_equal(as_array(q[name + "_zero_point"]).reshape(-1).astype(np.int64),
                                                  expected["zero_point"].reshape(-1).astype(np.int64))
                got, want = errors[name], npy_report["error"]
                self.assertEqual(got["max_abs_error_index"], want["max_abs_error_index"], name)
                self.assertEqual(got["max_abs_error"], want["max_abs_error"], name)
                self.assertAlmostEqual(got["sqnr_db"], want["sqnr_db"], delta=1e-9)
                self.assertEqual(got["count"], x.size)

    def test_nan_in_a_later_piece_is_reported_at_its_index_in_the_tensor(self):
        f32 = self.tensors["big.f32"][1].copy()
        f32[4000, 7] = np.nan
        path = os.path.join(self.tmp.name, "nan.safetensors")
        write_safetensors(path, {"big.f32": ("F32", f32)})
        out = os.path.join(self.tmp.name, "nan-out.safetensors")
        p = run("quantize", path, "-o", out, "--scheme", "int8:channel=0", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        for s in (path, "big.f32", "NaN", "[4000, 7]"):
            self.assertIn(s, p.stderr)
        self.assertFalse(os.path.exists(out))


class ResidentMemory(unittest.TestCase):
    """Peak resident memory follows the largest tensor, not the model."""

    def test_one_gib_checkpoint(self):
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "model")
            make_model(model, "--size-gib", 1)
            tensors = {}
            for name in os.listdir(model):
                if name.endswith(".safetensors"):
                    tensors.update(read_header_sizes(os.path.join(model, name)))
            total, largest = sum(tensors.values()), max(tensors.values())
            self.assertGreaterEqual(total, 1 << 30)
            proc = subprocess.Popen([ZEROPOINT, "quantize", model, "-o", os.path.join(tmp, "out"), "-q",
                                     "--scheme", "int8:channel=0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0, proc.stderr.read())
            peak = usage.ru_maxrss * 1024  # KiB on Linux
            bound = 3 * largest + (64 << 20)
            print(f"\n  checkpoint {total / 2**30:.2f} GiB, largest tensor {largest / 2**20:.0f} MiB, "
                  f"peak RSS {peak / 2**20:.0f} MiB (bound {bound / 2**20:.0f} MiB)", file=sys.stderr)
            self.assertLess(peak, bound)


def read_header_sizes(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {k: v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items()}


if __name__ == "__main__":
    ZEROPOINT = test_cli.ZEROPOINT = os.path.abspath(sys.argv[1])
    MAKE_MODEL = os.path.abspath(sys.argv[2])
    memory_only = "--memory" in sys.argv[3:]
    suite = unittest.TestSuite()
    loader = unittest.defaultTestLoader
    if memory_only:
        suite.addTests(loader.loadTestsFromTestCase(ResidentMemory))
    else:
        suite.addTests(loader.loadTestsFromTestCase(QuantizedCheckpoint))
        suite.addTests(loader.loadTestsFromTestCase(BadCheckpoints))
        suite.addTests(loader.loadTestsFromTestCase(TensorsInPieces))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
