// OrtSession: ONNX models run by onnxruntime-node in a child process. The small models come
// from tests/data/onnx/make_runner_models.py, whose docstring is the formula each test checks;
// the real ones (OCR, wake word) from scripts/fetch-test-models.
#include "zeropoint/ort_runner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/file_test_util.hpp"
#include "unit/test_util.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/tensor.hpp"

namespace zp {
namespace {

using testing::error_of;
using testing::expect_names;
using testing::Rng;
using testing::TempDir;

std::filesystem::path model(const std::string& name) { return std::filesystem::path(ZP_TEST_DATA_DIR) / "onnx" / name; }

#define SKIP_WITHOUT_ORT()                                                                       \
  if (!ort_available()) GTEST_SKIP() << "node or onnxruntime-node missing: run scripts/setup-onnxruntime " \
                                        "BUILD_DIR (or set ZEROPOINT_ORT_MODULES)"

template <class T>
Tensor tensor(DType dtype, const Shape& shape, const std::vector<T>& values) {
  Tensor t(dtype, shape);
  EXPECT_EQ(static_cast<std::size_t>(t.numel()), values.size());
  std::memcpy(t.data(), values.data(), t.nbytes());
  return t;
}

template <class T>
std::vector<T> values(const TensorView& v) {
  auto s = v.span<T>();
  return {s.begin(), s.end()};
}

struct AddMatMulReference {
  std::vector<float> matmul, sum, relu;
};

// The model's formula in double precision: four products per element, so float32 ORT must agree
// to a few ulps.
AddMatMulReference add_matmul_reference(const Tensor& x, const Tensor& w) {
  const float b[3] = {0.5f, -1.0f, 2.0f};
  const auto xs = x.span<float>();
  const auto ws = w.span<float>();
  AddMatMulReference r;
  for (std::int64_t i = 0; i < x.shape()[0]; ++i) {
    for (int j = 0; j < 3; ++j) {
      double acc = 0;
      for (int k = 0; k < 4; ++k) acc += double{xs[i * 4 + k]} * double{ws[k * 3 + j]};
      r.matmul.push_back(static_cast<float>(acc));
      r.sum.push_back(static_cast<float>(acc + b[j]));
      r.relu.push_back(std::max(0.0f, static_cast<float>(acc + b[j])));
    }
  }
  return r;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::abs(want[i]))) << what << " [" << i << "]";
  }
}

TEST(OrtSession, DescribesInputsAndOutputs) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("add_matmul.onnx"));
  ASSERT_EQ(s.inputs().size(), 2u);
  EXPECT_EQ(s.inputs()[0].name, "x");
  EXPECT_EQ(s.inputs()[0].dtype, DType::f32);
  EXPECT_EQ(s.inputs()[0].ort_type, "float32");
  EXPECT_EQ(s.inputs()[0].shape, (Shape{-1, 4}));
  EXPECT_EQ(s.inputs()[0].dim_names, (std::vector<std::string>{"batch", ""}));
  EXPECT_EQ(s.inputs()[1].shape, (Shape{4, 3}));
  EXPECT_EQ(s.output_names(), (std::vector<std::string>{"sum", "relu", "matmul"}));
  ASSERT_EQ(s.outputs().size(), 3u);
  EXPECT_EQ(s.outputs()[2].shape, (Shape{-1, 3}));
}

TEST(OrtSession, AddMatMulMatchesReferenceOnDynamicBatches) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("add_matmul.onnx"));
  Rng rng(7);
  for (std::int64_t batch : {1, 3, 8, 0}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    Tensor x = rng.heavy_tailed({batch, 4});
    Tensor w = rng.heavy_tailed({4, 3});
    const AddMatMulReference want = add_matmul_reference(x, w);
    const NamedView feeds[] = {{"x", x}, {"w", w}};
    std::vector<std::string> order;
    s.run(feeds, [&](const std::string& name, const TensorView& v) {
      order.push_back(name);
      EXPECT_EQ(v.dtype(), DType::f32);
      EXPECT_EQ(v.shape(), (Shape{batch, 3}));
      const auto& ref = name == "sum" ? want.sum : name == "relu" ? want.relu : want.matmul;
      expect_near_all(values<float>(v), ref, name.c_str());
    });
    EXPECT_EQ(order, (std::vector<std::string>{"sum", "relu", "matmul"}));
    EXPECT_GT(s.last_ort_seconds(), 0.0);
  }
}

TEST(OrtSession, SelectedOutputsComeInTheOrderAsked) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("add_matmul.onnx"), {"matmul", "sum"});
  EXPECT_EQ(s.output_names(), (std::vector<std::string>{"matmul", "sum"}));
  Rng rng(11);
  Tensor x = rng.heavy_tailed({2, 4});
  Tensor w = rng.heavy_tailed({4, 3});
  const NamedView feeds[] = {{"w", w}, {"x", x}};  // any order of inputs will do
  const auto out = s.run(feeds);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].first, "matmul");
  EXPECT_EQ(out[1].first, "sum");
  const AddMatMulReference want = add_matmul_reference(x, w);
  expect_near_all(values<float>(out[0].second), want.matmul, "matmul");
  expect_near_all(values<float>(out[1].second), want.sum, "sum");
}

TEST(OrtSession, StridedInputsAreFedInCOrder) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("add_matmul.onnx"), {"matmul"});
  Rng rng(13);
  Tensor x = rng.heavy_tailed({2, 4});
  Tensor wt = rng.heavy_tailed({3, 4});  // w's transpose; w is viewed through strides
  Tensor w(DType::f32, {4, 3});
  for (int k = 0; k < 4; ++k) {
    for (int j = 0; j < 3; ++j) w.span<float>()[k * 3 + j] = wt.span<float>()[j * 4 + k];
  }
  const NamedView feeds[] = {{"x", x}, {"w", TensorView(wt.data(), DType::f32, {4, 3}, {1, 4})}};
  const auto out = s.run(feeds);
  expect_near_all(values<float>(out.at(0).second), add_matmul_reference(x, w).matmul, "matmul");
}

TEST(OrtSession, Int64InputsAndOutputs) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("gather_int64.onnx"));
  EXPECT_EQ(s.inputs().at(0).dtype, DType::i64);
  const std::vector<std::int64_t> ids = {4, 0, 2, 2, 3};
  Tensor t = tensor(DType::i64, {5}, ids);
  const NamedView feeds[] = {{"ids", t}};
  const auto out = s.run(feeds);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].second.shape(), (Shape{5, 2}));
  std::vector<float> rows;
  for (std::int64_t i : ids) {
    for (int j = 0; j < 2; ++j) rows.push_back(0.5f * static_cast<float>(2 * i + j));
  }
  EXPECT_EQ(values<float>(out[0].second), rows);
  EXPECT_EQ(out[1].second.dtype(), DType::i64);
  EXPECT_EQ(values<std::int64_t>(out[1].second), (std::vector<std::int64_t>{5, 1, 3, 3, 4}));
}

TEST(OrtSession, EveryElementTypeCrossesThePipe) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("dtypes.onnx"));
  // f16 bits: 1.5, -0.5, 0, 2048, 0.000061035 (smallest normal); doubled exactly.
  Tensor h = tensor<std::uint16_t>(DType::f16, {5}, {0x3E00, 0xB800, 0x0000, 0x6800, 0x0400});
  Tensor d = tensor<double>(DType::f64, {5}, {1.0 / 3, -2.5, 0.0, 1e300, -1e-300});
  Tensor i32 = tensor<std::int32_t>(DType::i32, {5}, {1, -2, 0, 2147483647, -2147483647});
  Tensor i8 = tensor<std::int8_t>(DType::i8, {5}, {1, -2, 0, 127, -127});
  Tensor u8 = tensor<std::uint8_t>(DType::u8, {5}, {0, 1, 128, 254, 255});
  Tensor i16 = tensor<std::int16_t>(DType::i16, {5}, {-32768, -1, 0, 1, 32767});
  Tensor u16 = tensor<std::uint16_t>(DType::u16, {5}, {0, 1, 32768, 65534, 65535});
  Tensor u32 = tensor<std::uint32_t>(DType::u32, {5}, {0, 1, 2147483648u, 4294967294u, 4294967295u});
  Tensor flags = tensor<std::uint8_t>(DType::u8, {5}, {0, 1, 1, 0, 1});
  const NamedView feeds[] = {{"h", h},     {"d", d},     {"i32", i32}, {"i8", i8},      {"u8", u8},
                             {"i16", i16}, {"u16", u16}, {"u32", u32}, {"flags", flags}};
  EXPECT_EQ(s.inputs().back().ort_type, "bool");
  EXPECT_EQ(s.inputs().back().dtype, DType::u8);
  const auto out = s.run(feeds);
  ASSERT_EQ(out.size(), 9u);
  auto at = [&](const char* name) -> const Tensor& {
    for (const auto& [n, t] : out) {
      if (n == name) return t;
    }
    throw std::runtime_error(std::string("no output ") + name);
  };
  EXPECT_EQ(at("h_twice").dtype(), DType::f16);
  EXPECT_EQ(values<std::uint16_t>(at("h_twice")), (std::vector<std::uint16_t>{0x4200, 0xBC00, 0x0000, 0x6C00, 0x0800}));
  EXPECT_EQ(values<double>(at("d_neg")), (std::vector<double>{-1.0 / 3, 2.5, -0.0, -1e300, 1e-300}));
  EXPECT_EQ(values<std::int32_t>(at("i32_neg")), (std::vector<std::int32_t>{-1, 2, 0, -2147483647, 2147483647}));
  EXPECT_EQ(values<std::int8_t>(at("i8_neg")), (std::vector<std::int8_t>{-1, 2, 0, -127, 127}));
  EXPECT_EQ(values<std::uint8_t>(at("u8_id")), values<std::uint8_t>(u8));
  EXPECT_EQ(values<std::int16_t>(at("i16_id")), values<std::int16_t>(i16));
  EXPECT_EQ(values<std::uint16_t>(at("u16_id")), values<std::uint16_t>(u16));
  EXPECT_EQ(values<std::uint32_t>(at("u32_id")), values<std::uint32_t>(u32));
  EXPECT_EQ(at("flags_not").dtype(), DType::u8);
  EXPECT_EQ(values<std::uint8_t>(at("flags_not")), (std::vector<std::uint8_t>{1, 0, 0, 1, 0}));
}

TEST(OrtSession, RefusedRunsNameModelAndInputAndLeaveTheSessionUsable) {
  SKIP_WITHOUT_ORT();
  const std::string path = model("add_matmul.onnx").string();
  OrtSession s(path);
  Tensor x(DType::f32, {2, 4});
  Tensor w(DType::f32, {4, 3});
  Tensor x_i32(DType::i32, {2, 4});
  Tensor x_wide(DType::f32, {2, 5});
  Tensor x_bf16(DType::bf16, {2, 4});
  const NamedView wrong_name[] = {{"x", x}, {"weights", w}};
  expect_names(error_of([&] { s.run(wrong_name); }), {path, "'weights'", "x, w"});
  const NamedView wrong_dtype[] = {{"x", x_i32}, {"w", w}};
  expect_names(error_of([&] { s.run(wrong_dtype); }), {path, "'x'", "int32", "float32"});
  const NamedView wrong_shape[] = {{"x", x_wide}, {"w", w}};
  expect_names(error_of([&] { s.run(wrong_shape); }), {path, "'x'", "[2, 5]", "[batch, 4]"});
  const NamedView missing[] = {{"x", x}};
  expect_names(error_of([&] { s.run(missing); }), {path, "'w'", "not given"});
  const NamedView twice[] = {{"x", x}, {"w", w}, {"x", x}};
  expect_names(error_of([&] { s.run(twice); }), {path, "'x'", "twice"});
  const NamedView bf16[] = {{"x", x_bf16}, {"w", w}};
  expect_names(error_of([&] { s.run(bf16); }), {path, "'x'", "bf16"});

  const NamedView good[] = {{"x", x}, {"w", w}};
  const auto out = s.run(good);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(values<float>(out[0].second), (std::vector<float>{0.5f, -1.0f, 2.0f, 0.5f, -1.0f, 2.0f}));
}

TEST(OrtSession, ExceptionFromTheCallbackPassesAndTheSessionGoesOn) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("add_matmul.onnx"));
  Tensor x(DType::f32, {2, 4});
  Tensor w(DType::f32, {4, 3});
  const NamedView feeds[] = {{"x", x}, {"w", w}};
  int calls = 0;
  EXPECT_THROW(s.run(feeds,
                     [&](const std::string&, const TensorView&) {
                       ++calls;
                       throw std::runtime_error("caller gave up");
                     }),
               std::runtime_error);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.run(feeds).size(), 3u);
}

TEST(OrtSession, ModelsThatDoNotLoadAreErrors) {
  SKIP_WITHOUT_ORT();
  TempDir dir;
  const auto text = dir.put("not_a_model.onnx", "this is not a protobuf message\n");
  expect_names(error_of([&] { OrtSession s(text); }), {text.string(), "does not load"});
  const auto absent = dir / "absent.onnx";
  expect_names(error_of([&] { OrtSession s(absent); }), {absent.string(), "no such file"});
  const std::string path = model("add_matmul.onnx").string();
  expect_names(error_of([&] { OrtSession s(path, {"relu", "softmax"}); }), {path, "'softmax'", "sum, relu, matmul"});
}

TEST(OrtSession, MissingNodeSaysToRunTheSetupScript) {
  OrtOptions o;
  o.node = "/nonexistent/node";
  EXPECT_FALSE(ort_available(o));
  expect_names(error_of([&] { OrtSession s(model("add_matmul.onnx"), {}, o); }),
               {"/nonexistent/node", "scripts/setup-onnxruntime"});
  o.node = "zeropoint-no-such-node-binary";
  expect_names(error_of([&] { OrtSession s(model("add_matmul.onnx"), {}, o); }),
               {"('zeropoint-no-such-node-binary') is not on PATH", "scripts/setup-onnxruntime"});
}

TEST(OrtSession, MissingOnnxRuntimeSaysToRunTheSetupScript) {
  TempDir dir;
  OrtOptions o;
  o.node = "/bin/sh";  // any executable passes for node here, so the test needs no Node.js
  o.node_modules = dir.path().string();
  EXPECT_FALSE(ort_available(o));
  expect_names(error_of([&] { OrtSession s(model("add_matmul.onnx"), {}, o); }),
               {"onnxruntime-node", dir.path().string(), "scripts/setup-onnxruntime"});
}

// A stand-in runner that dies: its stderr and exit status must reach the message.
TEST(OrtSession, ARunnerThatDiesIsReportedWithItsStderr) {
  SKIP_WITHOUT_ORT();
  TempDir dir;
  OrtOptions o;
  o.runner_script = dir.put("dies_at_start.js", "process.stderr.write('out of cheese\\nredo from start\\n'); process.exit(7);\n").string();
  expect_names(error_of([&] { OrtSession s(model("identity.onnx"), {}, o); }),
               {"identity.onnx", "exited with status 7", "out of cheese | redo from start"});

  // Describes a session, then dies at the first request.
  o.runner_script = dir.put("dies_at_run.js", R"(
    const h = Buffer.from(JSON.stringify({kind: 'session', outputs: [{name: 'y', dtype: 'float32', shape: ['n']}],
                                          inputs: [{name: 'x', dtype: 'float32', shape: ['n']}]}));
    const n = Buffer.alloc(4); n.writeUInt32LE(h.length);
    require('fs').writeSync(1, Buffer.concat([n, h]));
    require('fs').readSync(0, Buffer.alloc(4));
    process.stderr.write('segfault, pretend\n');
    process.exit(9);
  )").string();
  OrtSession s(model("identity.onnx"), {}, o);
  Tensor x(DType::f32, {4});
  const NamedView feeds[] = {{"x", x}};
  expect_names(error_of([&] { s.run(feeds); }), {"identity.onnx", "exited with status 9", "segfault, pretend"});
  expect_names(error_of([&] { s.run(feeds); }), {"cannot run any more"});
}

// The child is gone while a request larger than the pipe is written: the write fails with EPIPE,
// which must become a zp::Error, not a SIGPIPE that ends the test process.
TEST(OrtSession, WritingToARunnerThatDiedIsAnErrorNotASignal) {
  SKIP_WITHOUT_ORT();
  TempDir dir;
  OrtOptions o;
  o.runner_script = dir.put("dies_after_describing.js", R"(
    const h = Buffer.from(JSON.stringify({kind: 'session', outputs: [{name: 'y', dtype: 'float32', shape: ['n']}],
                                          inputs: [{name: 'x', dtype: 'float32', shape: ['n']}]}));
    const n = Buffer.alloc(4); n.writeUInt32LE(h.length);
    require('fs').writeSync(1, Buffer.concat([n, h]));
    process.exit(4);
  )").string();
  OrtSession s(model("identity.onnx"), {}, o);
  Tensor x(DType::f32, {std::int64_t{4} << 20});  // 16 MiB: more than any pipe holds
  const NamedView feeds[] = {{"x", x}};
  expect_names(error_of([&] { s.run(feeds); }), {"identity.onnx", "stopped reading its input", "exited with status 4"});
}

TEST(OrtSession, ManySequentialRunsKeepTheFramesInStep) {
  SKIP_WITHOUT_ORT();
  OrtOptions one_thread;
  one_thread.threads = 1;
  OrtSession s(model("add_matmul.onnx"), {}, one_thread);
  Rng rng(17);
  for (int run = 0; run < 200; ++run) {
    const std::int64_t batch = rng.integer(0, 9);
    Tensor x = rng.heavy_tailed({batch, 4});
    Tensor w = rng.heavy_tailed({4, 3});
    const AddMatMulReference want = add_matmul_reference(x, w);
    const NamedView feeds[] = {{"x", x}, {"w", w}};
    const auto out = s.run(feeds);
    ASSERT_EQ(out.size(), 3u) << "run " << run;
    expect_near_all(values<float>(out[0].second), want.sum, "sum");
    expect_near_all(values<float>(out[1].second), want.relu, "relu");
    expect_near_all(values<float>(out[2].second), want.matmul, "matmul");
    if (HasFailure()) FAIL() << "run " << run;
  }
}

TEST(OrtSession, A64MegabyteTensorCrossesBothWays) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("identity.onnx"));
  const std::int64_t n = std::int64_t{16} << 20;  // 64 MiB of float32
  Tensor x(DType::f32, {n});
  auto xs = x.span<float>();
  for (std::int64_t i = 0; i < n; ++i) xs[i] = static_cast<float>(i % 1000003) * 0.25f - 7.0f;
  const NamedView feeds[] = {{"x", x}};
  int calls = 0;
  s.run(feeds, [&](const std::string& name, const TensorView& v) {
    ++calls;
    EXPECT_EQ(name, "y");
    ASSERT_EQ(v.shape(), (Shape{n}));
    EXPECT_EQ(std::memcmp(v.data(), x.data(), x.nbytes()), 0);
  });
  EXPECT_EQ(calls, 1);
}

TEST(OrtSession, LargeOutputsFromASmallRequest) {
  SKIP_WITHOUT_ORT();
  OrtSession s(model("expand.onnx"));
  Tensor value = tensor<float>(DType::f32, {1}, {2.75f});
  Tensor shape = tensor<std::int64_t>(DType::i64, {2}, {1024, 4096});
  const NamedView feeds[] = {{"value", value}, {"shape", shape}};
  for (int run = 0; run < 2; ++run) {  // the second run reuses the session's buffer
    s.run(feeds, [&](const std::string&, const TensorView& v) {
      ASSERT_EQ(v.shape(), (Shape{1024, 4096}));
      const auto got = v.span<float>();
      EXPECT_EQ(std::count(got.begin(), got.end(), 2.75f), 1024 * 4096);
    });
  }
}

// The outputs are the same through the shared file and through the pipe, for both ways of
// running; empty outputs (batch 0) included.
TEST(OrtSession, SharedFileAndPipeGiveTheSameOutputs) {
  SKIP_WITHOUT_ORT();
  for (const bool shared : {true, false}) {
    SCOPED_TRACE(shared ? "shared file" : "pipe");
    OrtOptions o;
    o.threads = 1;
    o.shared_memory = shared;
    OrtSession s(model("add_matmul.onnx"), {}, o);
    Rng rng(23);
    for (int run = 0; run < 12; ++run) {
      const std::int64_t batch = run == 0 ? 0 : rng.integer(1, 300);
      Tensor x = rng.heavy_tailed({batch, 4});
      Tensor w = rng.heavy_tailed({4, 3});
      const AddMatMulReference want = add_matmul_reference(x, w);
      const NamedView feeds[] = {{"x", x}, {"w", w}};
      const auto out = s.run(feeds);
      EXPECT_EQ(s.last_answer_shared(), shared);
      ASSERT_EQ(out.size(), 3u);
      expect_near_all(values<float>(out[0].second), want.sum, "sum");
      std::vector<float> relu;
      s.run(feeds, [&](const std::string& name, const TensorView& v) {
        if (name == "relu") relu = values<float>(v);
      });
      expect_near_all(relu, want.relu, "relu (callback)");
      if (HasFailure()) FAIL() << "run " << run;
    }
  }
}

// receive() hands over views. A caller reads answer k while request k + 1 runs, and answer k
// must stay as it was until the second submit() after its own: through the shared file (sizes
// that grow and shrink move the answers around in it), through the pipe, and with a shared
// window too small for some answers (those come through the pipe).
TEST(OrtSession, ReceivedViewsStayValidUntilTheSecondSubmitAfterTheirs) {
  SKIP_WITHOUT_ORT();
  const std::int64_t sizes[] = {1000, 300000, 300000, 10, 200000, 250000, 5, 0, 70000, 300000, 3};
  auto value = [](std::size_t k, std::int64_t i) { return static_cast<float>(k) * 1000.0f + static_cast<float>(i % 997); };
  auto input = [&](std::size_t k) {
    Tensor x(DType::f32, {sizes[k]});
    auto xs = x.span<float>();
    for (std::int64_t i = 0; i < sizes[k]; ++i) xs[i] = value(k, i);
    return x;
  };
  auto holds = [&](const std::vector<std::pair<std::string, TensorView>>& got, std::size_t k) {
    if (got.size() != 1 || got[0].first != "y" || got[0].second.shape() != Shape{sizes[k]}) return false;
    const auto ys = got[0].second.span<float>();
    for (std::int64_t i = 0; i < sizes[k]; ++i) {
      if (ys[i] != value(k, i)) return false;
    }
    return true;
  };
  struct Case {
    const char* name;
    bool shared;
    std::size_t window;
  };
  for (const Case& c : {Case{"shared file", true, 0}, Case{"pipe", false, 0}, Case{"1 MiB window", true, 1u << 20}}) {
    SCOPED_TRACE(c.name);
    OrtOptions o;
    o.shared_memory = c.shared;
    o.shared_window_bytes = c.window;
    OrtSession s(model("identity.onnx"), {}, o);
    std::vector<std::pair<std::string, TensorView>> previous, current;
    s.submit(std::vector<NamedView>{{"x", input(0)}});
    s.receive(previous);
    ASSERT_TRUE(holds(previous, 0));
    for (std::size_t k = 1; k < std::size(sizes); ++k) {
      s.submit(std::vector<NamedView>{{"x", input(k)}});
      ASSERT_TRUE(holds(previous, k - 1)) << "answer " << k - 1 << " after request " << k << " was sent";
      s.receive(current);
      ASSERT_TRUE(holds(current, k)) << "answer " << k;
      ASSERT_TRUE(holds(previous, k - 1)) << "answer " << k - 1 << " after answer " << k << " arrived";
      // An answer larger than the window comes through the pipe; one that fits beside the
      // previous answer, through the shared file.
      auto bytes = [&](std::size_t j) { return (static_cast<std::size_t>(sizes[j]) * 4 + 63) / 64 * 64; };
      const std::size_t window = c.window == 0 ? std::size_t{64} << 30 : c.window;
      if (!c.shared || bytes(k) > window) EXPECT_FALSE(s.last_answer_shared()) << "answer " << k;
      if (c.shared && bytes(k - 1) + bytes(k) <= window) EXPECT_TRUE(s.last_answer_shared()) << "answer " << k;
      std::swap(previous, current);
    }
  }
}

// A shared file the runner cannot write (here its descriptor is swapped for a read-only one
// before the real runner starts): the outputs come through the pipe instead, unchanged.
TEST(OrtSession, AnUnwritableSharedFileFallsBackToThePipe) {
  SKIP_WITHOUT_ORT();
  TempDir dir;
  const auto runner = std::filesystem::path(ZP_TEST_DATA_DIR) / ".." / ".." / "tools" / "ort-runner" / "ort_runner.js";
  OrtOptions o;
  o.runner_script = dir.put("read_only_shared_file.js", fmt::format(R"(
    const fs = require('fs');
    fs.closeSync(3);
    if (fs.openSync('/dev/null', 'r') !== 3) throw new Error('descriptor 3 was not reused');
    process.argv[1] = {0};
    require({0});
  )", nlohmann::json(std::filesystem::weakly_canonical(runner).string()).dump())).string();
  OrtSession s(model("identity.onnx"), {}, o);
  Tensor x = tensor<float>(DType::f32, {3}, {1.5f, -2.0f, 1e30f});
  const NamedView feeds[] = {{"x", x}};
  EXPECT_EQ(values<float>(s.run(feeds).at(0).second), (std::vector<float>{1.5f, -2.0f, 1e30f}));
  EXPECT_FALSE(s.last_answer_shared());
}

// A runner that says an output lies beyond the end of the shared file: reading it would be a
// SIGBUS, so it is a protocol error, and the session is done.
TEST(OrtSession, AnOutputBeyondTheSharedFileIsAnErrorNotASignal) {
  SKIP_WITHOUT_ORT();
  TempDir dir;
  OrtOptions o;
  o.runner_script = dir.put("points_past_the_end.js", R"(
    const fs = require('fs');
    const frame = (h) => { const j = Buffer.from(JSON.stringify(h)); const n = Buffer.alloc(4); n.writeUInt32LE(j.length); return Buffer.concat([n, j]); };
    fs.writeSync(1, frame({kind: 'session', outputs: [{name: 'y', dtype: 'float32', shape: ['n']}],
                           inputs: [{name: 'x', dtype: 'float32', shape: ['n']}]}));
    const n = Buffer.alloc(4); fs.readSync(0, n);
    const h = Buffer.alloc(n.readUInt32LE()); fs.readSync(0, h);
    fs.readSync(0, Buffer.alloc(16));
    fs.writeSync(1, Buffer.concat([frame({kind: 'tensor', name: 'y', dtype: 'float32', shape: [4], nbytes: 16, offset: 4096}),
                                   frame({kind: 'end', run_ms: 1})]));
    fs.readSync(0, Buffer.alloc(1));
  )").string();
  for (const bool shared : {true, false}) {
    o.shared_memory = shared;
    OrtSession s(model("identity.onnx"), {}, o);
    Tensor x(DType::f32, {4});
    const NamedView feeds[] = {{"x", x}};
    expect_names(error_of([&] { s.run(feeds); }),
                 {"identity.onnx", "out of step", "output 'y'", shared ? "of a shared file of 0" : "does not have"});
    expect_names(error_of([&] { s.run(feeds); }), {"cannot run any more"});
  }
}

TEST(OrtSession, MovesKeepTheChild) {
  SKIP_WITHOUT_ORT();
  OrtSession a(model("identity.onnx"));
  OrtSession b(std::move(a));
  Tensor x = tensor<float>(DType::f32, {3}, {1, 2, 3});
  const NamedView feeds[] = {{"x", x}};
  EXPECT_EQ(values<float>(b.run(feeds).at(0).second), (std::vector<float>{1, 2, 3}));
}

// ---------------------------------------------------------------------------------------------
// Real models (scripts/fetch-test-models): the checks are what the model's last layer
// guarantees (softmax rows sum to 1, sigmoids lie in [0, 1]) and that a run repeats exactly.

std::filesystem::path real_model(const std::string& name) {
  const char* env = std::getenv("ZEROPOINT_TEST_MODELS");
  const std::filesystem::path dir = env && *env ? std::filesystem::path(env)
                                                : std::filesystem::path(ZP_TEST_DATA_DIR) / ".." / ".." / "build" / "test-models";
  return dir / name;
}

#define SKIP_WITHOUT_REAL_MODEL(path)                                                             \
  SKIP_WITHOUT_ORT();                                                                             \
  if (!std::filesystem::exists(path))                                                             \
  GTEST_SKIP() << (path).string() << " missing: run scripts/fetch-test-models (or set ZEROPOINT_TEST_MODELS)"

TEST(OrtRealModels, OcrDetectionClassificationRecognition) {
  const auto det = real_model("ch_PP-OCRv4_det_infer.onnx");
  const auto cls = real_model("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  const auto rec = real_model("ch_PP-OCRv4_rec_infer.onnx");
  SKIP_WITHOUT_REAL_MODEL(rec);
  Rng rng(23);
  auto image = [&](std::int64_t h, std::int64_t w) {
    Tensor t(DType::f32, {1, 3, h, w});
    for (float& v : t.span<float>()) v = rng.uniform(-1.0f, 1.0f);
    return t;
  };
  {
    OrtSession s(det);
    Tensor x = image(64, 96);
    const NamedView feeds[] = {{"x", x}};
    const auto out = s.run(feeds);
    ASSERT_EQ(out.at(0).second.shape(), (Shape{1, 1, 64, 96}));
    for (float v : out[0].second.span<float>()) ASSERT_TRUE(v >= 0.0f && v <= 1.0f) << v;
    EXPECT_EQ(std::memcmp(s.run(feeds).at(0).second.data(), out[0].second.data(), out[0].second.nbytes()), 0);
  }
  auto expect_softmax_rows = [](const Tensor& t, std::int64_t row) {
    const auto v = t.span<float>();
    for (std::size_t i = 0; i < v.size(); i += static_cast<std::size_t>(row)) {
      const double sum = std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(i),
                                         v.begin() + static_cast<std::ptrdiff_t>(i + static_cast<std::size_t>(row)), 0.0);
      ASSERT_NEAR(sum, 1.0, 1e-4) << "row " << i / static_cast<std::size_t>(row);
    }
  };
  {
    OrtSession s(cls);
    Tensor x = image(48, 192);
    const NamedView feeds[] = {{"x", x}};
    const auto out = s.run(feeds);
    ASSERT_EQ(out.at(0).second.shape(), (Shape{1, 2}));
    expect_softmax_rows(out[0].second, 2);
  }
  {
    OrtSession s(rec);
    Tensor x = image(48, 320);
    const NamedView feeds[] = {{"x", x}};
    const auto out = s.run(feeds);
    const Shape& shape = out.at(0).second.shape();
    ASSERT_EQ(shape.size(), 3u);
    EXPECT_EQ(shape[0], 1);
    EXPECT_EQ(shape[2], 6625);
    expect_softmax_rows(out[0].second, 6625);
  }
}

// openWakeWord's pipeline: audio -> mel spectrogram -> 76-frame windows -> 96-d embeddings ->
// 16 embeddings -> a wake-word score.
TEST(OrtRealModels, WakeWordPipeline) {
  const auto mel = real_model("melspectrogram.onnx");
  const auto embed = real_model("embedding_model.onnx");
  SKIP_WITHOUT_REAL_MODEL(embed);
  Rng rng(29);
  const std::int64_t samples = 16000 * 2;
  Tensor audio(DType::f32, {1, samples});
  auto a = audio.span<float>();
  for (std::int64_t i = 0; i < samples; ++i) {
    a[i] = 3000.0f * std::sin(static_cast<float>(i) * 0.05f) + rng.normal(300.0f);
  }
  OrtSession mel_session(mel);
  const NamedView mel_feeds[] = {{"input", audio}};
  const Tensor spec = std::move(mel_session.run(mel_feeds).at(0).second);
  ASSERT_EQ(spec.rank(), 4);
  const std::int64_t frames = spec.shape()[2];
  ASSERT_EQ(spec.shape()[3], 32);
  ASSERT_GE(frames, 76 + 15 * 8);
  for (float v : spec.span<float>()) ASSERT_TRUE(std::isfinite(v));

  // openWakeWord scales the spectrogram by x / 10 + 2 before the embedding model.
  Tensor windows(DType::f32, {16, 76, 32, 1});
  auto w = windows.span<float>();
  const auto s = spec.span<float>();
  for (int k = 0; k < 16; ++k) {
    for (int f = 0; f < 76; ++f) {
      for (int m = 0; m < 32; ++m) w[(k * 76 + f) * 32 + m] = s[(k * 8 + f) * 32 + m] / 10.0f + 2.0f;
    }
  }
  OrtSession embed_session(embed);
  const NamedView embed_feeds[] = {{"input_1", windows}};
  const Tensor embeddings = std::move(embed_session.run(embed_feeds).at(0).second);
  ASSERT_EQ(embeddings.shape(), (Shape{16, 1, 1, 96}));

  const TensorView features(embeddings.data(), DType::f32, {1, 16, 96});
  for (const char* name : {"hey_jarvis_v0.1.onnx", "alexa_v0.1.onnx"}) {
    OrtSession wake(real_model(name));
    const NamedView feeds[] = {{wake.inputs().at(0).name, features}};
    const Tensor score = std::move(wake.run(feeds).at(0).second);
    ASSERT_EQ(score.shape(), (Shape{1, 1})) << name;
    const float p = score.span<float>()[0];
    EXPECT_TRUE(p >= 0.0f && p <= 1.0f) << name << ": " << p;
  }
}

}  // namespace
}  // namespace zp
