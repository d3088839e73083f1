#!/usr/bin/python3
"""Weight-only quantization of a large ONNX model against copying it: is it bounded by I/O?

  /usr/bin/python3 bench/onnx_weights_io.py [build/bin/zeropoint] [--layers 8] [--dim 4096] [--repeat 3]

Builds a chain of MatMul layers (dim x dim float32 weights, in one external data file: 8 layers of
4096 give 512 MiB), then, alternating in the same run, times `cp` of the model and its data (the
yardstick: the same bytes read and written), the same copy flushed to disk (zeropoint flushes
its output before renaming it into place, which `cp` does not) and `zeropoint quantize --mode
weights` (int8 per channel), and reports the medians and their ratios.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(path, layers, dim):
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"
    for i in range(layers):
        w = (rng.standard_normal((dim, dim), dtype=np.float32) * 0.02).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"fc{i}"))
        x = f"h{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", dim])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location=os.path.basename(path) + ".weights", size_threshold=1024)


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def durable_copy(files, dst):
    """cp, then each copy flushed to disk, as zeropoint flushes its output before renaming it."""
    t = time.perf_counter()
    subprocess.run(["cp", *files, dst], check=True)
    for f in files:
        fd = os.open(os.path.join(dst, os.path.basename(f)), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return time.perf_counter() - t


def main():
    args = sys.argv[1:]
    zp = args.pop(0) if args and not args[0].startswith("--") else os.path.join(ROOT, "build", "bin", "zeropoint")
    opts = dict(zip(args[::2], args[1::2]))
    layers, dim, repeat = int(opts.get("--layers", 8)), int(opts.get("--dim", 4096)), int(opts.get("--repeat", 3))
    with tempfile.TemporaryDirectory(dir=opts.get("--dir")) as tmp:
        src = os.path.join(tmp, "chain.onnx")
        build(src, layers, dim)
        size = os.path.getsize(src) + os.path.getsize(src + ".weights")
        copies, durable, quants = [], [], []
        for _ in range(repeat):
            dst = os.path.join(tmp, "copy")
            os.makedirs(dst, exist_ok=True)
            copies.append(timed(["cp", src, src + ".weights", dst]))
            shutil.rmtree(dst)
            os.makedirs(dst, exist_ok=True)
            durable.append(durable_copy([src, src + ".weights"], dst))
            shutil.rmtree(dst)
            out = os.path.join(tmp, "q.onnx")
            quants.append(timed([zp, "quantize", src, "-o", out, "-q"]))
        c, d, q = statistics.median(copies), statistics.median(durable), statistics.median(quants)
        print(f"{layers} x [{dim}, {dim}] float32 = {size / 2**20:.0f} MiB, median of {repeat}:")
        print(f"  cp model + data      {c:6.2f} s  {size / c / 1e9:5.2f} GB/s")
        print(f"  cp, then fsync       {d:6.2f} s  {size / d / 1e9:5.2f} GB/s")
        print(f"  zeropoint weights    {q:6.2f} s  {size / q / 1e9:5.2f} GB/s of input  "
              f"({100 * c / q:.0f}% of the copy's speed, {100 * d / q:.0f}% of the durable copy's)")


if __name__ == "__main__":
    main()
