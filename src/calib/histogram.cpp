// The power-of-two histogram lattice, and the percentile and entropy (KL divergence) ranges
// read from it. docs/math.md §12.
#include "calib/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "zeropoint/kernels.hpp"
#include "zeropoint/params.hpp"

namespace zp::calib::detail {
namespace {

// Bins finer than max |x| * 2^-40 would tell apart nothing float32 can (it has 24 bits), and the
// bound keeps every bin index below 2^42.
constexpr int kFinestRelativeExponent = 40;
// The exponent used when every value is 0 (any width fits; this one is below every float).
constexpr int kZeroExponent = -160;

// NumPy's linear percentile, x_k + (rank - k) * (x_{k+1} - x_k) with k = floor(rank), over the
// values counted in bins [begin, end) of a sequence, the c values of a bin taken as evenly spread
// over its support [lo, hi] (value i of the bin at fraction (i + 0.5) / c). Each estimated x_i
// lies in the bin of the true x_i, so the result is within one bin width of NumPy's.
template <class CountOf, class SupportOf>
double value_at_rank(double rank, std::int64_t begin, std::int64_t end, CountOf count_of, SupportOf support_of) {
  const double k = std::floor(rank);
  const double wanted[2] = {k, k + 1};
  double found[2] = {0, 0};
  int next = 0;
  double below = 0;
  for (std::int64_t b = begin; b < end && next < 2; ++b) {
    const auto c = static_cast<double>(count_of(b));
    if (c == 0) continue;
    const auto [lo, hi] = support_of(b);
    while (next < 2 && wanted[next] < below + c) {
      found[next] = lo + (wanted[next] - below + 0.5) / c * (hi - lo);
      ++next;
    }
    if (next < 2) found[next] = hi;  // past the last value: x_{k+1} does not exist, rank - k is 0
    below += c;
  }
  return found[0] + (rank - k) * (found[1] - found[0]);
}

}  // namespace

int lattice_exponent(float min, float max, int bins) noexcept {
  const double amax = std::max(std::fabs(static_cast<double>(min)), std::fabs(static_cast<double>(max)));
  int e = amax == 0.0 ? kZeroExponent : std::ilogb(amax) - kFinestRelativeExponent;
  const double span = static_cast<double>(max) - static_cast<double>(min);
  // Bin k spans [k w, (k + 1) w] (closed), so a range of span/w >= bins + 1 widths meets at
  // least bins + 1 bins: no exponent with 2^e <= span / (bins + 1) fits, and the search can
  // start above them.
  if (span > 0) e = std::max(e, std::ilogb(span / (bins + 1)) + 1);
  while (lattice_index(max, e) - lattice_index(min, e) >= bins) ++e;
  return e;
}

Range percentile_range(const Lattice& h, double percentile, bool symmetric) {
  if (percentile >= 100.0 || h.min == h.max) return {h.min, h.max};
  const double w = h.width();
  const double n = static_cast<double>(h.total);
  const std::int64_t first = h.first, last = h.last();
  if (symmetric) {
    // |x| bin a holds the values of signed bins a and -a - 1: the lattice mirrors around 0.
    const double amax = std::max(-static_cast<double>(h.min), static_cast<double>(h.max));
    const double smallest = h.min >= 0 ? h.min : (h.max <= 0 ? -static_cast<double>(h.max) : 0.0);
    const std::int64_t top = std::max(last, -first - 1);
    auto count_of = [&](std::int64_t a) { return h.count(a) + h.count(-a - 1); };
    auto support_of = [&](std::int64_t a) {
      return std::pair{std::max(static_cast<double>(a) * w, smallest), std::min(static_cast<double>(a + 1) * w, amax)};
    };
    const double t = value_at_rank(percentile / 100.0 * (n - 1), 0, top + 1, count_of, support_of);
    const float lo = std::max(static_cast<float>(-t), h.min);
    const float hi = std::min(static_cast<float>(t), h.max);
    return lo <= hi ? Range{lo, hi} : Range{lo, lo};
  }
  auto count_of = [&](std::int64_t j) { return h.count(j); };
  auto support_of = [&](std::int64_t j) {
    return std::pair{std::max(h.edge(j), static_cast<double>(h.min)), std::min(h.edge(j + 1), static_cast<double>(h.max))};
  };
  const double a = value_at_rank((100.0 - percentile) / 100.0 * (n - 1), first, last + 1, count_of, support_of);
  const double b = value_at_rank(percentile / 100.0 * (n - 1), first, last + 1, count_of, support_of);
  const auto lo = std::clamp(static_cast<float>(std::min(a, b)), h.min, h.max);
  const auto hi = std::clamp(static_cast<float>(std::max(a, b)), h.min, h.max);
  return {lo, hi};
}

Range entropy_range(const Lattice& h, const Scheme& scheme) {
  const Range full{h.min, h.max};
  if (h.min == h.max) return full;
  const kernels::QuantizeSpec spec = kernels::quantize_spec(scheme);
  const std::int64_t first = h.first, last = h.last();
  const double w = h.width();
  const auto total = static_cast<double>(h.total - h.zeros);
  if (total == 0) return full;
  auto count = [&](std::int64_t j) { return h.count(j) - (j == 0 ? h.zeros : 0); };
  // before[i]: the values in bins first .. first + i - 1.
  std::vector<std::int64_t> before(static_cast<std::size_t>(last - first + 2), 0);
  for (std::int64_t j = first; j <= last; ++j) {
    before[static_cast<std::size_t>(j - first + 1)] = before[static_cast<std::size_t>(j - first)] + count(j);
  }
  std::vector<int> codes;
  double best = std::numeric_limits<double>::infinity();
  Range best_range = full;
  // t = m * w; the window [-t, t] holds bins -m .. m - 1, and at m = top every bin.
  const std::int64_t top = std::max(last + 1, -first);
  for (std::int64_t m = 1; m <= top; ++m) {
    const std::int64_t j0 = std::max(first, -m), j1 = std::min(last, m - 1);
    if (j0 > j1) continue;
    const auto t = static_cast<float>(h.edge(m));
    const float a = std::max(-t, h.min), b = std::min(t, h.max);
    const AffineParams p = choose_params(a, b, scheme);
    // A window of fewer bins than codes is quantized without loss at this resolution: nothing
    // to judge it by (ORT and TensorRT start at 128 bins for the same reason).
    const int span = kernels::quantize_value(b, p, spec) - kernels::quantize_value(a, p, spec);
    if (j1 - j0 < span) continue;
    codes.resize(static_cast<std::size_t>(j1 - j0 + 1));
    for (std::int64_t j = j0; j <= j1; ++j) {
      const double centre = std::clamp(h.edge(j) + 0.5 * w, static_cast<double>(a), static_cast<double>(b));
      codes[static_cast<std::size_t>(j - j0)] = kernels::quantize_value(static_cast<float>(centre), p, spec);
    }
    const auto outside_low = static_cast<double>(before[static_cast<std::size_t>(j0 - first)]);
    const auto outside_high = total - static_cast<double>(before[static_cast<std::size_t>(j1 - first + 1)]);
    // P: the clipped histogram (values beyond the window added to its end bins). Q: the window's
    // own values quantized: each code's count spread evenly over the bins of P it covers that
    // are not empty. KL(P || Q) = sum P log(P / Q), with both normalised.
    auto reference = [&](std::int64_t j) {
      return static_cast<double>(count(j)) + (j == j0 ? outside_low : 0.0) + (j == j1 ? outside_high : 0.0);
    };
    double sum = 0;
    bool finite = true;
    for (std::int64_t run = j0; run <= j1 && finite;) {
      std::int64_t end = run;
      double quantized = 0, occupied = 0;
      while (end <= j1 && codes[static_cast<std::size_t>(end - j0)] == codes[static_cast<std::size_t>(run - j0)]) {
        quantized += static_cast<double>(count(end));
        occupied += reference(end) > 0 ? 1.0 : 0.0;
        ++end;
      }
      if (occupied > 0) {
        // Only clipped values in this code's bins: Q is 0 where P is not, an infinite divergence.
        if (quantized == 0) finite = false;
        const double q = quantized / occupied;
        for (std::int64_t j = run; j < end && finite; ++j) {
          const double r = reference(j);
          if (r > 0) sum += r * std::log(r / q);
        }
      }
      run = end;
    }
    if (!finite) continue;
    const double inside = total - outside_low - outside_high;
    const double divergence = sum / total + std::log(inside / total);
    if (divergence <= best) {  // on a tie the wider window: clip no more than needed
      best = divergence;
      best_range = {a, b};
    }
  }
  return best_range;
}

}  // namespace zp::calib::detail
