#!/usr/bin/python3
"""Writes the seed inputs of onnx_fuzz into fuzz/corpus/onnx/: small valid models that between
them use every way a model holds a weight (initializers in raw bytes and in typed fields, Constant
nodes, initializers inside If and Loop subgraphs, external data) and an opset-9 Softmax, so the
fuzzer starts next to every check of src/formats/onnx/model.cpp; plus the inputs of the overflows
onnx_fuzz's UBSan reported (refused now; each is a regression seed).

External data refers to weights.data, the 256-byte file onnx_fuzz puts in the model's folder
(kWeightsSize in fuzz/onnx_fuzz.cpp). Every valid seed passes onnx.checker except types.onnx,
which holds INT4 (22), a type libonnx 1.12 does not know.

Needs Debian's python3-onnx (1.12); run it with /usr/bin/python3 from anywhere."""
import pathlib
import tempfile

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "onnx"
WEIGHTS_SIZE = 256  # fuzz/onnx_fuzz.cpp: kWeightsSize
FLOAT = TensorProto.FLOAT


def model(nodes, inputs, outputs, initializers=(), opset=13, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    m = helper.make_model(graph, producer_name="zeropoint-seeds", opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def value(name, elem_type, shape):
    return helper.make_tensor_value_info(name, elem_type, shape)


def initializer():
    """MatMul + Add with weights in raw bytes, a typed float_data bias, halves and doubles."""
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3) / 4 - 0.5, "W")
    b = helper.make_tensor("B", FLOAT, [3], [0.5, -1.0, 2.0])  # typed float_data
    h = numpy_helper.from_array(np.array([1.0, -2.0, 0.333], dtype=np.float16), "H")
    d = helper.make_tensor("D", TensorProto.DOUBLE, [2], [0.1, -1e300])
    return model(
        [helper.make_node("MatMul", ["X", "W"], ["xw"], name="matmul"),
         helper.make_node("Add", ["xw", "B"], ["Y"], name="add")],
        [value("X", FLOAT, [1, 2])], [value("Y", FLOAT, [1, 3])], [w, b, h, d])


def constant():
    """A Constant node's value tensor, and one with a typed field."""
    c = helper.make_node("Constant", [], ["C"], name="const",
                         value=numpy_helper.from_array(np.array([[1.5, -2.0]], dtype=np.float32)))
    c2 = helper.make_node("Constant", [], ["C2"], name="const2",
                          value=helper.make_tensor("c2", FLOAT, [2], [3.0, 4.0]))
    return model(
        [c, c2, helper.make_node("Mul", ["X", "C"], ["xc"], name="mul"),
         helper.make_node("Add", ["xc", "C2"], ["Y"], name="add")],
        [value("X", FLOAT, [1, 2])], [value("Y", FLOAT, [1, 2])])


def if_subgraph():
    """If whose branches read the outer W; the then branch has an initializer of its own."""
    w = numpy_helper.from_array(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32), "W")
    t = numpy_helper.from_array(np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32), "T")
    then_g = helper.make_graph([helper.make_node("Mul", ["W", "T"], ["t"], name="then_mul")], "then", [],
                               [value("t", FLOAT, [4])], initializer=[t])
    else_g = helper.make_graph([helper.make_node("Neg", ["W"], ["e"], name="else_neg")], "else", [],
                               [value("e", FLOAT, [4])])
    node = helper.make_node("If", ["cond"], ["Y"], name="if", then_branch=then_g, else_branch=else_g)
    return model([node], [value("cond", TensorProto.BOOL, [])], [value("Y", FLOAT, [4])], [w])


def loop():
    """Loop whose body adds the outer W to its carried value."""
    w = numpy_helper.from_array(np.array([1.0, -1.0], dtype=np.float32), "W")
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep"),
         helper.make_node("Add", ["v_in", "W"], ["v_out"], name="body_add")],
        "body",
        [value("i", TensorProto.INT64, []), value("cond_in", TensorProto.BOOL, []), value("v_in", FLOAT, [2])],
        [value("cond_out", TensorProto.BOOL, []), value("v_out", FLOAT, [2])])
    node = helper.make_node("Loop", ["n", "", "X"], ["Y"], name="loop", body=body)
    return model([node], [value("n", TensorProto.INT64, []), value("X", FLOAT, [2])], [value("Y", FLOAT, [2])], [w])


def external():
    """W in weights.data at [64, 128); H (halves) from 128 to the end of the file (no length)."""
    w = TensorProto(name="W", data_type=FLOAT, dims=[4, 4], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "weights.data"), ("offset", "64"), ("length", "64")):
        w.external_data.add(key=k, value=v)
    h = TensorProto(name="H", data_type=TensorProto.FLOAT16, dims=[(WEIGHTS_SIZE - 128) // 2],
                    data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "weights.data"), ("offset", "128")):
        h.external_data.add(key=k, value=v)
    return model([helper.make_node("MatMul", ["X", "W"], ["Y"], name="matmul")],
                 [value("X", FLOAT, [1, 4])], [value("Y", FLOAT, [1, 4])], [w, h])


def types():
    """Initializers of the other types: INT8 and BFLOAT16 in typed fields, INT64, STRING, INT4."""
    i8 = helper.make_tensor("i8", TensorProto.INT8, [3], [-128, 0, 127])
    bf = helper.make_tensor("bf", TensorProto.BFLOAT16, [2], [0x3F80, 0xC040])  # typed int32_data
    i64 = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    s = helper.make_tensor("s", TensorProto.STRING, [2], [b"a", b"bc"])
    i4 = TensorProto(name="i4", data_type=22, dims=[3], raw_data=b"\x21\x0f")  # INT4: two per byte
    m = model([helper.make_node("ReduceMean", ["X"], ["Y"], name="mean", axes=[1])],
              [value("X", FLOAT, [2, 2])], [value("Y", FLOAT, [2, 1])], [i8, bf, i64, s, i4])
    return m


def softmax9():
    """Softmax at opset 9 with axis 1 on a rank-3 input (what upgrade_opset rewrites)."""
    m = model([helper.make_node("Softmax", ["X"], ["Y"], name="sm", axis=1)],
              [value("X", FLOAT, [2, 3, 4])], [value("Y", FLOAT, [2, 3, 4])], opset=9)
    m.ir_version = 4
    return m


def one_initializer(t):
    return model([helper.make_node("Identity", [t.name], ["Y"], name="id")], [], [value("Y", FLOAT, [])], [t])


def complex_huge():
    """2^62 complex values need 2^63 floats: the typed count passes int64."""
    return one_initializer(TensorProto(name="W", data_type=TensorProto.COMPLEX64, dims=[1 << 62]))


def int4_max():
    """2^63 - 1 INT4 values: rounding the byte count up must not compute n + 1."""
    return one_initializer(TensorProto(name="W", data_type=22, dims=[(1 << 63) - 1], raw_data=b"x"))


def offset_huge():
    """External data at an offset near 2^63: the end of the range must not be a signed sum."""
    t = TensorProto(name="W", data_type=FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "weights.data"), ("offset", "9223372036854775800"), ("length", "16")):
        t.external_data.add(key=k, value=v)
    return one_initializer(t)


SEEDS = {
    "initializer": initializer,
    "constant": constant,
    "if_subgraph": if_subgraph,
    "loop": loop,
    "external": external,
    "types": types,
    "softmax9": softmax9,
    "complex_huge": complex_huge,
    "int4_max": int4_max,
    "offset_huge": offset_huge,
}
REFUSED = {"complex_huge", "int4_max", "offset_huge"}


def check(name, m):
    if name == "types" or name in REFUSED:
        return
    if name != "external":
        checker.check_model(m)
        return
    # The checker wants the external file next to the model.
    with tempfile.TemporaryDirectory() as tmp:
        (pathlib.Path(tmp) / "weights.data").write_bytes(bytes(WEIGHTS_SIZE))
        (pathlib.Path(tmp) / "m.onnx").write_bytes(m.SerializeToString())
        checker.check_model(str(pathlib.Path(tmp) / "m.onnx"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in SEEDS.items():
        m = make()
        check(name, m)
        data = m.SerializeToString()
        (OUT / f"{name}.onnx").write_bytes(data)
        print(f"{name}.onnx: {len(data)} bytes")


if __name__ == "__main__":
    main()
