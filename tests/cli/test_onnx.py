#!/usr/bin/python3
"""End-to-end tests of zeropoint on small ONNX models built here with python3-onnx.

Run by ctest as:
  /usr/bin/python3 tests/cli/test_onnx.py path/to/zeropoint

NumPy is the oracle of the codes and scales; ONNX's checker (python3-onnx, opsets <= 17) and ONNX
Runtime (onnxruntime-node, through a few lines of Node.js; ZEROPOINT_ORT_MODULES names its
node_modules folder) check that the outputs are valid models that run and stay close to the float
ones. The real models are in test_onnx_models.py.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402
from test_cli import oracle_params, oracle_quantize, run, run_for_peak_rss, run_on_a_full_disk  # noqa: E402

RUN_JS = r"""
const ort = require(process.env.ZEROPOINT_ORT_MODULES + '/onnxruntime-node');
const fs = require('fs');
(async () => {
  const [model, input] = process.argv.slice(2);
  const spec = JSON.parse(fs.readFileSync(input));
  const s = await ort.InferenceSession.create(model);
  const feeds = {};
  for (const [name, v] of Object.entries(spec)) feeds[name] = new ort.Tensor('float32', Float32Array.from(v.data), v.shape);
  const r = await s.run(feeds);
  const out = {};
  for (const n of s.outputNames) out[n] = {shape: r[n].dims, data: Array.from(r[n].data)};
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e.message); process.exit(1); });
"""


def ort_run(tmp, model, feeds):
    """The model's outputs on `feeds` (name -> float32 array), from ONNX Runtime."""
    js = os.path.join(tmp, "run.js")
    with open(js, "w") as f:
        f.write(RUN_JS)
    spec = os.path.join(tmp, "feeds.json")
    with open(spec, "w") as f:
        json.dump({k: {"shape": list(v.shape), "data": v.ravel().tolist()} for k, v in feeds.items()}, f)
    p = subprocess.run(["node", js, model, spec], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"ONNX Runtime failed on {model}: {p.stderr}")
    return {k: np.array(v["data"], np.float32).reshape(v["shape"]) for k, v in json.loads(p.stdout).items()}


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def rng_weights(seed, shape, scale=0.3):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def build_model(opset=13, with_if=True):
    """x [N,3,6,6] -> Conv(+bias) -> Relu -> Flatten -> MatMul(W2) -> Add -> MatMul(W3 from a Constant
    node) -> y; optionally an If whose branch holds its own MatMul weight; and a Softmax kept in
    float."""
    w1 = rng_weights(1, (4, 3, 3, 3))
    b1 = rng_weights(2, (4,), 0.1)
    w2 = rng_weights(3, (144, 8), 0.1)
    b2 = rng_weights(4, (8,), 0.1)
    w3 = rng_weights(5, (8, 5))
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "W2"], ["m"], name="fc1"),
        helper.make_node("Add", ["m", "B2"], ["a"], name="bias"),
        helper.make_node("Constant", [], ["W3"], name="w3_const", value=numpy_helper.from_array(w3, "W3v")),
        helper.make_node("MatMul", ["a", "W3"], ["logits"], name="fc2"),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1),
    ]
    inits = [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(b1, "B1"),
             numpy_helper.from_array(w2, "W2"), numpy_helper.from_array(b2, "B2")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])]
    if with_if:
        w4 = rng_weights(6, (5, 3))
        branch_then = helper.make_graph(
            [helper.make_node("MatMul", ["y", "W4"], ["t"], name="then_fc")], "then",
            [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["N", 3])], [numpy_helper.from_array(w4, "W4")])
        branch_else = helper.make_graph(
            [helper.make_node("Slice", ["y", "s0", "s1", "s2"], ["e"], name="else_slice")], "else",
            [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["N", 3])],
            [numpy_helper.from_array(np.array([0], np.int64), "s0"), numpy_helper.from_array(np.array([3], np.int64), "s1"),
             numpy_helper.from_array(np.array([1], np.int64), "s2")])
        nodes.append(helper.make_node("Constant", [], ["cond"], name="cond_const",
                                      value=numpy_helper.from_array(np.array(True), "condv")))
        nodes.append(helper.make_node("If", ["cond"], ["z"], name="if", then_branch=branch_then, else_branch=branch_else))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset >= 13 else 6
    return model, {"W1": w1, "B1": b1, "W2": w2, "B2": b2, "W3": w3, "W4": w4 if with_if else None}


def tensors_of(model):
    """Every initializer and Constant value of every graph, by name."""
    out = {}

    def visit(g):
        for t in g.initializer:
            out[t.name] = t
        for n in g.node:
            if n.op_type == "Constant":
                out[n.output[0]] = n.attribute[0].t
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)
    visit(model.graph)
    return out


def nodes_of(model):
    out = []

    def visit(g):
        for n in g.node:
            out.append(n)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)
    visit(model.graph)
    return out


def dequantize_node(model, name):
    return next(n for n in nodes_of(model) if n.op_type == "DequantizeLinear" and n.output[0] == name)


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class OnnxBase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.model, self.w = build_model()
        self.path = self.save(self.model, "model.onnx")
        rng = np.random.default_rng(7)
        self.samples = [rng.standard_normal((2, 3, 6, 6)).astype(np.float32) for _ in range(4)]

    def tearDown(self):
        self.tmp.cleanup()

    def save(self, model, name):
        path = os.path.join(self.dir, name)
        onnx.save(model, path)
        return path

    def out(self, name):
        return os.path.join(self.dir, name)

    def compare(self, quantized, threshold):
        """Runs float and quantized models in ONNX Runtime on one batch; returns their cosines."""
        x = self.samples[0]
        ref = ort_run(self.dir, self.path, {"x": x})
        got = ort_run(self.dir, quantized, {"x": x})
        for k in ref:
            c = cosine(ref[k], got[k])
            self.assertGreaterEqual(c, threshold, f"output {k}: cosine {c}")


class WeightsMode(OnnxBase):
    def test_codes_and_scales_match_numpy(self):
        out = self.out("w.onnx")
        report = json.loads(run("quantize", self.path, "-o", out, "--json", "-q").stdout)
        self.assertEqual(report["opset_out"], 13)
        q = onnx.load(out)
        onnx.checker.check_model(q)
        t = tensors_of(q)
        # W1 (Conv: axis 0), W2 (MatMul: last axis), W3 (a Constant node), W4 (inside the If).
        for name, axis in [("W1", 0), ("W2", 1), ("W3", 1), ("W4", 1)]:
            w = self.w[name]
            dq = dequantize_node(q, name)
            self.assertEqual(attr(dq, "axis"), axis, name)
            codes = numpy_helper.to_array(t[dq.input[0]])
            scale = numpy_helper.to_array(t[dq.input[1]])
            self.assertEqual(codes.dtype, np.int8)
            moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
            exp_scale, exp_zp, qmin, qmax = oracle_params(moved.min(1), moved.max(1), 8, True, True, True)
            np.testing.assert_array_equal(scale, exp_scale, name)
            shape = [1] * w.ndim
            shape[axis] = -1
            expected = oracle_quantize(w, exp_scale.reshape(shape), 0, qmin, qmax)
            np.testing.assert_array_equal(codes.astype(np.int64), expected, name)
        # Biases and the Constant's neighbours stay float; the Softmax is untouched.
        self.assertEqual(t["B1"].data_type, TensorProto.FLOAT)
        names = {r["name"] for r in report["tensors"]}
        self.assertEqual(names, {"W1", "W2", "W3", "W4"})
        self.compare(out, 0.999)

    def test_rules_keep_and_exclusions(self):
        out = self.out("w.onnx")
        report = json.loads(run("quantize", self.path, "-o", out, "--json", "-q", "--keep", "W2",
                                "--rule", "W3=uint8:channel:asym", "--exclude-op", "Conv").stdout)
        by_name = {r["name"]: r for r in report["tensors"]}
        self.assertEqual(set(by_name), {"W3", "W4"})
        self.assertEqual(by_name["W3"]["scheme"], "uint8:channel=1:asym")
        q = onnx.load(out)
        t = tensors_of(q)
        self.assertEqual(t["W1"].data_type, TensorProto.FLOAT)
        self.assertEqual(t["W2"].data_type, TensorProto.FLOAT)
        dq = dequantize_node(q, "W3")
        self.assertEqual(t[dq.input[0]].data_type, TensorProto.UINT8)
        self.assertEqual(len(dq.input), 3)  # asymmetric: a zero point
        self.compare(out, 0.999)

    def test_int4_blocks_at_opset_21(self):
        out = self.out("w4.onnx")
        report = json.loads(run("quantize", self.path, "-o", out, "--json", "-q", "--scheme", "int4:block=16").stdout)
        self.assertEqual(report["opset_out"], 21)
        q = onnx.load(out)
        self.assertEqual(q.opset_import[0].version, 21)
        t = tensors_of(q)
        dq = dequantize_node(q, "W2")
        self.assertEqual(t[dq.input[0]].data_type, 22)  # INT4
        self.assertEqual(attr(dq, "block_size"), 16)
        self.assertEqual(attr(dq, "axis"), 0)  # blocks run along MatMul's reduction axis
        scale = numpy_helper.to_array(t[dq.input[1]])
        self.assertEqual(scale.shape, (144 // 16, 8))
        # The packed codes: two per byte, the first in the low nibble.
        raw = np.frombuffer(t[dq.input[0]].raw_data, np.uint8)
        lo = (raw & 0x0F).astype(np.int8)
        hi = (raw >> 4).astype(np.int8)
        codes = np.stack([lo, hi], 1).ravel()[:144 * 8]
        codes = np.where(codes > 7, codes - 16, codes).reshape(144, 8)
        w = self.w["W2"]
        blocks = w.reshape(9, 16, 8)
        exp_scale, _, qmin, qmax = oracle_params(blocks.min(1), blocks.max(1), 4, True, True, True)
        np.testing.assert_array_equal(scale, exp_scale)
        expected = oracle_quantize(blocks, exp_scale[:, None, :], 0, qmin, qmax).reshape(144, 8)
        np.testing.assert_array_equal(codes, expected)
        # Conv's 3 input channels are fewer than a block: int8 per channel instead, said so.
        by_name = {r["name"]: r for r in report["tensors"]}
        self.assertEqual(by_name["W1"]["scheme"], "int8:channel=0")
        self.assertIn("fallback", by_name["W1"]["reason"])
        self.compare(out, 0.99)

    def test_old_opset_is_upgraded(self):
        model, _ = build_model(opset=11, with_if=False)
        # Softmax before opset 13 flattens at its axis: axis=1 on a rank-2 input.
        for n in model.graph.node:
            if n.op_type == "Softmax":
                n.attribute[0].i = 1
        path = self.save(model, "old.onnx")
        out = self.out("old-w.onnx")
        report = json.loads(run("quantize", path, "-o", out, "--json", "-q").stdout)
        self.assertEqual((report["opset_in"], report["opset_out"]), (11, 13))
        q = onnx.load(out)
        onnx.checker.check_model(q)
        x = self.samples[0]
        ref = ort_run(self.dir, path, {"x": x})["y"]
        got = ort_run(self.dir, out, {"x": x})["y"]
        self.assertGreater(cosine(ref, got), 0.999)

    def test_external_data_in_and_out(self):
        path = os.path.join(self.dir, "ext.onnx")
        onnx.save(self.model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="ext.onnx.weights", size_threshold=64)
        out = self.out("ext-w.onnx")
        run("quantize", path, "-o", out, "-q")
        self.assertTrue(os.path.exists(out + ".data"))
        q = onnx.load(out)  # loads the external data too
        self.assertGreater(len(tensors_of(q)), 0)
        self.compare(out, 0.999)

    def test_a_full_disk_is_a_clear_error_and_leaves_no_output(self):
        path = os.path.join(self.dir, "ext.onnx")
        onnx.save(self.model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="ext.onnx.weights", size_threshold=64)
        out = self.out("full.onnx")
        p = run_on_a_full_disk("quantize", path, "-o", out, "-q", limit=512)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(out, p.stderr)  # the model or its data file
        self.assertIn("File too large", p.stderr)
        self.assertEqual([f for f in os.listdir(os.path.dirname(out)) if "full" in f], [])

    def test_external_codes_are_written_as_made(self):
        # An input with external data gives an output with external data, and the codes of each
        # large weight go there as soon as they exist: the same bytes as an inline output.
        path = os.path.join(self.dir, "ext.onnx")
        onnx.save(self.model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="ext.onnx.weights", size_threshold=64)
        out, inline = self.out("ext-q.onnx"), self.out("inline-q.onnx")
        run("quantize", path, "-o", out, "-q")
        run("quantize", self.path, "-o", inline, "-q")
        self.assertFalse(os.path.exists(inline + ".data"))
        lean = onnx.load(out, load_external_data=False)
        w2 = tensors_of(lean)["W2_quantized"]  # 144 x 8 int8 codes: over the 1024-byte threshold
        self.assertEqual(w2.data_location, TensorProto.EXTERNAL)
        self.assertEqual({kv.key: kv.value for kv in w2.external_data}["location"], "ext-q.onnx.data")
        full, ref = tensors_of(onnx.load(out)), tensors_of(onnx.load(inline))
        self.assertEqual(set(full), set(ref))
        for name, t in ref.items():
            np.testing.assert_array_equal(numpy_helper.to_array(full[name]), numpy_helper.to_array(t), name)
        self.assertEqual(sorted(os.listdir(self.dir)).count("ext-q.onnx.data"), 1)

    def test_memory_follows_the_largest_weight(self):
        # 8 MatMul weights of 16 MiB in external data: peak resident memory stays under 3x the
        # largest weight plus a fixed amount (the whole model's floats are 128 MiB, its codes 32).
        dim, layers = 2048, 8
        rng = np.random.default_rng(3)
        nodes, inits, x = [], [], "x"
        for i in range(layers):
            inits.append(numpy_helper.from_array(rng.standard_normal((dim, dim), dtype=np.float32), f"w{i}"))
            nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"fc{i}"))
            x = f"h{i}"
        graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim])],
                                  [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, dim])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        path = os.path.join(self.dir, "chain.onnx")
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="chain.onnx.weights", size_threshold=1024)
        peak = run_for_peak_rss("quantize", path, "-o", self.out("chain-q.onnx"), "-q")
        largest = dim * dim * 4
        bound = 3 * largest + (64 << 20)
        print(f"\n  ONNX weights {layers * largest >> 20} MiB, largest {largest >> 20} MiB, "
              f"peak RSS {peak >> 20} MiB (bound {bound >> 20} MiB)", file=sys.stderr)
        self.assertLess(peak, bound)

    def test_failure_leaves_no_data_file(self):
        # W2's codes (an initializer) are written to the data file before the NaN in W3 (a
        # Constant node, quantized after the initializers) is found: neither the model nor its
        # data file may be left behind, nor a temporary file.
        model, _ = build_model(with_if=False)
        constants = [n for n in model.graph.node if n.op_type == "Constant"]
        self.assertEqual(len(constants), 1)
        t = constants[0].attribute[0].t
        a = numpy_helper.to_array(t).copy()
        a[0, 0] = np.nan
        t.CopyFrom(numpy_helper.from_array(a, t.name))
        path = os.path.join(self.dir, "nan.onnx")
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="nan.onnx.weights", size_threshold=64)
        before = sorted(os.listdir(self.dir))
        p = run("quantize", path, "-o", self.out("nan-q.onnx"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("NaN", p.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), before)

    def test_dry_run_and_inspect(self):
        out = self.out("dry.onnx")
        r = run("quantize", self.path, "-o", out, "--dry-run", "-q")
        self.assertFalse(os.path.exists(out))
        self.assertIn("W2", r.stdout)
        r = run("inspect", self.path)
        self.assertIn("ONNX, opset 13", r.stdout)
        self.assertIn("MatMul x2", r.stdout)
        self.assertIn("--mode static: also calibrates and quantizes the 3 values they read: x, f, a", r.stdout)
        j = json.loads(run("inspect", self.path, "--json").stdout)
        self.assertEqual({t["name"] for t in j["tensors"]}, {"W1", "W2", "W3", "W4"})
        self.assertEqual(j["static_activations"], ["x", "f", "a"])
        self.assertEqual(j["dynamic_integer_matmuls"], ["fc1", "fc2"])


class DynamicMode(OnnxBase):
    def test_matmul_integer_and_dynamic_conv(self):
        out = self.out("d.onnx")
        run("quantize", self.path, "-o", out, "--mode", "dynamic", "-q")
        q = onnx.load(out)
        onnx.checker.check_model(q)
        ops = [n.op_type for n in q.graph.node]
        self.assertEqual(ops.count("MatMulInteger"), 2)
        self.assertEqual(ops.count("DynamicQuantizeLinear"), 2)  # fc1, fc2
        self.assertNotIn("MatMul", ops)
        # The Conv keeps its float input, but reads int8 weights through DequantizeLinear.
        conv = next(n for n in q.graph.node if n.op_type == "Conv")
        self.assertEqual(conv.input[0], "x")
        self.assertEqual(dequantize_node(q, "W1").op_type, "DequantizeLinear")
        self.compare(out, 0.99)


class StaticMode(OnnxBase):
    def calibration_files(self, samples=None):
        files = []
        for i, s in enumerate(samples if samples is not None else self.samples):
            p = os.path.join(self.dir, f"cal{i}.npy")
            np.save(p, s)
            files.append(p)
        return files

    def test_minmax_scales_and_int32_bias(self):
        out = self.out("s.onnx")
        report = json.loads(run("quantize", self.path, "-o", out, "--mode", "static", "--method", "minmax",
                                "--calibration", *self.calibration_files(), "--json", "-q").stdout)
        q = onnx.load(out)
        onnx.checker.check_model(q)
        t = tensors_of(q)
        # The input of the Conv: uint8 asymmetric over the range of every calibration sample.
        x = np.stack(self.samples)
        exp_scale, exp_zp, _, _ = oracle_params(np.array([x.min()]), np.array([x.max()]), 8, False, False, False)
        ql = next(n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
        self.assertEqual(numpy_helper.to_array(t[ql.input[1]]), exp_scale[0])
        self.assertEqual(int(numpy_helper.to_array(t[ql.input[2]])), exp_zp[0])
        act = {a["name"]: a for a in report["activations"]}
        self.assertEqual(set(act), {"x", "f", "a"})  # what Conv, fc1 and fc2 read
        self.assertEqual(act["x"]["count"], x.size)
        # The Conv's bias: int32 codes, scale = input scale x weight scale, zero point 0.
        dq_b = dequantize_node(q, "B1")
        codes = numpy_helper.to_array(t[dq_b.input[0]])
        self.assertEqual(codes.dtype, np.int32)
        w_scale = numpy_helper.to_array(t[dequantize_node(q, "W1").input[1]])
        b_scale = numpy_helper.to_array(t[dq_b.input[1]])
        np.testing.assert_array_equal(b_scale, (exp_scale[0] * w_scale).astype(np.float32))
        np.testing.assert_array_equal(codes, np.round(self.w["B1"] / b_scale).astype(np.int32))
        # The Softmax reads the float logits: no pair in front of it.
        sm = next(n for n in q.graph.node if n.op_type == "Softmax")
        self.assertEqual(sm.input[0], "logits")
        self.compare(out, 0.99)

    def test_every_method_runs(self):
        for method in ["moving_average", "percentile", "entropy", "mse"]:
            out = self.out(f"s-{method}.onnx")
            run("quantize", self.path, "-o", out, "--mode", "static", "--method", method,
                "--calibration", *self.calibration_files(), "-q")
            self.compare(out, 0.98)

    def test_in_graph_extremes_match_the_values(self):
        # minmax reads each activation's extremes from reductions added to the graph (in their
        # own order there); percentile reads every value. Both must see the same extremes, for
        # every activation.
        files = self.calibration_files()
        seen = {}
        for method in ["minmax", "percentile"]:
            r = run("quantize", self.path, "-o", self.out(f"{method}.onnx"), "--mode", "static", "--method", method,
                    "--calibration", *files, "--json", "-q")
            seen[method] = {a["name"]: (a["observed_min"], a["observed_max"], a["count"])
                            for a in json.loads(r.stdout)["activations"]}
        self.assertEqual(set(seen["minmax"]), {"x", "f", "a"})
        self.assertEqual(seen["minmax"], seen["percentile"])
        # The extremes differ from one activation to the next, so a mix-up would show.
        self.assertEqual(len({v[:2] for v in seen["minmax"].values()}), 3)

    def test_a_folder_of_samples_is_its_npy_and_npz_files_in_name_order(self):
        folder = os.path.join(self.dir, "samples")
        os.makedirs(folder)
        files = []
        for i, s in enumerate(self.samples):
            # Saved out of name order, with a file that is not a sample beside them.
            files.append(os.path.join(folder, f"s{len(self.samples) - 1 - i}.npy"))
            np.save(files[-1], s)
        with open(os.path.join(folder, "README.txt"), "w") as f:
            f.write("not a sample\n")
        by_folder, by_files = self.out("folder.onnx"), self.out("files.onnx")
        # moving_average depends on the order the samples come in.
        for out, args in [(by_folder, [folder]), (by_files, sorted(files))]:
            run("quantize", self.path, "-o", out, "--mode", "static", "--method", "moving_average",
                "--calibration", *args, "-q")
        with open(by_folder, "rb") as a, open(by_files, "rb") as b:
            self.assertEqual(a.read(), b.read())
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        p = run("quantize", self.path, "-o", self.out("e.onnx"), "--mode", "static", "--calibration", empty, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"{empty}: a folder with no .npy or .npz file in it", p.stderr)

    def test_nan_activations_are_reported_not_fatal(self):
        samples = [s.copy() for s in self.samples]
        samples[1][0, 0, 0, :3] = np.nan
        out = self.out("s.onnx")
        r = run("quantize", self.path, "-o", out, "--mode", "static", "--calibration",
                *self.calibration_files(samples), "--json", "-q")
        act = {a["name"]: a for a in json.loads(r.stdout)["activations"]}
        self.assertEqual(act["x"]["nan"], 3)
        self.assertEqual(act["x"]["count"], np.stack(samples).size - 3)
        self.assertTrue(os.path.exists(out))

    def test_npz_samples_by_input_name(self):
        files = []
        for i, s in enumerate(self.samples):
            p = os.path.join(self.dir, f"s{i}.npz")
            np.savez(p, x=s)
            files.append(p)
        out = self.out("s.onnx")
        run("quantize", self.path, "-o", out, "--mode", "static", "--calibration", *files, "-q")
        self.compare(out, 0.99)


class BadOnnx(OnnxBase):
    def error(self, *args):
        p = run(*args, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        return p.stderr

    def test_not_protobuf_and_truncated(self):
        junk = os.path.join(self.dir, "junk.onnx")
        with open(junk, "wb") as f:
            f.write(b"\xff\xfenot a model at all" * 10)
        self.assertIn("not an ONNX model", self.error("quantize", junk, "-o", self.out("o.onnx")))
        with open(self.path, "rb") as f:
            blob = f.read()
        cut = os.path.join(self.dir, "cut.onnx")
        with open(cut, "wb") as f:
            f.write(blob[: len(blob) // 2])
        self.assertIn("cut.onnx", self.error("quantize", cut, "-o", self.out("o.onnx")))
        self.assertFalse(os.path.exists(self.out("o.onnx")))

    def test_missing_initializer(self):
        model, _ = build_model(with_if=False)
        del model.graph.initializer[2]  # W2
        path = self.save(model, "missing.onnx")
        err = self.error("quantize", path, "-o", self.out("o.onnx"))
        self.assertIn("node 'fc1' (MatMul) reads 'W2'", err)

    def test_external_data_missing_or_short(self):
        path = os.path.join(self.dir, "ext.onnx")
        onnx.save(self.model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="ext.onnx.weights", size_threshold=64)
        data = os.path.join(self.dir, "ext.onnx.weights")
        with open(data, "rb") as f:
            blob = f.read()
        with open(data, "wb") as f:
            f.write(blob[:100])
        self.assertIn("past the end", self.error("quantize", path, "-o", self.out("o.onnx")))
        os.remove(data)
        self.assertIn("cannot be read", self.error("quantize", path, "-o", self.out("o.onnx")))

    def test_mode_and_opset_errors(self):
        self.assertIn("needs calibration data", self.error("quantize", self.path, "-o", self.out("o.onnx"), "--mode", "static"))
        self.assertIn("opset 21", self.error("quantize", self.path, "-o", self.out("o.onnx"), "--mode", "dynamic",
                                             "--scheme", "int4:block=32"))
        model, _ = build_model(opset=5, with_if=False)
        path = self.save(model, "ancient.onnx")
        self.assertIn("opset 5 is too old", self.error("quantize", path, "-o", self.out("o.onnx")))
        self.assertIn("unknown mode", self.error("quantize", self.path, "--mode", "fast"))

    def test_calibration_inputs_that_do_not_fit(self):
        bad_dtype = os.path.join(self.dir, "f64.npy")
        np.save(bad_dtype, self.samples[0].astype(np.float64))
        self.assertIn("input 'x' is f64 but the model wants f32",
                      self.error("quantize", self.path, "-o", self.out("o.onnx"), "--mode", "static", "--calibration", bad_dtype))
        bad_shape = os.path.join(self.dir, "shape.npy")
        np.save(bad_shape, np.zeros((2, 3, 5, 6), np.float32))
        self.assertIn("has shape [2, 3, 5, 6] but the model wants [?, 3, 6, 6]",
                      self.error("quantize", self.path, "-o", self.out("o.onnx"), "--mode", "static", "--calibration", bad_shape))
        bad_name = os.path.join(self.dir, "name.npz")
        np.savez(bad_name, image=self.samples[0])
        self.assertIn("no array named 'x'",
                      self.error("quantize", self.path, "-o", self.out("o.onnx"), "--mode", "static", "--calibration", bad_name))
        self.assertFalse(os.path.exists(self.out("o.onnx")))


if __name__ == "__main__":
    test_cli.ZEROPOINT = os.path.abspath(sys.argv[1])
    if not os.environ.get("ZEROPOINT_ORT_MODULES"):
        os.environ["ZEROPOINT_ORT_MODULES"] = os.path.join(os.path.dirname(os.path.dirname(test_cli.ZEROPOINT)),
                                                           "onnxruntime-node", "node_modules")
    suite = unittest.TestSuite()
    loader = unittest.defaultTestLoader
    for case in [WeightsMode, DynamicMode, StaticMode, BadOnnx]:
        suite.addTests(loader.loadTestsFromTestCase(case))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
