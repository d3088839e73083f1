#!/usr/bin/env python3
"""Writes the seed inputs of gguf_fuzz into fuzz/corpus/gguf/: a few valid files (every value
type, nested arrays, several ggml tensor types, a custom alignment), a few that break one rule
each so the fuzzer starts next to every check, and header-only seeds in the target's second form
([2-byte little-endian extra size][header], the data section made up). Written from the GGUF
specification with the standard library only; run it from anywhere."""
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "gguf"

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
FORMAT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
          U64: "<Q", I64: "<q", F64: "<d"}
# ggml type id -> (block size, block bytes), for the types the seeds use.
GGML = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 24: (1, 1), 30: (1, 2)}


def string(s):
    raw = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(raw)) + raw


def value(kind, v):
    if kind == STRING:
        return string(v)
    if kind == ARRAY:
        element, items = v
        out = struct.pack("<IQ", element, len(items))
        return out + b"".join(value(element, x) for x in items)
    return struct.pack(FORMAT[kind], v)


def kv(key, kind, v):
    return string(key) + struct.pack("<I", kind) + value(kind, v)


def tensor_bytes(ggml_type, dims):
    block, size = GGML.get(ggml_type, (1, 1))  # unknown ids: any size will do
    n = 1
    for d in dims:
        n *= d
    return n // block * size


def gguf(entries, tensors, alignment=32, version=3, data=None, count_tensors=None, count_kv=None, pad=True):
    """entries: [(key, kind, value)]; tensors: [(name, dims, type, offset or None)]: None places
    each tensor after the previous one, aligned, as ggml does."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if count_tensors is None else count_tensors,
                                 len(entries) if count_kv is None else count_kv)
    head += b"".join(kv(*e) for e in entries)
    cursor = 0
    blobs = []
    for name, dims, ggml_type, offset in tensors:
        size = tensor_bytes(ggml_type, dims)
        if offset is None:
            offset = cursor
        cursor = max(cursor, offset + size + (-size) % alignment)
        head += string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", ggml_type, offset)
        blobs.append((offset, size))
    if pad:
        head += b"\0" * ((-len(head)) % alignment)
    if data is None:
        body = bytearray(cursor)
        for k, (offset, size) in enumerate(blobs):
            for i in range(size):
                body[offset + i] = (i * 31 + k * 7) & 0xFF
        data = bytes(body)
    return head + data


EVERY_TYPE = [
    ("general.architecture", STRING, "llama"),
    ("t.u8", U8, 200), ("t.i8", I8, -100), ("t.u16", U16, 60000), ("t.i16", I16, -3),
    ("t.u32", U32, 4000000000), ("t.i32", I32, -7), ("t.f32", F32, 0.5), ("t.bool", BOOL, 1),
    ("t.str", STRING, "h\u00e9llo"), ("t.u64", U64, 1 << 63), ("t.i64", I64, -(1 << 62)), ("t.f64", F64, 1e-300),
    ("a.u8", ARRAY, (U8, [1, 2])), ("a.f32", ARRAY, (F32, [1.5, -2.0])), ("a.bool", ARRAY, (BOOL, [1, 0])),
    ("a.str", ARRAY, (STRING, ["<s>", "", "\u2581the"])), ("a.i64", ARRAY, (I64, [-1])),
    ("a.nested", ARRAY, (ARRAY, [(I32, [1, 2]), (STRING, ["x"]), (ARRAY, [(U8, [9])])])),
    ("a.empty", ARRAY, (U16, [])),
]
SOME_TENSORS = [("token_embd.weight", [4, 3], 0, None), ("blk.0.attn_q.weight", [64, 2], 2, None),
                ("blk.0.ffn_up.weight", [256], 12, None), ("odd", [5], 1, None), ("empty", [0, 3], 24, None),
                ("q8", [32, 1, 2], 8, None), ("bf", [2, 1, 1, 2], 30, None)]

seeds = {
    "every_type.gguf": gguf(EVERY_TYPE, SOME_TENSORS),
    "aligned64.gguf": gguf([("general.alignment", U32, 64), ("k", STRING, "v")], SOME_TENSORS[:3], alignment=64),
    "v2.gguf": gguf([("k", U32, 1)], [("w", [2], 0, None)], version=2),
    "empty.gguf": gguf([], []),
    "unpadded_empty.gguf": gguf([], [], pad=False),
    "out_of_order.gguf": gguf([], [("late", [8], 0, 64), ("early", [4], 0, 0), ("none", [0], 0, 96)]),
    # One rule broken each.
    "bad_magic.gguf": b"GGUG" + gguf([], [])[4:],
    "version1.gguf": gguf([], [], version=1),
    "big_endian.gguf": gguf([], [], version=3 << 24),
    "count_huge.gguf": gguf([("k", U8, 1)], [], count_kv=1 << 60),
    "unknown_value_type.gguf": gguf([], [], count_kv=1, pad=False) + string("k") + struct.pack("<II", 13, 0),
    "bool_2.gguf": gguf([("b", BOOL, 2)], []),
    "unknown_ggml_type.gguf": gguf([], [("w", [32], 4, 0)], data=bytes(32)),
    "not_whole_blocks.gguf": gguf([], [("w", [33], 2, 0)], data=bytes(64)),
    "unaligned.gguf": gguf([], [("w", [1], 0, 4)], data=bytes(32)),
    "overlap.gguf": gguf([], [("a", [16], 0, 0), ("b", [8], 0, 32)], data=bytes(96)),
    "truncated.gguf": gguf([], [("w", [16], 0, 0)], data=bytes(60)),
    "duplicate_tensor.gguf": gguf([], [("w", [1], 0, 0), ("w", [1], 0, 32)], data=bytes(64)),
    "dims_overflow.gguf": gguf([], [("w", [1 << 32, 1 << 32], 0, 0)], data=bytes(32)),
}


def header_only(extra, entries, tensors, alignment=32):
    """The second form: the header (no data) after the size of the data it claims."""
    full = gguf(entries, tensors, alignment=alignment, data=b"")
    return struct.pack("<H", extra) + full


seeds.update({
    "header_every_type.bin": header_only(2048, EVERY_TYPE, SOME_TENSORS),
    "header_big_tensors.bin": header_only(60000, [("general.alignment", U32, 256)],
                                          [("a", [256, 64], 12, None), ("b", [128, 100], 0, None)], alignment=256),
    "header_overlap.bin": header_only(4096, [], [("a", [256], 0, 0), ("b", [256], 0, 512)]),
})

OUT.mkdir(parents=True, exist_ok=True)
for name, data in sorted(seeds.items()):
    (OUT / name).write_bytes(data)
print(f"{len(seeds)} seeds in {OUT}")
