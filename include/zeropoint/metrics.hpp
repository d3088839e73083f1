// zeropoint/metrics.hpp — what quantization lost.
#pragma once

#include <cstdint>
#include <span>

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

/// The sums behind ErrorMetrics, fed piece by piece (so neither tensor needs a float32 copy).
/// Merging the pieces in the same order gives the same result whatever the chunking threads.
class ErrorAccumulator {
 public:
  /// reference[i] against approx[i], elements first_index, first_index + 1, ...
  void add(std::span<const float> reference, std::span<const float> approx, std::int64_t first_index) noexcept;
  /// add() for a reference the caller has already found finite everywhere: the same sums, without
  /// a scan for NaN and infinity. (A non-finite reference value here makes the sums non-finite.)
  void add_finite(std::span<const float> reference, std::span<const float> approx, std::int64_t first_index) noexcept;
  /// Appends another accumulator's elements (which come after these).
  void merge(const ErrorAccumulator& later) noexcept;
  ErrorMetrics result() const noexcept;

 private:
  void add_one(double reference, double approx, std::int64_t index) noexcept;

  std::int64_t count_ = 0, skipped_ = 0;
  double sum_err2_ = 0, sum_ref2_ = 0, sum_app2_ = 0, dot_ = 0;
  double max_abs_error_ = 0;
  std::int64_t max_abs_error_index_ = -1;
};

}  // namespace zp
