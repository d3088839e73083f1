// SIMD K-quants, compiled once per instruction set and chosen at run time (Highway's
// foreach_target / HWY_DYNAMIC_DISPATCH). Byte-identical to ggml_kquants_ref.cpp.
//
// Quantize: the expensive part of q2_K, q4_K, q5_K and q6_K is the per-sub-block search for a
// scale (ggml's make_qkx2_quants / make_qx_quants: 16 to 21 trial scales, each a pass over the
// sub-block). Each SIMD lane runs the search of one sub-block, so every sum is formed in the
// reference's order and every step is the same IEEE operation; the sub-blocks are transposed in
// (value i of lane k at xt[i * N + k]) and the codes transposed out. ggml's nearest_int is
// reproduced bit for bit (the float-adder trick, garbage included), and the C comparisons as
// selects, so lanes agree with the scalar code even where a trial scale degenerates. The
// super-block tail (6-bit scales, requantization, packing) is the reference's own code.
// Super-blocks holding NaN or infinity go to the reference whole (NaN payloads could otherwise
// depend on operand order). q3_K, q8_K and the importance paths of q2_K/q4_K/q5_K use the
// reference.
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

float LoadHalf(const std::uint8_t* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return detail::kq_half_to_float(h);
}

// ggml's nearest_int followed by its clamp MAX(lo, MIN(hi, l)), as a float: the mantissa bits
// of v + 1.5*2^23 are l + 2^22 for |v| < 2^22 and the same garbage as ggml's beyond.
HWY_INLINE VF NearestClamped(DF df, VF v, int lo, int hi) {
  const DI di;
  VI m = hn::And(hn::BitCast(di, hn::Add(v, hn::Set(df, 12582912.f))), hn::Set(di, 0x007fffff));
  m = hn::Max(hn::Min(m, hn::Set(di, 0x00400000 + hi)), hn::Set(di, 0x00400000 + lo));
  return hn::ConvertTo(df, hn::Sub(m, hn::Set(di, 0x00400000)));
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

// Scratch for one vector of sub-blocks of up to 32 values, transposed.
struct Lanes {
  alignas(64) float x[32 * kMaxLanes];
  alignas(64) float w[32 * kMaxLanes];
  alignas(64) float best[32 * kMaxLanes];  // codes of the best trial so far
  alignas(64) float trial[32 * kMaxLanes];
  alignas(64) float scale[kMaxLanes];
  alignas(64) float the_min[kMaxLanes];
};

// x[s * n + i] for lanes s < count; missing lanes read zeros (a degenerate search, discarded).
void TransposeIn(const float* x, int n, std::size_t count, std::size_t N, float* xt) {
  for (std::size_t k = 0; k < N; ++k) {
    if (k < count) {
      for (int i = 0; i < n; ++i) xt[static_cast<std::size_t>(i) * N + k] = x[k * static_cast<std::size_t>(n) + i];
    } else {
      for (int i = 0; i < n; ++i) xt[static_cast<std::size_t>(i) * N + k] = 0.0f;
    }
  }
}
template <class Code>
void TransposeOut(const float* lt, int n, std::size_t count, std::size_t N, Code* L) {
  for (std::size_t k = 0; k < count; ++k) {
    for (int i = 0; i < n; ++i) L[k * static_cast<std::size_t>(n) + i] = static_cast<Code>(lt[static_cast<std::size_t>(i) * N + k]);
  }
}

// detail::kq_fit_affine in every lane at once (see the reference for the procedure).
template <int kN, int kNmax, bool kMad>
void FitAffine(Lanes& s, float rmin, float rdelta, int nstep) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const VF zero = hn::Zero(df);
  auto X = [&](int i) { return hn::Load(df, s.x + static_cast<std::size_t>(i) * N); };
  auto W = [&](int i) { return hn::Load(df, s.w + static_cast<std::size_t>(i) * N); };
  auto err = [&](VF diff) { return kMad ? hn::Abs(diff) : hn::Mul(diff, diff); };

  VF min = X(0), max = X(0);
  VF sum_w = W(0);
  VF sum_x = hn::Mul(sum_w, X(0));
  for (int i = 1; i < kN; ++i) {
    const VF x = X(i), w = W(i);
    min = hn::IfThenElse(hn::Lt(x, min), x, min);
    max = hn::IfThenElse(hn::Gt(x, max), x, max);
    sum_w = hn::Add(sum_w, w);
    sum_x = hn::Add(sum_x, hn::Mul(w, x));
  }
  min = hn::IfThenElse(hn::Gt(min, zero), zero, min);
  const VF min0 = min;
  const auto degenerate = hn::Eq(max, min);

  VF iscale = hn::Div(hn::Set(df, static_cast<float>(kNmax)), hn::Sub(max, min));
  VF scale = hn::Div(hn::Set(df, 1.0f), iscale);
  VF best_error = zero;
  for (int i = 0; i < kN; ++i) {
    const VF x = X(i);
    const VF l = NearestClamped(df, hn::Mul(iscale, hn::Sub(x, min)), 0, kNmax);
    hn::Store(l, df, s.best + static_cast<std::size_t>(i) * N);
    const VF diff = hn::Sub(hn::Add(hn::Mul(scale, l), min), x);
    best_error = hn::Add(best_error, hn::Mul(W(i), err(diff)));
  }
  for (int is = 0; is <= nstep; ++is) {
    const float numerator = rmin + rdelta * static_cast<float>(is) + static_cast<float>(kNmax);
    iscale = hn::Div(hn::Set(df, numerator), hn::Sub(max, min));
    VF sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < kN; ++i) {
      const VF x = X(i);
      const VF l = NearestClamped(df, hn::Mul(iscale, hn::Sub(x, min)), 0, kNmax);
      hn::Store(l, df, s.trial + static_cast<std::size_t>(i) * N);
      const VF wl = hn::Mul(W(i), l);
      sum_l = hn::Add(sum_l, wl);
      sum_l2 = hn::Add(sum_l2, hn::Mul(wl, l));
      sum_xl = hn::Add(sum_xl, hn::Mul(wl, x));
    }
    const VF D = hn::Sub(hn::Mul(sum_w, sum_l2), hn::Mul(sum_l, sum_l));
    const auto solvable = hn::Gt(D, zero);
    if (hn::AllFalse(df, solvable)) continue;
    VF this_scale = hn::Div(hn::Sub(hn::Mul(sum_w, sum_xl), hn::Mul(sum_x, sum_l)), D);
    VF this_min = hn::Div(hn::Sub(hn::Mul(sum_l2, sum_x), hn::Mul(sum_l, sum_xl)), D);
    const auto positive = hn::Gt(this_min, zero);
    this_min = hn::IfThenElse(positive, zero, this_min);
    this_scale = hn::IfThenElse(positive, hn::Div(sum_xl, sum_l2), this_scale);
    VF cur_error = zero;
    for (int i = 0; i < kN; ++i) {
      const VF l = hn::Load(df, s.trial + static_cast<std::size_t>(i) * N);
      const VF diff = hn::Sub(hn::Add(hn::Mul(this_scale, l), this_min), X(i));
      cur_error = hn::Add(cur_error, hn::Mul(W(i), err(diff)));
    }
    const auto better = hn::And(solvable, hn::Lt(cur_error, best_error));
    if (hn::AllFalse(df, better)) continue;
    for (int i = 0; i < kN; ++i) {
      float* b = s.best + static_cast<std::size_t>(i) * N;
      hn::Store(hn::IfThenElse(better, hn::Load(df, s.trial + static_cast<std::size_t>(i) * N), hn::Load(df, b)), df, b);
    }
    best_error = hn::IfThenElse(better, cur_error, best_error);
    scale = hn::IfThenElse(better, this_scale, scale);
    min = hn::IfThenElse(better, this_min, min);
  }
  // A constant group: codes 0, scale 0, minimum from before the search.
  for (int i = 0; i < kN; ++i) {
    float* b = s.best + static_cast<std::size_t>(i) * N;
    hn::Store(hn::IfThenElseZero(hn::Not(degenerate), hn::Load(df, b)), df, b);
  }
  hn::Store(hn::IfThenElseZero(hn::Not(degenerate), scale), df, s.scale);
  hn::Store(hn::Neg(hn::IfThenElse(degenerate, min0, min)), df, s.the_min);
}

// fit_symmetric (ggml's make_qx_quants, rmse_type 1) with n = 16, nmax = 32 in every lane;
// weights x^2, or importance when given (s.w then holds it).
void FitSymmetric16(Lanes& s, bool weighted) {
  constexpr int kN = 16, kNmax = 32;
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const VF zero = hn::Zero(df);
  auto X = [&](int i) { return hn::Load(df, s.x + static_cast<std::size_t>(i) * N); };
  if (!weighted) {
    for (int i = 0; i < kN; ++i) hn::Store(hn::Mul(X(i), X(i)), df, s.w + static_cast<std::size_t>(i) * N);
  }
  auto W = [&](int i) { return hn::Load(df, s.w + static_cast<std::size_t>(i) * N); };
  VF max = zero, amax = zero;
  for (int i = 0; i < kN; ++i) {
    const VF x = X(i), ax = hn::Abs(x);
    const auto larger = hn::Gt(ax, amax);
    amax = hn::IfThenElse(larger, ax, amax);
    max = hn::IfThenElse(larger, x, max);
  }
  const auto zero_group = hn::Lt(amax, hn::Set(df, 1e-15f));
  // Per value, (w*x) is the same in every pass: the reference's w*x*l is (w*x)*l.
  alignas(64) float wx[kN * kMaxLanes];
  for (int i = 0; i < kN; ++i) hn::Store(hn::Mul(W(i), X(i)), df, wx + static_cast<std::size_t>(i) * N);
  auto pass = [&](VF iscale, float* codes, VF& sumlx, VF& suml2) {
    sumlx = zero;
    suml2 = zero;
    for (int i = 0; i < kN; ++i) {
      const VF l = NearestClamped(df, hn::Mul(iscale, X(i)), -kNmax, kNmax - 1);
      if (codes) hn::Store(l, df, codes + static_cast<std::size_t>(i) * N);
      sumlx = hn::Add(sumlx, hn::Mul(hn::Load(df, wx + static_cast<std::size_t>(i) * N), l));
      suml2 = hn::Add(suml2, hn::Mul(hn::Mul(W(i), l), l));
    }
  };
  VF sumlx, suml2;
  pass(hn::Div(hn::Set(df, static_cast<float>(-kNmax)), max), s.best, sumlx, suml2);
  VF scale = hn::IfThenElseZero(hn::Ne(suml2, zero), hn::Div(sumlx, suml2));
  VF best = hn::Mul(scale, sumlx);
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float numerator = -(static_cast<float>(kNmax) + 0.1f * static_cast<float>(is));
    pass(hn::Div(hn::Set(df, numerator), max), s.trial, sumlx, suml2);
    const auto better = hn::And(hn::Gt(suml2, zero), hn::Gt(hn::Mul(sumlx, sumlx), hn::Mul(best, suml2)));
    if (hn::AllFalse(df, better)) continue;
    for (int i = 0; i < kN; ++i) {
      float* b = s.best + static_cast<std::size_t>(i) * N;
      hn::Store(hn::IfThenElse(better, hn::Load(df, s.trial + static_cast<std::size_t>(i) * N), hn::Load(df, b)), df, b);
    }
    scale = hn::IfThenElse(better, hn::Div(sumlx, suml2), scale);
    best = hn::IfThenElse(better, hn::Mul(scale, sumlx), best);
  }
  // Codes are stored offset by nmax; an all-zero group has codes 0 and scale 0.
  const VF offset = hn::Set(df, static_cast<float>(kNmax));
  for (int i = 0; i < kN; ++i) {
    float* b = s.best + static_cast<std::size_t>(i) * N;
    hn::Store(hn::IfThenElseZero(hn::Not(zero_group), hn::Add(hn::Load(df, b), offset)), df, b);
  }
  hn::Store(hn::IfThenElseZero(hn::Not(zero_group), scale), df, s.scale);
}

// The sub-block searches of a run of super-blocks, N sub-blocks per vector; then each
// super-block's tail. `kSub` values per sub-block, `kSubs` sub-blocks per super-block.
template <int kSub, class Search, class Finish, class Fallback>
void QuantizeSuperBlocks(const float* x, std::size_t nb, std::uint8_t* out, std::size_t block_bytes,
                         const float* importance, Search search, Finish finish, Fallback fallback) {
  constexpr int kSubs = static_cast<int>(kSuperBlock) / kSub;
  constexpr std::size_t kChunk = 8;  // super-blocks per pass (their codes stay in L1)
  const DF df;
  const std::size_t N = hn::Lanes(df);
  Lanes s;
  float scales[kChunk * kSubs], mins[kChunk * kSubs];
  std::uint8_t L[kChunk * kSuperBlock];
  bool finite[kChunk];
  for (std::size_t b0 = 0; b0 < nb; b0 += kChunk) {
    const std::size_t count = std::min(kChunk, nb - b0);
    const float* xc = x + b0 * kSuperBlock;
    for (std::size_t b = 0; b < count; ++b) {
      finite[b] = AllFinite(xc + b * kSuperBlock, kSuperBlock) &&
                  (!importance || AllFinite(importance + (b0 + b) * kSuperBlock, kSuperBlock));
    }
    const std::size_t subs = count * kSubs;
    for (std::size_t s0 = 0; s0 < subs; s0 += N) {
      const std::size_t lanes = std::min(N, subs - s0);
      TransposeIn(xc + s0 * kSub, kSub, lanes, N, s.x);
      if (importance) TransposeIn(importance + b0 * kSuperBlock + s0 * kSub, kSub, lanes, N, s.w);
      search(s);
      for (std::size_t k = 0; k < lanes; ++k) {
        scales[s0 + k] = s.scale[k];
        mins[s0 + k] = s.the_min[k];
      }
      TransposeOut(s.best, kSub, lanes, N, L + s0 * kSub);
    }
    for (std::size_t b = 0; b < count; ++b) {
      const float* xb = xc + b * kSuperBlock;
      std::uint8_t* yb = out + (b0 + b) * block_bytes;
      if (!finite[b]) {
        fallback(xb, importance ? importance + (b0 + b) * kSuperBlock : nullptr, yb);
      } else {
        finish(xb, scales + b * kSubs, mins + b * kSubs, L + b * kSuperBlock, yb);
      }
    }
  }
}

// q4_K / q5_K weights: av_x + |x| with av_x = sqrt(mean of the sub-block's squares).
template <int kNmax>
void SearchK4(Lanes& s, float rmin, int nstep) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  VF sum_x2 = hn::Zero(df);
  for (int i = 0; i < 32; ++i) {
    const VF x = hn::Load(df, s.x + static_cast<std::size_t>(i) * N);
    sum_x2 = hn::Add(sum_x2, hn::Mul(x, x));
  }
  const VF av_x = hn::Sqrt(hn::Div(sum_x2, hn::Set(df, 32.0f)));
  for (int i = 0; i < 32; ++i) {
    const VF x = hn::Load(df, s.x + static_cast<std::size_t>(i) * N);
    hn::Store(hn::Add(av_x, hn::Abs(x)), df, s.w + static_cast<std::size_t>(i) * N);
  }
  FitAffine<32, kNmax, false>(s, rmin, 0.1f, nstep);
}

template <int kNmax>
void QuantizeK4(const float* x, std::size_t nb, std::uint8_t* out) {
  const std::size_t bytes = kNmax == 15 ? 144 : 176;
  const float rmin = kNmax == 15 ? -1.f : -0.5f;
  const int nstep = kNmax == 15 ? 20 : 15;
  QuantizeSuperBlocks<32>(
      x, nb, out, bytes, nullptr, [&](Lanes& s) { SearchK4<kNmax>(s, rmin, nstep); },
      [](const float* xb, const float* scales, const float* mins, std::uint8_t* L, std::uint8_t* yb) {
        detail::kq_k4_finish(xb, scales, mins, L, kNmax, yb);
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
  QuantizeSuperBlocks<16>(
      x, nb, out, 84, nullptr,
      [](Lanes& s) {
        const DF df;
        const std::size_t N = hn::Lanes(df);
        for (int i = 0; i < 16; ++i) {
          hn::Store(hn::Abs(hn::Load(df, s.x + static_cast<std::size_t>(i) * N)), df, s.w + static_cast<std::size_t>(i) * N);
        }
        FitAffine<16, 3, true>(s, -0.5f, 0.1f, 15);
      },
      [](const float* xb, const float* scales, const float* mins, std::uint8_t* L, std::uint8_t* yb) {
        detail::kq_q2_K_finish(xb, scales, mins, L, yb);
      },
      [](const float* xb, const float*, std::uint8_t* yb) { f32_q2_K_quantize_ref({xb, kSuperBlock}, {yb, 84}, {}); });
}

void Q6K(const float* x, std::size_t nb, std::uint8_t* out, const float* importance) {
  QuantizeSuperBlocks<16>(
      x, nb, out, 210, importance, [&](Lanes& s) { FitSymmetric16(s, importance != nullptr); },
      [](const float* xb, const float* scales, const float*, std::uint8_t* L, std::uint8_t* yb) {
        detail::kq_q6_K_finish(xb, scales, reinterpret_cast<std::int8_t*>(L), yb);
      },
      [](const float* xb, const float* qw, std::uint8_t* yb) {
        f32_q6_K_quantize_ref({xb, kSuperBlock}, {yb, 210}, qw ? std::span<const float>(qw, kSuperBlock) : std::span<const float>());
      });
}

// ---------------------------------------------------------------------------------------------
// Dequantize.

using DU8 = hn::Rebind<std::uint8_t, DF>;
using DI8 = hn::Rebind<std::int8_t, DF>;

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

// q4_K / q5_K scale and minimum codes of sub-block j (the reference's get_scale_min).
void ScaleMinK4(int j, const std::uint8_t* q, int& d, int& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
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
HWY_EXPORT(Q4K);
HWY_EXPORT(Q5K);
HWY_EXPORT(Q6K);
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

using kquants_simd::expect_dequantize;
using kquants_simd::expect_quantize;

void f32_q2_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  if (!importance.empty()) return f32_q2_K_quantize_ref(x, out, importance);
  const std::size_t nb = expect_quantize(x, out, importance, 84);
  HWY_DYNAMIC_DISPATCH(kquants_simd::Q2K)(x.data(), nb, out.data());
}
void f32_q3_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  f32_q3_K_quantize_ref(x, out, importance);
}
void f32_q4_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  if (!importance.empty()) return f32_q4_K_quantize_ref(x, out, importance);
  const std::size_t nb = expect_quantize(x, out, importance, 144);
  HWY_DYNAMIC_DISPATCH(kquants_simd::Q4K)(x.data(), nb, out.data());
}
void f32_q5_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  if (!importance.empty()) return f32_q5_K_quantize_ref(x, out, importance);
  const std::size_t nb = expect_quantize(x, out, importance, 176);
  HWY_DYNAMIC_DISPATCH(kquants_simd::Q5K)(x.data(), nb, out.data());
}
void f32_q6_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  const std::size_t nb = expect_quantize(x, out, importance, 210);
  HWY_DYNAMIC_DISPATCH(kquants_simd::Q6K)(x.data(), nb, out.data(), importance.empty() ? nullptr : importance.data());
}
void f32_q8_K_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  f32_q8_K_quantize_ref(x, out, importance);
}

#define ZP_KQUANT_DEQUANTIZE(T, Fn, bytes)                                                \
  void T##_f32_dequantize(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept { \
    const std::size_t nb = expect_dequantize(blocks, out, bytes);                          \
    HWY_DYNAMIC_DISPATCH(kquants_simd::Fn)(blocks.data(), nb, out.data());                \
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
