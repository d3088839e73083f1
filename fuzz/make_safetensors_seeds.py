#!/usr/bin/env python3
"""Writes the seed inputs of safetensors_header_fuzz and safetensors_index_fuzz into
fuzz/corpus/safetensors_header/ and fuzz/corpus/safetensors_index/: a few valid files and a few
that break one rule each, so the fuzzer starts next to every check, plus header-only seeds in the
header target's second form ([2-byte data size][header JSON]). Needs only the standard library;
run it from anywhere."""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def safetensors(header, data=b"", pad=True, length=None):
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    raw = text.encode("utf-8")
    if pad:
        raw += b" " * ((8 - len(raw) % 8) % 8)
    n = len(raw) if length is None else length
    return struct.pack("<Q", n) + raw + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


header_seeds = {
    "f32_2x2_metadata": safetensors(
        {"__metadata__": {"format": "pt"}, "w": entry("F32", [2, 2], 0, 16)}, bytes(range(16))),
    "mixed_dtypes": safetensors(
        {"a": entry("BF16", [3], 0, 6), "b": entry("U8", [0, 4], 6, 6), "c": entry("F64", [], 6, 14),
         "d": entry("BOOL", [2], 14, 16), "e": entry("F8_E4M3", [1, 2], 16, 18), "f": entry("I64", [1], 18, 26),
         "g": entry("U64", [1], 26, 34), "h": entry("I16", [1], 34, 36), "i": entry("U32", [1], 36, 40)},
        bytes(40)),
    "empty": safetensors({}),
    "metadata_null": safetensors('{"__metadata__":null}'),
    "unpadded_whitespace": safetensors(' {"x": {"dtype": "I8", "shape": [3], "data_offsets": [0, 3]}}\n',
                                       b"abc", pad=False),
    "overlap": safetensors({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)),
    "gap": safetensors({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, bytes(12)),
    "size_mismatch": safetensors({"w": entry("BF16", [8, 8], 0, 100)}, bytes(100)),
    "duplicate": safetensors('{"w":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},'
                             '"w":{"dtype":"I8","shape":[1],"data_offsets":[1,2]}}', b"ab"),
    "unknown_dtype": safetensors({"w": entry("F7", [1], 0, 4)}, bytes(4)),
    "huge_shape": safetensors({"w": entry("F64", [2305843009213693952], 0, 8)}, bytes(8)),
    "length_past_end": safetensors({"w": entry("I8", [1], 0, 1)}, b"a", length=4096),
}


def header_only(header, data_size):
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    return struct.pack("<H", data_size) + text.encode("utf-8")


header_seeds.update({
    "json_f32": header_only({"__metadata__": {"format": "pt"}, "w": entry("F32", [2, 3], 0, 24)}, 24),
    "json_mixed": header_only(
        {"s": entry("F64", [], 0, 8), "z": entry("U8", [0], 8, 8), "b": entry("BF16", [2, 2], 8, 16),
         "q": entry("F8_E5M2", [3], 16, 19), "i": entry("I32", [1], 19, 23)}, 23),
    "json_overlap": header_only({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, 12),
})

index_seeds = {
    "hf_index": json.dumps({
        "metadata": {"total_size": 1234},
        "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors",
                       "model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}, indent=2),
    "nested_metadata": '{"metadata":{"total_size":1.5e3,"x":[1,{"y":null}],"s":"\\u00e9"},"weight_map":{}}',
    "no_metadata": '{"weight_map":{"a":"model.safetensors"}}',
    "duplicate": '{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}',
    "path_shard": '{"weight_map":{"a":"../x.safetensors"}}',
    "not_object": '[{"weight_map":{}}]',
}

for folder, seeds in (("safetensors_header", header_seeds), ("safetensors_index", index_seeds)):
    out = ROOT / folder
    out.mkdir(parents=True, exist_ok=True)
    for name, content in seeds.items():
        if folder == "safetensors_index":
            suffix = ".json"
        else:
            suffix = ".header" if name.startswith("json_") else ".safetensors"
        path = out / (name + suffix)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
