#!/usr/bin/python3
"""Writes the small ONNX models of tests/unit/test_ort_runner.cpp into this folder.

Run it with Debian's python3 (python3-onnx, python3-numpy) after changing a model here, and
commit the .onnx files: the tests read them, they do not run this. The tests compute each
model's expected outputs themselves, so the numbers below are the specification they check:

  add_matmul.onnx    x f32 [batch, 4], w f32 [4, 3] -> sum = x @ w + b, relu = max(sum, 0),
                     matmul = x @ w, in that order (not alphabetical, to check the order kept);
                     b = [0.5, -1, 2]
  gather_int64.onnx  ids i64 [n] -> rows = table[ids] (f32 [n, 2]), next_ids = ids + 1;
                     table[i][j] = 0.5 * (2 * i + j), 5 rows
  dtypes.onnx        one input per element type, each [n]: h f16, d f64, i32, i8, u8, i16,
                     u16, u32, flags bool -> h_twice = h + h, d_neg = -d, i32_neg = -i32,
                     i8_neg = -i8, u8_id, i16_id, u16_id, u32_id (identities), flags_not = !flags
  expand.onnx        value f32 [1], shape i64 [2] -> filled = value broadcast to shape
                     (large outputs from a small request)
  identity.onnx      x f32 [n] -> y = x (large tensors both ways)
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
# Opset 13 and IR version 7: old enough for any ONNX Runtime the tests may meet.
OPSET = [helper.make_opsetid("", 13)]
IR_VERSION = 7


def save(name, nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, name.removesuffix(".onnx"), inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="zeropoint make_runner_models.py")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name))


def vi(name, elem_type, shape):
    return helper.make_tensor_value_info(name, elem_type, shape)


def main():
    F32, F16, F64, I64 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.INT64

    save("add_matmul.onnx",
         [helper.make_node("MatMul", ["x", "w"], ["matmul"]),
          helper.make_node("Add", ["matmul", "b"], ["sum"]),
          helper.make_node("Relu", ["sum"], ["relu"])],
         [vi("x", F32, ["batch", 4]), vi("w", F32, [4, 3])],
         [vi("sum", F32, ["batch", 3]), vi("relu", F32, ["batch", 3]), vi("matmul", F32, ["batch", 3])],
         [numpy_helper.from_array(np.array([0.5, -1.0, 2.0], np.float32), "b")])

    table = (0.5 * (2 * np.arange(5)[:, None] + np.arange(2)[None, :])).astype(np.float32)
    save("gather_int64.onnx",
         [helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
          helper.make_node("Add", ["ids", "one"], ["next_ids"])],
         [vi("ids", I64, ["n"])],
         [vi("rows", F32, ["n", 2]), vi("next_ids", I64, ["n"])],
         [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array(1, np.int64), "one")])

    types = [("h", F16), ("d", F64), ("i32", TensorProto.INT32), ("i8", TensorProto.INT8),
             ("u8", TensorProto.UINT8), ("i16", TensorProto.INT16), ("u16", TensorProto.UINT16),
             ("u32", TensorProto.UINT32), ("flags", TensorProto.BOOL)]
    ops = {"h": ("Add", "h_twice"), "d": ("Neg", "d_neg"), "i32": ("Neg", "i32_neg"), "i8": ("Neg", "i8_neg"),
           "u8": ("Identity", "u8_id"), "i16": ("Identity", "i16_id"), "u16": ("Identity", "u16_id"),
           "u32": ("Identity", "u32_id"), "flags": ("Not", "flags_not")}
    nodes, outputs = [], []
    for name, elem in types:
        op, out = ops[name]
        nodes.append(helper.make_node(op, [name, name] if op == "Add" else [name], [out]))
        outputs.append(vi(out, elem, ["n"]))
    save("dtypes.onnx", nodes, [vi(name, elem, ["n"]) for name, elem in types], outputs)

    save("expand.onnx",
         [helper.make_node("Expand", ["value", "shape"], ["filled"])],
         [vi("value", F32, [1]), vi("shape", I64, [2])],
         [vi("filled", F32, ["rows", "cols"])])

    save("identity.onnx",
         [helper.make_node("Identity", ["x"], ["y"])],
         [vi("x", F32, ["n"])],
         [vi("y", F32, ["n"])])


if __name__ == "__main__":
    main()
