#!/usr/bin/python3
"""numpy itself checks zeropoint's .npy/.npz reader and writer.

numpy makes arrays of every dtype zeropoint supports, npy_roundtrip_tool (tests/formats/tools/)
reads them with zeropoint and writes them back, and numpy checks the result: .npy files must
come back byte for byte identical (zeropoint writes exactly what numpy.save writes), .npz
archives must load with the same arrays, dtypes and text.

    /usr/bin/python3 tests/formats/npy_interop.py build/bin/npy_roundtrip_tool

Exits 77 (ctest: skipped) when numpy is not installed.
"""
import io
import os
import subprocess
import sys
import tempfile
import unittest
import zipfile

try:
    import numpy as np
except ImportError:
    print("numpy is not installed for", sys.executable, "(Debian: apt-get install python3-numpy)")
    sys.exit(77)

TOOL = None

DTYPES = ["<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8"]
SHAPES = [(), (0,), (5,), (2, 3, 4), (3, 0, 2), (1, 1, 1, 1), (7, 1)]
TEXTS = ["", "a", "weights of layer 3", "h\u00e9llo w\u00f6rld \u2713 \U0001d11e", "in\x00side", "\u00ff" * 40]


def sample(dtype, shape, rng):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        # Raw bit patterns: NaN payloads, infinities, subnormals and -0 all have to survive.
        bits = rng.integers(0, 256, size=int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
        return bits.view(dtype).reshape(shape)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def run_tool(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True)


class Interop(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(1234)

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def roundtrip(self, kind, src, dst, *extra):
        result = run_tool(kind, src, dst, *extra)
        self.assertEqual(result.returncode, 0, result.stderr)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def test_npy_arrays_come_back_byte_for_byte(self):
        for dtype in DTYPES:
            for shape in SHAPES:
                with self.subTest(dtype=dtype, shape=shape):
                    a = sample(dtype, shape, self.rng)
                    np.save(self.path("in.npy"), a)
                    self.roundtrip("npy", self.path("in.npy"), self.path("out.npy"))
                    self.assertEqual(self.read("out.npy"), self.read("in.npy"))
                    b = np.load(self.path("out.npy"))
                    self.assertEqual(b.dtype, a.dtype)
                    self.assertEqual(b.shape, a.shape)
                    self.assertEqual(b.tobytes(), a.tobytes())

    def test_npy_views_are_saved_in_c_order(self):
        base = sample("<i4", (6, 8), self.rng)
        for view in (base[:, ::2], base.T[1:4], base[::3, 1:]):
            with self.subTest(shape=view.shape, strides=view.strides):
                np.save(self.path("in.npy"), view)
                self.roundtrip("npy", self.path("in.npy"), self.path("out.npy"))
                self.assertTrue(np.array_equal(np.load(self.path("out.npy")), view))

    def test_large_array(self):
        a = sample("<f4", (1000, 1024), self.rng)
        np.save(self.path("in.npy"), a)
        self.roundtrip("npy", self.path("in.npy"), self.path("out.npy"))
        self.assertEqual(self.read("out.npy"), self.read("in.npy"))

    def test_text(self):
        for text in TEXTS:
            with self.subTest(text=text):
                np.save(self.path("in.npy"), np.array(text))
                self.roundtrip("npy", self.path("in.npy"), self.path("out.npy"))
                self.assertEqual(self.read("out.npy"), self.read("in.npy"))
                loaded = np.load(self.path("out.npy"))
                self.assertEqual(loaded.shape, ())
                self.assertEqual(str(loaded[()]), text)
                if "\x00" not in text:  # argv cannot hold NUL
                    self.roundtrip("text", text, self.path("text.npy"))
                    self.assertEqual(self.read("text.npy"), self.read("in.npy"))

    def check_npz(self, arrays, saver):
        saver(self.path("in.npz"), **arrays)
        note = "written by zeropoint \u2713"
        self.roundtrip("npz", self.path("in.npz"), self.path("out.npz"), note)
        with zipfile.ZipFile(self.path("out.npz")) as z:
            self.assertEqual(z.testzip(), None)
            infos = z.infolist()
            self.assertEqual([i.filename for i in infos], [k + ".npy" for k in arrays] + ["zeropoint_note.npy"])
            self.assertTrue(all(i.compress_type == zipfile.ZIP_STORED for i in infos))
        with np.load(self.path("out.npz"), allow_pickle=False) as out:
            self.assertEqual(out.files, list(arrays) + ["zeropoint_note"])
            for name, a in arrays.items():
                with self.subTest(entry=name):
                    self.assertEqual(out[name].dtype, a.dtype)
                    self.assertEqual(out[name].shape, a.shape)
                    self.assertEqual(out[name].tobytes(), a.tobytes())
            self.assertEqual(str(out["zeropoint_note"][()]), note)

    def npz_arrays(self):
        arrays = {f"w_{np.dtype(d).name}_{i}": sample(d, s, self.rng)
                  for i, (d, s) in enumerate(zip(DTYPES, SHAPES + SHAPES))}
        arrays["layers/0/bias"] = sample("<f2", (16,), self.rng)
        arrays["gewicht_\u00e4\u2713"] = sample("<i2", (3,), self.rng)
        arrays["description"] = np.array(TEXTS[3])
        return arrays

    def test_npz_from_savez(self):
        self.check_npz(self.npz_arrays(), np.savez)

    def test_npz_from_savez_compressed(self):
        self.check_npz(self.npz_arrays(), np.savez_compressed)

    def test_npz_written_to_a_stream(self):
        # zipfile on an unseekable file puts sizes and CRC in data descriptors after the data.
        class Unseekable(io.RawIOBase):
            def __init__(self, f):
                self.f = f

            def writable(self):
                return True

            def write(self, b):
                return self.f.write(b)

        arrays = {"x": sample("<i8", (5,), self.rng), "y": sample("<f4", (2, 2), self.rng)}
        with open(self.path("stream.npz"), "wb") as f, zipfile.ZipFile(Unseekable(f), "w") as z:
            for name, a in arrays.items():
                with z.open(name + ".npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, a)
        self.roundtrip("npz", self.path("stream.npz"), self.path("out.npz"))
        with np.load(self.path("out.npz")) as out:
            for name, a in arrays.items():
                self.assertEqual(out[name].tobytes(), a.tobytes())

    def test_empty_npz(self):
        np.savez(self.path("in.npz"))
        self.roundtrip("npz", self.path("in.npz"), self.path("out.npz"))
        self.assertEqual(self.read("out.npz"), self.read("in.npz"))
        with np.load(self.path("out.npz")) as out:
            self.assertEqual(out.files, [])

    def test_refusals_are_explained(self):
        cases = [
            (np.asfortranarray(sample("<f4", (3, 4), self.rng)), "Fortran-order arrays are not supported"),
            (sample(">f4", (3,), self.rng), "big-endian"),
            (np.array([True, False]), "'|b1' is not supported"),
            (sample("<u8", (3,), self.rng), "'<u8' is not supported"),
            (np.zeros(3, dtype=np.complex64), "'<c8' is not supported"),
            (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), "structured dtype"),
            (np.array(["ab", "c"]), "only a 0-d string"),
        ]
        for array, fragment in cases:
            with self.subTest(dtype=str(array.dtype)):
                np.save(self.path("in.npy"), array)
                result = run_tool("npy", self.path("in.npy"), self.path("out.npy"))
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn(self.path("in.npy") + ": ", result.stderr)
                self.assertIn(fragment, result.stderr)
                self.assertFalse(os.path.exists(self.path("out.npy")))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    TOOL = sys.argv.pop(1)
    unittest.main(verbosity=2)
