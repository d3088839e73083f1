#!/usr/bin/python3
"""Generates a deterministic, Llama-style example checkpoint in Hugging Face safetensors format.

The demo and the tests need a real-looking model to quantize without downloading one. This script
writes, into OUTPUT_DIR:

  model-00001-of-0000S.safetensors ... model-0000S-of-0000S.safetensors  (or model.safetensors if S=1)
  model.safetensors.index.json  (only when sharded: total_size and the tensor -> file weight_map)
  config.json                   (a minimal LlamaForCausalLM config)

The tensors have exactly the Hugging Face Llama names and shapes (embed_tokens, per-layer q/k/v/o
projections with grouped-query k/v, gate/up/down MLP, the two RMSNorm weights, the final norm and
an untied lm_head), stored in bf16 (default), f16 or f32, in the order the model uses them.

The values are not plain Gaussians, because a quantizer that looks good on Gaussians can still fail
on real checkpoints. Linear weights are drawn like real LLM weights:
  * scale like a standard init (std 0.02), with a mild log-normal spread across output rows;
  * heavy tails: a contaminated normal (0.5% of the entries scaled 2.5-6x; excess kurtosis ~5,
    similar to a Student-t with 5 degrees of freedom, but ~10x cheaper to draw);
  * a few outlier input channels (columns) per matrix, scaled 10-50x, as seen in real LLMs.
The norms are 1.0 plus small noise and the embeddings have std ~0.02. The heavy tails and outlier
columns are what make the quantization report show realistic differences between schemes (per-
tensor vs per-channel vs group scales, clipping, outlier handling).

Deterministic: tensor number k (in file order) is drawn from
numpy.random.Generator(PCG64(seed + k)), so every tensor can be reproduced on its own, and the
same arguments give byte-identical files. bf16 is produced from float32 by round-to-nearest-even on
the bit pattern; f16 by numpy's float16 conversion. All data is little-endian.

Memory stays small: each tensor is generated, converted and written in row blocks of at most
CHUNK_ELEMS elements, so the whole model (or even one whole tensor) is never held in memory. Each
file is written under a temporary name and renamed into place at the end, so no partial files are
left behind.

Usage (run with Debian's python3, which has numpy):
  /usr/bin/python3 scripts/make-example-model.py OUTPUT_DIR            # ~4.8 MB, 2 shards, bf16
  /usr/bin/python3 scripts/make-example-model.py OUTPUT_DIR --size-gib 1   # 7B-like shapes, >= 1 GiB
  options: --layers N --hidden H --intermediate I --vocab V --heads NH --kv-heads NKV
           --shards S --seed SEED --dtype bf16|f16|f32
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np

CHUNK_ELEMS = 1 << 21  # elements generated at once (8 MiB of float32)

DTYPES = {  # --dtype -> (safetensors dtype, bytes per element, config torch_dtype)
    "bf16": ("BF16", 2, "bfloat16"),
    "f16": ("F16", 2, "float16"),
    "f32": ("F32", 4, "float32"),
}

LINEAR_STD = 0.02  # like the usual init std of Llama-style models
EMBED_STD = 0.02
ROW_SIGMA = 0.2  # log-normal spread of the per-output-row scale
TAIL_FRACTION = 0.005  # share of entries in the heavy tail ...
TAIL_FACTOR = (2.5, 6.0)  # ... scaled by a factor uniform in this range
OUTLIER_SCALE = (10.0, 50.0)  # scale of the outlier input channels
NORM_NOISE = 0.02  # norms are 1 + NORM_NOISE * N(0, 1)

PRESET = {"hidden": 4096, "intermediate": 11008, "vocab": 32000, "heads": 32, "kv_heads": 8}
DEFAULTS = {"layers": 2, "hidden": 256, "intermediate": 688, "vocab": 2048, "heads": 8,
            "kv_heads": 4}


def tensor_specs(layers, hidden, intermediate, vocab, heads, kv_heads):
    """The tensors in file order: (name, shape, kind), kind in 'embed', 'linear', 'norm'."""
    kv_dim = kv_heads * (hidden // heads)
    specs = [("model.embed_tokens.weight", (vocab, hidden), "embed")]
    for i in range(layers):
        p = f"model.layers.{i}."
        specs += [
            (p + "self_attn.q_proj.weight", (hidden, hidden), "linear"),
            (p + "self_attn.k_proj.weight", (kv_dim, hidden), "linear"),
            (p + "self_attn.v_proj.weight", (kv_dim, hidden), "linear"),
            (p + "self_attn.o_proj.weight", (hidden, hidden), "linear"),
            (p + "mlp.gate_proj.weight", (intermediate, hidden), "linear"),
            (p + "mlp.up_proj.weight", (intermediate, hidden), "linear"),
            (p + "mlp.down_proj.weight", (hidden, intermediate), "linear"),
            (p + "input_layernorm.weight", (hidden,), "norm"),
            (p + "post_attention_layernorm.weight", (hidden,), "norm"),
        ]
    specs += [("model.norm.weight", (hidden,), "norm"),
              ("lm_head.weight", (vocab, hidden), "linear")]
    return specs


# Hugging Face names -> llama.cpp's GGUF names (convert_hf_to_gguf.py's mapping for Llama).
LLAMA_CPP_NAMES = [("model.embed_tokens.", "token_embd."), ("model.layers.", "blk."),
                   ("self_attn.q_proj.", "attn_q."), ("self_attn.k_proj.", "attn_k."),
                   ("self_attn.v_proj.", "attn_v."), ("self_attn.o_proj.", "attn_output."),
                   ("mlp.gate_proj.", "ffn_gate."), ("mlp.up_proj.", "ffn_up."),
                   ("mlp.down_proj.", "ffn_down."), ("post_attention_layernorm.", "ffn_norm."),
                   ("input_layernorm.", "attn_norm."), ("model.norm.", "output_norm."),
                   ("lm_head.", "output.")]


def llama_cpp_name(name):
    for hf, gg in LLAMA_CPP_NAMES:
        name = name.replace(hf, gg)
    return name


def n_params(layers, hidden, intermediate, vocab, heads, kv_heads):
    return sum(math.prod(s) for _, s, _ in
               tensor_specs(layers, hidden, intermediate, vocab, heads, kv_heads))


def encode(x, dtype):
    """float32 array -> little-endian array of the output dtype (x may be overwritten)."""
    if dtype == "f32":
        return x.astype("<f4", copy=False)
    if dtype == "f16":
        return x.astype("<f2")
    # bf16: round to nearest, ties to even, on the float32 bit pattern (values are finite).
    u = x.view(np.uint32)
    t = np.right_shift(u, 16)
    np.bitwise_and(t, 1, out=t)
    t += 0x7FFF
    u += t
    u >>= 16
    return u.astype("<u2")


def generate(rng, shape, kind):
    """Yields the tensor as float32 blocks of whole rows, in order (C layout)."""
    if kind == "norm":
        yield (1.0 + NORM_NOISE * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        return
    rows, cols = shape
    std = EMBED_STD if kind == "embed" else LINEAR_STD
    row_scale = (std * np.exp(ROW_SIGMA * rng.standard_normal(rows))).astype(np.float32)
    if kind == "linear":
        n_out = min(8, max(2, cols // 512))
        out_cols = np.sort(rng.choice(cols, size=n_out, replace=False))
        out_scale = rng.uniform(*OUTLIER_SCALE, size=n_out).astype(np.float32)
    block = max(1, CHUNK_ELEMS // cols)
    for r0 in range(0, rows, block):
        nr = min(block, rows - r0)
        x = rng.standard_normal((nr, cols), dtype=np.float32)
        flat = x.reshape(-1)
        k = int(round(TAIL_FRACTION * flat.size))
        if k:
            idx = rng.integers(0, flat.size, size=k)
            flat[idx] *= rng.uniform(*TAIL_FACTOR, size=k).astype(np.float32)
        x *= row_scale[r0:r0 + nr, None]
        if kind == "linear":
            x[:, out_cols] *= out_scale
        yield x


def split_shards(sizes, shards):
    """Indices where shards start, so the shards hold contiguous runs of tensors of ~equal bytes."""
    n = len(sizes)
    prefix = [0]
    for s in sizes:
        prefix.append(prefix[-1] + s)
    total = prefix[-1]
    starts = [0]
    for k in range(1, shards):
        target = total * k / shards
        lo, hi = starts[-1] + 1, n - (shards - k)
        starts.append(min(range(lo, hi + 1), key=lambda j: (abs(prefix[j] - target), j)))
    return starts + [n]


def shard_header(entries, dtype):
    """The safetensors header bytes (length prefix included) for [(name, shape, nbytes)]."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape, nbytes in entries:
        header[name] = {"dtype": DTYPES[dtype][0], "shape": list(shape),
                        "data_offsets": [off, off + nbytes]}
        off += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return len(text).to_bytes(8, "little") + text


def write_atomic_text(path, text, pending):
    tmp = path + ".partial"
    pending.append((tmp, path))
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Write a deterministic Llama-style example checkpoint (HF safetensors).")
    ap.add_argument("output_dir", metavar="OUTPUT_DIR")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--intermediate", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int, dest="kv_heads")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--names", choices=("hf", "llama.cpp"), default="hf",
                    help="tensor names: Hugging Face's (model.layers.0.self_attn.q_proj.weight) or"
                         " llama.cpp's GGUF names (blk.0.attn_q.weight), for 'zeropoint convert' to GGUF")
    ap.add_argument("--size-gib", type=float, metavar="X",
                    help="7B-like shapes (hidden 4096, intermediate 11008, vocab 32000, 32 heads,"
                         " 8 kv heads; each can still be overridden) with the fewest layers that"
                         " make the tensor data at least X GiB")
    a = ap.parse_args(argv)
    dims = ("hidden", "intermediate", "vocab", "heads", "kv_heads")
    if a.size_gib is not None:
        if a.layers is not None:
            ap.error("--size-gib chooses the number of layers; do not combine it with --layers")
        if not a.size_gib > 0:
            ap.error("--size-gib must be positive")
        for d in dims:
            if getattr(a, d) is None:
                setattr(a, d, PRESET[d])
        shape = {d: getattr(a, d) for d in dims}
        esize = DTYPES[a.dtype][1]
        fixed = n_params(0, **shape) * esize
        per_layer = n_params(1, **shape) * esize - fixed
        a.layers = max(1, math.ceil((a.size_gib * 2**30 - fixed) / per_layer))
    for d in ("layers",) + dims:
        if getattr(a, d) is None:
            setattr(a, d, DEFAULTS[d])
    for d in ("layers", "hidden", "intermediate", "vocab", "heads", "kv_heads", "shards"):
        if getattr(a, d) < 1:
            ap.error(f"--{d.replace('_', '-')} must be >= 1")
    if a.seed < 0:
        ap.error("--seed must be >= 0")
    if a.hidden % a.heads:
        ap.error("--hidden must be a multiple of --heads")
    if a.heads % a.kv_heads:
        ap.error("--heads must be a multiple of --kv-heads")
    n_tensors = 3 + 9 * a.layers
    if a.shards > n_tensors:
        ap.error(f"--shards must be at most the number of tensors ({n_tensors})")
    if a.shards > 99999:
        ap.error("--shards must be at most 99999")
    return a


def main(argv):
    a = parse_args(argv)
    specs = tensor_specs(a.layers, a.hidden, a.intermediate, a.vocab, a.heads, a.kv_heads)
    if a.names == "llama.cpp":
        specs = [(llama_cpp_name(n), shape, kind) for n, shape, kind in specs]
    esize = DTYPES[a.dtype][1]
    sizes = [math.prod(shape) * esize for _, shape, _ in specs]
    starts = split_shards(sizes, a.shards)
    if a.shards == 1:
        names = ["model.safetensors"]
    else:
        names = [f"model-{k + 1:05d}-of-{a.shards:05d}.safetensors" for k in range(a.shards)]

    os.makedirs(a.output_dir, exist_ok=True)
    pending = []  # (temporary path, final path), renamed once everything is written
    try:
        weight_map = {}
        for k, fname in enumerate(names):
            lo, hi = starts[k], starts[k + 1]
            path = os.path.join(a.output_dir, fname)
            tmp = path + ".partial"
            pending.append((tmp, path))
            with open(tmp, "wb") as f:
                f.write(shard_header([(specs[i][0], specs[i][1], sizes[i]) for i in range(lo, hi)],
                                     a.dtype))
                for i in range(lo, hi):
                    name, shape, kind = specs[i]
                    rng = np.random.Generator(np.random.PCG64(a.seed + i))
                    written = 0
                    for block in generate(rng, shape, kind):
                        data = encode(block, a.dtype)
                        f.write(data.data)
                        written += data.nbytes
                    assert written == sizes[i], (name, written, sizes[i])
                    weight_map[name] = fname
        if a.shards > 1:
            index = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
            write_atomic_text(os.path.join(a.output_dir, "model.safetensors.index.json"),
                              json.dumps(index, indent=2, sort_keys=True) + "\n", pending)
        config = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": a.hidden,
            "intermediate_size": a.intermediate,
            "num_attention_heads": a.heads,
            "num_key_value_heads": a.kv_heads,
            "num_hidden_layers": a.layers,
            "vocab_size": a.vocab,
            "torch_dtype": DTYPES[a.dtype][2],
            "rms_norm_eps": 1e-5,
        }
        write_atomic_text(os.path.join(a.output_dir, "config.json"),
                          json.dumps(config, indent=2, sort_keys=True) + "\n", pending)
        for tmp, path in pending:
            os.replace(tmp, path)
        pending = []
    finally:
        for tmp, _ in pending:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass

    # Weights of an earlier run with another --shards would confuse loaders (an old index next to
    # a new model.safetensors, or extra shards): remove checkpoint files this run did not write.
    wrote = set(names) | {"config.json"} | (
        {"model.safetensors.index.json"} if a.shards > 1 else set())
    stale = re.compile(r"model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?")
    for entry in sorted(os.listdir(a.output_dir)):
        if stale.fullmatch(entry) and entry not in wrote:
            os.remove(os.path.join(a.output_dir, entry))

    files = len(names) + 1 + (a.shards > 1)
    print(f"{len(specs)} tensors, {sum(sizes)} bytes of {DTYPES[a.dtype][0]} tensor data,"
          f" {files} files written to {a.output_dir}: {', '.join(names)}"
          f"{', model.safetensors.index.json' if a.shards > 1 else ''}, config.json")


if __name__ == "__main__":
    main(sys.argv[1:])
