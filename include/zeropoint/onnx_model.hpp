// zeropoint/onnx_model.hpp — ONNX models: quantized into the QDQ form ONNX Runtime runs, inspected.
//
// Three modes (docs/formats.md, "ONNX models"):
//   weights  every Conv/ConvTranspose/MatMul/Gemm weight becomes integer codes followed by a
//            DequantizeLinear node (int8 per output channel by default; int4 blocks at opset 21);
//   dynamic  as ONNX Runtime's quantize_dynamic: MatMul becomes DynamicQuantizeLinear +
//            MatMulInteger, Gemm reads its input through DynamicQuantizeLinear +
//            DequantizeLinear, no calibration; Conv/ConvTranspose get int8 weights but keep float
//            activations (a range per input at run time is too coarse for feature maps);
//   static   weights and activations (W8A8): QuantizeLinear/DequantizeLinear pairs on the inputs
//            and outputs of the weight operators, ranges calibrated by running the float model
//            with ONNX Runtime on sample inputs; biases int32 with scale input_scale * weight_scale.
// Operators without a constant weight (a MatMul of two activations, as in attention), and
// normalization operators (decomposed LayerNorm, Softmax) stay in float.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zeropoint/calib.hpp"
#include "zeropoint/model.hpp"
#include "zeropoint/ort_runner.hpp"
#include "zeropoint/scheme.hpp"

namespace zp {

enum class OnnxMode : std::uint8_t { weights, dynamic, static_ };

/// "weights", "dynamic", "static"; throws zp::Error naming the valid ones.
OnnxMode parse_onnx_mode(std::string_view text);
std::string_view onnx_mode_name(OnnxMode mode);

struct OnnxQuantizeOptions {
  OnnxMode mode = OnnxMode::weights;
  /// The weights' scheme. Its axis is chosen per operator: the output channels for per-channel
  /// schemes (Conv: 0, ConvTranspose: 1, MatMul: the last, Gemm: by transB), the reduction axis
  /// for blocks. Blocked and sub-8-bit schemes need opset 21, to which the model is raised.
  Scheme weight_scheme = Scheme::parse("int8:channel");
  /// Per-weight schemes or "keep" (regex on the weight's name; the first match wins).
  std::vector<PlanRule> rules;
  /// Activations (static: calibrated; dynamic: always uint8 asymmetric, as DynamicQuantizeLinear).
  Scheme activation_scheme = Scheme::parse("uint8:asym");
  std::vector<std::string> exclude_ops;    ///< operator types left in float ("Conv", "Gemm", ...)
  std::vector<std::string> exclude_nodes;  ///< regexes on node names left in float
  /// Also quantize activations read by normalization operators (ReduceMean, Sub, Pow, Sqrt, Div,
  /// Softmax, LayerNormalization, ...), which by default keep the float value.
  bool quantize_norm = false;

  /// static: sample inputs, one per file: .npz with one array per model input (by name), or
  /// .npy for a model with a single input.
  std::vector<std::filesystem::path> calibration;
  calib::ObserverOptions observer;
  OrtOptions ort;
  /// Tensors of at least this many bytes go to external data; 0: as the input, or when over 2 GiB.
  std::int64_t external_threshold = 0;
  bool dry_run = false;  ///< decide and report only; nothing written (and no calibration)
  Progress progress;
};

/// One calibrated activation of a static job.
struct ActivationRecord {
  std::string name;
  float min = 0, max = 0;       ///< the range handed to the quantizer (after the observer's clipping)
  float observed_min = 0, observed_max = 0;
  std::int64_t count = 0, nan_count = 0, inf_count = 0;
  float scale = 0;
  std::int32_t zero_point = 0;
};

struct OnnxReport : ModelReport {
  int opset_in = 0, opset_out = 0;
  std::vector<std::pair<std::string, int>> ops;  ///< operator type and count, in first-seen order
  std::vector<ActivationRecord> activations;     ///< static mode
  std::vector<std::string> nodes_quantized;      ///< nodes rewritten (weights, dynamic, static)
  /// The values static mode calibrates and quantizes (what the weight operators read), and the
  /// MatMul nodes dynamic mode turns into MatMulInteger: what inspect shows of each mode.
  std::vector<std::string> static_activations, dynamic_integer_matmuls;
  std::vector<std::string> notes;                ///< what was skipped and why
  double calibration_seconds = 0, inference_seconds = 0;  ///< static: total, and inside ONNX Runtime
};

/// Quantizes an ONNX model. Throws zp::Error naming the file, node or tensor on any problem; the
/// output appears only when complete.
OnnxReport quantize_onnx(const std::filesystem::path& input, const std::filesystem::path& output,
                         const OnnxQuantizeOptions& options);

/// The model's weights (initializers and Constant nodes, in subgraphs too), operators, and what
/// each mode would quantize.
OnnxReport inspect_onnx(const std::filesystem::path& input);

/// The float weights of a model as (name, values): what analyze measures.
std::vector<std::pair<std::string, Tensor>> onnx_weights(const std::filesystem::path& input);

bool is_onnx_path(const std::filesystem::path& path);

}  // namespace zp
