#!/usr/bin/python3
"""Writes the golden .npy/.npz files the C++ tests compare against, and the fuzzers' seeds.

Run with Debian's /usr/bin/python3 (it has numpy); the files are committed, so this only needs
running again when the set of files changes:

    /usr/bin/python3 tests/data/make_npy_golden.py

Outputs: tests/data/npy/*.npy|*.npz (golden files; test_npy.cpp and test_npz.cpp know their
names and contents) and fuzz/corpus/{npy,npz}/ (seed inputs for scripts/fuzz-smoke).

Every numeric array holds golden(i, n) at flat index i of n elements; test_npy.cpp computes the
same values:
  integers: min at i == 0 and max at i == n - 1 (when n >= 2), else (7 i mod 23) - 11 (signed)
            or 7 i mod 23 (unsigned)
  floats:   ((7 i mod 23) - 11) / 2 + 1/8   (exact in float16)
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "npy")
SEEDS = os.path.join(HERE, "..", "..", "fuzz", "corpus")

TEXT = "h\u00e9llo w\u00f6rld \u2713 \U0001d11e"


def golden(dtype, shape):
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    if dtype.kind in "iu":
        v = (7 * i) % 23 - (11 if dtype.kind == "i" else 0)
        a = v.astype(dtype)
        if n >= 2:
            a[0] = np.iinfo(dtype).min
            a[-1] = np.iinfo(dtype).max
    else:
        a = (((7 * i) % 23 - 11) / 2 + 0.125).astype(dtype)
    return a.reshape(shape)


def save(name, array, **kwargs):
    path = os.path.join(GOLDEN, name)
    if kwargs:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, array, **kwargs)
    else:
        np.save(path, array)


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    for old in os.listdir(GOLDEN):
        os.remove(os.path.join(GOLDEN, old))

    # Read back correctly, and re-serialized byte for byte.
    save("f32_2x3.npy", golden("<f4", (2, 3)))
    save("f64_5.npy", golden("<f8", (5,)))
    save("f16_scalar.npy", golden("<f2", ()))
    save("i8_empty.npy", golden("|i1", (0,)))
    save("u8_2x3.npy", golden("|u1", (2, 3)))
    save("i16_5.npy", golden("<i2", (5,)))
    save("u16_2x3x4.npy", golden("<u2", (2, 3, 4)))
    save("i32_2x3.npy", golden("<i4", (2, 3)))
    save("u32_5.npy", golden("<u4", (5,)))
    save("i64_2x3x4.npy", golden("<i8", (2, 3, 4)))
    save("f32_3x0x2.npy", golden("<f4", (3, 0, 2)))
    save("f32_special.npy", np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, np.finfo(np.float32).max, 1.0], dtype="<f4"))
    save("text.npy", np.array(TEXT))
    save("text_empty.npy", np.array(""))
    # Read correctly (zeropoint writes version 1.0 only).
    save("v2_f32_2x3.npy", golden("<f4", (2, 3)), version=(2, 0))
    save("v3_f32_2x3.npy", golden("<f4", (2, 3)), version=(3, 0))
    # Refused with a message.
    save("refused_big_endian.npy", golden(">f4", (2, 3)))
    save("refused_fortran.npy", np.asfortranarray(golden("<f4", (2, 3))))
    save("refused_bool.npy", np.array([True, False]))
    save("refused_u64.npy", golden("<u8", (3,)))
    save("refused_structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    save("refused_object.npy", np.array([1, "x"], dtype=object))
    save("refused_text_1d.npy", np.array(["a", "bc"]))

    arrays = {"a": golden("<f4", (2, 3)), "b": golden("<i8", (5,)), "note": np.array(TEXT)}
    np.savez(os.path.join(GOLDEN, "savez.npz"), **arrays)
    np.savez_compressed(os.path.join(GOLDEN, "savez_compressed.npz"), **arrays)
    np.savez(os.path.join(GOLDEN, "empty.npz"))

    for kind in ("npy", "npz"):
        folder = os.path.join(SEEDS, kind)
        os.makedirs(folder, exist_ok=True)
        for old in os.listdir(folder):
            os.remove(os.path.join(folder, old))
    seed = lambda kind, name: os.path.join(SEEDS, kind, name)
    np.save(seed("npy", "f32_2x3.npy"), golden("<f4", (2, 3)))
    np.save(seed("npy", "i8_empty.npy"), golden("|i1", (0,)))
    np.save(seed("npy", "u16_scalar.npy"), golden("<u2", ()))
    np.save(seed("npy", "text.npy"), np.array("ab\u00e9"))
    with open(seed("npy", "v2_i64_3.npy"), "wb") as f:
        np.lib.format.write_array(f, golden("<i8", (3,)), version=(2, 0))
    np.savez(seed("npz", "savez.npz"), a=golden("<f4", (2,)), t=np.array("x"))
    np.savez_compressed(seed("npz", "savez_compressed.npz"), a=golden("<i2", (3,)))
    np.savez(seed("npz", "empty.npz"))


if __name__ == "__main__":
    main()
