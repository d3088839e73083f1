// zeropoint/metrics.hpp — what quantization lost.
#pragma once

#include <cstdint>

#include "zeropoint/tensor.hpp"

namespace zp {

/// Error of `approx` against `reference`, accumulated in double. Elements whose reference
/// value is not finite are skipped and counted.
struct ErrorMetrics {
  std::int64_t count = 0;    ///< elements compared
  std::int64_t skipped = 0;  ///< elements skipped because the reference was NaN or infinite
  double mse = 0;            ///< mean of (reference - approx)^2
  double max_abs_error = 0;
  std::int64_t max_abs_error_index = -1;  ///< flat index of the largest error
  double sqnr_db = 0;   ///< 10 log10(sum reference^2 / sum error^2); +inf when the error is 0
  double cosine = 1;    ///< dot / (|reference| |approx|); 1 when both are zero, 0 when one is
  double relative_mse = 0;  ///< mse / mean(reference^2); 0 when the reference is all zero
};

/// Throws zp::Error if the shapes differ.
ErrorMetrics measure_error(const TensorView& reference, const TensorView& approx);

}  // namespace zp
