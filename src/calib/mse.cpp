// Clipping by least squared error: on a histogram (the mse observer) and on a parameter
// group's own values (the scheme option `mse`). docs/math.md §12.
#include "calib/mse.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "calib/histogram.hpp"
#include "core/thread_pool.hpp"
#include "zeropoint/kernels.hpp"

namespace zp {
namespace calib::detail {
namespace {

// The values of one non-empty bin: `count` of them spread evenly over [lo, hi].
struct Piece {
  double lo, hi, count;
};

// The quantizer of one AffineParams as the error integral needs it: reconstruction points
// r_k = lowest + k * step for k = 0 .. steps, each value going to the nearest.
struct Grid {
  double lowest, step;
  std::int64_t steps;

  static Grid of(const AffineParams& p, const Scheme& s) {
    const double step = p.scale;
    return {(static_cast<double>(s.qmin()) - p.zero_point) * step + p.offset, step,
            static_cast<std::int64_t>(s.qmax()) - s.qmin()};
  }

  // E(y) = integral from `lowest` to y of (x - Q(x))^2 dx = k s^3 / 12 + e^3 / 3, where r_k is
  // the point y goes to and e = y - r_k: each whole cell adds s^3 / 12, and the first half
  // cell s^3 / 24 (which the e^3 / 3 of the cell containing y completes). Returned as
  // (k, e) so that differences of nearby E keep their digits.
  void at(double y, std::int64_t& k, double& e) const {
    const double z = y - lowest;
    const double cell = std::nearbyint(z / step);
    k = static_cast<std::int64_t>(std::clamp(cell, 0.0, static_cast<double>(steps)));
    e = z - static_cast<double>(k) * step;
  }

  // The expected squared error of quantizing one piece's values.
  double error(const Piece& piece) const {
    std::int64_t k_lo, k_hi;
    double e_lo, e_hi;
    at(piece.lo, k_lo, e_lo);
    if (!(piece.hi > piece.lo)) return piece.count * e_lo * e_lo;
    at(piece.hi, k_hi, e_hi);
    const double integral =
        static_cast<double>(k_hi - k_lo) * step * step * step / 12.0 + (e_hi * e_hi * e_hi - e_lo * e_lo * e_lo) / 3.0;
    return piece.count * integral / (piece.hi - piece.lo);
  }
};

double expected_error(const std::vector<Piece>& pieces, float a, float b, const Scheme& scheme) {
  const Grid grid = Grid::of(choose_params(a, b, scheme), scheme);
  double sum = 0;
  for (const Piece& piece : pieces) sum += grid.error(piece);
  return sum;
}

// The k in [lo, hi] with the least f(k): every stride-th k, then every k around the best of
// those. The error of a clipping changes slowly with it, so the coarse pass lands next to the
// minimum. Ties go to the larger k when prefer_high, else to the smaller.
template <class F>
std::int64_t argmin(std::int64_t lo, std::int64_t hi, bool prefer_high, F f) {
  constexpr std::int64_t kCoarse = 128;
  const std::int64_t stride = std::max<std::int64_t>(1, (hi - lo) / kCoarse);
  std::int64_t best_k = hi;
  double best = std::numeric_limits<double>::infinity();
  auto consider = [&](std::int64_t k) {
    const double v = f(k);
    if (v < best || (v == best && (prefer_high ? k > best_k : k < best_k))) {
      best = v;
      best_k = k;
    }
  };
  for (std::int64_t k = lo; k <= hi; k += stride) consider(k);
  consider(hi);
  const std::int64_t centre = best_k;
  for (std::int64_t k = std::max(lo, centre - stride + 1); k <= std::min(hi, centre + stride - 1); ++k) consider(k);
  return best_k;
}

}  // namespace

Range mse_range(const Lattice& h, const Scheme& scheme) {
  if (h.min == h.max) return {h.min, h.max};
  const std::int64_t first = h.first, last = h.last();
  // Exact zeros are a point, not spread over bin 0: an integer zero point quantizes them
  // without error, which a spread would not show.
  std::vector<Piece> pieces;
  if (h.zeros > 0) pieces.push_back({0.0, 0.0, static_cast<double>(h.zeros)});
  for (std::int64_t j = first; j <= last; ++j) {
    if (const std::int64_t c = h.count(j) - (j == 0 ? h.zeros : 0); c > 0) {
      pieces.push_back({std::max(h.edge(j), static_cast<double>(h.min)), std::min(h.edge(j + 1), static_cast<double>(h.max)),
                        static_cast<double>(c)});
    }
  }
  // First the window [max(-t, min), min(t, max)] for t = m * w: both sides clipped alike.
  const std::int64_t top = std::max(last + 1, -first);
  auto window = [&](std::int64_t m) {
    const auto t = static_cast<float>(h.edge(m));
    return Range{std::max(-t, h.min), std::min(t, h.max)};
  };
  auto window_error = [&](std::int64_t m) {
    const Range r = window(m);
    return r.min <= r.max ? expected_error(pieces, r.min, r.max, scheme) : std::numeric_limits<double>::infinity();
  };
  Range best = window(argmin(1, top, true, window_error));
  if (scheme.symmetric) return best;  // only max |x| matters
  // An asymmetric quantizer can also clip one side more than the other: move the lower end
  // with the upper fixed, then the upper with the lower fixed. Candidates are the bin edges
  // in between and the extremes themselves.
  const std::int64_t below_hi = lattice_index(best.max, h.exponent);  // edges first+1 .. below_hi lie below best.max (or on it)
  auto lower = [&](std::int64_t k) { return k == first ? h.min : static_cast<float>(h.edge(k)); };
  const std::int64_t a = argmin(first, std::max(first, below_hi), false, [&](std::int64_t k) {
    const float lo = lower(k);
    return lo <= best.max ? expected_error(pieces, lo, best.max, scheme) : std::numeric_limits<double>::infinity();
  });
  best.min = std::min(lower(a), best.max);
  const std::int64_t above_lo = lattice_index(best.min, h.exponent) + 1;
  auto upper = [&](std::int64_t k) { return k > last ? h.max : static_cast<float>(h.edge(k)); };
  const std::int64_t b = argmin(std::min(above_lo, last + 1), last + 1, true, [&](std::int64_t k) {
    const float hi = upper(k);
    return hi >= best.min ? expected_error(pieces, best.min, hi, scheme) : std::numeric_limits<double>::infinity();
  });
  best.max = std::max(upper(b), best.min);
  return best;
}

}  // namespace calib::detail

namespace detail {
namespace {

// Buffers one thread reuses for every group it searches.
struct Scratch {
  std::vector<float> values, restored;
  std::vector<std::int8_t> s8;
  std::vector<std::uint8_t> u8;
  std::vector<std::int16_t> s16;
  std::vector<std::uint16_t> u16;
};

template <class Code>
void round_trip(std::span<const float> x, const AffineParams& p, const kernels::QuantizeSpec& spec, std::vector<Code>& codes,
                std::span<float> out) {
  codes.resize(x.size());
  if constexpr (std::is_same_v<Code, std::int8_t>) {
    kernels::f32_qs8_quantize(x, p, spec, codes);
    kernels::qs8_f32_dequantize(codes, p, out);
  } else if constexpr (std::is_same_v<Code, std::uint8_t>) {
    kernels::f32_qu8_quantize(x, p, spec, codes);
    kernels::qu8_f32_dequantize(codes, p, out);
  } else if constexpr (std::is_same_v<Code, std::int16_t>) {
    kernels::f32_qs16_quantize(x, p, spec, codes);
    kernels::qs16_f32_dequantize(codes, p, out);
  } else {
    kernels::f32_qu16_quantize(x, p, spec, codes);
    kernels::qu16_f32_dequantize(codes, p, out);
  }
}

// sum (x - dequantize(quantize(x)))^2 with the SIMD kernels, which give the reference's bits.
double squared_error(std::span<const float> x, const AffineParams& p, const Scheme& s, Scratch& scratch) {
  const kernels::QuantizeSpec spec = kernels::quantize_spec(s);
  scratch.restored.resize(x.size());
  const std::span<float> out = scratch.restored;
  if (s.bits <= 8) {
    if (s.is_signed) round_trip(x, p, spec, scratch.s8, out);
    else round_trip(x, p, spec, scratch.u8, out);
  } else {
    if (s.is_signed) round_trip(x, p, spec, scratch.s16, out);
    else round_trip(x, p, spec, scratch.u16, out);
  }
  return kernels::f32_error_sums(x, out).err2;
}

AffineParams search(std::span<const float> values, float min, float max, const Scheme& scheme, Scratch& scratch) {
  AffineParams best = choose_params(min, max, scheme);
  if (values.empty()) return best;
  double best_error = squared_error(values, best, scheme, scratch);
  AffineParams previous = best;
  for (int i = 1; i < kShrinkSteps; ++i) {
    const double f = 1.0 - kMaxShrink * i / (kShrinkSteps - 1);
    const AffineParams p = choose_params(static_cast<float>(min * f), static_cast<float>(max * f), scheme);
    if (p == previous) continue;  // a tiny range gives the same parameters for many factors
    previous = p;
    const double error = squared_error(values, p, scheme, scratch);
    if (error < best_error) {
      best_error = error;
      best = p;
    }
  }
  return best;
}

// The finite values of parameter group g of a C-contiguous float tensor laid out as `layout`.
void gather(const float* x, std::int64_t numel, const ParamLayout& l, std::int64_t g, std::vector<float>& out) {
  out.clear();
  auto take = [&](std::int64_t i) {
    if (std::isfinite(x[i])) out.push_back(x[i]);
  };
  switch (l.granularity) {
    case Granularity::tensor:
      for (std::int64_t i = 0; i < numel; ++i) take(i);
      return;
    case Granularity::channel:
      for (std::int64_t o = 0; o < l.outer; ++o) {
        const std::int64_t start = (o * l.dim + g) * l.inner;
        for (std::int64_t k = 0; k < l.inner; ++k) take(start + k);
      }
      return;
    case Granularity::block: {
      const std::int64_t k = g % l.inner;
      const std::int64_t b = (g / l.inner) % l.blocks;
      const std::int64_t o = g / (l.inner * l.blocks);
      for (std::int64_t m = b * l.block; m < std::min(l.dim, (b + 1) * l.block); ++m) take((o * l.dim + m) * l.inner + k);
      return;
    }
  }
}

}  // namespace

AffineParams mse_clipped_params(std::span<const float> values, float min, float max, const Scheme& scheme) {
  Scratch scratch;
  return search(values, min, max, scheme, scratch);
}

QParams mse_clipped_params(const TensorView& x, const Ranges& ranges, const Scheme& scheme) {
  QParams out = compute_params(ranges, scheme);
  const ParamLayout layout = ParamLayout::of(x.shape(), scheme);
  const bool direct = x.dtype() == DType::f32 && x.is_contiguous();
  const Tensor converted = direct ? Tensor() : to_f32(x);
  const auto* data = static_cast<const float*>(direct ? x.data() : converted.data());
  const std::int64_t numel = x.numel();
  // Enough groups per task that a task does about a million round trips.
  const std::int64_t per_group = std::max<std::int64_t>(1, numel / std::max<std::int64_t>(1, layout.groups));
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 20) / (per_group * kShrinkSteps));
  parallel_for(layout.groups, grain, [&](std::int64_t begin, std::int64_t end) {
    Scratch scratch;
    for (std::int64_t g = begin; g < end; ++g) {
      gather(data, numel, layout, g, scratch.values);
      const auto i = static_cast<std::size_t>(g);
      const AffineParams p = search(scratch.values, ranges.min[i], ranges.max[i], scheme, scratch);
      out.scale[i] = p.scale;
      out.zero_point[i] = p.zero_point;
      out.offset[i] = p.offset;
    }
  });
  return out;
}

}  // namespace detail
}  // namespace zp
