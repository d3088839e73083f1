// The histogram behind the percentile, entropy and mse observers, and the searches over it.
//
// Bins lie on a lattice anchored at 0 whose width is a power of two, w = 2^e: the bin of x is
// a = trunc(|x| / w) for x >= 0 and -a - 1 for x < 0, so bin k >= 0 holds [k w, (k + 1) w) and
// bin k < 0 holds (k w, (k + 1) w], mirrored around 0. |x| / w is exact, so a value's bin is exact
// too, |x|'s bin folds the signed ones exactly (a and -a - 1), and doubling the width sends each
// old bin whole into bin floor(k / 2) (an arithmetic shift). The width is the smallest power of
// two for which every value seen fits in the counters, which depends only on the smallest and
// largest value: so a histogram fed its batches in any order, or in two halves that are merged,
// holds exactly the same counts.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "zeropoint/calib.hpp"
#include "zeropoint/scheme.hpp"

namespace zp::calib::detail {

/// The bin of finite x at width 2^e (|x / 2^e| < 2^62): trunc(|x| / 2^e), mirrored below 0.
inline std::int64_t lattice_index(double x, int e) noexcept {
  const auto a = static_cast<std::int64_t>(std::ldexp(std::fabs(x), -e));  // exact: a power-of-two scaling
  return x < 0 ? ~a : a;
}

/// The smallest e >= ilogb(max |x|) - 40 for which [min, max] fits in `bins` consecutive bins
/// (the bound keeps every index below 2^42; float32 resolves no finer anyway). Both conditions
/// only get easier as e grows or the range shrinks, which is what makes the width the same
/// however the values were split into batches. Unless the bound decides, e - 1 does not fit,
/// so the values span at least (bins - 1) / 2 widths.
int lattice_exponent(float min, float max, int bins) noexcept;

/// A histogram as the searches read it: counts[i] is bin first + i; the values lie in
/// [min, max] (so in bins first .. lattice_index(max, exponent)).
struct Lattice {
  std::span<const std::int64_t> counts;
  int exponent = 0;
  std::int64_t first = 0;
  float min = 0, max = 0;
  std::int64_t total = 0;
  std::int64_t zeros = 0;  ///< values exactly 0, counted in bin 0 too

  double width() const noexcept { return std::ldexp(1.0, exponent); }
  double edge(std::int64_t bin) const noexcept { return std::ldexp(static_cast<double>(bin), exponent); }
  std::int64_t last() const noexcept { return lattice_index(max, exponent); }
  std::int64_t count(std::int64_t bin) const noexcept {
    return bin < first || bin > last() ? 0 : counts[static_cast<std::size_t>(bin - first)];
  }
};

/// Symmetric schemes: [-t, t] with t the `percentile`-th percentile of |x|; asymmetric: the
/// (100 - percentile)-th and percentile-th percentiles of x. Inside a bin, its values are taken
/// as evenly spread. Clamped to [min, max].
Range percentile_range(const Lattice& h, double percentile, bool symmetric);

/// The window [max(-t, min), min(t, max)], t on the bin edges, whose quantization under `scheme`
/// loses the least information (KL divergence of the quantized histogram from the clipped one).
/// Exact zeros are left out: an integer zero point represents them whatever the window, and as a
/// spike in bin 0 they would make the divergence about them alone.
Range entropy_range(const Lattice& h, const Scheme& scheme);

/// The window with the least expected squared error of quantizing under `scheme`, the values
/// of each bin taken as evenly spread over it (src/calib/mse.cpp).
Range mse_range(const Lattice& h, const Scheme& scheme);

}  // namespace zp::calib::detail
