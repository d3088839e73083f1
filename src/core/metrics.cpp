#include "zeropoint/metrics.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"

namespace zp {

ErrorMetrics measure_error(const TensorView& reference, const TensorView& approx) {
  if (reference.shape() != approx.shape()) {
    throw Error(fmt::format("cannot compare tensors of shapes {} and {}", shape_str(reference.shape()),
                            shape_str(approx.shape())));
  }
  const Tensor ref32 = to_f32(reference);
  const Tensor app32 = to_f32(approx);
  ErrorAccumulator acc;
  acc.add(ref32.span<float>(), app32.span<float>(), 0);
  return acc.result();
}

void ErrorAccumulator::add(std::span<const float> r, std::span<const float> a, std::int64_t first_index) noexcept {
  if (kernels::f32_find_nonfinite(r) < r.size()) {
    // Some reference values are skipped: element by element.
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (!std::isfinite(r[i])) {
        ++skipped_;
        continue;
      }
      add_one(r[i], a[i], first_index + static_cast<std::int64_t>(i));
    }
    return;
  }
  add_finite(r, a, first_index);
}

void ErrorAccumulator::add_finite(std::span<const float> r, std::span<const float> a, std::int64_t first_index) noexcept {
  // The SIMD sums: their order of additions is fixed, so the bits do not depend on the
  // instruction set.
  if (r.empty()) return;
  const kernels::ErrorSums sums = kernels::f32_error_sums(r, a);
  sum_err2_ += sums.err2;
  sum_ref2_ += sums.ref2;
  sum_app2_ += sums.app2;
  dot_ += sums.dot;
  count_ += static_cast<std::int64_t>(r.size());
  if (max_abs_error_index_ < 0 || sums.max_abs_error > max_abs_error_) {
    max_abs_error_ = sums.max_abs_error;
    max_abs_error_index_ = first_index + static_cast<std::int64_t>(sums.max_index);
  }
}

void ErrorAccumulator::add_one(double ref, double app, std::int64_t index) noexcept {
  const double err = ref - app;
  sum_err2_ += err * err;
  sum_ref2_ += ref * ref;
  sum_app2_ += app * app;
  dot_ += ref * app;
  if (std::fabs(err) > max_abs_error_ || max_abs_error_index_ < 0) {
    max_abs_error_ = std::fabs(err);
    max_abs_error_index_ = index;
  }
  ++count_;
}

void ErrorAccumulator::merge(const ErrorAccumulator& later) noexcept {
  count_ += later.count_;
  skipped_ += later.skipped_;
  sum_err2_ += later.sum_err2_;
  sum_ref2_ += later.sum_ref2_;
  sum_app2_ += later.sum_app2_;
  dot_ += later.dot_;
  // The earliest index wins a tie, as in add().
  if (later.max_abs_error_index_ >= 0 && (max_abs_error_index_ < 0 || later.max_abs_error_ > max_abs_error_)) {
    max_abs_error_ = later.max_abs_error_;
    max_abs_error_index_ = later.max_abs_error_index_;
  }
}

ErrorMetrics ErrorAccumulator::result() const noexcept {
  ErrorMetrics m;
  m.count = count_;
  m.skipped = skipped_;
  m.max_abs_error = max_abs_error_;
  m.max_abs_error_index = max_abs_error_index_;
  if (count_ == 0) return m;
  m.mse = sum_err2_ / static_cast<double>(count_);
  m.relative_mse = sum_ref2_ > 0 ? sum_err2_ / sum_ref2_ : 0.0;
  if (sum_err2_ == 0) {
    m.sqnr_db = std::numeric_limits<double>::infinity();
  } else if (sum_ref2_ == 0) {
    m.sqnr_db = -std::numeric_limits<double>::infinity();
  } else {
    m.sqnr_db = 10.0 * std::log10(sum_ref2_ / sum_err2_);
  }
  if (sum_ref2_ == 0 && sum_app2_ == 0) m.cosine = 1.0;
  else if (sum_ref2_ == 0 || sum_app2_ == 0) m.cosine = 0.0;
  else m.cosine = dot_ / (std::sqrt(sum_ref2_) * std::sqrt(sum_app2_));
  return m;
}

}  // namespace zp
