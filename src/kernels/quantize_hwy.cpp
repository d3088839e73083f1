// SIMD quantize / dequantize, compiled once per instruction set and chosen at run time
// (Highway's foreach_target / HWY_DYNAMIC_DISPATCH). Each function computes exactly what its
// scalar reference in quantize_ref.cpp computes, step for step, so the results are bit-identical;
// tests/unit/test_kernels_simd.cpp checks that on every target this CPU has.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quantize_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "kernels/convert_ref.hpp"
#include "zeropoint/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace zp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// round_to_integer, lane-wise. Values of magnitude >= 2^23, infinities and NaN pass through.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V RoundToInteger(D d, V v, Rounding mode) {
  if (mode == Rounding::half_even) return hn::Round(v);  // roundps: nearest, ties to even
  const V t = hn::Trunc(v);
  const V frac = hn::Abs(hn::Sub(v, t));
  const V half = hn::Set(d, 0.5f);
  const V toward_v = hn::CopySign(hn::Set(d, 1.0f), v);
  const auto tie = hn::Eq(frac, half);
  auto step_away = hn::Gt(frac, half);
  if (mode == Rounding::half_away) {
    step_away = hn::Or(step_away, tie);
  } else {  // half_up: a tie steps only for positive values
    step_away = hn::Or(step_away, hn::And(tie, hn::Gt(v, hn::Zero(d))));
  }
  const V rounded = hn::Add(t, hn::IfThenElseZero(step_away, toward_v));
  return hn::IfThenElse(hn::Lt(hn::Abs(v), hn::Set(d, 8388608.0f)), rounded, v);
}

// Loads N floats from f32, f16 (as raw bits) or bf16 (raw bits) memory.
template <class D>
HWY_INLINE hn::Vec<D> LoadAsFloat(D d, const float* p) {
  return hn::LoadU(d, p);
}
// binary16 widened with integer operations, exactly as f16_f32_convert_ref does. (Highway
// 1.0's emulated PromoteTo turns NaN into infinity on targets without F16C.)
template <class D>
HWY_INLINE hn::Vec<D> LoadAsFloat(D d, const hwy::float16_t* p) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<uint32_t, D> du;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const auto exp = hn::And(hn::ShiftRight<10>(h), hn::Set(du, 0x1Fu));
  const auto mant = hn::And(h, hn::Set(du, 0x3FFu));
  const auto normal = hn::Or(hn::ShiftLeft<23>(hn::Add(exp, hn::Set(du, 112u))), hn::ShiftLeft<13>(mant));
  const auto special = hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(mant));  // inf, NaN
  // Zero and subnormals: mant * 2^-24, exact in float32.
  const auto tiny = hn::BitCast(du, hn::Mul(hn::ConvertTo(d, hn::BitCast(hn::Rebind<int32_t, D>(), mant)),
                                            hn::Set(d, 5.9604644775390625e-8f)));
  auto bits = hn::IfThenElse(hn::Eq(exp, hn::Set(du, 0x1Fu)), special, normal);
  bits = hn::IfThenElse(hn::Eq(exp, hn::Zero(du)), tiny, bits);
  return hn::BitCast(d, hn::Or(bits, sign));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadAsFloat(D d, const hwy::bfloat16_t* p) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<uint32_t, D> du32;
  const auto bits = hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p));
  return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du32, bits)));
}

// One element the way the scalar reference sees it (for the tail that does not fill a vector).
HWY_INLINE float ScalarAsFloat(const float* p) { return *p; }
HWY_INLINE float ScalarAsFloat(const hwy::float16_t* p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, sizeof(bits));
  return f16_f32_convert_ref(bits);
}
HWY_INLINE float ScalarAsFloat(const hwy::bfloat16_t* p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, sizeof(bits));
  return bf16_f32_convert_ref(bits);
}

// q = clamp(round((x - offset) / scale) + zero_point, qmin, qmax) over one parameter group.
template <class In, class Code>
void Quantize(const In* HWY_RESTRICT x, size_t n, const AffineParams& params, const QuantizeSpec& spec,
              Code* HWY_RESTRICT q) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<Code, decltype(df)> dc;
  const size_t N = hn::Lanes(df);
  const AffineParams p = params;
  const QuantizeSpec s = spec;
  const bool has_offset = p.offset != 0.0f;
  const auto offset = hn::Set(df, p.offset);
  const auto scale = hn::Set(df, p.scale);
  const auto inverse = hn::Set(df, 1.0f / p.scale);
  const auto zero_point = hn::Set(df, static_cast<float>(p.zero_point));
  const auto lo = hn::Set(df, static_cast<float>(s.range.qmin));
  const auto hi = hn::Set(df, static_cast<float>(s.range.qmax));
  // Division is the slowest step. x * (1/scale) differs from x / scale by at most a couple of
  // ulps, and that can only change the code when the quotient sits next to a tie (k + 0.5); so
  // the product is used, and a vector with any lane that close to a tie (or NaN) is divided
  // after all. Quotients beyond 2^17 saturate every code type either way. The scale must keep
  // 1/scale a normal float for the error bound to hold; otherwise every vector divides.
  const bool divide_via_reciprocal =
      s.quotient == Quotient::divide && p.scale > 0x1p-125f && p.scale < 0x1p125f;
  const auto half = hn::Set(df, 0.5f);
  const auto tie_margin = hn::Set(df, 0x1p-20f);  // relative: 8 ulps of the quotient
  const auto saturating = hn::Set(df, 0x1p17f);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    auto v = LoadAsFloat(df, x + i);
    if (has_offset) v = hn::Sub(v, offset);
    if (s.quotient == Quotient::reciprocal) {
      v = hn::Mul(v, inverse);
    } else if (divide_via_reciprocal) {
      const auto y = hn::Mul(v, inverse);
      const auto magnitude = hn::Abs(y);
      const auto from_tie = hn::Abs(hn::Sub(hn::Abs(hn::Sub(y, hn::Trunc(y))), half));
      const auto safe = hn::Or(hn::Gt(from_tie, hn::Mul(magnitude, tie_margin)), hn::Gt(magnitude, saturating));
      v = hn::AllTrue(df, safe) ? y : hn::Div(v, scale);
    } else {
      v = hn::Div(v, scale);
    }
    auto r = hn::Add(RoundToInteger(df, v, s.rounding), zero_point);
    r = hn::IfThenElse(hn::IsNaN(v), zero_point, r);
    r = hn::Min(hn::Max(r, lo), hi);
    hn::StoreU(hn::DemoteTo(dc, hn::ConvertTo(di, r)), dc, q + i);
  }
  for (; i < n; ++i) q[i] = static_cast<Code>(quantize_value(ScalarAsFloat(x + i), p, s));
}

// x = float(q - zero_point) * scale + offset over one parameter group.
template <class Code>
void Dequantize(const Code* HWY_RESTRICT q, size_t n, const AffineParams& params, float* HWY_RESTRICT x) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<Code, decltype(df)> dc;
  const size_t N = hn::Lanes(df);
  const AffineParams p = params;
  const bool has_offset = p.offset != 0.0f;
  const auto offset = hn::Set(df, p.offset);
  const auto scale = hn::Set(df, p.scale);
  const auto zero_point = hn::Set(di, p.zero_point);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto centred = hn::Sub(hn::PromoteTo(di, hn::LoadU(dc, q + i)), zero_point);
    auto v = hn::Mul(hn::ConvertTo(df, centred), scale);
    if (has_offset) v = hn::Add(v, offset);
    hn::StoreU(v, df, x + i);
  }
  for (; i < n; ++i) x[i] = dequantize_value(q[i], p);
}

#define ZP_QUANTIZE_ENTRY(NAME, IN, CODE)                                                                  \
  void NAME(const IN* x, size_t n, const AffineParams& p, const QuantizeSpec& s, CODE* q) { \
    Quantize(x, n, p, s, q);                                                                               \
  }
ZP_QUANTIZE_ENTRY(F32QS8, float, int8_t)
ZP_QUANTIZE_ENTRY(F32QU8, float, uint8_t)
ZP_QUANTIZE_ENTRY(F32QS16, float, int16_t)
ZP_QUANTIZE_ENTRY(F32QU16, float, uint16_t)
ZP_QUANTIZE_ENTRY(F16QS8, hwy::float16_t, int8_t)
ZP_QUANTIZE_ENTRY(F16QU8, hwy::float16_t, uint8_t)
ZP_QUANTIZE_ENTRY(F16QS16, hwy::float16_t, int16_t)
ZP_QUANTIZE_ENTRY(F16QU16, hwy::float16_t, uint16_t)
ZP_QUANTIZE_ENTRY(BF16QS8, hwy::bfloat16_t, int8_t)
ZP_QUANTIZE_ENTRY(BF16QU8, hwy::bfloat16_t, uint8_t)
ZP_QUANTIZE_ENTRY(BF16QS16, hwy::bfloat16_t, int16_t)
ZP_QUANTIZE_ENTRY(BF16QU16, hwy::bfloat16_t, uint16_t)
#undef ZP_QUANTIZE_ENTRY

template <class In>
void Widen(const In* HWY_RESTRICT x, size_t n, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadAsFloat(df, x + i), df, out + i);
  for (; i < n; ++i) out[i] = ScalarAsFloat(x + i);
}
void F16F32(const hwy::float16_t* x, size_t n, float* out) { Widen(x, n, out); }
void BF16F32(const hwy::bfloat16_t* x, size_t n, float* out) { Widen(x, n, out); }

#define ZP_DEQUANTIZE_ENTRY(NAME, CODE) \
  void NAME(const CODE* q, size_t n, const AffineParams& p, float* x) { Dequantize(q, n, p, x); }
ZP_DEQUANTIZE_ENTRY(QS8F32, int8_t)
ZP_DEQUANTIZE_ENTRY(QU8F32, uint8_t)
ZP_DEQUANTIZE_ENTRY(QS16F32, int16_t)
ZP_DEQUANTIZE_ENTRY(QU16F32, uint16_t)
#undef ZP_DEQUANTIZE_ENTRY

}  // namespace zp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/dispatch.hpp"

namespace zp::kernels {

HWY_EXPORT(F32QS8);
HWY_EXPORT(F32QU8);
HWY_EXPORT(F32QS16);
HWY_EXPORT(F32QU16);
HWY_EXPORT(F16QS8);
HWY_EXPORT(F16QU8);
HWY_EXPORT(F16QS16);
HWY_EXPORT(F16QU16);
HWY_EXPORT(BF16QS8);
HWY_EXPORT(BF16QU8);
HWY_EXPORT(BF16QS16);
HWY_EXPORT(BF16QU16);
HWY_EXPORT(F16F32);
HWY_EXPORT(BF16F32);
HWY_EXPORT(QS8F32);
HWY_EXPORT(QU8F32);
HWY_EXPORT(QS16F32);
HWY_EXPORT(QU16F32);

// The dispatched boundary takes pointers and sizes; vector types never cross it.
#define ZP_QUANTIZE_PUBLIC(PUBLIC, IN_T, HWY_IN, CODE, EXPORTED)                                      \
  void PUBLIC(std::span<const IN_T> x, const AffineParams& p, const QuantizeSpec& s, std::span<CODE> q) noexcept { \
    detail::configure_dispatch_once();                                                                 \
    HWY_DYNAMIC_DISPATCH(EXPORTED)(reinterpret_cast<const HWY_IN*>(x.data()), x.size(), p, s, q.data());   \
  }
ZP_QUANTIZE_PUBLIC(f32_qs8_quantize, float, float, std::int8_t, F32QS8)
ZP_QUANTIZE_PUBLIC(f32_qu8_quantize, float, float, std::uint8_t, F32QU8)
ZP_QUANTIZE_PUBLIC(f32_qs16_quantize, float, float, std::int16_t, F32QS16)
ZP_QUANTIZE_PUBLIC(f32_qu16_quantize, float, float, std::uint16_t, F32QU16)
ZP_QUANTIZE_PUBLIC(f16_qs8_quantize, std::uint16_t, hwy::float16_t, std::int8_t, F16QS8)
ZP_QUANTIZE_PUBLIC(f16_qu8_quantize, std::uint16_t, hwy::float16_t, std::uint8_t, F16QU8)
ZP_QUANTIZE_PUBLIC(f16_qs16_quantize, std::uint16_t, hwy::float16_t, std::int16_t, F16QS16)
ZP_QUANTIZE_PUBLIC(f16_qu16_quantize, std::uint16_t, hwy::float16_t, std::uint16_t, F16QU16)
ZP_QUANTIZE_PUBLIC(bf16_qs8_quantize, std::uint16_t, hwy::bfloat16_t, std::int8_t, BF16QS8)
ZP_QUANTIZE_PUBLIC(bf16_qu8_quantize, std::uint16_t, hwy::bfloat16_t, std::uint8_t, BF16QU8)
ZP_QUANTIZE_PUBLIC(bf16_qs16_quantize, std::uint16_t, hwy::bfloat16_t, std::int16_t, BF16QS16)
ZP_QUANTIZE_PUBLIC(bf16_qu16_quantize, std::uint16_t, hwy::bfloat16_t, std::uint16_t, BF16QU16)
#undef ZP_QUANTIZE_PUBLIC

void f16_f32_convert(std::span<const std::uint16_t> x, std::span<float> out) noexcept {
  detail::configure_dispatch_once();
  HWY_DYNAMIC_DISPATCH(F16F32)(reinterpret_cast<const hwy::float16_t*>(x.data()), x.size(), out.data());
}

void bf16_f32_convert(std::span<const std::uint16_t> x, std::span<float> out) noexcept {
  detail::configure_dispatch_once();
  HWY_DYNAMIC_DISPATCH(BF16F32)(reinterpret_cast<const hwy::bfloat16_t*>(x.data()), x.size(), out.data());
}

#define ZP_DEQUANTIZE_PUBLIC(PUBLIC, CODE, EXPORTED)                                              \
  void PUBLIC(std::span<const CODE> q, const AffineParams& p, std::span<float> x) noexcept { \
    detail::configure_dispatch_once();                                                         \
    HWY_DYNAMIC_DISPATCH(EXPORTED)(q.data(), q.size(), p, x.data());                            \
  }
ZP_DEQUANTIZE_PUBLIC(qs8_f32_dequantize, std::int8_t, QS8F32)
ZP_DEQUANTIZE_PUBLIC(qu8_f32_dequantize, std::uint8_t, QU8F32)
ZP_DEQUANTIZE_PUBLIC(qs16_f32_dequantize, std::int16_t, QS16F32)
ZP_DEQUANTIZE_PUBLIC(qu16_f32_dequantize, std::uint16_t, QU16F32)
#undef ZP_DEQUANTIZE_PUBLIC

}  // namespace zp::kernels
#endif  // HWY_ONCE
