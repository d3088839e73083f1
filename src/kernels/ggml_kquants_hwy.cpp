// SIMD K-quants, compiled once per instruction set and chosen at run time (Highway's
// foreach_target / HWY_DYNAMIC_DISPATCH). Byte-identical to ggml_kquants_ref.cpp.
//
// Quantize: the expensive part of q2_K, q4_K, q5_K and q6_K is the per-sub-block search for a
// scale (ggml's make_qkx2_quants / make_qx_quants: 16 to 21 trial scales, each a pass over the
// sub-block). Each SIMD lane runs the search of one sub-block, so every sum is formed in the
// reference's order and every step is the same IEEE operation; the sub-blocks are transposed in
// (kG vectors at once, value i of lane k at xt[i * kG * N + k]) and the codes transposed out.
// The kG vectors advance together through each loop, so kG independent chains of sequential
// adds hide the add latency. ggml's nearest_int is reproduced bit for bit (the float-adder
// trick, garbage included), or, when every |v| < 2^22 is guaranteed for the lanes that count,
// by the equivalent cheaper float form (in the trials, one round-half-even instruction with the
// clamps on the bits). The trials are bound by the adder ports, so some exact adds are issued
// as a * 1 + b to the multiply-add ports. The C comparisons become selects, so lanes agree with
// the scalar code even where a trial scale degenerates; clamps are left out of trials where they
// provably change nothing. The super-block tail takes the reference's scale coding and packing,
// with the requantization division vectorized; except for q2_K the search's codes are not
// transposed back out, as the tail requantizes every sub-block from its stored scale and
// recomputes the rare zero-scale ones with the reference's search. q3_K's search (single-code
// sweeps) runs the same way; q8_K is value-parallel. Super-blocks holding NaN or infinity go to
// the reference whole (NaN payloads could otherwise depend on operand order). With importance,
// q2_K/q4_K/q5_K run the same affine search with the reference's weights and trials, and their
// super-block scale fits (make_qp_quants) run one fit per lane over a chunk of super-blocks;
// q3_K's runs q6_K's symmetric search with nmax 4 and its weights, and its super-block fit
// (make_qx_quants over the sub-block scales) the same way, one fit per lane.
//
// Dequantize: value-parallel, each value computed with the reference's operations in its order
// (scale product first, then the code, then the minimum).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ggml_kquants_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/ggml_blocks.hpp"

HWY_BEFORE_NAMESPACE();
namespace zp::ggml::kernels::kquants_simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 lanes: sub-block loops step through 16 values, and every target's lane count is a
// power of two, so a vector never straddles two sub-blocks.
using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;
constexpr std::size_t kMaxLanes = 16;

HWY_INLINE float LoadHalf(const std::uint8_t* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_f32_ggml(h);
}

// ggml's nearest_int followed by its clamp MAX(lo, MIN(hi, l)), as a float: the mantissa bits
// of v + 1.5*2^23 are l + 2^22 for |v| < 2^22 and the same garbage as ggml's beyond.
HWY_INLINE VF NearestClamped(DF df, VF v, int lo, int hi) {
  const DI di;
  VI m = hn::And(hn::BitCast(di, hn::Add(v, hn::Set(df, 12582912.f))), hn::Set(di, 0x007fffff));
  m = hn::Max(hn::Min(m, hn::Set(di, 0x00400000 + hi)), hn::Set(di, 0x00400000 + lo));
  return hn::ConvertTo(df, hn::Sub(m, hn::Set(di, 0x00400000)));
}

// a + b issued to the multiply-add units where they are native: a * 1 + b is exact before its one
// rounding, so it is the sum bit for bit. The searches are bound by the adder ports (every
// ggml-ordered sum, the codes' rounding and clamps), while the multipliers have slack.
HWY_INLINE VF AddOnFma(VF a, VF b) {
#if HWY_NATIVE_FMA
  return hn::MulAdd(a, hn::Set(DF(), 1.0f), b);
#else
  return hn::Add(a, b);
#endif
}

// The clamps min(l, hi) with hi >= 0 and max(l, 0), on the bits of a non-NaN float as a signed
// integer: the negative floats are the negative integers and the others order like their bits,
// so the results are the float clamps'; integer min/max issue on every vector port.
HWY_INLINE VF MinBits(VF l, float hi) {
  const DI di;
  return hn::BitCast(DF(), hn::Min(hn::BitCast(di, l), hn::BitCast(di, hn::Set(DF(), hi))));
}
HWY_INLINE VF MaxZeroBits(VF l) {
  const DI di;
  return hn::BitCast(DF(), hn::Max(hn::BitCast(di, l), hn::Zero(di)));
}
// max(l, lo) with lo < 0, on the bits as unsigned integers: the non-negative floats are below
// every negative one, and the negative ones order by magnitude.
HWY_INLINE VF MaxNegativeBits(VF l, float lo) {
  const hn::RebindToUnsigned<DF> du;
  return hn::BitCast(DF(), hn::Min(hn::BitCast(du, l), hn::BitCast(du, hn::Set(DF(), lo))));
}

// C's a != b, true when either is NaN (an infinite weight makes a sum NaN). Highway's Ne is
// unordered on SSE4 but ordered (false for NaN) on AVX2 and AVX3, so it is not used on floats.
HWY_INLINE hn::Mask<DF> NotEqual(VF a, VF b) { return hn::Not(hn::Eq(a, b)); }

using DU8 = hn::Rebind<std::uint8_t, DF>;
using DI8 = hn::Rebind<std::int8_t, DF>;

// q4_K / q5_K scale and minimum codes of sub-block j (the reference's get_scale_min).
HWY_INLINE void ScaleMinK4(int j, const std::uint8_t* q, int& d, int& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// Whether every value of the span is finite.
bool AllFinite(const float* x, std::size_t n) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  auto ok = hn::Eq(hn::Zero(df), hn::Zero(df));
  for (std::size_t i = 0; i < n; i += N) ok = hn::And(ok, hn::IsFinite(hn::LoadU(df, x + i)));
  return hn::AllTrue(df, ok);
}

// ---------------------------------------------------------------------------------------------
// Quantize.

// Vectors of sub-blocks searched together: each inner loop advances kG independent sums per
// step, which hides the add latency of the sequential (ggml-ordered) sums.
constexpr int kG = 4;

// Scratch for kG vectors of sub-blocks of up to 32 values, transposed: value i of sub-block
// s (s < kG * N) at [i * kG * N + s], so vector g of value i is at [(i * kG + g) * N].
struct Lanes {
  alignas(64) float x[32 * kG * kMaxLanes];
  alignas(64) float w[32 * kG * kMaxLanes];
  alignas(64) float best[32 * kG * kMaxLanes];  // codes of the best trial so far
  alignas(64) float trial[32 * kG * kMaxLanes];
  alignas(64) float scale[kG * kMaxLanes];
  alignas(64) float the_min[kG * kMaxLanes];
  // Importance paths: each lane's super-block sigma2 (in), its sub-block's sum of weights (out).
  alignas(64) float sigma2[kG * kMaxLanes];
  alignas(64) float sum_w[kG * kMaxLanes];
};

// xt[i * stride + k] = x[k * n + i] for lanes k < count; missing lanes read zeros (a degenerate
// search, discarded). Whole vectors of lanes by register transposes (AVX-512) or gathers, a
// partial one value by value.
void TransposeIn(const float* x, int n, std::size_t count, std::size_t stride, float* xt) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  const VI index = hn::Mul(hn::Iota(di, 0), hn::Set(di, n));
  std::size_t k0 = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  // 16 x 16 tiles transposed in registers: Zen's gathers load one float per cycle or less, and
  // they were ~9% of q4_K's time.
  if constexpr (hn::MaxLanes(DF()) == 16) {
    for (; k0 + 16 <= count; k0 += 16) {
      for (int i0 = 0; i0 < n; i0 += 16) {
        __m512 r[16], t[16];
        for (int k = 0; k < 16; ++k) r[k] = _mm512_loadu_ps(x + (k0 + static_cast<std::size_t>(k)) * static_cast<std::size_t>(n) + i0);
        // t[2j], t[2j+1]: rows 2j and 2j+1 interleaved (columns 0,1 and 2,3 of each 128-bit block).
        for (int j = 0; j < 8; ++j) {
          t[2 * j] = _mm512_unpacklo_ps(r[2 * j], r[2 * j + 1]);
          t[2 * j + 1] = _mm512_unpackhi_ps(r[2 * j], r[2 * j + 1]);
        }
        // r[4q + c]: rows 4q..4q+3 of columns c, c+4, c+8, c+12 (one per 128-bit block).
        for (int q = 0; q < 4; ++q) {
          const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
          const __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
          r[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
          r[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
          r[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
          r[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        for (int c = 0; c < 4; ++c) {
          // Blocks: rows 0-3 and 4-7 (v, w), 8-11 and 12-15 (v2, w2); columns c, c+8 (v) or
          // c+4, c+12 (w).
          const __m512 v = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), w = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
          const __m512 v2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88), w2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
          float* out = xt + static_cast<std::size_t>(i0 + c) * stride + k0;
          _mm512_storeu_ps(out, _mm512_shuffle_f32x4(v, v2, 0x88));
          _mm512_storeu_ps(out + 4 * stride, _mm512_shuffle_f32x4(w, w2, 0x88));
          _mm512_storeu_ps(out + 8 * stride, _mm512_shuffle_f32x4(v, v2, 0xdd));
          _mm512_storeu_ps(out + 12 * stride, _mm512_shuffle_f32x4(w, w2, 0xdd));
        }
      }
    }
  }
#endif
  for (; k0 + N <= count; k0 += N) {
    for (int i = 0; i < n; ++i) {
      hn::Store(hn::GatherIndex(df, x + k0 * static_cast<std::size_t>(n) + i, index), df, xt + static_cast<std::size_t>(i) * stride + k0);
    }
  }
  for (std::size_t k = k0; k < stride; ++k) {
    if (k < count) {
      for (int i = 0; i < n; ++i) xt[static_cast<std::size_t>(i) * stride + k] = x[k * static_cast<std::size_t>(n) + i];
    } else {
      for (int i = 0; i < n; ++i) xt[static_cast<std::size_t>(i) * stride + k] = 0.0f;
    }
  }
}
// L[k * n + i] = lt[i * stride + k] for lanes k < count (codes are small non-negative
// integers held as floats).
template <class Code>
void TransposeOut(const float* lt, int n, std::size_t count, std::size_t stride, Code* L) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  const VI index = hn::Mul(hn::Iota(di, 0), hn::Set(di, static_cast<int>(stride)));
  using DC = hn::Rebind<Code, DF>;
  for (std::size_t k = 0; k < count; ++k) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); i += N) {
      const VI codes = hn::ConvertTo(di, hn::GatherIndex(df, lt + i * stride + k, index));
      hn::StoreU(hn::DemoteTo(DC(), codes), DC(), L + k * static_cast<std::size_t>(n) + i);
    }
  }
}

// The codes clamp(nearest_int(v), lo, hi) as floats, exactly as NearestClamped when every
// |v| < 2^22: v + 1.5*2^23 is then the float 1.5*2^23 + round-half-even(v), so the clamp and
// the subtraction are exact in float (four operations instead of six).
HWY_INLINE VF NearestClampedTame(DF df, VF v, int lo, int hi) {
  const VF magic = hn::Set(df, 12582912.f);
  const VF t = hn::Add(v, magic);
  return hn::Sub(hn::Max(hn::Min(t, hn::Set(df, 12582912.f + static_cast<float>(hi))),
                         hn::Set(df, 12582912.f + static_cast<float>(lo))),
                 magic);
}

// Whether |iscale * (x - min)| < 2^22 can be guaranteed for every value (|x| <= amax) of the
// lanes that count (not `ignore`): |x - min| <= |x| + |min| and rounding is monotonic, so
// |iscale| * (amax + |min|) < 2^21 suffices (false for an infinite or NaN bound).
template <class M>
HWY_INLINE M TameLanes(DF df, VF iscale, VF amax, VF min) {
  return hn::Lt(hn::Mul(hn::Abs(iscale), hn::Add(amax, hn::Abs(min))), hn::Set(df, 2097152.f));
}

// detail::kq_fit_affine in every lane of kG vectors at once (see the reference for the
// procedure). Lanes whose group is constant (max == min) are discarded at the end, as the
// reference returns early for them. The best codes are kept in s.best only with kKeepCodes (the
// tails that requantize every sub-block from its stored scale do not need them).
template <int kN, int kNmax, bool kMad, bool kKeepCodes>
void FitAffine(Lanes& s, float rmin, float rdelta, int nstep) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  using M = hn::Mask<DF>;
  const VF zero = hn::Zero(df);
  auto at = [&](int i, int g) { return (static_cast<std::size_t>(i) * kG + static_cast<std::size_t>(g)) * N; };
  auto X = [&](int i, int g) { return hn::Load(df, s.x + at(i, g)); };
  auto W = [&](int i, int g) { return hn::Load(df, s.w + at(i, g)); };
  auto err = [&](VF diff) { return kMad ? hn::Abs(diff) : hn::Mul(diff, diff); };

  VF min[kG], max[kG], sum_w[kG], sum_x[kG], amax[kG], min0[kG], scale[kG], best_error[kG], iscale[kG], xmin[kG];
  M degenerate[kG];
  for (int g = 0; g < kG; ++g) {
    min[g] = max[g] = X(0, g);
    amax[g] = hn::Abs(X(0, g));
    sum_w[g] = W(0, g);
    sum_x[g] = hn::Mul(sum_w[g], X(0, g));
  }
  for (int i = 1; i < kN; ++i) {
    for (int g = 0; g < kG; ++g) {
      const VF x = X(i, g), w = W(i, g);
      min[g] = hn::IfThenElse(hn::Lt(x, min[g]), x, min[g]);
      max[g] = hn::IfThenElse(hn::Gt(x, max[g]), x, max[g]);
      amax[g] = hn::Max(amax[g], hn::Abs(x));
      sum_w[g] = hn::Add(sum_w[g], w);
      sum_x[g] = hn::Add(sum_x[g], hn::Mul(w, x));
    }
  }
  bool tame = true;
  for (int g = 0; g < kG; ++g) {
    xmin[g] = min[g];
    min[g] = hn::IfThenElse(hn::Gt(min[g], zero), zero, min[g]);
    min0[g] = min[g];
    degenerate[g] = hn::Eq(max[g], min[g]);
    iscale[g] = hn::Div(hn::Set(df, static_cast<float>(kNmax)), hn::Sub(max[g], min[g]));
    scale[g] = hn::Div(hn::Set(df, 1.0f), iscale[g]);
    best_error[g] = zero;
    tame = tame && hn::AllTrue(df, hn::Or(degenerate[g], TameLanes<M>(df, iscale[g], amax[g], min[g])));
  }
  // Codes of one value of one vector: the cheap form when every lane that counts is tame.
  auto code = [&](bool is_tame, VF v) {
    return is_tame ? NearestClampedTame(df, v, 0, kNmax) : NearestClamped(df, v, 0, kNmax);
  };
  for (int i = 0; i < kN; ++i) {
    for (int g = 0; g < kG; ++g) {
      const VF x = X(i, g);
      const VF l = code(tame, hn::Mul(iscale[g], hn::Sub(x, min[g])));
      if constexpr (kKeepCodes) hn::Store(l, df, s.best + at(i, g));
      const VF diff = hn::Sub(hn::Add(hn::Mul(scale[g], l), min[g]), x);
      best_error[g] = hn::Add(best_error[g], hn::Mul(W(i, g), err(diff)));
    }
  }
  // In the cheap form, the clamps can be left out where they provably change nothing (lanes of
  // a non-constant group; constant ones are discarded): with the trial's iscale = num / (max -
  // min) > 0 and every x <= max, rounding monotonicity bounds iscale * (x - min) by num * (1 +
  // 2^-23) < kNmax + 0.5 when num <= kNmax + 0.25, so no code exceeds kNmax; and when min <= the
  // smallest x of the lane, x - min >= 0 and no code is below 0. The minimum a better trial
  // leaves can exceed max when every x is negative (seen with importance weights spanning
  // decades): iscale is then negative and codes above kNmax occur, so the upper clamp stays. For |v| < 2^22 nearest_int is
  // round-half-even, one rounding instruction instead of the adder's two; a -0 it gives for
  // v in (-0.5, 0) only occurs with the lower clamp, which makes it +0.
  auto code_trial = [&](auto is_tame, auto lo, auto hi, VF v) {
    if constexpr (!is_tame.value) {
      return NearestClamped(df, v, 0, kNmax);
    } else {
      VF l = hn::Round(v);
      if constexpr (hi.value) l = MinBits(l, static_cast<float>(kNmax));
      if constexpr (lo.value) l = MaxZeroBits(l);
      return l;
    }
  };
  for (int is = 0; is <= nstep; ++is) {
    const float numerator = rmin + rdelta * static_cast<float>(is) + static_cast<float>(kNmax);
    tame = true;
    bool need_lo = false, inverted = false;
    for (int g = 0; g < kG; ++g) {
      iscale[g] = hn::Div(hn::Set(df, numerator), hn::Sub(max[g], min[g]));
      tame = tame && hn::AllTrue(df, hn::Or(degenerate[g], TameLanes<M>(df, iscale[g], amax[g], min[g])));
      need_lo = need_lo || !hn::AllTrue(df, hn::Or(degenerate[g], hn::Le(min[g], xmin[g])));
      inverted = inverted || !hn::AllTrue(df, hn::Or(degenerate[g], hn::Gt(max[g], min[g])));
    }
    const bool need_hi = inverted || !(numerator <= static_cast<float>(kNmax) + 0.25f);
    VF sum_l[kG], sum_l2[kG], sum_xl[kG];
    for (int g = 0; g < kG; ++g) sum_l[g] = sum_l2[g] = sum_xl[g] = zero;
    VF neg_min[kG];
    for (int g = 0; g < kG; ++g) neg_min[g] = hn::Neg(min[g]);
    auto sums = [&](auto is_tame, auto lo, auto hi) {
      for (int i = 0; i < kN; ++i) {
        for (int g = 0; g < kG; ++g) {
          const VF x = X(i, g);
          const VF l = code_trial(is_tame, lo, hi, hn::Mul(iscale[g], AddOnFma(x, neg_min[g])));
          hn::Store(l, df, s.trial + at(i, g));
          const VF wl = hn::Mul(W(i, g), l);
          sum_l[g] = hn::Add(sum_l[g], wl);
          sum_l2[g] = hn::Add(sum_l2[g], hn::Mul(wl, l));
          sum_xl[g] = hn::Add(sum_xl[g], hn::Mul(wl, x));
        }
      }
    };
    using T = std::true_type;
    using F = std::false_type;
    if (!tame) {
      sums(F(), T(), T());
    } else if (need_lo) {
      if (need_hi) {
        sums(T(), T(), T());
      } else {
        sums(T(), T(), F());
      }
    } else if (need_hi) {
      sums(T(), F(), T());
    } else {
      sums(T(), F(), F());
    }
    VF this_scale[kG], this_min[kG];
    M solvable[kG];
    bool any = false;
    for (int g = 0; g < kG; ++g) {
      const VF D = hn::Sub(hn::Mul(sum_w[g], sum_l2[g]), hn::Mul(sum_l[g], sum_l[g]));
      solvable[g] = hn::Gt(D, zero);
      any = any || !hn::AllFalse(df, solvable[g]);
      this_scale[g] = hn::Div(hn::Sub(hn::Mul(sum_w[g], sum_xl[g]), hn::Mul(sum_x[g], sum_l[g])), D);
      this_min[g] = hn::Div(hn::Sub(hn::Mul(sum_l2[g], sum_x[g]), hn::Mul(sum_l[g], sum_xl[g])), D);
      const auto positive = hn::Gt(this_min[g], zero);
      this_min[g] = hn::IfThenElse(positive, zero, this_min[g]);
      this_scale[g] = hn::IfThenElse(positive, hn::Div(sum_xl[g], sum_l2[g]), this_scale[g]);
    }
    if (!any) continue;
    VF cur_error[kG];
    for (int g = 0; g < kG; ++g) cur_error[g] = zero;
    for (int i = 0; i < kN; ++i) {
      for (int g = 0; g < kG; ++g) {
        const VF l = hn::Load(df, s.trial + at(i, g));
        const VF diff = hn::Sub(hn::Add(hn::Mul(this_scale[g], l), this_min[g]), X(i, g));
        cur_error[g] = hn::Add(cur_error[g], hn::Mul(W(i, g), err(diff)));
      }
    }
    M better[kG];
    any = false;
    for (int g = 0; g < kG; ++g) {
      better[g] = hn::And(solvable[g], hn::Lt(cur_error[g], best_error[g]));
      any = any || !hn::AllFalse(df, better[g]);
    }
    if (!any) continue;
    if constexpr (kKeepCodes) {
      for (int i = 0; i < kN; ++i) {
        for (int g = 0; g < kG; ++g) {
          float* b = s.best + at(i, g);
          hn::Store(hn::IfThenElse(better[g], hn::Load(df, s.trial + at(i, g)), hn::Load(df, b)), df, b);
        }
      }
    }
    for (int g = 0; g < kG; ++g) {
      best_error[g] = hn::IfThenElse(better[g], cur_error[g], best_error[g]);
      scale[g] = hn::IfThenElse(better[g], this_scale[g], scale[g]);
      min[g] = hn::IfThenElse(better[g], this_min[g], min[g]);
    }
  }
  // A constant group: codes 0, scale 0, minimum from before the search.
  if constexpr (kKeepCodes) {
    for (int i = 0; i < kN; ++i) {
      for (int g = 0; g < kG; ++g) {
        float* b = s.best + at(i, g);
        hn::Store(hn::IfThenElseZero(hn::Not(degenerate[g]), hn::Load(df, b)), df, b);
      }
    }
  }
  for (int g = 0; g < kG; ++g) {
    hn::Store(hn::IfThenElseZero(hn::Not(degenerate[g]), scale[g]), df, s.scale + static_cast<std::size_t>(g) * N);
    hn::Store(hn::Neg(hn::IfThenElse(degenerate[g], min0[g], min[g])), df, s.the_min + static_cast<std::size_t>(g) * N);
  }
}

// fit_symmetric (ggml's make_qx_quants, rmse_type 1) with n = 16 in every lane of kG vectors
// (nmax 32 for q6_K, 4 for q3_K with importance); weights x^2, or importance when given (s.w then
// holds it). Every lane that counts (largest magnitude >= 1e-15, finite values) has |iscale * x|
// <= about nmax + 1, so the codes take the cheap exact form; all-zero groups are discarded at the
// end. Only the scales are written (the tails requantize every sub-block from its stored scale
// and recompute the others).
template <int kNmax>
void FitSymmetric16(Lanes& s, bool weighted) {
  constexpr int kN = 16;
  const DF df;
  const std::size_t N = hn::Lanes(df);
  using M = hn::Mask<DF>;
  const VF zero = hn::Zero(df);
  auto at = [&](int i, int g) { return (static_cast<std::size_t>(i) * kG + static_cast<std::size_t>(g)) * N; };
  auto X = [&](int i, int g) { return hn::Load(df, s.x + at(i, g)); };
  if (!weighted) {
    for (int i = 0; i < kN; ++i) {
      for (int g = 0; g < kG; ++g) hn::Store(hn::Mul(X(i, g), X(i, g)), df, s.w + at(i, g));
    }
  }
  auto W = [&](int i, int g) { return hn::Load(df, s.w + at(i, g)); };
  VF max[kG], amax[kG];
  for (int g = 0; g < kG; ++g) max[g] = amax[g] = zero;
  for (int i = 0; i < kN; ++i) {
    for (int g = 0; g < kG; ++g) {
      const VF x = X(i, g), ax = hn::Abs(x);
      const auto larger = hn::Gt(ax, amax[g]);
      amax[g] = hn::IfThenElse(larger, ax, amax[g]);
      max[g] = hn::IfThenElse(larger, x, max[g]);
    }
  }
  M zero_group[kG];
  for (int g = 0; g < kG; ++g) zero_group[g] = hn::Lt(amax[g], hn::Set(df, 1e-15f));
  // Per value, (w*x) is the same in every pass: the reference's w*x*l is (w*x)*l.
  alignas(64) float wx[kN * kG * kMaxLanes];
  for (int i = 0; i < kN; ++i) {
    for (int g = 0; g < kG; ++g) hn::Store(hn::Mul(W(i, g), X(i, g)), df, wx + at(i, g));
  }
  VF sumlx[kG], suml2[kG], iscale[kG];
  // |iscale * x| <= |num| * (1 + 2^-23)^2 for the counted lanes (|x| <= |max|): when |num| <=
  // nmax + 0.25 no code is below -nmax and the lower clamp is left out; when |num| <= nmax - 0.75
  // none is above nmax - 1 either.
  // The codes are round-half-even (nearest_int for |v| < 2^22) with the clamps on the bits; a -0
  // code (v in (-0.5, 0)) changes neither sum: (w*l)*l keeps the sign of w, and w*x*l adds a
  // zero to a sum that is never -0.
  auto pass = [&](auto lo, auto hi) {
    for (int g = 0; g < kG; ++g) sumlx[g] = suml2[g] = zero;
    for (int i = 0; i < kN; ++i) {
      for (int g = 0; g < kG; ++g) {
        VF l = hn::Round(hn::Mul(iscale[g], X(i, g)));
        if constexpr (hi.value) l = MinBits(l, static_cast<float>(kNmax - 1));
        if constexpr (lo.value) l = MaxNegativeBits(l, static_cast<float>(-kNmax));
        sumlx[g] = hn::Add(sumlx[g], hn::Mul(hn::Load(df, wx + at(i, g)), l));
        suml2[g] = hn::Add(suml2[g], hn::Mul(hn::Mul(W(i, g), l), l));
      }
    }
  };
  VF scale[kG], best[kG];
  for (int g = 0; g < kG; ++g) iscale[g] = hn::Div(hn::Set(df, static_cast<float>(-kNmax)), max[g]);
  using T = std::true_type;
  using F = std::false_type;
  pass(F(), T());
  for (int g = 0; g < kG; ++g) {
    scale[g] = hn::IfThenElseZero(NotEqual(suml2[g], zero), hn::Div(sumlx[g], suml2[g]));
    best[g] = hn::Mul(scale[g], sumlx[g]);
  }
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float numerator = -(static_cast<float>(kNmax) + 0.1f * static_cast<float>(is));
    for (int g = 0; g < kG; ++g) iscale[g] = hn::Div(hn::Set(df, numerator), max[g]);
    if (-numerator <= static_cast<float>(kNmax) - 0.75f) {
      pass(F(), F());
    } else if (-numerator <= static_cast<float>(kNmax) + 0.25f) {
      pass(F(), T());
    } else {
      pass(T(), T());
    }
    M better[kG];
    bool any = false;
    for (int g = 0; g < kG; ++g) {
      better[g] = hn::And(hn::Gt(suml2[g], zero), hn::Gt(hn::Mul(sumlx[g], sumlx[g]), hn::Mul(best[g], suml2[g])));
      any = any || !hn::AllFalse(df, better[g]);
    }
    if (!any) continue;
    for (int g = 0; g < kG; ++g) {
      scale[g] = hn::IfThenElse(better[g], hn::Div(sumlx[g], suml2[g]), scale[g]);
      best[g] = hn::IfThenElse(better[g], hn::Mul(scale[g], sumlx[g]), best[g]);
    }
  }
  // An all-zero group has scale 0.
  for (int g = 0; g < kG; ++g) {
    hn::Store(hn::IfThenElseZero(hn::Not(zero_group[g]), scale[g]), df, s.scale + static_cast<std::size_t>(g) * N);
  }
}

// fit_symmetric_q3 (ggml's make_q3_quants: n = 16, nmax = 4, weights x^2) in every lane of kG
// vectors: the codes from the largest magnitude (|iscale * x| <= 4 * (1 + 2^-23), so the cheap
// exact form), then the sweeps of single-code moves, each value's step done with selects. A lane
// whose sweep changed nothing would repeat exactly the same steps in the next sweep, so the lanes
// sweep together until none changes (at most five sweeps, as the reference). The move's code
// x * sl2 / slx can be anything (slx tiny), so it takes the bit-exact nearest_int. Only the scales
// are written; all-zero groups give scale 0 (the tail recomputes their codes).
void FitQ3(Lanes& s) {
  constexpr int kN = 16;
  const DF df;
  const std::size_t N = hn::Lanes(df);
  using M = hn::Mask<DF>;
  const VF zero = hn::Zero(df);
  auto at = [&](int i, int g) { return (static_cast<std::size_t>(i) * kG + static_cast<std::size_t>(g)) * N; };
  auto X = [&](int i, int g) { return hn::Load(df, s.x + at(i, g)); };
  alignas(64) float wx[kN * kG * kMaxLanes];
  for (int i = 0; i < kN; ++i) {
    for (int g = 0; g < kG; ++g) {
      const VF x = X(i, g), w = hn::Mul(x, x);
      hn::Store(w, df, s.w + at(i, g));
      hn::Store(hn::Mul(w, x), df, wx + at(i, g));
    }
  }
  auto W = [&](int i, int g) { return hn::Load(df, s.w + at(i, g)); };
  auto WX = [&](int i, int g) { return hn::Load(df, wx + at(i, g)); };
  VF max[kG], amax[kG], sumlx[kG], suml2[kG];
  for (int g = 0; g < kG; ++g) max[g] = amax[g] = sumlx[g] = suml2[g] = zero;
  for (int i = 0; i < kN; ++i) {
    for (int g = 0; g < kG; ++g) {
      const VF x = X(i, g), ax = hn::Abs(x);
      const auto larger = hn::Gt(ax, amax[g]);
      amax[g] = hn::IfThenElse(larger, ax, amax[g]);
      max[g] = hn::IfThenElse(larger, x, max[g]);
    }
  }
  VF iscale[kG];
  for (int g = 0; g < kG; ++g) iscale[g] = hn::Div(hn::Set(df, -4.f), max[g]);
  for (int i = 0; i < kN; ++i) {
    for (int g = 0; g < kG; ++g) {
      const VF l = NearestClampedTame(df, hn::Mul(iscale[g], X(i, g)), -4, 3);
      hn::Store(l, df, s.best + at(i, g));
      sumlx[g] = hn::Add(sumlx[g], hn::Mul(WX(i, g), l));
      suml2[g] = hn::Add(suml2[g], hn::Mul(hn::Mul(W(i, g), l), l));
    }
  }
  for (int itry = 0; itry < 5; ++itry) {
    M changed[kG];
    for (int g = 0; g < kG; ++g) changed[g] = hn::Lt(zero, zero);
    for (int i = 0; i < kN; ++i) {
      for (int g = 0; g < kG; ++g) {
        float* pl = s.best + at(i, g);
        const VF l = hn::Load(df, pl), w = W(i, g), wxi = WX(i, g);
        VF slx = hn::Sub(sumlx[g], hn::Mul(wxi, l));
        VF sl2 = hn::Sub(suml2[g], hn::Mul(hn::Mul(w, l), l));
        const VF new_l = NearestClamped(df, hn::Div(hn::Mul(X(i, g), sl2), slx), -4, 3);
        const auto moved = hn::And(hn::Gt(slx, zero), hn::Ne(new_l, l));
        slx = hn::Add(slx, hn::Mul(wxi, new_l));
        sl2 = hn::Add(sl2, hn::Mul(hn::Mul(w, new_l), new_l));
        const auto better = hn::Gt(hn::Mul(hn::Mul(slx, slx), suml2[g]), hn::Mul(hn::Mul(sumlx[g], sumlx[g]), sl2));
        const auto accept = hn::And(moved, hn::And(hn::Gt(sl2, zero), better));
        hn::Store(hn::IfThenElse(accept, new_l, l), df, pl);
        sumlx[g] = hn::IfThenElse(accept, slx, sumlx[g]);
        suml2[g] = hn::IfThenElse(accept, sl2, suml2[g]);
        changed[g] = hn::Or(changed[g], accept);
      }
    }
    bool any = false;
    for (int g = 0; g < kG; ++g) any = any || !hn::AllFalse(df, changed[g]);
    if (!any) break;
  }
  for (int g = 0; g < kG; ++g) {
    const auto counted = hn::And(hn::Not(hn::Lt(amax[g], hn::Set(df, 1e-15f))), hn::Gt(suml2[g], zero));
    hn::Store(hn::IfThenElseZero(counted, hn::Div(sumlx[g], suml2[g])), df, s.scale + static_cast<std::size_t>(g) * N);
  }
}

// The sub-block searches of a run of super-blocks, kG * N sub-blocks per search; then each
// super-block's tail. `kSub` values per sub-block, `kSubs` sub-blocks per super-block. With
// kTransposeOut, the search's codes are transposed out to L for the tail; without, the tail gets
// L as scratch (a tail requantizes every sub-block whose stored scale is nonzero and recomputes
// the rare others with the reference's search, which gives the same codes): the gathers of the
// transpose were ~15% of q4_K's time. With kSigma (importance paths), each lane gets its
// super-block's sigma2 = kSigma * sum(x^2) / 256 in s.sigma2, and the search's s.sum_w goes to
// the tail with the scales. chunk_fit sees the chunk's scales before the tails (finish gets the
// super-block's index in the chunk).
struct NoChunkFit {
  void operator()(std::size_t, const float*, const float*, const float*) const {}
};
template <int kSub, bool kTransposeOut, int kSigma = 0, class Search, class Finish, class Fallback,
          class ChunkFit = NoChunkFit>
void QuantizeSuperBlocks(const float* x, std::size_t nb, std::uint8_t* out, std::size_t block_bytes,
                         const float* importance, Search search, Finish finish, Fallback fallback,
                         ChunkFit chunk_fit = ChunkFit()) {
  constexpr int kSubs = static_cast<int>(kSuperBlock) / kSub;
  constexpr std::size_t kChunk = 8;  // super-blocks per pass (their codes stay in L1)
  const DF df;
  const std::size_t width = kG * hn::Lanes(df);
  Lanes s;
  float scales[kChunk * kSubs], mins[kChunk * kSubs], sum_w[kChunk * kSubs];
  std::uint8_t L[kChunk * kSuperBlock];
  bool finite[kChunk];
  float sigma2[kChunk];
  for (std::size_t b0 = 0; b0 < nb; b0 += kChunk) {
    const std::size_t count = std::min(kChunk, nb - b0);
    const float* xc = x + b0 * kSuperBlock;
    for (std::size_t b = 0; b < count; ++b) {
      finite[b] = AllFinite(xc + b * kSuperBlock, kSuperBlock) &&
                  (!importance || AllFinite(importance + (b0 + b) * kSuperBlock, kSuperBlock));
    }
    if constexpr (kSigma != 0) {
      // The reference's sum of squares is one sequential chain per super-block; the chunk's
      // chains are interleaved so that they overlap.
      float acc[kChunk] = {};
      for (std::size_t i = 0; i < kSuperBlock; ++i) {
        for (std::size_t b = 0; b < kChunk; ++b) {
          const float v = b < count ? xc[b * kSuperBlock + i] : 0.0f;
          acc[b] += v * v;
        }
      }
      for (std::size_t b = 0; b < kChunk; ++b) sigma2[b] = static_cast<float>(kSigma) * acc[b] / static_cast<float>(kSuperBlock);
    }
    const std::size_t subs = count * kSubs;
    for (std::size_t s0 = 0; s0 < subs; s0 += width) {
      const std::size_t lanes = std::min(width, subs - s0);
      TransposeIn(xc + s0 * kSub, kSub, lanes, width, s.x);
      if (importance) TransposeIn(importance + b0 * kSuperBlock + s0 * kSub, kSub, lanes, width, s.w);
      if constexpr (kSigma != 0) {
        for (std::size_t k = 0; k < width; ++k) s.sigma2[k] = k < lanes ? sigma2[(s0 + k) / kSubs] : 0.0f;
      }
      search(s);
      for (std::size_t k = 0; k < lanes; ++k) {
        scales[s0 + k] = s.scale[k];
        mins[s0 + k] = s.the_min[k];
        if constexpr (kSigma != 0) sum_w[s0 + k] = s.sum_w[k];
      }
      if constexpr (kTransposeOut) TransposeOut(s.best, kSub, lanes, width, L + s0 * kSub);
    }
    chunk_fit(count, scales, mins, sum_w);
    for (std::size_t b = 0; b < count; ++b) {
      const float* xb = xc + b * kSuperBlock;
      std::uint8_t* yb = out + (b0 + b) * block_bytes;
      const float* qw = importance ? importance + (b0 + b) * kSuperBlock : nullptr;
      if (!finite[b]) {
        fallback(xb, qw, yb);
      } else {
        finish(b, xb, qw, scales + b * kSubs, mins + b * kSubs, sum_w + b * kSubs,
               L + (kTransposeOut ? b * kSuperBlock : 0), yb);
      }
    }
  }
}

// Codes clamp(nearest_int(v), lo, hi) as int32 (any v, ggml's garbage included).
HWY_INLINE VI NearestClampedInt(DF df, VF v, int lo, int hi) {
  const DI di;
  VI m = hn::And(hn::BitCast(di, hn::Add(v, hn::Set(df, 12582912.f))), hn::Set(di, 0x007fffff));
  m = hn::Max(hn::Min(m, hn::Set(di, 0x00400000 + hi)), hn::Set(di, 0x00400000 + lo));
  return hn::Sub(m, hn::Set(di, 0x00400000));
}

// The requantization of q3_K and q6_K: the 16 values of a sub-block with stored scale d get
// nearest_int(x / d) clamped to [-kNmax, kNmax - 1], stored offset by kNmax.
template <int kNmax>
HWY_INLINE void RequantizeSixteen(const float* x, float d, std::int8_t* L) {
  const DF df;
  const DI di;
  const VF vd = hn::Set(df, d);
  for (std::size_t i = 0; i < 16; i += hn::Lanes(df)) {
    const VI l = hn::Add(NearestClampedInt(df, hn::Div(hn::LoadU(df, x + i), vd), -kNmax, kNmax - 1), hn::Set(di, kNmax));
    hn::StoreU(hn::DemoteTo(DI8(), l), DI8(), L + i);
  }
}

// q4_K / q5_K tail: detail::kq_k4_finish with the requantization `(x + dm) / d` vectorized over
// the values of a sub-block (the same operations per value).
// The codes of the reference's search of one q4_K/q5_K sub-block (k4_block's weights and
// kq_fit_affine), for a sub-block whose stored scale is zero.
template <int kNmax>
void SearchCodesK4(const float* x, std::uint8_t* L) {
  float sum_x2 = 0;
  for (int l = 0; l < 32; ++l) sum_x2 += x[l] * x[l];
  const float av_x = std::sqrt(sum_x2 / 32);
  float weights[32], the_min;
  for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[l]);
  detail::kq_fit_affine(32, kNmax, x, weights, L, &the_min, kNmax == 15 ? -1.f : -0.5f, 0.1f, kNmax == 15 ? 20 : 15,
                        false);
}

// The q4_K / q5_K tail once the header (d, dmin, 6-bit scales) is stored: the codes of every
// sub-block requantized with its stored scale and min, `x / d` vectorized; a sub-block whose
// stored scale is zero gets zero_scale(j), the reference's search for its codes. Then packed.
template <int kNmax, class ZeroScale>
void RequantizeK4(const float* xb, std::uint8_t* yb, std::uint8_t* L, const ZeroScale& zero_scale) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const float dall = LoadHalf(yb), mall = LoadHalf(yb + 2);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    ScaleMinK4(j, yb + 4, sc, m);
    const float d = dall * static_cast<float>(sc);
    if (!d) {
      zero_scale(j);
      continue;
    }
    const VF vd = hn::Set(df, d), vdm = hn::Set(df, mall * static_cast<float>(m));
    for (std::size_t i = 0; i < 32; i += N) {
      const VF v = hn::Div(hn::Add(hn::LoadU(df, xb + 32 * j + i), vdm), vd);
      hn::StoreU(hn::DemoteTo(DU8(), NearestClampedInt(df, v, 0, kNmax)), DU8(), L + 32 * j + i);
    }
  }
  detail::kq_k4_pack(L, kNmax, yb);
}

template <int kNmax>
void FinishK4(const float* xb, const float* scales, const float* mins, std::uint8_t* L, std::uint8_t* yb) {
  detail::kq_k4_scales(scales, mins, yb);
  RequantizeK4<kNmax>(xb, yb, L, [&](int j) { SearchCodesK4<kNmax>(xb + 32 * j, L + 32 * j); });
}

// q6_K tail: detail::kq_q6_K_finish with the requantization `x / d` vectorized.
void FinishQ6K(const float* xb, const float* qw, const float* scales, std::int8_t* L, std::uint8_t* yb) {
  if (!detail::kq_q6_K_scales(scales, yb)) return;
  const float dall = LoadHalf(yb + 208);
  const auto* sc = reinterpret_cast<const std::int8_t*>(yb + 192);
  for (int j = 0; j < 16; ++j) {
    const float d = dall * static_cast<float>(sc[j]);
    if (!d) {  // the search's codes
      detail::kq_fit_symmetric(16, 32, xb + 16 * j, L + 16 * j, qw ? qw + 16 * j : nullptr);
      continue;
    }
    RequantizeSixteen<32>(xb + 16 * j, d, L + 16 * j);
  }
  detail::kq_q6_K_pack(L, yb);
}

// q3_K tail: detail::kq_q3_K_scales, the requantization `x / d` vectorized, detail::kq_q3_K_pack;
// sub-blocks whose stored scale is zero get the reference search's codes.
void FinishQ3K(const float* xb, const float* scales, std::int8_t* L, std::uint8_t* yb) {
  detail::kq_q3_K_scales(scales, yb);
  const float dall = LoadHalf(yb + 108);
  const std::uint8_t* sc = yb + 96;
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
    const int scale = (low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    const float d = dall * static_cast<float>(scale);
    if (!d) {
      detail::kq_fit_symmetric_q3(xb + 16 * j, L + 16 * j);
      continue;
    }
    RequantizeSixteen<4>(xb + 16 * j, d, L + 16 * j);
  }
  detail::kq_q3_K_pack(L, yb);
}

void Q3K(const float* x, std::size_t nb, std::uint8_t* out) {
  QuantizeSuperBlocks<16, false>(
      x, nb, out, 110, nullptr, [](Lanes& s) { FitQ3(s); },
      [](std::size_t, const float* xb, const float*, const float* scales, const float*, const float*, std::uint8_t* L,
         std::uint8_t* yb) {
        FinishQ3K(xb, scales, reinterpret_cast<std::int8_t*>(L), yb);
      },
      [](const float* xb, const float*, std::uint8_t* yb) { f32_q3_K_quantize_ref({xb, kSuperBlock}, {yb, 110}, {}); });
}

// q4_K / q5_K weights: av_x + |x| with av_x = sqrt(mean of the sub-block's squares).
template <int kNmax>
void SearchK4(Lanes& s, float rmin, int nstep) {
  const DF df;
  const std::size_t stride = kG * hn::Lanes(df);  // one value of every sub-block
  for (std::size_t k = 0; k < stride; k += hn::Lanes(df)) {
    VF sum_x2 = hn::Zero(df);
    for (int i = 0; i < 32; ++i) {
      const VF x = hn::Load(df, s.x + static_cast<std::size_t>(i) * stride + k);
      sum_x2 = hn::Add(sum_x2, hn::Mul(x, x));
    }
    const VF av_x = hn::Sqrt(hn::Div(sum_x2, hn::Set(df, 32.0f)));
    for (int i = 0; i < 32; ++i) {
      const VF x = hn::Load(df, s.x + static_cast<std::size_t>(i) * stride + k);
      hn::Store(hn::Add(av_x, hn::Abs(x)), df, s.w + static_cast<std::size_t>(i) * stride + k);
    }
  }
  FitAffine<32, kNmax, false, false>(s, rmin, 0.1f, nstep);
}

template <int kNmax>
void QuantizeK4(const float* x, std::size_t nb, std::uint8_t* out) {
  const std::size_t bytes = kNmax == 15 ? 144 : 176;
  const float rmin = kNmax == 15 ? -1.f : -0.5f;
  const int nstep = kNmax == 15 ? 20 : 15;
  QuantizeSuperBlocks<32, false>(
      x, nb, out, bytes, nullptr, [&](Lanes& s) { SearchK4<kNmax>(s, rmin, nstep); },
      [](std::size_t, const float* xb, const float*, const float* scales, const float* mins, const float*, std::uint8_t* L,
         std::uint8_t* yb) {
        FinishK4<kNmax>(xb, scales, mins, L, yb);
      },
      [&](const float* xb, const float*, std::uint8_t* yb) {
        if (kNmax == 15) {
          f32_q4_K_quantize_ref({xb, kSuperBlock}, {yb, bytes}, {});
        } else {
          f32_q5_K_quantize_ref({xb, kSuperBlock}, {yb, bytes}, {});
        }
      });
}

void Q4K(const float* x, std::size_t nb, std::uint8_t* out) { QuantizeK4<15>(x, nb, out); }
void Q5K(const float* x, std::size_t nb, std::uint8_t* out) { QuantizeK4<31>(x, nb, out); }

void Q2K(const float* x, std::size_t nb, std::uint8_t* out) {
  QuantizeSuperBlocks<16, true>(
      x, nb, out, 84, nullptr,
      [](Lanes& s) {
        const DF df;
        const std::size_t N = hn::Lanes(df);
        for (std::size_t i = 0; i < 16 * kG * N; i += N) hn::Store(hn::Abs(hn::Load(df, s.x + i)), df, s.w + i);
        FitAffine<16, 3, true, true>(s, -0.5f, 0.1f, 15);
      },
      [](std::size_t, const float* xb, const float*, const float* scales, const float* mins, const float*, std::uint8_t* L,
         std::uint8_t* yb) {
        detail::kq_q2_K_finish(xb, scales, mins, L, yb);
      },
      [](const float* xb, const float*, std::uint8_t* yb) { f32_q2_K_quantize_ref({xb, kSuperBlock}, {yb, 84}, {}); });
}

// ---------------------------------------------------------------------------------------------
// Importance paths of q2_K, q4_K and q5_K (the reference's q2_K_block_weighted and
// k4_block_weighted): per-value weights qw * sqrt(sigma2 + x^2), the affine search with
// make_qkx3's trials (-0.9 + 0.05 * is, 37 of them), then the sub-block scales and minimums
// fitted as values of their own under the sub-blocks' summed weights (fit_positive).

HWY_INLINE void StoreHalf(std::uint8_t* p, float f) {
  const std::uint16_t h = f32_f16_ggml(f);
  std::memcpy(p, &h, 2);
}

// ggml's nearest_int as int32, garbage included (no clamp).
HWY_INLINE VI NearestInt(DF df, VF v) {
  const DI di;
  const VI m = hn::And(hn::BitCast(di, hn::Add(v, hn::Set(df, 12582912.f))), hn::Set(di, 0x007fffff));
  return hn::Sub(m, hn::Set(di, 0x00400000));
}

// Independent fits of kN values each, transposed: value i of fit f at [i * kMaxFits + f].
constexpr std::size_t kMaxFits = 16;

// The reference's fit_positive (ggml's make_qp_quants) in every lane: the chunk's super-block
// scales and minimums, one fit per lane (scalar, they were 13% of q4_K's time). The codes are
// bytes in the reference, so a negative or huge code (a negative scale, or nearest_int's garbage)
// wraps where it is stored, while the sums use it unwrapped; here codes are int32 lanes masked
// to a byte where the reference stores them. Its comparisons become selects; a lane whose sweep
// changed nothing would repeat the same steps, so the lanes sweep until none changes (at most
// five sweeps). Writes each fit's scale and its codes (at [i * kMaxFits + f]).
template <int kN, int kNmax>
void FitPositiveLanes(const float* xt, const float* wt, std::size_t fits, float* result, std::uint8_t* Lt) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  const VF zero = hn::Zero(df);
  const VI nmax = hn::Set(di, kNmax), byte = hn::Set(di, 0xFF);
  for (std::size_t f0 = 0; f0 < fits; f0 += N) {
    VF x[kN], w[kN], wx[kN];
    VI L[kN];
    VF max = zero;
    for (int i = 0; i < kN; ++i) {
      x[i] = hn::Load(df, xt + static_cast<std::size_t>(i) * kMaxFits + f0);
      w[i] = hn::Load(df, wt + static_cast<std::size_t>(i) * kMaxFits + f0);
      wx[i] = hn::Mul(w[i], x[i]);
      max = hn::IfThenElse(hn::Gt(max, x[i]), max, x[i]);  // ggml's MAX(max, x)
    }
    const auto zero_fit = hn::Lt(max, hn::Set(df, 1e-15f));
    VF iscale = hn::Div(hn::Set(df, static_cast<float>(kNmax)), max);
    const VF scale = hn::Div(hn::Set(df, 1.0f), iscale);
    VF best_mse = zero;
    for (int i = 0; i < kN; ++i) {
      const VF l = hn::ConvertTo(df, hn::And(NearestInt(df, hn::Mul(iscale, x[i])), byte));
      const VF diff = hn::Sub(x[i], hn::Mul(scale, l));
      best_mse = hn::Add(best_mse, hn::Mul(hn::Mul(w[i], diff), diff));
    }
    for (int is = -4; is <= 4; ++is) {
      if (is == 0) continue;
      const VF iscale_is = hn::Div(hn::Set(df, 0.1f * static_cast<float>(is) + static_cast<float>(kNmax)), max);
      const VF scale_is = hn::Div(hn::Set(df, 1.0f), iscale_is);
      VF mse = zero;
      for (int i = 0; i < kN; ++i) {
        const VF l = hn::ConvertTo(df, hn::Min(NearestInt(df, hn::Mul(iscale_is, x[i])), nmax));
        const VF diff = hn::Sub(x[i], hn::Mul(scale_is, l));
        mse = hn::Add(mse, hn::Mul(hn::Mul(w[i], diff), diff));
      }
      const auto better = hn::Lt(mse, best_mse);
      best_mse = hn::IfThenElse(better, mse, best_mse);
      iscale = hn::IfThenElse(better, iscale_is, iscale);
    }
    VF sumlx = zero, suml2 = zero;
    for (int i = 0; i < kN; ++i) {
      const VI l = hn::Min(NearestInt(df, hn::Mul(iscale, x[i])), nmax);
      L[i] = hn::And(l, byte);
      const VF fl = hn::ConvertTo(df, l);
      sumlx = hn::Add(sumlx, hn::Mul(wx[i], fl));
      suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w[i], fl), fl));
    }
    for (int itry = 0; itry < 5; ++itry) {
      auto changed = hn::RebindMask(df, hn::Lt(nmax, nmax));
      for (int i = 0; i < kN; ++i) {
        const VF li = hn::ConvertTo(df, L[i]);
        VF slx = hn::Sub(sumlx, hn::Mul(wx[i], li));
        VF sl2 = hn::Sub(suml2, hn::Mul(hn::Mul(w[i], li), li));
        const auto open = hn::And(hn::Gt(slx, zero), hn::Gt(sl2, zero));
        const VI new_l = hn::Min(NearestInt(df, hn::Div(hn::Mul(x[i], sl2), slx)), nmax);
        const auto moved = hn::And(open, hn::RebindMask(df, hn::Ne(new_l, L[i])));
        const VF fl = hn::ConvertTo(df, new_l);
        slx = hn::Add(slx, hn::Mul(wx[i], fl));
        sl2 = hn::Add(sl2, hn::Mul(hn::Mul(w[i], fl), fl));
        const auto better =
            hn::Gt(hn::Mul(hn::Mul(slx, slx), suml2), hn::Mul(hn::Mul(sumlx, sumlx), sl2));
        const auto accept = hn::And(moved, better);
        L[i] = hn::IfThenElse(hn::RebindMask(di, accept), hn::And(new_l, byte), L[i]);
        sumlx = hn::IfThenElse(accept, slx, sumlx);
        suml2 = hn::IfThenElse(accept, sl2, suml2);
        changed = hn::Or(changed, accept);
      }
      if (hn::AllFalse(df, changed)) break;
    }
    const VF d = hn::IfThenElseZero(hn::Gt(suml2, zero), hn::Div(sumlx, suml2));
    hn::StoreU(hn::IfThenElseZero(hn::Not(zero_fit), d), df, result + f0);
    const auto keep = hn::RebindMask(di, hn::Not(zero_fit));
    for (int i = 0; i < kN; ++i) {
      hn::StoreU(hn::DemoteTo(DU8(), hn::IfThenElseZero(keep, L[i])), DU8(), Lt + static_cast<std::size_t>(i) * kMaxFits + f0);
    }
  }
}

// A chunk's super-block fits: fit 2b is super-block b's scales, 2b + 1 its minimums, both under
// its sub-blocks' summed weights.
template <int kSubs>
struct ChunkFits {
  alignas(64) float d[kMaxFits];
  alignas(64) std::uint8_t L[kSubs * kMaxFits];

  template <int kNmax>
  void Fit(std::size_t count, const float* scales, const float* mins, const float* sum_w) {
    alignas(64) float xt[kSubs * kMaxFits], wt[kSubs * kMaxFits];
    for (std::size_t b = 0; b < kMaxFits / 2; ++b) {
      for (int i = 0; i < kSubs; ++i) {
        const std::size_t at = static_cast<std::size_t>(i) * kMaxFits + 2 * b;
        const std::size_t from = b * kSubs + static_cast<std::size_t>(i);
        const bool in = b < count;
        xt[at] = in ? scales[from] : 0.0f;
        xt[at + 1] = in ? mins[from] : 0.0f;
        wt[at] = wt[at + 1] = in ? sum_w[from] : 0.0f;
      }
    }
    FitPositiveLanes<kSubs, kNmax>(xt, wt, 2 * count, d, L);
  }
  // Codes of super-block b's scales (which = 0) or minimums (1).
  std::uint8_t Code(std::size_t b, int which, int i) const {
    return L[static_cast<std::size_t>(i) * kMaxFits + 2 * b + static_cast<std::size_t>(which)];
  }
};

// s.w holds the importance on entry and the reference's weights qw * sqrt(sigma2 + x^2) on
// return; s.sum_w their sum per lane, in order from 0 as the reference's sw.
template <int kSub>
void ImportanceWeights(Lanes& s) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const std::size_t stride = kG * N;
  for (std::size_t k = 0; k < stride; k += N) {
    const VF sigma2 = hn::Load(df, s.sigma2 + k);
    VF sum = hn::Zero(df);
    for (int i = 0; i < kSub; ++i) {
      float* pw = s.w + static_cast<std::size_t>(i) * stride + k;
      const VF x = hn::Load(df, s.x + static_cast<std::size_t>(i) * stride + k);
      const VF w = hn::Mul(hn::Load(df, pw), hn::Sqrt(hn::Add(sigma2, hn::Mul(x, x))));
      hn::Store(w, df, pw);
      sum = hn::Add(sum, w);
    }
    hn::Store(sum, df, s.sum_w + k);
  }
}

// The weighted search's codes of one sub-block of `n`, for the tails' sub-blocks whose stored
// scale is zero.
void SearchCodesWeighted(int n, int nmax, float sigma_factor, const float* xb, const float* qwb, int j,
                         std::uint8_t* L) {
  float sum_x2 = 0;
  for (std::size_t i = 0; i < kSuperBlock; ++i) sum_x2 += xb[i] * xb[i];
  const float sigma2 = sigma_factor * sum_x2 / static_cast<float>(kSuperBlock);
  float weights[32], the_min;
  const float* x = xb + n * j;
  const float* qw = qwb + n * j;
  for (int l = 0; l < n; ++l) weights[l] = qw[l] * std::sqrt(sigma2 + x[l] * x[l]);
  detail::kq_fit_affine(n, nmax, x, weights, L + n * j, &the_min, -0.9f, 0.05f, 36, false);
}

// q4_K/q5_K's 12 bytes of 6-bit scales and minimums (the reference's pack_scale_min_k4).
void PackScaleMinK4(const std::uint8_t* ls, const std::uint8_t* lm, std::uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = ls[j];
    q[j + 4] = lm[j];
  }
  for (int j = 4; j < 8; ++j) {
    q[j + 4] = static_cast<std::uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
    q[j - 4] |= static_cast<std::uint8_t>((ls[j] >> 4) << 6);
    q[j] |= static_cast<std::uint8_t>((lm[j] >> 4) << 6);
  }
}

template <int kNmax>
void FinishK4Weighted(const ChunkFits<8>& fits, std::size_t b, const float* xb, const float* qw, std::uint8_t* L,
                      std::uint8_t* yb) {
  std::uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = fits.Code(b, 0, j);
    lm[j] = fits.Code(b, 1, j);
  }
  const float d_block = fits.d[2 * b], m_block = fits.d[2 * b + 1];
  if constexpr (kNmax == 31) {  // ggml's q5_K clamps these codes, its q4_K does not
    for (int j = 0; j < 8; ++j) {
      ls[j] = std::min<std::uint8_t>(63, ls[j]);
      lm[j] = std::min<std::uint8_t>(63, lm[j]);
    }
  }
  PackScaleMinK4(ls, lm, yb + 4);
  StoreHalf(yb, d_block);
  StoreHalf(yb + 2, m_block);
  RequantizeK4<kNmax>(xb, yb, L, [&](int j) { SearchCodesWeighted(32, kNmax, 2.0f, xb, qw, j, L); });
}

template <int kNmax>
void QuantizeK4Weighted(const float* x, std::size_t nb, std::uint8_t* out, const float* importance) {
  const std::size_t bytes = kNmax == 15 ? 144 : 176;
  ChunkFits<8> fits;
  QuantizeSuperBlocks<32, false, 2>(
      x, nb, out, bytes, importance,
      [](Lanes& s) {
        ImportanceWeights<32>(s);
        FitAffine<32, kNmax, false, false>(s, -0.9f, 0.05f, 36);
      },
      [&](std::size_t b, const float* xb, const float* qw, const float*, const float*, const float*, std::uint8_t* L,
          std::uint8_t* yb) { FinishK4Weighted<kNmax>(fits, b, xb, qw, L, yb); },
      [&](const float* xb, const float* qw, std::uint8_t* yb) {
        const std::span<const float> w(qw, kSuperBlock);
        if (kNmax == 15) {
          f32_q4_K_quantize_ref({xb, kSuperBlock}, {yb, bytes}, w);
        } else {
          f32_q5_K_quantize_ref({xb, kSuperBlock}, {yb, bytes}, w);
        }
      },
      [&](std::size_t count, const float* scales, const float* mins, const float* sum_w) {
        fits.template Fit<63>(count, scales, mins, sum_w);
      });
}

void Q4KWeighted(const float* x, std::size_t nb, std::uint8_t* out, const float* importance) {
  QuantizeK4Weighted<15>(x, nb, out, importance);
}
void Q5KWeighted(const float* x, std::size_t nb, std::uint8_t* out, const float* importance) {
  QuantizeK4Weighted<31>(x, nb, out, importance);
}

// q2_K's tail with importance: 4-bit scale and minimum codes from fit_positive, the codes
// requantized from the stored ones (sub-blocks whose stored scale is zero keep the search's
// codes, transposed out: with 4-bit scales they are common), packed 2 bits each.
void FinishQ2KWeighted(const ChunkFits<16>& fits, std::size_t b, const float* xb, std::uint8_t* L, std::uint8_t* yb) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const float dm = fits.d[2 * b], mm = fits.d[2 * b + 1];
  StoreHalf(yb + 80, dm);
  StoreHalf(yb + 82, mm);
  for (int j = 0; j < 16; ++j) yb[j] = static_cast<std::uint8_t>(fits.Code(b, 0, j) | (fits.Code(b, 1, j) << 4));
  const float dall = LoadHalf(yb + 80), mall = LoadHalf(yb + 82);
  for (int j = 0; j < 16; ++j) {
    const float d = dall * static_cast<float>(yb[j] & 0xF);
    if (!d) continue;
    const VF vd = hn::Set(df, d), vdm = hn::Set(df, mall * static_cast<float>(yb[j] >> 4));
    for (std::size_t i = 0; i < 16; i += N) {
      const VF v = hn::Div(hn::Add(hn::LoadU(df, xb + 16 * j + i), vdm), vd);
      hn::StoreU(hn::DemoteTo(DU8(), NearestClampedInt(df, v, 0, 3)), DU8(), L + 16 * j + i);
    }
  }
  std::uint8_t* qs = yb + 16;
  for (int j = 0; j < 256; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

void Q2KWeighted(const float* x, std::size_t nb, std::uint8_t* out, const float* importance) {
  ChunkFits<16> fits;
  QuantizeSuperBlocks<16, true, 1>(
      x, nb, out, 84, importance,
      [](Lanes& s) {
        ImportanceWeights<16>(s);
        FitAffine<16, 3, false, true>(s, -0.9f, 0.05f, 36);
      },
      [&](std::size_t b, const float* xb, const float*, const float*, const float*, const float*, std::uint8_t* L,
          std::uint8_t* yb) { FinishQ2KWeighted(fits, b, xb, L, yb); },
      [](const float* xb, const float* qw, std::uint8_t* yb) {
        f32_q2_K_quantize_ref({xb, kSuperBlock}, {yb, 84}, {qw, kSuperBlock});
      },
      [&](std::size_t count, const float* scales, const float* mins, const float* sum_w) {
        fits.Fit<15>(count, scales, mins, sum_w);
      });
}

// ---------------------------------------------------------------------------------------------
// q3_K's importance path (the reference's q3_K_block_weighted): per-value weights qw * sqrt(sigma2
// + x^2) with sigma2 = 2 * mean(x^2), make_qx_quants with nmax 4 under them (FitSymmetric16<4>),
// then the sub-block scales fitted as values of their own (make_qx_quants with nmax 32 under the
// sub-blocks' summed weights) into the 6-bit signed scale codes.

// The reference's fit_symmetric with n = 16, nmax = 32 and given weights in every lane: the
// chunk's super-block scale fits, one per lane (xt, wt and the codes at [i * kMaxFits + f]). A
// sub-block scale can be NaN or infinite (infinite weights from huge values or importance), so
// those vectors take the bit-exact nearest_int; the others the cheap exact form (a counted lane
// has |iscale * x| <= about 33; a -0 code changes no sum, as in FitSymmetric16). The trials'
// sums are formed kT at a time, interleaved, then judged in the reference's order; the codes are
// a function of the inverse scale, so only the best one is kept and the codes recomputed from
// it. Writes each fit's scale and its codes (l + 32, or 0 for a fit whose largest magnitude is
// below 1e-15).
void FitSymmetricLanes(const float* xt, const float* wt, std::size_t fits, float* result, std::uint8_t* Lt) {
  constexpr int kN = 16, kNmax = 32, kT = 6;
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  const VF zero = hn::Zero(df);
  auto code = [&](VF iscale, VF x) { return NearestClampedInt(df, hn::Mul(iscale, x), -kNmax, kNmax - 1); };
  for (std::size_t f0 = 0; f0 < fits; f0 += N) {
    VF x[kN], w[kN], wx[kN];
    VF max = zero, amax = zero;
    auto finite = hn::Eq(zero, zero);
    for (int i = 0; i < kN; ++i) {
      x[i] = hn::Load(df, xt + static_cast<std::size_t>(i) * kMaxFits + f0);
      w[i] = hn::Load(df, wt + static_cast<std::size_t>(i) * kMaxFits + f0);
      wx[i] = hn::Mul(w[i], x[i]);  // the reference's w * x * l is (w * x) * l
      const VF ax = hn::Abs(x[i]);
      const auto larger = hn::Gt(ax, amax);
      amax = hn::IfThenElse(larger, ax, amax);
      max = hn::IfThenElse(larger, x[i], max);
      finite = hn::And(finite, hn::IsFinite(x[i]));
    }
    const bool tame = hn::AllTrue(df, finite);
    auto trial_code = [&](VF iscale, VF x) {
      if (!tame) return hn::ConvertTo(df, code(iscale, x));
      const VF l = MinBits(hn::Round(hn::Mul(iscale, x)), static_cast<float>(kNmax - 1));
      return MaxNegativeBits(l, static_cast<float>(-kNmax));
    };
    const auto zero_fit = hn::Lt(amax, hn::Set(df, 1e-15f));
    VF best_iscale = hn::Div(hn::Set(df, static_cast<float>(-kNmax)), max);
    VF sumlx = zero, suml2 = zero;
    for (int i = 0; i < kN; ++i) {
      const VF l = hn::ConvertTo(df, code(best_iscale, x[i]));
      sumlx = hn::Add(sumlx, hn::Mul(wx[i], l));
      suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w[i], l), l));
    }
    VF scale = hn::IfThenElseZero(NotEqual(suml2, zero), hn::Div(sumlx, suml2));
    VF best = hn::Mul(scale, sumlx);
    constexpr int kTrials[18] = {-9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int t0 = 0; t0 < 18; t0 += kT) {
      VF iscale[kT], slx[kT], sl2[kT];
      for (int t = 0; t < kT; ++t) {
        const float numerator = -(static_cast<float>(kNmax) + 0.1f * static_cast<float>(kTrials[t0 + t]));
        iscale[t] = hn::Div(hn::Set(df, numerator), max);
        slx[t] = sl2[t] = zero;
      }
      for (int i = 0; i < kN; ++i) {
        for (int t = 0; t < kT; ++t) {
          const VF l = trial_code(iscale[t], x[i]);
          slx[t] = hn::Add(slx[t], hn::Mul(wx[i], l));
          sl2[t] = hn::Add(sl2[t], hn::Mul(hn::Mul(w[i], l), l));
        }
      }
      for (int t = 0; t < kT; ++t) {
        const auto better = hn::And(hn::Gt(sl2[t], zero), hn::Gt(hn::Mul(slx[t], slx[t]), hn::Mul(best, sl2[t])));
        best_iscale = hn::IfThenElse(better, iscale[t], best_iscale);
        scale = hn::IfThenElse(better, hn::Div(slx[t], sl2[t]), scale);
        best = hn::IfThenElse(better, hn::Mul(scale, slx[t]), best);
      }
    }
    hn::StoreU(hn::IfThenElseZero(hn::Not(zero_fit), scale), df, result + f0);
    const auto keep = hn::RebindMask(di, hn::Not(zero_fit));
    for (int i = 0; i < kN; ++i) {
      const VI l = hn::IfThenElseZero(keep, hn::Add(code(best_iscale, x[i]), hn::Set(di, kNmax)));
      hn::StoreU(hn::DemoteTo(DU8(), l), DU8(), Lt + static_cast<std::size_t>(i) * kMaxFits + f0);
    }
  }
}

// A chunk's q3_K super-block fits: fit b is super-block b's sub-block scales under its
// sub-blocks' summed weights.
struct Q3KChunkFits {
  alignas(64) float d[kMaxFits];
  alignas(64) std::uint8_t L[16 * kMaxFits];

  void Fit(std::size_t count, const float* scales, const float* sum_w) {
    alignas(64) float xt[16 * kMaxFits], wt[16 * kMaxFits];
    for (std::size_t b = 0; b < kMaxFits; ++b) {
      for (int i = 0; i < 16; ++i) {
        const std::size_t at = static_cast<std::size_t>(i) * kMaxFits + b;
        const std::size_t from = b * 16 + static_cast<std::size_t>(i);
        xt[at] = b < count ? scales[from] : 0.0f;
        wt[at] = b < count ? sum_w[from] : 0.0f;
      }
    }
    FitSymmetricLanes(xt, wt, count, d, L);
  }
  // Code (scale + 32) of super-block b's sub-block i.
  std::uint8_t Code(std::size_t b, int i) const { return L[static_cast<std::size_t>(i) * kMaxFits + b]; }
};

// q3_K's tail with importance: the 6-bit scale codes and d from the chunk's fit (packed as the
// reference's pack_scales_q3), the codes requantized from the stored scales, `x / d` vectorized;
// sub-blocks whose stored scale is zero get the weighted search's codes from the reference's
// search (sigma2 computed once per super-block, only when one is needed).
void FinishQ3KWeighted(const Q3KChunkFits& fits, std::size_t b, const float* xb, const float* qw, std::int8_t* L,
                       std::uint8_t* yb) {
  std::uint8_t* sc = yb + 96;
  std::memset(sc, 0, 12);
  int code[16];
  for (int j = 0; j < 16; ++j) {
    code[j] = fits.Code(b, j);
    sc[j % 8] |= static_cast<std::uint8_t>((code[j] & 0xF) << (j < 8 ? 0 : 4));
    sc[8 + j % 4] |= static_cast<std::uint8_t>((code[j] >> 4) << (2 * (j / 4)));
  }
  StoreHalf(yb + 108, fits.d[b]);
  const float dall = LoadHalf(yb + 108);
  float sigma2 = 0;
  bool have_sigma2 = false;
  for (int j = 0; j < 16; ++j) {
    const float d = dall * static_cast<float>(code[j] - 32);
    if (!d) {
      if (!have_sigma2) {
        float sum_x2 = 0;
        for (std::size_t i = 0; i < kSuperBlock; ++i) sum_x2 += xb[i] * xb[i];
        sigma2 = 2 * sum_x2 / static_cast<float>(kSuperBlock);
        have_sigma2 = true;
      }
      float weight[16];
      for (int l = 0; l < 16; ++l) weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + xb[16 * j + l] * xb[16 * j + l]);
      detail::kq_fit_symmetric(16, 4, xb + 16 * j, L + 16 * j, weight);
      continue;
    }
    RequantizeSixteen<4>(xb + 16 * j, d, L + 16 * j);
  }
  detail::kq_q3_K_pack(L, yb);
}

void Q3KWeighted(const float* x, std::size_t nb, std::uint8_t* out, const float* importance) {
  Q3KChunkFits fits;
  QuantizeSuperBlocks<16, false, 2>(
      x, nb, out, 110, importance,
      [](Lanes& s) {
        ImportanceWeights<16>(s);
        FitSymmetric16<4>(s, true);
      },
      [&](std::size_t b, const float* xb, const float* qw, const float*, const float*, const float*, std::uint8_t* L,
          std::uint8_t* yb) { FinishQ3KWeighted(fits, b, xb, qw, reinterpret_cast<std::int8_t*>(L), yb); },
      [](const float* xb, const float* qw, std::uint8_t* yb) {
        f32_q3_K_quantize_ref({xb, kSuperBlock}, {yb, 110}, {qw, kSuperBlock});
      },
      [&](std::size_t count, const float* scales, const float*, const float* sum_w) { fits.Fit(count, scales, sum_w); });
}

void Q6K(const float* x, std::size_t nb, std::uint8_t* out, const float* importance) {
  QuantizeSuperBlocks<16, false>(
      x, nb, out, 210, importance, [&](Lanes& s) { FitSymmetric16<32>(s, importance != nullptr); },
      [](std::size_t, const float* xb, const float* qw, const float* scales, const float*, const float*, std::uint8_t* L,
         std::uint8_t* yb) {
        FinishQ6K(xb, qw, scales, reinterpret_cast<std::int8_t*>(L), yb);
      },
      [](const float* xb, const float* qw, std::uint8_t* yb) {
        f32_q6_K_quantize_ref({xb, kSuperBlock}, {yb, 210}, qw ? std::span<const float>(qw, kSuperBlock) : std::span<const float>());
      });
}

// q8_K: the reference's q8_K_block per super-block, value-parallel. The largest magnitude's first
// occurrence gives the sign of max; every |iscale * x| <= 127 * (1 + 2^-23), so the codes are
// plain round-half-even and need only the upper clamp of ggml. Blocks with NaN or infinity, all
// zero, or whose largest magnitude is below 2^-100 (where -127 / max may overflow into ggml's
// garbage codes) go to the reference.
void Q8K(const float* x, std::size_t nb, std::uint8_t* out) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  for (std::size_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kSuperBlock;
    std::uint8_t* yb = out + b * 292;
    auto finite = hn::Eq(hn::Zero(df), hn::Zero(df));
    VF vmax = hn::Zero(df);
    for (std::size_t i = 0; i < kSuperBlock; i += N) {
      const VF v = hn::LoadU(df, xb + i);
      finite = hn::And(finite, hn::IsFinite(v));
      vmax = hn::Max(vmax, hn::Abs(v));
    }
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    if (!hn::AllTrue(df, finite) || !(amax >= 0x1p-100f)) {
      f32_q8_K_quantize_ref({xb, kSuperBlock}, {yb, 292}, {});
      continue;
    }
    float max = amax;
    const VF va = hn::Set(df, amax);
    for (std::size_t i = 0; i < kSuperBlock; i += N) {
      const VF v = hn::LoadU(df, xb + i);
      const auto hit = hn::Eq(hn::Abs(v), va);
      if (!hn::AllFalse(df, hit)) {
        max = xb[i + static_cast<std::size_t>(hn::FindFirstTrue(df, hit))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const VF vi = hn::Set(df, iscale);
    auto* qs = reinterpret_cast<std::int8_t*>(yb + 4);
    for (std::size_t j = 0; j < kSuperBlock; j += 16) {
      VI sum = hn::Zero(di);
      for (std::size_t i = j; i < j + 16; i += N) {
        const VI l = NearestClampedInt(df, hn::Mul(vi, hn::LoadU(df, xb + i)), -128, 127);
        sum = hn::Add(sum, l);
        hn::StoreU(hn::DemoteTo(DI8(), l), DI8(), qs + i);
      }
      const std::int16_t s16 = static_cast<std::int16_t>(hn::GetLane(hn::SumOfLanes(di, sum)));
      std::memcpy(yb + 260 + 2 * (j / 16), &s16, 2);
    }
    const float d = 1 / iscale;
    std::memcpy(yb, &d, 4);
  }
}

// ---------------------------------------------------------------------------------------------
// Dequantize.

HWY_INLINE VI LoadBytes(const std::uint8_t* p) { return hn::PromoteTo(DI(), hn::LoadU(DU8(), p)); }
HWY_INLINE VF ToFloat(VI v) { return hn::ConvertTo(DF(), v); }

void DequantizeQ2K(const std::uint8_t* blocks, std::size_t nb, float* y) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  for (std::size_t i = 0; i < nb; ++i) {
    const std::uint8_t* b = blocks + i * 84;
    const float d = LoadHalf(b + 80), min = LoadHalf(b + 82);
    const std::uint8_t* q = b + 16;
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const std::uint8_t sc = b[is++];
          const VF dl = hn::Set(df, d * static_cast<float>(sc & 0xF));
          const VF ml = hn::Set(df, min * static_cast<float>(sc >> 4));
          for (std::size_t l = 0; l < 16; l += N) {
            const VI code = hn::And(hn::ShiftRightSame(LoadBytes(q + l + 16 * half), shift), hn::Set(di, 3));
            hn::StoreU(hn::Sub(hn::Mul(dl, ToFloat(code)), ml), df, y + l);
          }
          y += 16;
        }
      }
      q += 32;
    }
  }
}

void DequantizeQ3K(const std::uint8_t* blocks, std::size_t nb, float* y) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  for (std::size_t i = 0; i < nb; ++i) {
    const std::uint8_t* b = blocks + i * 110;
    const float d_all = LoadHalf(b + 108);
    const std::uint8_t* sc = b + 96;
    const std::uint8_t* q = b + 32;
    int m = 0, is = 0;
    for (int n = 0; n < 256; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const int j = is++;
          const int low = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
          const int scale = (low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
          const VF dl = hn::Set(df, d_all * static_cast<float>(scale));
          for (std::size_t l = 0; l < 16; l += N) {
            const VI low2 = hn::And(hn::ShiftRightSame(LoadBytes(q + l + 16 * half), shift), hn::Set(di, 3));
            const VI high = hn::And(hn::ShiftRightSame(LoadBytes(b + l + 16 * half), m), hn::Set(di, 1));
            // code - (high bit ? 0 : 4)
            const VI code = hn::Sub(low2, hn::ShiftLeft<2>(hn::Xor(high, hn::Set(di, 1))));
            hn::StoreU(hn::Mul(dl, ToFloat(code)), df, y + l);
          }
          y += 16;
        }
        ++m;
      }
      q += 32;
    }
  }
}

template <bool kFive>
void DequantizeK4(const std::uint8_t* blocks, std::size_t nb, float* y) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  const std::size_t bytes = kFive ? 176 : 144;
  for (std::size_t i = 0; i < nb; ++i) {
    const std::uint8_t* b = blocks + i * bytes;
    const float d = LoadHalf(b), min = LoadHalf(b + 2);
    const std::uint8_t* ql = b + (kFive ? 48 : 16);
    const std::uint8_t* qh = b + 16;
    for (int is = 0; is < 8; is += 2) {
      int sc1, m1, sc2, m2;
      ScaleMinK4(is, b + 4, sc1, m1);
      ScaleMinK4(is + 1, b + 4, sc2, m2);
      const VF d1 = hn::Set(df, d * static_cast<float>(sc1)), mm1 = hn::Set(df, min * static_cast<float>(m1));
      const VF d2 = hn::Set(df, d * static_cast<float>(sc2)), mm2 = hn::Set(df, min * static_cast<float>(m2));
      for (std::size_t l = 0; l < 32; l += N) {
        const VI q = LoadBytes(ql + l);
        VI lo = hn::And(q, hn::Set(di, 0xF));
        VI hi = hn::ShiftRight<4>(q);
        if constexpr (kFive) {
          const VI h = LoadBytes(qh + l);
          lo = hn::Add(lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, is), hn::Set(di, 1))));
          hi = hn::Add(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, is + 1), hn::Set(di, 1))));
        }
        hn::StoreU(hn::Sub(hn::Mul(d1, ToFloat(lo)), mm1), df, y + l);
        hn::StoreU(hn::Sub(hn::Mul(d2, ToFloat(hi)), mm2), df, y + 32 + l);
      }
      y += 64;
      ql += 32;
    }
  }
}

void DequantizeQ4K(const std::uint8_t* blocks, std::size_t nb, float* y) { DequantizeK4<false>(blocks, nb, y); }
void DequantizeQ5K(const std::uint8_t* blocks, std::size_t nb, float* y) { DequantizeK4<true>(blocks, nb, y); }

void DequantizeQ6K(const std::uint8_t* blocks, std::size_t nb, float* y) {
  const DF df;
  const DI di;
  const std::size_t N = hn::Lanes(df);
  for (std::size_t i = 0; i < nb; ++i) {
    const std::uint8_t* b = blocks + i * 210;
    const float d = LoadHalf(b + 208);
    const std::uint8_t* ql = b;
    const std::uint8_t* qh = b + 128;
    const std::int8_t* sc = reinterpret_cast<const std::int8_t*>(b + 192);
    for (int n = 0; n < 256; n += 128) {
      for (std::size_t l = 0; l < 32; l += N) {
        const std::size_t is = l / 16;
        const VI a = LoadBytes(ql + l), c = LoadBytes(ql + l + 32), h = LoadBytes(qh + l);
        const VI k32 = hn::Set(di, 32), k15 = hn::Set(di, 0xF), k3 = hn::Set(di, 3);
        const VI q1 = hn::Sub(hn::Or(hn::And(a, k15), hn::ShiftLeft<4>(hn::And(h, k3))), k32);
        const VI q2 = hn::Sub(hn::Or(hn::And(c, k15), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), k3))), k32);
        const VI q3 = hn::Sub(hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), k3))), k32);
        const VI q4 = hn::Sub(hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<4>(hn::ShiftRight<6>(h))), k32);
        hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is + 0])), ToFloat(q1)), df, y + l);
        hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is + 2])), ToFloat(q2)), df, y + l + 32);
        hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is + 4])), ToFloat(q3)), df, y + l + 64);
        hn::StoreU(hn::Mul(hn::Set(df, d * static_cast<float>(sc[is + 6])), ToFloat(q4)), df, y + l + 96);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void DequantizeQ8K(const std::uint8_t* blocks, std::size_t nb, float* y) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  for (std::size_t i = 0; i < nb; ++i) {
    const std::uint8_t* b = blocks + i * 292;
    float d;
    std::memcpy(&d, b, 4);
    const VF vd = hn::Set(df, d);
    const auto* qs = reinterpret_cast<const std::int8_t*>(b + 4);
    for (std::size_t j = 0; j < 256; j += N) {
      hn::StoreU(hn::Mul(vd, hn::ConvertTo(df, hn::PromoteTo(DI(), hn::LoadU(DI8(), qs + j)))), df, y + j);
    }
    y += 256;
  }
}

}  // namespace zp::ggml::kernels::kquants_simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/dispatch.hpp"

namespace zp::ggml::kernels {
namespace kquants_simd {
HWY_EXPORT(Q2K);
HWY_EXPORT(Q2KWeighted);
HWY_EXPORT(Q3K);
HWY_EXPORT(Q3KWeighted);
HWY_EXPORT(Q4K);
HWY_EXPORT(Q5K);
HWY_EXPORT(Q4KWeighted);
HWY_EXPORT(Q5KWeighted);
HWY_EXPORT(Q6K);
HWY_EXPORT(Q8K);
HWY_EXPORT(DequantizeQ2K);
HWY_EXPORT(DequantizeQ3K);
HWY_EXPORT(DequantizeQ4K);
HWY_EXPORT(DequantizeQ5K);
HWY_EXPORT(DequantizeQ6K);
HWY_EXPORT(DequantizeQ8K);

// The reference's preconditions (ggml_kquants_ref.cpp), checked here because the dispatched
// code writes through raw pointers.
std::size_t expect_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance,
                            std::size_t block_bytes) noexcept {
  zp::kernels::detail::configure_dispatch_once();
  zp::kernels::detail::expect(x.size() % kSuperBlock == 0);
  zp::kernels::detail::expect_output(x, out, x.size() / kSuperBlock * block_bytes);
  zp::kernels::detail::expect(importance.empty() || importance.size() == x.size());
  return x.size() / kSuperBlock;
}
std::size_t expect_dequantize(std::span<const std::uint8_t> blocks, std::span<float> out, std::size_t block_bytes) noexcept {
  zp::kernels::detail::configure_dispatch_once();
  zp::kernels::detail::expect(out.size() % kSuperBlock == 0);
  zp::kernels::detail::expect_output(blocks, out, 0);
  zp::kernels::detail::expect(blocks.size() >= out.size() / kSuperBlock * block_bytes);
  return out.size() / kSuperBlock;
}
}  // namespace kquants_simd

// HWY_DYNAMIC_DISPATCH names the exported function unqualified, and in a static-only build
// (HWY_COMPILE_ONLY_STATIC) it becomes N_<TARGET>::Name, which must be found from here too.
using namespace kquants_simd;

void f32_q2_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  const std::size_t nb = expect_quantize(x, out, importance, 84);
  if (!importance.empty()) return HWY_DYNAMIC_DISPATCH(Q2KWeighted)(x.data(), nb, out.data(), importance.data());
  HWY_DYNAMIC_DISPATCH(Q2K)(x.data(), nb, out.data());
}
void f32_q3_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  const std::size_t nb = expect_quantize(x, out, importance, 110);
  if (!importance.empty()) return HWY_DYNAMIC_DISPATCH(Q3KWeighted)(x.data(), nb, out.data(), importance.data());
  HWY_DYNAMIC_DISPATCH(Q3K)(x.data(), nb, out.data());
}
void f32_q4_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  const std::size_t nb = expect_quantize(x, out, importance, 144);
  if (!importance.empty()) return HWY_DYNAMIC_DISPATCH(Q4KWeighted)(x.data(), nb, out.data(), importance.data());
  HWY_DYNAMIC_DISPATCH(Q4K)(x.data(), nb, out.data());
}
void f32_q5_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  const std::size_t nb = expect_quantize(x, out, importance, 176);
  if (!importance.empty()) return HWY_DYNAMIC_DISPATCH(Q5KWeighted)(x.data(), nb, out.data(), importance.data());
  HWY_DYNAMIC_DISPATCH(Q5K)(x.data(), nb, out.data());
}
void f32_q6_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  const std::size_t nb = expect_quantize(x, out, importance, 210);
  HWY_DYNAMIC_DISPATCH(Q6K)(x.data(), nb, out.data(), importance.empty() ? nullptr : importance.data());
}
void f32_q8_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  // q8_K has no importance-weighted variant in ggml: the weights are ignored.
  (void)importance;
  const std::size_t nb = expect_quantize(x, out, {}, 292);
  HWY_DYNAMIC_DISPATCH(Q8K)(x.data(), nb, out.data());
}

#define ZP_KQUANT_DEQUANTIZE(T, Fn, bytes)                                                \
  void T##_f32_dequantize(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept { \
    const std::size_t nb = expect_dequantize(blocks, out, bytes);                          \
    HWY_DYNAMIC_DISPATCH(Fn)(blocks.data(), nb, out.data());                \
  }
ZP_KQUANT_DEQUANTIZE(q2_K, DequantizeQ2K, 84)
ZP_KQUANT_DEQUANTIZE(q3_K, DequantizeQ3K, 110)
ZP_KQUANT_DEQUANTIZE(q4_K, DequantizeQ4K, 144)
ZP_KQUANT_DEQUANTIZE(q5_K, DequantizeQ5K, 176)
ZP_KQUANT_DEQUANTIZE(q6_K, DequantizeQ6K, 210)
ZP_KQUANT_DEQUANTIZE(q8_K, DequantizeQ8K, 292)
#undef ZP_KQUANT_DEQUANTIZE

}  // namespace zp::ggml::kernels
#endif  // HWY_ONCE
