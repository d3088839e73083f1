#include "zeropoint/metrics.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "zeropoint/error.hpp"

namespace zp {

ErrorMetrics measure_error(const TensorView& reference, const TensorView& approx) {
  if (reference.shape() != approx.shape()) {
    throw Error(fmt::format("cannot compare tensors of shapes {} and {}", shape_str(reference.shape()),
                            shape_str(approx.shape())));
  }
  const Tensor ref32 = to_f32(reference);
  const Tensor app32 = to_f32(approx);
  const auto r = ref32.span<float>();
  const auto a = app32.span<float>();

  ErrorMetrics m;
  double sum_err2 = 0, sum_ref2 = 0, sum_app2 = 0, dot = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (!std::isfinite(r[i])) {
      ++m.skipped;
      continue;
    }
    const double ref = r[i], app = a[i];
    const double err = ref - app;
    sum_err2 += err * err;
    sum_ref2 += ref * ref;
    sum_app2 += app * app;
    dot += ref * app;
    if (std::fabs(err) > m.max_abs_error || m.max_abs_error_index < 0) {
      m.max_abs_error = std::fabs(err);
      m.max_abs_error_index = static_cast<std::int64_t>(i);
    }
    ++m.count;
  }
  if (m.count == 0) return m;
  m.mse = sum_err2 / static_cast<double>(m.count);
  m.relative_mse = sum_ref2 > 0 ? sum_err2 / sum_ref2 : 0.0;
  if (sum_err2 == 0) {
    m.sqnr_db = std::numeric_limits<double>::infinity();
  } else if (sum_ref2 == 0) {
    m.sqnr_db = -std::numeric_limits<double>::infinity();
  } else {
    m.sqnr_db = 10.0 * std::log10(sum_ref2 / sum_err2);
  }
  if (sum_ref2 == 0 && sum_app2 == 0) m.cosine = 1.0;
  else if (sum_ref2 == 0 || sum_app2 == 0) m.cosine = 0.0;
  else m.cosine = dot / (std::sqrt(sum_ref2) * std::sqrt(sum_app2));
  return m;
}

}  // namespace zp
