#!/usr/bin/python3
"""End-to-end tests of zeropoint on GGUF models, with NumPy as the oracle.

Run by ctest as:
  /usr/bin/python3 tests/cli/test_gguf.py path/to/zeropoint path/to/make-example-model.py

The model is the project's generated Llama-style example with llama.cpp's tensor names, turned
into GGUF by `zeropoint convert`. GGUF files are read back here by a small reader written from the
specification (ggml's docs/gguf.md), independently of zeropoint's own; q8_0 and q4_0 bytes are
checked against NumPy re-implementations of ggml's reference formulas.
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
from test_cli import run, run_for_peak_rss, run_on_a_full_disk  # noqa: E402

MAKE_MODEL = None

# ggml type id -> (name, block size, bytes per block)
GGML_TYPES = {0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20), 6: ("q5_0", 32, 22),
              7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 10: ("q2_K", 256, 84), 11: ("q3_K", 256, 110),
              12: ("q4_K", 256, 144), 13: ("q5_K", 256, 176), 14: ("q6_K", 256, 210), 30: ("bf16", 1, 2)}
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    """A GGUF file: metadata {key: value}, tensors {name: (type id, dims, raw bytes)}."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.blob = f.read()
        self.at = 0
        magic, self.version = self.blob[:4], self.take("<I", 4)
        assert magic == b"GGUF", magic
        n_tensors, n_kv = self.take("<Q"), self.take("<Q")
        self.metadata = {}
        for _ in range(n_kv):
            key = self.string()
            self.metadata[key] = self.value(self.take("<I"))
        infos = []
        for _ in range(n_tensors):
            name = self.string()
            dims = [self.take("<Q") for _ in range(self.take("<I"))]
            infos.append((name, dims, self.take("<I"), self.take("<Q")))
        align = self.metadata.get("general.alignment", 32)
        start = (self.at + align - 1) // align * align
        self.tensors = {}
        for name, dims, tid, off in infos:
            _, block, nbytes = GGML_TYPES[tid]
            size = int(np.prod(dims)) // block * nbytes
            assert off % align == 0
            self.tensors[name] = (tid, dims, self.blob[start + off:start + off + size])

    def take(self, fmt, at=None):
        if at is not None:
            self.at = at
        (v,) = struct.unpack_from(fmt, self.blob, self.at)
        self.at += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.blob[self.at:self.at + n].decode()
        self.at += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(SCALARS[t])

    def array(self, name):
        """A float tensor as a row-major float32 array."""
        tid, dims, raw = self.tensors[name]
        shape = tuple(reversed(dims))
        if tid == 0:
            return np.frombuffer(raw, np.float32).reshape(shape)
        if tid == 1:
            return np.frombuffer(raw, np.float16).astype(np.float32).reshape(shape)
        if tid == 30:
            return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
        raise ValueError(f"{name} is {GGML_TYPES[tid][0]}")


def ggml_q8_0(x):
    """ggml's quantize_row_q8_0_ref: d = amax / 127 (stored as f16), codes = roundf(x / d)."""
    blocks = x.astype(np.float32).reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (blocks * inv[:, None]).astype(np.float32).astype(np.float64)
    q = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5)).astype(np.int8)  # roundf: half away from 0
    out = np.zeros((len(blocks), 34), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def ggml_q4_0(x):
    """ggml's quantize_row_q4_0_ref: d = (value of largest magnitude) / -8, codes = min(15,
    trunc(x / d + 8.5)), low nibbles hold the first 16 values, high nibbles the last 16."""
    blocks = x.astype(np.float32).reshape(-1, 32)
    idx = np.abs(blocks).argmax(axis=1)  # the first of equal magnitudes, as ggml's strict '>'
    mx = blocks[np.arange(len(blocks)), idx]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = ((blocks * inv[:, None]).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(v).astype(np.int32)).astype(np.uint8)
    out = np.zeros((len(blocks), 18), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def make_gguf(folder, dtype="f32", **sizes):
    model = os.path.join(folder, "hf")
    args = [sys.executable, MAKE_MODEL, model, "--names", "llama.cpp", "--dtype", dtype, "--shards", "1"]
    for k, v in sizes.items():
        args += [f"--{k}", str(v)]
    subprocess.run(args, check=True, capture_output=True)
    out = os.path.join(folder, f"model-{dtype}.gguf")
    run("convert", model, "-o", out, "-q")
    return model, out


class GgufModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hf, cls.gguf = make_gguf(cls.tmp.name, intermediate=768)
        cls.source = Reader(cls.gguf)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_convert_keeps_names_bytes_and_reverses_shapes(self):
        st = json.loads(run("inspect", self.hf, "--json").stdout)
        gg = json.loads(run("inspect", self.gguf, "--json").stdout)
        self.assertEqual([t["name"] for t in st["tensors"]], [t["name"] for t in gg["tensors"]])
        for a, b in zip(st["tensors"], gg["tensors"]):
            self.assertEqual(a["shape"], b["shape"])
            self.assertEqual(b["type"], "f32")
        q = self.source.tensors["blk.0.attn_q.weight"]
        self.assertEqual(q[1], [256, 256])
        down = self.source.tensors["blk.0.ffn_down.weight"]
        self.assertEqual(down[1], [768, 256])  # ggml order: the row (768 inputs) first

    def test_q8_0_matches_the_numpy_oracle_and_llama_quantize_rules(self):
        out = self.path("q8_0.gguf")
        report = json.loads(run("quantize", self.gguf, "-o", out, "--type", "q8_0", "--json").stdout)
        q = Reader(out)
        self.assertEqual(q.metadata["general.file_type"], 7)
        self.assertEqual(q.metadata["general.quantization_version"], 2)
        for name, (tid, dims, raw) in q.tensors.items():
            src = self.source.array(name)
            if len(dims) == 1:
                self.assertEqual(GGML_TYPES[tid][0], "f32", name)
                self.assertEqual(raw, self.source.tensors[name][2], name)
                continue
            self.assertEqual(GGML_TYPES[tid][0], "q8_0", name)  # output.weight too, since the type is q8_0
            self.assertEqual(raw, ggml_q8_0(src), name)
        errors = {t["name"]: t["error"] for t in report["tensors"] if t["quantized"]}
        self.assertGreater(min(e["sqnr_db"] for e in errors.values()), 30)

    def test_q4_0_bytes_and_output_tensor_at_q6_K(self):
        out = self.path("q4_0.gguf")
        run("quantize", self.gguf, "-o", out, "--type", "q4_0", "-q")
        q = Reader(out)
        self.assertEqual(q.metadata["general.file_type"], 2)
        types = {n: GGML_TYPES[t[0]][0] for n, t in q.tensors.items()}
        self.assertEqual(types["output.weight"], "q6_K")
        self.assertEqual(types["token_embd.weight"], "q4_0")
        self.assertEqual(types["output_norm.weight"], "f32")
        self.assertEqual(q.tensors["blk.1.ffn_up.weight"][2], ggml_q4_0(self.source.array("blk.1.ffn_up.weight")))
        # Every other key is carried over, in order.
        keys = [k for k in self.source.metadata if k not in ("general.file_type", "general.quantization_version")]
        self.assertEqual([k for k in q.metadata if k in keys], keys)

    def test_k_quants_round_trip_through_convert(self):
        for t, min_db in (("q6_K", 25), ("q4_K", 15), ("q3_K", 10)):
            with self.subTest(type=t):
                out = self.path(f"{t}.gguf")
                run("quantize", self.gguf, "-o", out, "--type", t, "--pure", "-q")
                back = self.path(f"{t}.safetensors")
                run("convert", out, "-o", back, "-q")
                gg = json.loads(run("inspect", back, "--json").stdout)
                self.assertEqual(len(gg["tensors"]), len(self.source.tensors))
                x = self.source.array("blk.0.ffn_gate.weight").astype(np.float64)
                y = read_safetensors_tensor(back, "blk.0.ffn_gate.weight").astype(np.float64)
                sqnr = 10 * np.log10((x * x).sum() / ((x - y) ** 2).sum())
                self.assertGreater(sqnr, min_db)

    def test_rules_fallbacks_and_dry_run(self):
        _, odd = make_gguf(self.path("odd"), intermediate=688, layers=1)  # 688 rows: not whole 32-blocks
        p = run("quantize", odd, "--type", "q4_K", "--rule", "attn_v=q8_0", "--keep", "attn_k", "--dry-run", "--json")
        plan = {t["name"]: t for t in json.loads(p.stdout)["tensors"]}
        self.assertEqual(plan["blk.0.attn_v.weight"]["type"], "q8_0")
        self.assertFalse(plan["blk.0.attn_k.weight"]["quantized"])
        self.assertEqual(plan["blk.0.attn_q.weight"]["type"], "q4_K")
        self.assertEqual(plan["blk.0.ffn_down.weight"]["type"], "f16")
        self.assertIn("rows of 688 do not fill q4_K", plan["blk.0.ffn_down.weight"]["reason"])
        self.assertFalse(os.path.exists(self.path("odd/model-f32-q4_K.gguf")))

    def test_analyze_gguf_with_types_and_schemes(self):
        p = run("analyze", self.gguf, "--schemes", "q8_0,q4_K,int4:block=32", "--json", "--filter", "blk.0")
        r = json.loads(p.stdout)
        self.assertEqual([s["scheme"] for s in r["summary"]], ["q8_0", "q4_K", "int4:block=32"])
        for t in r["tensors"]:
            db = [s["error"]["sqnr_db"] for s in t["schemes"]]
            self.assertGreater(db[0], db[1])
            self.assertEqual(t["schemes"][0]["bits_per_weight"], 8.5)

    def test_inspect_lists_metadata(self):
        out = self.path("inspect.gguf")
        run("quantize", self.gguf, "-o", out, "--type", "q5_1", "-q")
        text = run("inspect", out).stdout
        self.assertIn("general.file_type", text)
        self.assertIn("q5_1", text)


def write_legacy_imatrix(path, entries, ncall=2):
    """llama.cpp's legacy .dat importance matrix: values are stored multiplied by ncall."""
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, weights in entries.items():
            f.write(struct.pack("<i", len(name)) + name.encode())
            f.write(struct.pack("<ii", ncall, len(weights)))
            f.write((np.asarray(weights, np.float32) * ncall).astype(np.float32).tobytes())


class TensorsInPieces(unittest.TestCase):
    """A tensor over 16 MiB is read and converted 16 MiB of rows at a time: the bytes must be the
    ones the whole tensor gives (the oracles convert it at once)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        # token_embd and output: 20000 x 256 float32, 20 MB each (two pieces of 16384 and 3616 rows)
        cls.hf, cls.gguf = make_gguf(cls.tmp.name, layers=1, vocab=20000)
        cls.source = Reader(cls.gguf)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_q8_0_and_q4_0_bytes_of_large_tensors(self):
        name = "token_embd.weight"
        self.assertGreater(len(self.source.tensors[name][2]), 16 << 20)
        for t, oracle in (("q8_0", ggml_q8_0), ("q4_0", ggml_q4_0)):
            out = os.path.join(self.tmp.name, f"{t}.gguf")
            report = json.loads(run("quantize", self.gguf, "-o", out, "--type", t, "--json").stdout)
            q = Reader(out)
            self.assertEqual(q.tensors[name][2], oracle(self.source.array(name)), t)
            error = {r["name"]: r["error"] for r in report["tensors"] if r["quantized"]}[name]
            self.assertEqual(error["count"], 20000 * 256)
            self.assertGreater(error["sqnr_db"], 15)


class Imatrix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hf, cls.gguf = make_gguf(cls.tmp.name, layers=1, intermediate=768)
        src = Reader(cls.gguf)
        rng = np.random.default_rng(5)
        cls.imatrix = os.path.join(cls.tmp.name, "imatrix.dat")
        write_legacy_imatrix(cls.imatrix, {n: rng.gamma(1.0, 1.0, t[1][0]) for n, t in src.tensors.items()
                                           if len(t[1]) == 2 and n != "blk.0.attn_k.weight"})

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def quantize(self, t, *extra):
        out = os.path.join(self.tmp.name, f"{t}-{len(extra)}.gguf")
        report = json.loads(run("quantize", self.gguf, "-o", out, "--type", t, "--pure", "--json", *extra).stdout)
        return Reader(out), {r["name"]: r for r in report["tensors"]}

    def test_k_quants_use_the_weights_and_say_so(self):
        plain, _ = self.quantize("q4_K")
        weighted, report = self.quantize("q4_K", "--imatrix", self.imatrix)
        self.assertIn("; importance weights", report["blk.0.attn_q.weight"]["reason"])
        self.assertIn("no importance weights for it", report["blk.0.attn_k.weight"]["reason"])
        self.assertNotEqual(plain.tensors["blk.0.attn_q.weight"][2], weighted.tensors["blk.0.attn_q.weight"][2])
        self.assertEqual(plain.tensors["blk.0.attn_k.weight"][2], weighted.tensors["blk.0.attn_k.weight"][2])

    def test_types_without_importance_support_are_reported(self):
        plain, _ = self.quantize("q4_0")
        weighted, report = self.quantize("q4_0", "--imatrix", self.imatrix)
        self.assertIn("importance weights NOT used", report["blk.0.attn_q.weight"]["reason"])
        self.assertEqual(plain.tensors["blk.0.attn_q.weight"][2], weighted.tensors["blk.0.attn_q.weight"][2])

    def test_bad_imatrix_files(self):
        bad = os.path.join(self.tmp.name, "bad.dat")
        with open(self.imatrix, "rb") as f, open(bad, "wb") as g:
            g.write(f.read()[:-7])
        p = run("quantize", self.gguf, "-o", os.path.join(self.tmp.name, "x.gguf"), "--type", "q4_K",
                "--imatrix", bad, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.dat", p.stderr)
        wrong = os.path.join(self.tmp.name, "wrong.dat")
        write_legacy_imatrix(wrong, {"blk.0.attn_q.weight": np.ones(100)})
        p = run("quantize", self.gguf, "-o", os.path.join(self.tmp.name, "x.gguf"), "--type", "q4_K",
                "--imatrix", wrong, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("blk.0.attn_q.weight", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "x.gguf")))


class BadGguf(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hf, cls.gguf = make_gguf(cls.tmp.name, layers=1, intermediate=768)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def expect_error(self, *args, says):
        p = run(*args, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(says, p.stderr)

    def test_truncated_file(self):
        bad = os.path.join(self.tmp.name, "truncated.gguf")
        with open(self.gguf, "rb") as f, open(bad, "wb") as g:
            g.write(f.read()[:-1000])
        self.expect_error("inspect", bad, says="truncated.gguf")
        out = os.path.join(self.tmp.name, "never.gguf")
        self.expect_error("quantize", bad, "-o", out, "--type", "q4_0", says="truncated.gguf")
        self.assertEqual([f for f in os.listdir(self.tmp.name) if f.startswith("never")], [])

    def test_a_full_disk_is_a_clear_error_and_leaves_no_output(self):
        out = os.path.join(self.tmp.name, "full.gguf")
        p = run_on_a_full_disk("quantize", self.gguf, "-o", out, "--type", "q8_0", "-q")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(out, p.stderr)
        self.assertIn("write failed", p.stderr)
        self.assertEqual([f for f in os.listdir(self.tmp.name) if "full" in f], [])

    def test_a_wide_alignment_is_padded_without_holding_the_padding_in_memory(self):
        # No tensors and general.alignment = 2^26: the header is padded to 64 MiB, as ggml pads it.
        # The reader accepts the file without that padding, so a 70-byte input makes a 64 MiB output.
        wide = os.path.join(self.tmp.name, "wide.gguf")
        key = b"general.alignment"
        with open(wide, "wb") as f:
            f.write(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, len(key)) + key + struct.pack("<II", 4, 1 << 26))
        out = os.path.join(self.tmp.name, "wide-q4_0.gguf")
        peak = run_for_peak_rss("quantize", wide, "-o", out, "--type", "q4_0", "-q")
        self.assertEqual(os.path.getsize(out), 1 << 26)
        self.assertLess(peak, 40 << 20)  # about 10 MiB, not 64 + 10
        os.remove(out)

    def test_options_that_do_not_apply(self):
        self.expect_error("quantize", self.gguf, "--scheme", "int8", says="--type")
        self.expect_error("quantize", self.hf, "--type", "q4_0", says="apply to GGUF")
        self.expect_error("quantize", self.gguf, "--type", "q9_0", says="'q9_0' is not a ggml type")
        self.expect_error("quantize", self.gguf, "--type", "iq2_xs", says="cannot write ggml type iq2_xs")
        self.expect_error("quantize", self.gguf, "-o", self.gguf, "--type", "q4_0", says="the output is the input")

    def test_requantize_needs_permission(self):
        q = os.path.join(self.tmp.name, "q8.gguf")
        run("quantize", self.gguf, "-o", q, "--type", "q8_0", "-q")
        self.expect_error("quantize", q, "-o", os.path.join(self.tmp.name, "q4.gguf"), "--type", "q4_0",
                          says="--allow-requantize")
        run("quantize", q, "-o", os.path.join(self.tmp.name, "q4.gguf"), "--type", "q4_0", "--allow-requantize", "-q")


def read_safetensors_tensor(path, name):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    t = header[name]
    b, e = t["data_offsets"]
    assert t["dtype"] == "F32", t["dtype"]
    return np.frombuffer(blob[8 + n + b:8 + n + e], np.float32).reshape(t["shape"])


if __name__ == "__main__":
    test_cli.ZEROPOINT = os.path.abspath(sys.argv[1])
    MAKE_MODEL = os.path.abspath(sys.argv[2])
    suite = unittest.TestSuite()
    loader = unittest.defaultTestLoader
    suite.addTests(loader.loadTestsFromTestCase(GgufModel))
    suite.addTests(loader.loadTestsFromTestCase(Imatrix))
    suite.addTests(loader.loadTestsFromTestCase(BadGguf))
    suite.addTests(loader.loadTestsFromTestCase(TensorsInPieces))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
