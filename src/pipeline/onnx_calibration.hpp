// Calibration for static ONNX quantization: runs the float model over the samples in ONNX
// Runtime (a child Node.js process, src/runtime/ort_runner.cpp) and feeds each activation to
// its observer. docs/formats.md ("Calibration") describes the models it runs.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "formats/onnx/onnx_model.hpp"
#include "zeropoint/calib.hpp"
#include "zeropoint/onnx_model.hpp"

namespace zp::onnx_calib {

struct ObservedActivations {
  std::map<std::string, calib::Observer> observers;  ///< one per activation name
  double inference_seconds = 0;                      ///< ONNX Runtime's own time in its runs
};

/// Observes the float32 activations `names` of `float_model` over options.calibration (one
/// sample per file: .npz with one array per model input, or .npy for a single-input model),
/// with options.observer, running ONNX Runtime with options.ort. `model_path` names the model in
/// messages. Throws zp::Error for samples that do not fit the model's inputs and for a runner
/// that fails.
ObservedActivations observe(const onnx_io::Model& float_model, const std::filesystem::path& model_path,
                            const std::vector<std::string>& names, const OnnxQuantizeOptions& options);

}  // namespace zp::onnx_calib
