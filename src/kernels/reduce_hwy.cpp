// SIMD range observation: min/max, absmax and the first non-finite value. Bit-identical to the
// references in quantize_ref.cpp (a min or max of zero is returned as +0.0 by both, so the sign of
// a zero never depends on the order lanes were combined in).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/reduce_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "zeropoint/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace zp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

MinMax MinMaxF32(const float* HWY_RESTRICT x, size_t n, bool skip_nonfinite) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto pos_inf = hn::Set(d, std::numeric_limits<float>::infinity());
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  // Two accumulators per side hide the latency of min/max.
  auto lo0 = pos_inf, lo1 = pos_inf, hi0 = neg_inf, hi1 = neg_inf;
  auto bad = hn::Zero(d);
  size_t i = 0;
  if (skip_nonfinite) {
    for (; i + 2 * N <= n; i += 2 * N) {
      const auto a = hn::LoadU(d, x + i);
      const auto b = hn::LoadU(d, x + i + N);
      const auto fa = hn::IsFinite(a), fb = hn::IsFinite(b);
      bad = hn::Or(bad, hn::VecFromMask(d, hn::Not(hn::And(fa, fb))));
      lo0 = hn::Min(lo0, hn::IfThenElse(fa, a, pos_inf));
      hi0 = hn::Max(hi0, hn::IfThenElse(fa, a, neg_inf));
      lo1 = hn::Min(lo1, hn::IfThenElse(fb, b, pos_inf));
      hi1 = hn::Max(hi1, hn::IfThenElse(fb, b, neg_inf));
    }
  } else {
    for (; i + 2 * N <= n; i += 2 * N) {
      const auto a = hn::LoadU(d, x + i);
      const auto b = hn::LoadU(d, x + i + N);
      // |v| < inf is false for inf and NaN: one compare checks both (min/max may drop NaN on
      // some targets, so they cannot tell).
      bad = hn::Or(bad, hn::VecFromMask(d, hn::Not(hn::And(hn::Lt(hn::Abs(a), pos_inf), hn::Lt(hn::Abs(b), pos_inf)))));
      lo0 = hn::Min(lo0, a);
      hi0 = hn::Max(hi0, a);
      lo1 = hn::Min(lo1, b);
      hi1 = hn::Max(hi1, b);
    }
  }
  MinMax m{hn::GetLane(hn::MinOfLanes(d, hn::Min(lo0, lo1))), hn::GetLane(hn::MaxOfLanes(d, hn::Max(hi0, hi1)))};
  // Some targets' MinOfLanes start from the largest finite value instead of infinity (EMU128
  // does), which would turn "no value seen" into FLT_MAX.
  if (hn::AllTrue(d, hn::Eq(hn::Min(lo0, lo1), pos_inf))) m.min = std::numeric_limits<float>::infinity();
  if (hn::AllTrue(d, hn::Eq(hn::Max(hi0, hi1), neg_inf))) m.max = -std::numeric_limits<float>::infinity();
  // The tail is the reference's job; it also returns zero extremes as +0.0.
  const MinMax tail = f32_minmax_ref({x + i, n - i}, skip_nonfinite);
  m.finite = tail.finite && hn::AllTrue(d, hn::Eq(bad, hn::Zero(d)));
  m.min = std::min(m.min, tail.min);
  m.max = std::max(m.max, tail.max);
  if (m.min == 0.0f) m.min = 0.0f;
  if (m.max == 0.0f) m.max = 0.0f;
  return m;
}

float AbsMaxF32(const float* HWY_RESTRICT x, size_t n, bool skip_nonfinite) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  if (!skip_nonfinite) {
    // Magnitudes compare as their bit patterns, and NaN's patterns are above infinity's: an
    // integer maximum of the magnitude bits finds the answer and any NaN at once.
    const hn::RebindToUnsigned<decltype(d)> du;
    const auto magnitude = hn::Set(du, 0x7fffffffu);
    auto m0 = hn::Zero(du), m1 = hn::Zero(du);
    size_t i = 0;
    for (; i + 2 * N <= n; i += 2 * N) {
      m0 = hn::Max(m0, hn::And(hn::BitCast(du, hn::LoadU(d, x + i)), magnitude));
      m1 = hn::Max(m1, hn::And(hn::BitCast(du, hn::LoadU(d, x + i + N)), magnitude));
    }
    uint32_t bits = hn::GetLane(hn::MaxOfLanes(du, hn::Max(m0, m1)));
    for (; i < n; ++i) {
      uint32_t b;
      std::memcpy(&b, x + i, sizeof(b));
      bits = std::max(bits, b & 0x7fffffffu);
    }
    if (bits > 0x7f800000u) return std::numeric_limits<float>::quiet_NaN();
    float m;
    std::memcpy(&m, &bits, sizeof(m));
    return m;
  }
  // Non-finite values left out: they count as 0.
  auto m0 = hn::Zero(d), m1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = hn::Abs(hn::LoadU(d, x + i));
    const auto b = hn::Abs(hn::LoadU(d, x + i + N));
    m0 = hn::Max(m0, hn::IfThenElseZero(hn::IsFinite(a), a));
    m1 = hn::Max(m1, hn::IfThenElseZero(hn::IsFinite(b), b));
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
  for (; i < n; ++i) {
    if (std::isfinite(x[i])) m = std::max(m, std::fabs(x[i]));
  }
  return m;
}

// f32_error_sums_ref's eight lanes as 8 / N vectors of N double lanes.
ErrorSums ErrorSumsF32(const float* HWY_RESTRICT r, const float* HWY_RESTRICT a, size_t n) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  constexpr size_t kLanes = 8;
  constexpr size_t N = hn::MaxLanes(dd) < kLanes ? hn::MaxLanes(dd) : kLanes;
  constexpr size_t V = kLanes / N;  // vectors per 8 lanes
  static_assert(kLanes % N == 0, "lanes must divide 8");
  using VD = hn::Vec<decltype(dd)>;
  VD err2[V], ref2[V], app2[V], dot[V], largest[V];
  for (size_t v = 0; v < V; ++v) err2[v] = ref2[v] = app2[v] = dot[v] = largest[v] = hn::Zero(dd);
  const size_t whole = n / kLanes * kLanes;
  for (size_t i = 0; i < whole; i += kLanes) {
    for (size_t v = 0; v < V; ++v) {
      const VD ref = hn::PromoteTo(dd, hn::LoadU(df, r + i + v * N));
      const VD app = hn::PromoteTo(dd, hn::LoadU(df, a + i + v * N));
      const VD err = hn::Sub(ref, app);
      err2[v] = hn::Add(err2[v], hn::Mul(err, err));
      ref2[v] = hn::Add(ref2[v], hn::Mul(ref, ref));
      app2[v] = hn::Add(app2[v], hn::Mul(app, app));
      dot[v] = hn::Add(dot[v], hn::Mul(ref, app));
      largest[v] = hn::Max(largest[v], hn::Abs(err));
    }
  }
  HWY_ALIGN double lanes[5][kLanes];
  for (size_t v = 0; v < V; ++v) {
    hn::Store(err2[v], dd, lanes[0] + v * N);
    hn::Store(ref2[v], dd, lanes[1] + v * N);
    hn::Store(app2[v], dd, lanes[2] + v * N);
    hn::Store(dot[v], dd, lanes[3] + v * N);
    hn::Store(largest[v], dd, lanes[4] + v * N);
  }
  ErrorSums s;
  double m = 0;
  for (size_t k = 0; k < kLanes; ++k) {
    s.err2 += lanes[0][k];
    s.ref2 += lanes[1][k];
    s.app2 += lanes[2][k];
    s.dot += lanes[3][k];
    m = std::max(m, lanes[4][k]);
  }
  // The first index of the largest error: a second pass over data still in cache.
  if (m > 0) {
    const auto target = hn::Set(dd, m);
    for (size_t i = 0; i < whole; i += N) {
      const VD err = hn::Sub(hn::PromoteTo(dd, hn::LoadU(df, r + i)), hn::PromoteTo(dd, hn::LoadU(df, a + i)));
      const intptr_t at = hn::FindFirstTrue(dd, hn::Eq(hn::Abs(err), target));
      if (at >= 0) {
        s.max_abs_error = m;
        s.max_index = i + static_cast<size_t>(at);
        break;
      }
    }
  }
  for (size_t i = whole; i < n; ++i) {
    const double ref = r[i], app = a[i], err = ref - app;
    s.err2 += err * err;
    s.ref2 += ref * ref;
    s.app2 += app * app;
    s.dot += ref * app;
    if (std::fabs(err) > s.max_abs_error) {
      s.max_abs_error = std::fabs(err);
      s.max_index = i;
    }
  }
  return s;
}

// Whether every code lies in [qmin, qmax] (both within Code's range).
template <class Code>
bool CodesInRange(const Code* HWY_RESTRICT q, size_t n, Code qmin, Code qmax) {
  const hn::ScalableTag<Code> d;
  const size_t N = hn::Lanes(d);
  const auto lo = hn::Set(d, qmin), hi = hn::Set(d, qmax);
  auto outside = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, q + i);
    outside = hn::Or(outside, hn::VecFromMask(d, hn::Or(hn::Lt(v, lo), hn::Gt(v, hi))));
  }
  if (!hn::AllTrue(d, hn::Eq(outside, hn::Zero(d)))) return false;
  for (; i < n; ++i) {
    if (q[i] < qmin || q[i] > qmax) return false;
  }
  return true;
}
bool CodesInRangeS8(const int8_t* q, size_t n, int8_t lo, int8_t hi) { return CodesInRange(q, n, lo, hi); }
bool CodesInRangeU8(const uint8_t* q, size_t n, uint8_t lo, uint8_t hi) { return CodesInRange(q, n, lo, hi); }
bool CodesInRangeS16(const int16_t* q, size_t n, int16_t lo, int16_t hi) { return CodesInRange(q, n, lo, hi); }
bool CodesInRangeU16(const uint16_t* q, size_t n, uint16_t lo, uint16_t hi) { return CodesInRange(q, n, lo, hi); }

size_t FindNonFiniteF32(const float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    if (!hn::AllTrue(d, hn::IsFinite(hn::LoadU(d, x + i)))) break;  // the scalar loop finds which
  }
  for (; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return n;
}

// Column by column (a vector of columns at a time), down all rows: each column's running range
// stays in registers for the whole block instead of going to memory once per row.
bool MinMaxAccumulateF32(const float* HWY_RESTRICT x, size_t rows, size_t columns, float* HWY_RESTRICT lo,
                         float* HWY_RESTRICT hi) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto all_finite = hn::FirstN(d, N);
  size_t j = 0;
  for (; j + 2 * N <= columns; j += 2 * N) {
    auto l0 = hn::LoadU(d, lo + j), l1 = hn::LoadU(d, lo + j + N);
    auto h0 = hn::LoadU(d, hi + j), h1 = hn::LoadU(d, hi + j + N);
    for (size_t r = 0; r < rows; ++r) {
      const float* row = x + r * columns + j;
      const auto v0 = hn::LoadU(d, row), v1 = hn::LoadU(d, row + N);
      const auto f0 = hn::IsFinite(v0), f1 = hn::IsFinite(v1);
      all_finite = hn::And(all_finite, hn::And(f0, f1));
      // Selects, not Min/Max: of equal values (-0.0, +0.0) the one already there must stay.
      l0 = hn::IfThenElse(hn::And(f0, hn::Lt(v0, l0)), v0, l0);
      h0 = hn::IfThenElse(hn::And(f0, hn::Gt(v0, h0)), v0, h0);
      l1 = hn::IfThenElse(hn::And(f1, hn::Lt(v1, l1)), v1, l1);
      h1 = hn::IfThenElse(hn::And(f1, hn::Gt(v1, h1)), v1, h1);
    }
    hn::StoreU(l0, d, lo + j);
    hn::StoreU(l1, d, lo + j + N);
    hn::StoreU(h0, d, hi + j);
    hn::StoreU(h1, d, hi + j + N);
  }
  bool finite = hn::AllTrue(d, all_finite);
  for (; j < columns; ++j) {
    float l = lo[j], h = hi[j];
    for (size_t r = 0; r < rows; ++r) {
      const float v = x[r * columns + j];
      if (!std::isfinite(v)) {
        finite = false;
        continue;
      }
      if (v < l) l = v;
      if (v > h) h = v;
    }
    lo[j] = l;
    hi[j] = h;
  }
  return finite;
}

}  // namespace zp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/dispatch.hpp"

namespace zp::kernels {

HWY_EXPORT(MinMaxF32);
HWY_EXPORT(AbsMaxF32);
HWY_EXPORT(FindNonFiniteF32);
HWY_EXPORT(ErrorSumsF32);
HWY_EXPORT(CodesInRangeS8);
HWY_EXPORT(CodesInRangeU8);
HWY_EXPORT(CodesInRangeS16);
HWY_EXPORT(CodesInRangeU16);
HWY_EXPORT(MinMaxAccumulateF32);

template <class Code, class Fn>
static bool codes_in_range_via(Fn fn, std::span<const Code> q, int qmin, int qmax) noexcept {
  // A range wider than the type clamps to it: every stored value is then inside.
  const auto lo = static_cast<Code>(std::max<int>(qmin, std::numeric_limits<Code>::min()));
  const auto hi = static_cast<Code>(std::min<int>(qmax, std::numeric_limits<Code>::max()));
  return fn(q.data(), q.size(), lo, hi);
}

bool codes_in_range(std::span<const std::int8_t> q, int qmin, int qmax) noexcept {
  detail::configure_dispatch_once();
  return codes_in_range_via(HWY_DYNAMIC_DISPATCH(CodesInRangeS8), q, qmin, qmax);
}
bool codes_in_range(std::span<const std::uint8_t> q, int qmin, int qmax) noexcept {
  detail::configure_dispatch_once();
  return codes_in_range_via(HWY_DYNAMIC_DISPATCH(CodesInRangeU8), q, qmin, qmax);
}
bool codes_in_range(std::span<const std::int16_t> q, int qmin, int qmax) noexcept {
  detail::configure_dispatch_once();
  return codes_in_range_via(HWY_DYNAMIC_DISPATCH(CodesInRangeS16), q, qmin, qmax);
}
bool codes_in_range(std::span<const std::uint16_t> q, int qmin, int qmax) noexcept {
  detail::configure_dispatch_once();
  return codes_in_range_via(HWY_DYNAMIC_DISPATCH(CodesInRangeU16), q, qmin, qmax);
}

MinMax f32_minmax(std::span<const float> x, bool skip_nonfinite) noexcept {
  detail::configure_dispatch_once();
  return HWY_DYNAMIC_DISPATCH(MinMaxF32)(x.data(), x.size(), skip_nonfinite);
}

float f32_absmax(std::span<const float> x, bool skip_nonfinite) noexcept {
  detail::configure_dispatch_once();
  return HWY_DYNAMIC_DISPATCH(AbsMaxF32)(x.data(), x.size(), skip_nonfinite);
}

ErrorSums f32_error_sums(std::span<const float> reference, std::span<const float> approx) noexcept {
  detail::expect(approx.size() >= reference.size());
  detail::configure_dispatch_once();
  return HWY_DYNAMIC_DISPATCH(ErrorSumsF32)(reference.data(), approx.data(), reference.size());
}

bool f32_minmax_accumulate(std::span<const float> x, std::span<float> min, std::span<float> max) noexcept {
  detail::expect(max.size() == min.size() && (x.empty() || (!min.empty() && x.size() % min.size() == 0)));
  if (x.empty()) return true;
  detail::expect_output(x, min, min.size());
  detail::expect_output(x, max, max.size());
  detail::expect(detail::disjoint(min, max));
  detail::configure_dispatch_once();
  return HWY_DYNAMIC_DISPATCH(MinMaxAccumulateF32)(x.data(), x.size() / min.size(), min.size(), min.data(), max.data());
}

std::size_t f32_find_nonfinite(std::span<const float> x) noexcept {
  detail::configure_dispatch_once();
  return HWY_DYNAMIC_DISPATCH(FindNonFiniteF32)(x.data(), x.size());
}

}  // namespace zp::kernels
#endif  // HWY_ONCE
