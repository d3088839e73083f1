// zeropoint/pipeline.hpp — whole jobs on files: read, quantize, measure, write.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "zeropoint/metrics.hpp"
#include "zeropoint/observe.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/tensor.hpp"

namespace zp {

struct QuantizeReport {
  std::filesystem::path input, output;
  DType dtype = DType::f32;
  Shape shape;
  QParams params;
  ErrorMetrics error;           ///< of the dequantized codes against the input
  std::int64_t input_bytes = 0;  ///< the tensor's data
  std::int64_t code_bytes = 0;   ///< packed codes
  std::int64_t param_bytes = 0;  ///< scales and zero points (or offsets) as stored

  double bits_per_value() const noexcept;
};

/// Quantizes the array in a .npy file and writes a quantized .npz (formats/quantized_npz.hpp).
/// The output appears only when complete; the input is never modified; an output path that is
/// the input is refused. Throws zp::Error naming the file on any problem.
QuantizeReport quantize_npy_file(const std::filesystem::path& input, const std::filesystem::path& output,
                                 const Scheme& scheme, const ObserveOptions& options = {});

struct DequantizeReport {
  std::filesystem::path input, output;
  Scheme scheme;
  Shape shape;
  DType dtype = DType::f32;
  std::int64_t output_bytes = 0;
};

/// Reads a quantized .npz and writes the dequantized values as a .npy of `dtype` (f32, f64 or
/// f16; numpy has no bfloat16).
DequantizeReport dequantize_npz_file(const std::filesystem::path& input, const std::filesystem::path& output,
                                     DType dtype = DType::f32);

}  // namespace zp
