// zeropoint/ort_runner.hpp — runs ONNX models with ONNX Runtime, in a Node.js child process.
//
// zeropoint does not reimplement ONNX Runtime, and does not link it either: calibration and
// accuracy tests run models with the npm package onnxruntime-node (pinned, installed by
// scripts/setup-onnxruntime, CPU binaries included) in a child `node` process running
// tools/ort-runner/ort_runner.js, and tensors go back and forth over pipes. npm is the one
// place this project can get a prebuilt ONNX Runtime from, and a child process keeps its
// threads, allocator and crashes out of the caller's process.
//
// The pipes carry frames, both ways: a u32 little-endian length N, N bytes of JSON (the
// header), then the raw bytes of the tensors the header lists, back to back, C order,
// little-endian, each exactly its "nbytes" long.
//
//   child -> parent, once:     {"kind":"session","inputs":[...],"outputs":[...]}
//   parent -> child, per run:  {"kind":"run","inputs":[{"name","dtype","shape","nbytes"}...]} + tensors
//   child -> parent, per run:  {"kind":"tensor","name","dtype","shape","nbytes"} + tensor, once per
//                              output in order, then {"kind":"end","run_ms"};
//                              or one {"kind":"error","message"} instead.
//
// ort_runner.js documents the frames in full. dtype names are ONNX Runtime's ("float32",
// "int64", "bool", ...). Each request is written whole before its answer is read; that cannot
// deadlock because the runner reads a whole request before it writes anything, and its stderr
// goes to an in-memory file, never to a pipe that could fill up.
//
// Outputs come back through shared memory when the system allows it: the parent makes an
// in-memory file (memfd), maps it, and hands it to the child, which writes each answer's tensors
// into it and sends only their headers (with an "offset") through the pipe. Answers that do not
// fit, or sessions without the shared file, use the pipe for the tensors too.
//
// Costs: each input crosses the pipe once and ORT reads it in place; each output is copied by
// onnxruntime-node out of ORT (inside session.run), then written once into the shared file,
// where the parent reads it in place. Through the pipe instead, the bytes are copied in and out
// of the kernel with both processes waiting on the pipe's lock: calibrating PaddleOCR's detector
// with its 61 activations as outputs (112 MB a 640x640 image) took 8.7-8.8 s that way and
// 5.7-6.7 s through the shared file, of which 4.3-5.2 s in session.run (docs/benchmarks.md).
// Starting a session (node, onnxruntime-node, the model) takes a few hundred milliseconds: keep
// one per model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "zeropoint/dtype.hpp"
#include "zeropoint/tensor.hpp"

namespace zp {

/// Where the child process's parts are. An empty field takes its default.
struct OrtOptions {
  /// The Node.js executable: a path, or a name looked up on PATH. Default: $ZEROPOINT_NODE,
  /// else "node".
  std::string node;
  /// ort_runner.js. Default: $ZEROPOINT_ORT_RUNNER, else tools/ort-runner/ort_runner.js of the
  /// source tree the library was built from.
  std::string runner_script;
  /// The node_modules folder holding onnxruntime-node. Default: $ZEROPOINT_ORT_MODULES, else
  /// <build folder>/onnxruntime-node/node_modules, where scripts/setup-onnxruntime puts it.
  std::string node_modules;
  /// ONNX Runtime's intra-op threads; 0 leaves ONNX Runtime's default (one per core).
  int threads = 0;
  /// Outputs through a shared in-memory file when the system allows it (one copy fewer than
  /// the pipe, and no waiting on it); false sends everything through the pipe.
  bool shared_memory = true;
  /// The most bytes of the shared file mapped (address space, not memory: pages exist as
  /// outputs are written); 0 for 64 GiB, or less where the address space is limited. Two
  /// consecutive answers must fit side by side, or the later one comes through the pipe.
  std::size_t shared_window_bytes = 0;
};

/// One input or output of a model, as ONNX Runtime describes it.
struct OrtTensorInfo {
  std::string name;
  /// Element type. ONNX bool is DType::u8 holding 0 or 1 (`ort_type` tells them apart).
  DType dtype = DType::f32;
  /// ONNX Runtime's name of the element type: "float32", "int64", "bool", ...
  std::string ort_type;
  /// Outermost first; -1 for a dynamic dimension. Empty for a scalar, and also when the model
  /// does not say the rank.
  std::vector<std::int64_t> shape;
  /// The symbolic name of each dynamic dimension ("batch"); "" for fixed and unnamed ones.
  std::vector<std::string> dim_names;
};

/// An input of a run: the model's input name and the data to feed it.
struct NamedView {
  std::string name;
  TensorView value;
};

/// One model loaded in ONNX Runtime in a child process, run as many times as wanted.
/// Not thread-safe: one run at a time (make one session per thread to run in parallel).
class OrtSession {
 public:
  /// Starts the child and loads the model; `outputs` picks the graph outputs run() returns,
  /// in that order (default: all, in the model's order). Throws zp::Error when node or
  /// onnxruntime-node is missing (saying to run scripts/setup-onnxruntime), when the model does
  /// not load, names an output the model lacks, or has an input or selected output zeropoint
  /// has no dtype for (string, uint64, bfloat16, sequences, maps).
  explicit OrtSession(const std::filesystem::path& model, std::vector<std::string> outputs = {},
                      const OrtOptions& options = {});
  /// Closes the child's input, so it exits, and reaps it (killing it if it has not gone within
  /// seconds). Never throws.
  ~OrtSession();
  OrtSession(OrtSession&&) noexcept;
  OrtSession& operator=(OrtSession&&) noexcept;

  const std::vector<OrtTensorInfo>& inputs() const;
  /// The selected outputs, in the order run() hands them over.
  const std::vector<OrtTensorInfo>& outputs() const;
  const std::vector<std::string>& output_names() const;

  /// Runs the model once. Each output is handed to `on_output` as it arrives from the child, in
  /// the order of output_names(); the view is valid only during that call, so a caller that
  /// keeps statistics never holds all of a run's activations at once.
  ///
  /// Every model input must be given, once. Views may be strided (they are copied to C order
  /// first); bf16 is refused (onnxruntime-node has no bfloat16); a u8 view feeds a bool input.
  /// Throws zp::Error naming the model and the input when ONNX Runtime refuses the run (unknown
  /// or missing input, wrong dtype or shape, an error inside ORT): the session stays usable.
  /// When the child dies, the error carries the end of its stderr, and the session is unusable
  /// from then on. An exception from `on_output` is passed on once the rest of the run's
  /// outputs have been read past, so the session stays usable.
  void run(std::span<const NamedView> inputs,
           const std::function<void(const std::string& name, const TensorView& value)>& on_output);

  /// Runs the model once and returns owning copies of the outputs, in output_names() order.
  std::vector<std::pair<std::string, Tensor>> run(std::span<const NamedView> inputs);

  /// run() in two halves, for a caller that works on one run's outputs while ONNX Runtime
  /// computes the next: submit() sends a request; receive() reads its answer and sets `outputs`
  /// to views of its tensors, in output order. Between a submit() and its receive() no other
  /// request may be sent; receive() of one request and submit() of the next may be separated by
  /// any amount of the caller's work. (Deadlock-free: the child reads a whole request before it
  /// writes, and answers only after a request.)
  ///
  /// The views stay valid until the second submit() after the one they answer: a caller may
  /// submit request k + 1, then read answer k while ONNX Runtime computes k + 1, with no copy.
  /// They point into the shared file, or into buffers the session keeps for the last two
  /// answers (reused from run to run when the sizes match).
  void submit(std::span<const NamedView> inputs);
  void receive(std::vector<std::pair<std::string, TensorView>>& outputs);

  /// Seconds the last successful run() spent inside ONNX Runtime (session.run, timed in the
  /// child). Its wall time minus this is what the pipes and the child cost.
  double last_ort_seconds() const noexcept;

  /// Whether the last answer's tensors came through the shared file (false: through the pipe).
  bool last_answer_shared() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when node, ort_runner.js and onnxruntime-node are where `options` (and their defaults)
/// say, so an OrtSession can start. Looks only: it starts no process, so an install that is
/// there but broken passes here and fails in OrtSession. Tests skip on false.
bool ort_available(const OrtOptions& options = {});

}  // namespace zp
