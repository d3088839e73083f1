// SIMD quantize / dequantize, compiled once per instruction set and chosen at run time
// (Highway's foreach_target / HWY_DYNAMIC_DISPATCH). Each function computes exactly what its
// scalar reference in quantize_ref.cpp computes, step for step, so the results are bit-identical;
// tests/unit/test_kernels_simd.cpp checks that on every target this CPU has.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quantize_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/convert_ref.hpp"
#include "zeropoint/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace zp::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Defined in reduce_hwy.cpp for each target.
MinMax MinMaxF32(const float* HWY_RESTRICT x, size_t n, bool skip_nonfinite);

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

// quantize_value for vectors of floats with one parameter set; constants are set up once.
//
// Two ways to get a vector's codes:
// - Quick: one multiplication by 1/scale (or the division), a clamp, and a conversion with
//   round-to-nearest-even. It also reports, lane by lane, whether that code is certainly the
//   reference's: x * (1/scale) is within |y| * 2^-23 of x / scale, which can only change the
//   code when the quotient sits next to a tie k + 0.5; and the conversion's ties-to-even differs
//   from the other rounding modes only on exact ties. NaN and out-of-range conversions fail
//   the test as well. Random data almost never fails it.
// - Exact: the reference formula step for step, for a batch with any uncertain lane.
class VectorQuantizer {
 public:
  static constexpr bool kMinMaxKeepNaN = HWY_ARCH_X86 && HWY_TARGET != HWY_EMU128 && HWY_TARGET != HWY_SCALAR;
  using DF = hn::ScalableTag<float>;
  using DI = hn::Rebind<int32_t, DF>;
  using V = hn::Vec<DF>;
  using VI = hn::Vec<DI>;
  using M = hn::Mask<DF>;

  // `saturating_store`: the caller narrows the int32 codes with saturation to the full range of
  // a byte code type (x86 packs), so a clamp at that range's end can be left to the store.
  // `floor_after_pack`: the caller also raises the packed signed bytes to qmin (one byte max per
  // four vectors), so the lower clamp can be left out for a narrow range (qmin = -127) too.
  VectorQuantizer(const AffineParams& p, const QuantizeSpec& s, bool saturating_store = false, bool is_signed = true,
                  bool floor_after_pack = false)
      : spec_(s),
        has_offset_(p.offset != 0.0f),
        offset_(hn::Set(df_, p.offset)),
        zero_point_(hn::Set(df_, static_cast<float>(p.zero_point))),
        zero_point_i_(hn::Set(DI(), p.zero_point)),
        lo_(hn::Set(df_, static_cast<float>(s.range.qmin))),
        hi_(hn::Set(df_, static_cast<float>(s.range.qmax))),
        // Rounding commutes with clamping to integers: clamp(round(y) + zp) = round(clamp(y)) + zp
        // with the quotient clamped to [qmin - zp, qmax - zp].
        quotient_lo_(hn::Set(df_, static_cast<float>(s.range.qmin - p.zero_point))),
        quotient_hi_(hn::Set(df_, static_cast<float>(s.range.qmax - p.zero_point))) {
    const int bound = std::max(std::abs(s.range.qmin - p.zero_point), std::abs(s.range.qmax - p.zero_point));
    // Margin for the quotient's error, twice its bound (docs/math.md §10): a constant one while
    // the clamped quotient is small (for int8, one batch of four vectors in about 250 has a lane
    // that close to a tie, against one in 60 at 8x the bound), a relative one for 16-bit codes.
    approximate_relative_margin_ = bound > 1024;
    const float margin = approximate_relative_margin_ ? 0.0f : static_cast<float>(bound + 1) * 0x1p-22f;
    approximate_limit_ = hn::Set(df_, 0.5f - margin);
    // Exact quotients: only exact ties need the reference's rounding rule (|d| = 0.5 fails
    // `|d| < limit` unless the rule is the conversion's own ties-to-even).
    exact_limit_ = hn::Set(df_, s.rounding == Rounding::half_even ? 0x1.000002p-1f : 0.5f);
    // The store's saturation may replace a clamp only where NaN still reaches the test (x86
    // min/max keep NaN in their second operand; the emulated targets' do not) and while the
    // int32 sum code + zero point cannot overflow: unclamped, a code that passes the test lies
    // in [-2^31, 2^31 - 128].
    const int type_min = is_signed ? -128 : 0, type_max = is_signed ? 127 : 255;
    clamp_lo_ = !(kMinMaxKeepNaN && saturating_store && p.zero_point >= 0 && s.range.qmin == type_min);
    if (clamp_lo_ && kMinMaxKeepNaN && saturating_store && floor_after_pack && is_signed && p.zero_point >= 0 &&
        s.range.qmin > type_min) {
      // The packs saturate below at -128, then the byte max lifts [-128, qmin) to qmin: the clamp.
      clamp_lo_ = false;
      has_byte_floor_ = true;
      byte_floor_ = s.range.qmin;
    }
    clamp_hi_ = !(kMinMaxKeepNaN && saturating_store && p.zero_point <= 127 && s.range.qmax == type_max);
    has_zero_point_ = p.zero_point != 0;
    SetScale(p.scale);
  }

  // Another group with the same zero point and offset: only the scale changes.
  HWY_INLINE void SetScale(float scale) {
    scale_ = hn::Set(df_, scale);
    inverse_ = hn::Set(df_, 1.0f / scale);
    // 1/scale must be a normal float for the error bound above; else every quotient divides.
    multiply_ = spec_.quotient == Quotient::reciprocal || (scale > 0x1p-125f && scale < 0x1p125f);
    const bool approximate = spec_.quotient == Quotient::divide && multiply_;
    relative_margin_ = approximate && approximate_relative_margin_;
    limit_ = approximate ? approximate_limit_ : exact_limit_;
  }


  // The same with the quantizer's choices as compile-time constants: loops call WithFlags once
  // and run on the returned choices (a loop that tests them per vector is a third slower).
  template <bool kClampLo, bool kClampHi, bool kRelativeMargin, bool kAddZeroPoint = true>
  struct Flags {};
  template <bool kClampLo, bool kClampHi, bool kRelativeMargin, bool kAddZeroPoint>
  HWY_INLINE VI QuickCodes(Flags<kClampLo, kClampHi, kRelativeMargin, kAddZeroPoint> flags, V y, M& certain) const {
    V distance;
    const VI code = QuickDistance(flags, y, distance);
    certain = hn::And(certain, Certain(distance));
    return code;
  }
  // The codes, and in `distance` the quantity that Certain() tests.
  template <bool kClampLo, bool kClampHi, bool kRelativeMargin, bool kAddZeroPoint>
  HWY_INLINE VI QuickDistance(Flags<kClampLo, kClampHi, kRelativeMargin, kAddZeroPoint>, V y, V& distance) const {
    V c = y;  // bound first: x86 min/max return their second operand when either is NaN
    if constexpr (kClampHi) c = hn::Min(quotient_hi_, c);
    if constexpr (kClampLo) c = hn::Max(quotient_lo_, c);
    const VI code = NearestIntUnchecked(c);
    // NaN, or a quotient beyond int32 (unclamped side), gives a distance that fails the test.
    distance = hn::Sub(c, hn::ConvertTo(df_, code));
    if constexpr (kRelativeMargin) distance = hn::MulAdd(hn::Abs(c), hn::Set(df_, 0x1p-20f), hn::Abs(distance));
    if constexpr (!kMinMaxKeepNaN) distance = hn::IfThenElse(hn::IsNaN(y), y, distance);
    if constexpr (kAddZeroPoint) return hn::Add(code, zero_point_i_);
    return code;
  }
  // Whether the codes with these distances are certainly the reference's: |distance| < limit,
  // NaN failing. Magnitudes compare as integers, whose maximum keeps NaN (above infinity).
  // (AVX-512's vrangeps would take the largest magnitude in one step, but it drops NaN.)
  HWY_INLINE M Certain(V d) const { return Certain(d, d, d, d); }
  HWY_INLINE M Certain(V d0, V d1, V d2, V d3) const {
    const hn::RebindToSigned<DF> di;
    const auto magnitude = [&](V d) { return hn::And(hn::BitCast(di, d), hn::Set(di, 0x7fffffff)); };
    const auto m = hn::Max(hn::Max(magnitude(d0), magnitude(d1)), hn::Max(magnitude(d2), magnitude(d3)));
    return hn::RebindMask(df_, hn::Lt(m, hn::BitCast(di, limit_)));
  }
  // Quick with compile-time choices, where they reduce to a multiplication (no offset, normal
  // 1/scale): f(flags) with flags a Flags<...>.
  template <class F>
  HWY_INLINE auto WithFlags(F f) const {
    if (relative_margin_) {
      if (clamp_lo_ && clamp_hi_) return f(Flags<true, true, true>());
      if (clamp_lo_) return f(Flags<true, false, true>());
      if (clamp_hi_) return f(Flags<false, true, true>());
      return f(Flags<false, false, true>());
    }
    if (clamp_lo_ && clamp_hi_) return f(Flags<true, true, false>());
    if (clamp_lo_) return f(Flags<true, false, false>());
    if (clamp_hi_) return f(Flags<false, true, false>());
    return f(Flags<false, false, false>());
  }
  // Quick for a quotient y = v * inverse computed by the caller (a scale per vector), for a
  // quantizer set up with a normal scale (so its test is the one for multiplied quotients).
  HWY_INLINE VI QuickCodes(V y, M& certain) const {
    return WithFlags([&](auto flags) { return QuickCodes(flags, y, certain); });
  }
  // Codes as int32 lanes; clears the lanes of `certain` whose code may differ from Exact's.
  HWY_INLINE VI Quick(V v, M& certain) const {
    if (has_offset_) v = hn::Sub(v, offset_);
    return QuickCodes(multiply_ ? hn::Mul(v, inverse_) : hn::Div(v, scale_), certain);
  }
  // WithFlags where the margin is known to be constant (byte codes).
  template <class F>
  HWY_INLINE void WithClampFlags(F f) const {
    if (has_zero_point_) {
      if (clamp_lo_ && clamp_hi_) return f(Flags<true, true, false>());
      if (clamp_lo_) return f(Flags<true, false, false>());
      if (clamp_hi_) return f(Flags<false, true, false>());
      return f(Flags<false, false, false>());
    }
    if (clamp_lo_ && clamp_hi_) return f(Flags<true, true, false, false>());
    if (clamp_lo_) return f(Flags<true, false, false, false>());
    if (clamp_hi_) return f(Flags<false, true, false, false>());
    return f(Flags<false, false, false, false>());
  }
  bool relative_margin() const { return relative_margin_; }
  // Whether the caller must raise packed bytes to byte_floor() (see floor_after_pack).
  bool has_byte_floor() const { return has_byte_floor_; }
  int byte_floor() const { return byte_floor_; }
  // Whether Quick(v) is QuickCodes(v * 1/scale).
  bool multiplies() const { return !has_offset_ && multiply_; }
  V inverse() const { return inverse_; }

  // The reference formula, lane by lane.
  HWY_INLINE VI Exact(V v) const { return Exact(v, scale_, inverse_); }
  HWY_INLINE VI Exact(V v, V scale, V inverse) const {
    if (has_offset_) v = hn::Sub(v, offset_);
    v = spec_.quotient == Quotient::reciprocal ? hn::Mul(v, inverse) : hn::Div(v, scale);
    V r = hn::Add(RoundToInteger(df_, v, spec_.rounding), zero_point_);
    r = hn::IfThenElse(hn::IsNaN(v), zero_point_, r);
    r = hn::Min(hn::Max(r, lo_), hi_);
    return hn::ConvertTo(DI(), r);
  }

  HWY_INLINE VI operator()(V v) const {
    M certain = hn::FirstN(df_, hn::Lanes(df_));
    const VI code = Quick(v, certain);
    return hn::AllTrue(df_, certain) ? code : Exact(v);
  }

 private:
  // float -> int32 with ties to even (the default rounding mode), without Highway's fix-up of
  // out-of-range lanes: Quick's test catches those.
  HWY_INLINE VI NearestIntUnchecked(V v) const {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    return VI{_mm512_cvtps_epi32(v.raw)};
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
    return VI{_mm256_cvtps_epi32(v.raw)};
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
    return VI{_mm_cvtps_epi32(v.raw)};
#else
    return hn::NearestInt(v);
#endif
  }

  DF df_;
  QuantizeSpec spec_;
  bool has_offset_;
  bool multiply_ = true;
  bool relative_margin_ = false, approximate_relative_margin_ = false;
  bool clamp_lo_ = true, clamp_hi_ = true;
  bool has_byte_floor_ = false;
  int byte_floor_ = 0;
  bool has_zero_point_ = true;
  V offset_, scale_, inverse_, zero_point_;
  VI zero_point_i_;
  V lo_, hi_, quotient_lo_, quotient_hi_, limit_, approximate_limit_, exact_limit_;
};

// Four vectors of int32 codes into one vector of bytes in order, and its store: the only
// instruction-set-specific code here (Highway 1.0 has no ordered two-vector demotion).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define ZP_PACK_FOUR 1
using RawBytes = __m512i;
template <bool is_signed>
HWY_INLINE RawBytes PackFour(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_packs_epi32(a, b), cd = _mm512_packs_epi32(c, d);  // interleaved per 128 bits
  const __m512i bytes = is_signed ? _mm512_packs_epi16(ab, cd) : _mm512_packus_epi16(ab, cd);
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes);
}
HWY_INLINE void StoreBytes(void* p, RawBytes v, bool streaming) {
  if (streaming) _mm512_stream_si512(static_cast<__m512i*>(p), v);
  else _mm512_storeu_si512(p, v);
}
HWY_INLINE RawBytes BytesOf(int value) { return _mm512_set1_epi8(static_cast<char>(value)); }
HWY_INLINE RawBytes FloorBytes(RawBytes v, RawBytes floor) { return _mm512_max_epi8(v, floor); }
// The low nibbles of 4N byte codes, two per byte (the earlier code in the low nibble).
HWY_INLINE void StoreNibbles(void* p, RawBytes bytes) {
  const __m512i low = _mm512_set1_epi16(0x000F);
  const __m512i pairs = _mm512_ternarylogic_epi32(low, bytes, _mm512_srli_epi16(bytes, 4), 0xCA);  // low ? bytes : >> 4
  _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtepi16_epi8(pairs));
}
#elif HWY_TARGET == HWY_AVX2
#define ZP_PACK_FOUR 1
using RawBytes = __m256i;
template <bool is_signed>
HWY_INLINE RawBytes PackFour(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);  // interleaved per 128 bits
  const __m256i bytes = is_signed ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
HWY_INLINE void StoreBytes(void* p, RawBytes v, bool streaming) {
  if (streaming) _mm256_stream_si256(static_cast<__m256i*>(p), v);
  else _mm256_storeu_si256(static_cast<__m256i*>(p), v);
}
HWY_INLINE RawBytes BytesOf(int value) { return _mm256_set1_epi8(static_cast<char>(value)); }
HWY_INLINE RawBytes FloorBytes(RawBytes v, RawBytes floor) { return _mm256_max_epi8(v, floor); }
HWY_INLINE void StoreNibbles(void* p, RawBytes bytes) {
  const __m256i pairs = _mm256_or_si256(_mm256_and_si256(bytes, _mm256_set1_epi16(0x000F)),
                                        _mm256_and_si256(_mm256_srli_epi16(bytes, 4), _mm256_set1_epi16(0x00F0)));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(pairs, pairs), 0x08);  // qwords 0, 2
  _mm_storeu_si128(static_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
#else
#define ZP_PACK_FOUR 0
#endif

// pack_ref(codes, 4, packed) for an even count: codes 2j and 2j+1 in the low and high nibble.
HWY_INLINE void PackNibbles(const uint8_t* HWY_RESTRICT codes, size_t n, uint8_t* HWY_RESTRICT packed) {
  const hn::ScalableTag<uint16_t> d16;
  const hn::Rebind<uint8_t, decltype(d16)> d8;
  const size_t N = hn::Lanes(d16);
  size_t j = 0;  // pairs
  for (; j + N <= n / 2; j += N) {
    const auto pairs = hn::LoadU(d16, reinterpret_cast<const uint16_t*>(codes + 2 * j));
    const auto nibbles = hn::Or(hn::And(pairs, hn::Set(d16, 0x000F)), hn::And(hn::ShiftRight<4>(pairs), hn::Set(d16, 0x00F0)));
    hn::StoreU(hn::TruncateTo(d8, nibbles), d8, packed + j);
  }
  for (; j < n / 2; ++j) packed[j] = static_cast<uint8_t>((codes[2 * j] & 0xFu) | (codes[2 * j + 1] << 4));
}

// unpack_ref(packed, 4, is_signed, codes) for an even count: byte j's low and high nibbles
// become codes 2j and 2j+1, sign-extended (two's complement) when is_signed.
HWY_INLINE void UnpackNibbles(const uint8_t* HWY_RESTRICT packed, size_t n, bool is_signed, uint8_t* HWY_RESTRICT codes) {
  const hn::ScalableTag<uint16_t> d16;
  const size_t N = hn::Lanes(d16);
  size_t j = 0;  // packed bytes
#if HWY_TARGET != HWY_SCALAR  // (one 16-bit lane cannot be viewed as bytes)
  const hn::Rebind<uint8_t, decltype(d16)> d8;
  for (; j + N <= n / 2; j += N) {
    const hn::Repartition<uint8_t, decltype(d16)> dbytes;
    const auto w = hn::PromoteTo(d16, hn::LoadU(d8, packed + j));
    auto pairs = hn::BitCast(dbytes, hn::Or(hn::And(w, hn::Set(d16, 0x000F)), hn::ShiftLeft<4>(hn::And(w, hn::Set(d16, 0x00F0)))));
    if (is_signed) pairs = hn::Sub(hn::Xor(pairs, hn::Set(dbytes, 0x08)), hn::Set(dbytes, 0x08));
    hn::StoreU(pairs, dbytes, codes + 2 * j);
  }
#else
  (void)N;
#endif
  for (; j < n / 2; ++j) {
    const unsigned lo = packed[j] & 0xFu, hi = packed[j] >> 4;
    codes[2 * j] = static_cast<uint8_t>(is_signed ? (lo ^ 8u) - 8u : lo);
    codes[2 * j + 1] = static_cast<uint8_t>(is_signed ? (hi ^ 8u) - 8u : hi);
  }
}

// Spans at least this long (16 MiB of float32) go to memory with streaming stores.
[[maybe_unused]] constexpr size_t kStreamingElements = size_t{1} << 22;

#if ZP_PACK_FOUR
// Where a span's input is expected to come from, which decides the stores and what is fetched
// ahead. Without help the loop waits on the last-level cache: the hardware prefetchers alone feed
// it more slowly than it computes.
enum class Memory {
  stream,     // far beyond the caches: streaming stores
  next_rows,  // a row of a larger tensor, in cache after its range pass: fetch 16 KiB ahead,
              // past its end, so that memory brings the next rows meanwhile
  cache,      // a whole span in the last-level cache (its range pass just read it): 4 KiB ahead
};

// Byte codes of x[i, n) four vectors at a time with `quick`, or with the reference formula where
// any lane is uncertain; returns where it stopped (fewer than 4N values left).
template <Memory kMemory, bool kFloor, class In, class Code, class Quick>
HWY_INLINE size_t QuantizeFours(const In* HWY_RESTRICT x, size_t i, size_t n, Code* HWY_RESTRICT q,
                                const VectorQuantizer& quantizer, Quick quick) {
  const hn::ScalableTag<float> df;
  constexpr size_t N = hn::MaxLanes(decltype(df)());
  // In a register before the loop: the byte stores may alias the quantizer, so a member read in
  // the loop would be reloaded every iteration.
  [[maybe_unused]] const RawBytes floor = BytesOf(quantizer.byte_floor());
  for (; i + 4 * N <= n; i += 4 * N) {
    if constexpr (kMemory != Memory::stream) {
      constexpr size_t kAhead = kMemory == Memory::next_rows ? 16384 : 4096;
      for (size_t line = 0; line < 4 * N * sizeof(In); line += 64) {
        hwy::Prefetch(reinterpret_cast<const char*>(x + i) + kAhead + line);
      }
    }
    hn::Vec<decltype(df)> d0, d1, d2, d3;
    auto c0 = quick(LoadAsFloat(df, x + i), d0);
    auto c1 = quick(LoadAsFloat(df, x + i + N), d1);
    auto c2 = quick(LoadAsFloat(df, x + i + 2 * N), d2);
    auto c3 = quick(LoadAsFloat(df, x + i + 3 * N), d3);
    if (HWY_UNLIKELY(!hn::AllTrue(df, quantizer.Certain(d0, d1, d2, d3)))) {
      c0 = quantizer.Exact(LoadAsFloat(df, x + i));
      c1 = quantizer.Exact(LoadAsFloat(df, x + i + N));
      c2 = quantizer.Exact(LoadAsFloat(df, x + i + 2 * N));
      c3 = quantizer.Exact(LoadAsFloat(df, x + i + 3 * N));
    }
    auto bytes = PackFour<std::is_signed_v<Code>>(c0.raw, c1.raw, c2.raw, c3.raw);
    if constexpr (kFloor) bytes = FloorBytes(bytes, floor);
    StoreBytes(q + i, bytes, kMemory == Memory::stream);
  }
  return i;
}
#endif

// q = clamp(round((x - offset) / scale) + zero_point, qmin, qmax) over one parameter group.
template <class In, class Code>
void Quantize(const In* HWY_RESTRICT x, size_t n, const AffineParams& params, const QuantizeSpec& spec,
              Code* HWY_RESTRICT q) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<Code, decltype(df)> dc;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
#if ZP_PACK_FOUR
  if constexpr (sizeof(Code) == 1) {
    const VectorQuantizer quantizer(params, spec, /*saturating_store=*/true, std::is_signed_v<Code>,
                                    /*floor_after_pack=*/true);
    // Byte codes four vectors at a time: two packs and one permute per 4N codes, instead of
    // DemoteTo's packs and permute per N. The codes are already inside the code range, so the
    // packs' saturation never changes a value. Outputs far beyond the caches use streaming
    // stores (no read-for-ownership of lines not read back soon), which need aligned targets.
    const bool streaming = n >= kStreamingElements;
    if (streaming) {
      for (; i + N <= n && (reinterpret_cast<std::uintptr_t>(q + i) % sizeof(RawBytes)) != 0; ++i) {
        q[i] = static_cast<Code>(quantize_value(ScalarAsFloat(x + i), params, spec));
      }
    }
    // A span up to 1 MiB is usually one group of a larger tensor (a row, quantized from cache
    // right after its range pass): fetching what follows it lets memory work meanwhile
    // (per-channel int8 from DRAM: 58 -> 70% of the stream). A longer one sits in the last-level
    // cache (4 MiB, one thread: 67-70 -> 74-78 GB/s).
    const Memory memory = streaming ? Memory::stream : n * sizeof(In) <= (size_t{1} << 20) ? Memory::next_rows
                                                                                        : Memory::cache;
    auto run_floored = [&](auto floor, auto quick) {
      constexpr bool kFloor = decltype(floor)::value;
      switch (memory) {
        case Memory::stream: i = QuantizeFours<Memory::stream, kFloor>(x, i, n, q, quantizer, quick); break;
        case Memory::next_rows: i = QuantizeFours<Memory::next_rows, kFloor>(x, i, n, q, quantizer, quick); break;
        case Memory::cache: i = QuantizeFours<Memory::cache, kFloor>(x, i, n, q, quantizer, quick); break;
      }
    };
    auto run = [&](auto quick) {
      if (quantizer.has_byte_floor()) run_floored(std::true_type(), quick);
      else run_floored(std::false_type(), quick);
    };
    if (quantizer.multiplies() && !quantizer.relative_margin()) {
      const auto inverse = quantizer.inverse();
      quantizer.WithClampFlags([&](auto flags) {
        run([&quantizer, inverse, flags](auto v, auto& distance) {
          return quantizer.QuickDistance(flags, hn::Mul(v, inverse), distance);
        });
      });
    } else {
      run([&quantizer, &df](auto v, auto& distance) {
        // The general Quick: its certainty folded into a distance that passes or fails.
        auto certain = hn::FirstN(df, hn::Lanes(df));
        const auto codes = quantizer.Quick(v, certain);
        distance = hn::IfThenElseZero(certain, hn::Set(df, 0.0f));
        distance = hn::IfThenElse(certain, distance, hn::Set(df, std::numeric_limits<float>::infinity()));
        return codes;
      });
    }
    if (streaming) _mm_sfence();  // order the streaming stores before anything that follows
  }
#endif
  const VectorQuantizer quantizer(params, spec);
  for (; i + N <= n; i += N) hn::StoreU(hn::DemoteTo(dc, quantizer(LoadAsFloat(df, x + i))), dc, q + i);
  for (; i < n; ++i) q[i] = static_cast<Code>(quantize_value(ScalarAsFloat(x + i), params, spec));
}

// choose_params for a batch of groups at once, in double lanes, step for step as
// derive_params computes it (so the results are the same bits).
HWY_INLINE void ChooseParams(const float* mins, const float* maxs, size_t count, const BlockScheme& b, float* scale,
                             int32_t* zero_point, float* offset) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const hn::Rebind<int32_t, decltype(dd)> di;
  const size_t N = hn::Lanes(dd);
  const auto zero = hn::Zero(dd);
  const auto one_f = hn::Set(df, 1.0f);
  const auto divisor = hn::Set(dd, b.divisor);
  const auto qmin = hn::Set(dd, static_cast<double>(b.qmin));
  const auto qmax = hn::Set(dd, static_cast<double>(b.qmax));
  const auto flt_min = hn::Set(dd, static_cast<double>(std::numeric_limits<float>::min()));
  size_t i = 0;
  for (; i + N <= count; i += N) {
    auto lo = hn::PromoteTo(dd, hn::LoadU(df, mins + i));
    auto hi = hn::PromoteTo(dd, hn::LoadU(df, maxs + i));
    if (!b.float_offset) {
      lo = hn::Min(lo, zero);
      hi = hn::Max(hi, zero);
    }
    const auto exact = b.symmetric ? hn::Div(hn::Max(hn::Neg(lo), hi), divisor) : hn::Div(hn::Sub(hi, lo), divisor);
    const auto scale_f = hn::DemoteTo(df, exact);
    const auto scale_d = hn::PromoteTo(dd, scale_f);
    const auto degenerate = hn::Not(hn::Ge(scale_d, flt_min));
    const auto degenerate_f = hn::Not(hn::Ge(scale_f, hn::Set(df, std::numeric_limits<float>::min())));
    hn::StoreU(hn::IfThenElse(degenerate_f, one_f, scale_f), df, scale + i);
    if (b.float_offset) {
      const auto off = hn::IfThenElse(degenerate, hn::Sub(lo, qmin), hn::Sub(lo, hn::Mul(qmin, scale_d)));
      hn::StoreU(hn::DemoteTo(df, off), df, offset + i);
      hn::StoreU(hn::Zero(di), di, zero_point + i);
    } else if (b.symmetric) {
      hn::StoreU(hn::Set(di, b.symmetric_zero_point), di, zero_point + i);
      hn::StoreU(hn::Zero(df), df, offset + i);
    } else {
      const auto zp = hn::Min(hn::Max(hn::Sub(qmin, hn::Round(hn::Div(lo, scale_d))), qmin), qmax);
      hn::StoreU(hn::DemoteTo(di, hn::IfThenZeroElse(degenerate, zp)), di, zero_point + i);
      hn::StoreU(hn::Zero(df), df, offset + i);
    }
  }
  for (; i < count; ++i) {
    const AffineParams p = choose_params(mins[i], maxs[i], b.scheme);
    scale[i] = p.scale;
    zero_point[i] = p.zero_point;
    offset[i] = p.offset;
  }
}

// QuantizeBlocks for symmetric schemes over whole vectors, the common case (int4:block=32):
// the range of a symmetric block is its largest magnitude, found with integer maxima of the
// values' magnitude bits (NaN and infinity come out at or above 0x7f800000, so the finiteness
// test is free), and only the scale varies from block to block.
constexpr size_t kMaxBatchBlocks = 64;
constexpr size_t kMaxBatchValues = 8192;

// With kNibbles, q receives the codes packed two per byte (block is even), as pack_ref does.
template <class Code, bool kNibbles = false>
bool QuantizeSymmetricBlocks(const float* HWY_RESTRICT x, size_t blocks, size_t block, const BlockScheme& b,
                             float* HWY_RESTRICT scale, int32_t* HWY_RESTRICT zero_point, float* HWY_RESTRICT offset,
                             Code* HWY_RESTRICT q) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<Code, decltype(df)> dc;
  const size_t N = hn::Lanes(df);
  // Batches of blocks small enough to be re-read from L1 for their codes.
  const size_t batch = std::max<size_t>(1, std::min(kMaxBatchBlocks, kMaxBatchValues / block));
  // The block of element i of a batch is i * block_magic >> 32: exact for i < 2^13, block <= 2^13.
  const uint64_t block_magic = (uint64_t{1} << 32) / block + 1;
  HWY_ALIGN uint32_t amax_bits[kMaxBatchBlocks + hn::MaxLanes(du)] = {};
  HWY_ALIGN float scales[kMaxBatchBlocks + hn::MaxLanes(df)];
  HWY_ALIGN float inverses[kMaxBatchBlocks + hn::MaxLanes(df)];
  const auto magnitude = hn::Set(du, 0x7fffffffu);
  constexpr bool kPackFour = ZP_PACK_FOUR && sizeof(Code) == 1;
  const VectorQuantizer quantizer(AffineParams{1.0f, b.symmetric_zero_point, 0.0f}, b.spec, kPackFour,
                                  std::is_signed_v<Code>);
  const bool reciprocal = b.spec.quotient == Quotient::reciprocal;
  const auto divisor = hn::Set(df, static_cast<float>(b.divisor));
  uint32_t largest = 0;
  for (size_t first = 0; first < blocks; first += batch) {
    const size_t count = std::min(batch, blocks - first);
    const float* HWY_RESTRICT xb = x + first * block;
    Code* HWY_RESTRICT qb = q + (kNibbles ? first * block / 2 : first * block);
    const size_t n = count * block;
    for (size_t k = 0; k < count; ++k) {
      const float* HWY_RESTRICT values = xb + k * block;
      auto m = hn::And(hn::BitCast(du, hn::LoadU(df, values)), magnitude);
      for (size_t i = N; i < block; i += N) {
        m = hn::Max(m, hn::And(hn::BitCast(du, hn::LoadU(df, values + i)), magnitude));
      }
      amax_bits[k] = hn::GetLane(hn::MaxOfLanes(du, m));
    }
    // derive_params for a symmetric scheme, N blocks at a time: amax = max(-min(lo, 0),
    // max(hi, 0)) over the block, scale = amax / divisor (1 for a degenerate range). The float
    // division gives the same bits as derive_params' double one rounded to float (double
    // rounding is innocuous for a quotient of floats when 53 >= 2 * 24 + 2).
    bool all_normal = true;
    for (size_t k = 0; k < count; k += N) {
      const auto bits = hn::Load(du, amax_bits + k);
      largest = std::max(largest, hn::GetLane(hn::MaxOfLanes(du, bits)));
      const auto exact = hn::Div(hn::BitCast(df, bits), divisor);
      const auto s = hn::IfThenElse(hn::Ge(exact, hn::Set(df, std::numeric_limits<float>::min())), exact,
                                    hn::Set(df, 1.0f));
      // Quotients by the reciprocal of a scale beyond 2^+-125 lose the error bound: divide.
      const auto normal = hn::And(hn::Gt(s, hn::Set(df, 0x1p-125f)), hn::Lt(s, hn::Set(df, 0x1p125f)));
      const size_t valid = std::min(N, count - k);
      all_normal = all_normal && (reciprocal || hn::CountTrue(df, normal) >= valid);
      hn::Store(s, df, scales + k);
      hn::Store(hn::Div(hn::Set(df, 1.0f), s), df, inverses + k);
    }
    for (size_t k = 0; k < count; ++k) amax_bits[k] = 0;  // padding lanes of the next batch read 0
    std::copy_n(scales, count, scale + first);
    std::fill_n(zero_point + first, count, b.symmetric_zero_point);
    std::fill_n(offset + first, count, 0.0f);
    HWY_ALIGN Code codes_of_tail[kMaxBatchValues];
    if (!all_normal) {
      Code* HWY_RESTRICT codes = kNibbles ? codes_of_tail : qb;
      for (size_t k = 0; k < count; ++k) {
        Quantize(xb + k * block, block, AffineParams{scales[k], b.symmetric_zero_point, 0.0f}, b.spec, codes + k * block);
      }
      if constexpr (kNibbles) PackNibbles(reinterpret_cast<const uint8_t*>(codes), n, reinterpret_cast<uint8_t*>(qb));
      continue;
    }
    auto exact = [&](size_t i) {
      const size_t k = static_cast<size_t>((i * block_magic) >> 32);
      return quantizer.Exact(hn::LoadU(df, xb + i), hn::Set(df, scales[k]), hn::Set(df, inverses[k]));
    };
    size_t i = 0;
#if ZP_PACK_FOUR
    if constexpr (kPackFour) {
      quantizer.WithClampFlags([&](auto flags) {
        // One vector's codes with its block's scale, and the distance that Certain() tests.
        auto codes = [&](size_t at, auto& distance) {
          const size_t k = static_cast<size_t>((at * block_magic) >> 32);
          return quantizer.QuickDistance(flags, hn::Mul(hn::LoadU(df, xb + at), hn::Set(df, inverses[k])), distance);
        };
        for (; i + 4 * N <= n; i += 4 * N) {
          // The next batch's values, fetched while this batch's codes are computed from cache
          // (its range pass would otherwise wait on memory with the arithmetic idle).
          for (size_t line = 0; line < 4 * hn::MaxLanes(df) * sizeof(float); line += 64) {
            hwy::Prefetch(reinterpret_cast<const char*>(xb + n + i) + line);
          }
          hn::Vec<decltype(df)> d0, d1, d2, d3;
          auto c0 = codes(i, d0), c1 = codes(i + N, d1), c2 = codes(i + 2 * N, d2), c3 = codes(i + 3 * N, d3);
          if (HWY_UNLIKELY(!hn::AllTrue(df, quantizer.Certain(d0, d1, d2, d3)))) {
            c0 = exact(i), c1 = exact(i + N), c2 = exact(i + 2 * N), c3 = exact(i + 3 * N);
          }
          const RawBytes bytes = PackFour<std::is_signed_v<Code>>(c0.raw, c1.raw, c2.raw, c3.raw);
          if constexpr (kNibbles) StoreNibbles(qb + i / 2, bytes);
          else StoreBytes(qb + i, bytes, false);
        }
      });
    }
#endif
    auto codes = [&](size_t at, auto& certain) {
      const size_t k = static_cast<size_t>((at * block_magic) >> 32);
      return quantizer.QuickCodes(hn::Mul(hn::LoadU(df, xb + at), hn::Set(df, inverses[k])), certain);
    };
    const size_t tail = i;
    for (; i < n; i += N) {
      auto certain = hn::FirstN(df, N);
      auto c = codes(i, certain);
      if (HWY_UNLIKELY(!hn::AllTrue(df, certain))) c = exact(i);
      hn::StoreU(hn::DemoteTo(dc, c), dc, (kNibbles ? codes_of_tail : qb) + i);
    }
    if constexpr (kNibbles) {
      PackNibbles(reinterpret_cast<const uint8_t*>(codes_of_tail + tail), n - tail, reinterpret_cast<uint8_t*>(qb + tail / 2));
    }
  }
  return largest < 0x7f800000u;
}

// Per-block quantization of `blocks` consecutive blocks of `block` values: range, parameters and
// codes of each block, a batch of blocks at a time so the values are read from memory once.
template <class Code>
bool QuantizeBlocks(const float* HWY_RESTRICT x, size_t blocks, size_t block, const BlockScheme& b,
                    float* HWY_RESTRICT scale, int32_t* HWY_RESTRICT zero_point, float* HWY_RESTRICT offset,
                    Code* HWY_RESTRICT q) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<Code, decltype(df)> dc;
  const size_t N = hn::Lanes(df);
  // The symmetric path's float scale division equals derive_params' only for a float divisor.
  const bool float_divisor = static_cast<double>(static_cast<float>(b.divisor)) == b.divisor;
  if (b.symmetric && !b.float_offset && !b.skip_nonfinite && float_divisor && block % N == 0 && block <= kMaxBatchValues) {
    return QuantizeSymmetricBlocks(x, blocks, block, b, scale, zero_point, offset, q);
  }
  constexpr size_t kBatch = 64;
  HWY_ALIGN float mins[kBatch];
  HWY_ALIGN float maxs[kBatch];
  bool all_finite = true;
  for (size_t first = 0; first < blocks; first += kBatch) {
    const size_t count = std::min(kBatch, blocks - first);
    for (size_t k = 0; k < count; ++k) {
      const float* values = x + (first + k) * block;
      MinMax m;
      if (block % N == 0 && !b.skip_nonfinite) {
        // The common case inline (a call per block of a few dozen values costs as much as the
        // block): whole vectors of finite values.
        auto lo = hn::LoadU(df, values), hi = lo;
        auto finite = hn::Lt(hn::Abs(lo), hn::Set(df, std::numeric_limits<float>::infinity()));
        for (size_t i = N; i < block; i += N) {
          const auto v = hn::LoadU(df, values + i);
          lo = hn::Min(lo, v);
          hi = hn::Max(hi, v);
          finite = hn::And(finite, hn::Lt(hn::Abs(v), hn::Set(df, std::numeric_limits<float>::infinity())));
        }
        all_finite = all_finite && hn::AllTrue(df, finite);
        m.min = hn::GetLane(hn::MinOfLanes(df, lo));
        m.max = hn::GetLane(hn::MaxOfLanes(df, hi));
        if (m.min == 0.0f) m.min = 0.0f;  // as f32_minmax_ref: a zero extreme is +0.0
        if (m.max == 0.0f) m.max = 0.0f;
      } else {
        m = MinMaxF32(values, block, b.skip_nonfinite);
        all_finite = all_finite && m.finite;
      }
      const bool empty = m.min > m.max;  // no finite value in the block
      mins[k] = empty ? 0.0f : m.min;
      maxs[k] = empty ? 0.0f : m.max;
    }
    ChooseParams(mins, maxs, count, b, scale + first, zero_point + first, offset + first);
    for (size_t k = 0; k < count; ++k) {
      const size_t at = (first + k) * block;
      const AffineParams p{scale[first + k], zero_point[first + k], offset[first + k]};
      const VectorQuantizer quantizer(p, b.spec);
      size_t i = 0;
      for (; i + N <= block; i += N) hn::StoreU(hn::DemoteTo(dc, quantizer(hn::LoadU(df, x + at + i))), dc, q + at + i);
      for (; i < block; ++i) q[at + i] = static_cast<Code>(quantize_value(x[at + i], p, b.spec));
    }
  }
  return all_finite;
}

// QuantizeBlocks with the codes packed two per byte (pack_ref order); block is even.
template <class Code>
bool QuantizeNibbleBlocks(const float* HWY_RESTRICT x, size_t blocks, size_t block, const BlockScheme& b,
                          float* HWY_RESTRICT scale, int32_t* HWY_RESTRICT zero_point, float* HWY_RESTRICT offset,
                          uint8_t* HWY_RESTRICT packed) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  const bool float_divisor = static_cast<double>(static_cast<float>(b.divisor)) == b.divisor;
  if (b.symmetric && !b.float_offset && !b.skip_nonfinite && float_divisor && block % N == 0 && block <= kMaxBatchValues) {
    return QuantizeSymmetricBlocks<Code, true>(x, blocks, block, b, scale, zero_point, offset,
                                               reinterpret_cast<Code*>(packed));
  }
  // Other schemes: byte codes for a batch of blocks in L1, then packed.
  const size_t batch = std::max<size_t>(1, kMaxBatchValues / block);
  std::vector<Code> codes(std::min(blocks, batch) * block);
  bool finite = true;
  for (size_t first = 0; first < blocks; first += batch) {
    const size_t count = std::min(batch, blocks - first);
    finite = QuantizeBlocks(x + first * block, count, block, b, scale + first, zero_point + first, offset + first,
                            codes.data()) && finite;
    PackNibbles(reinterpret_cast<const uint8_t*>(codes.data()), count * block, packed + first * block / 2);
  }
  return finite;
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

// The parameters of element i are scale[i], zero_point[i], offset[i] (channels along the
// innermost axis). Each vector follows the reference formula lane by lane, quotient included (a
// division, or a multiplication by a reciprocal computed per lane), so there is no certainty test
// and no fallback: one division per vector is cheap next to the memory traffic of a tensor.
template <class In, class Code>
void QuantizeEach(const In* HWY_RESTRICT x, size_t n, const float* HWY_RESTRICT scale,
                  const int32_t* HWY_RESTRICT zero_point, const float* HWY_RESTRICT offset, bool has_offset,
                  const QuantizeSpec& spec, Code* HWY_RESTRICT q) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<Code, decltype(df)> dc;
  const size_t N = hn::Lanes(df);
  const auto lo = hn::Set(df, static_cast<float>(spec.range.qmin));
  const auto hi = hn::Set(df, static_cast<float>(spec.range.qmax));
  const auto one = hn::Set(df, 1.0f);
  const bool reciprocal = spec.quotient == Quotient::reciprocal;
  const Rounding rounding = spec.rounding;
  auto codes_at = [&](size_t i) {
    auto v = LoadAsFloat(df, x + i);
    // x - 0 is x bit for bit (-0.0 included), so lanes with no offset need no select.
    if (has_offset) v = hn::Sub(v, hn::LoadU(df, offset + i));
    const auto s = hn::LoadU(df, scale + i);
    v = reciprocal ? hn::Mul(v, hn::Div(one, s)) : hn::Div(v, s);
    const auto zp = hn::ConvertTo(df, hn::LoadU(di, zero_point + i));
    auto r = hn::Add(RoundToInteger(df, v, rounding), zp);
    r = hn::IfThenElse(hn::IsNaN(v), zp, r);
    return hn::ConvertTo(di, hn::Min(hn::Max(r, lo), hi));
  };
  size_t i = 0;
#if ZP_PACK_FOUR
  if constexpr (sizeof(Code) == 1) {
    for (; i + 4 * N <= n; i += 4 * N) {
      // As in Quantize: the run is usually a row, and fetching what follows it lets memory work
      // during this row's arithmetic.
      for (size_t line = 0; line < 4 * N * sizeof(In); line += 64) {
        hwy::Prefetch(reinterpret_cast<const char*>(x + i) + 16384 + line);
      }
      const auto c0 = codes_at(i), c1 = codes_at(i + N), c2 = codes_at(i + 2 * N), c3 = codes_at(i + 3 * N);
      StoreBytes(q + i, PackFour<std::is_signed_v<Code>>(c0.raw, c1.raw, c2.raw, c3.raw), false);
    }
  }
#endif
  for (; i + N <= n; i += N) hn::StoreU(hn::DemoteTo(dc, codes_at(i)), dc, q + i);
  for (; i < n; ++i) {
    q[i] = static_cast<Code>(quantize_value(ScalarAsFloat(x + i), {scale[i], zero_point[i], offset[i]}, spec));
  }
}

// x[i] = float(q[i] - zero_point[i]) * scale[i] + offset[i].
template <class Code>
void DequantizeEach(const Code* HWY_RESTRICT q, size_t n, const float* HWY_RESTRICT scale,
                    const int32_t* HWY_RESTRICT zero_point, const float* HWY_RESTRICT offset, bool has_offset,
                    float* HWY_RESTRICT x) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<Code, decltype(df)> dc;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto centred = hn::Sub(hn::PromoteTo(di, hn::LoadU(dc, q + i)), hn::LoadU(di, zero_point + i));
    auto v = hn::Mul(hn::ConvertTo(df, centred), hn::LoadU(df, scale + i));
    if (has_offset) {
      // v + 0 would turn -0.0 into +0.0: the reference adds only a non-zero offset.
      const auto o = hn::LoadU(df, offset + i);
      v = hn::IfThenElse(hn::Eq(o, hn::Zero(df)), v, hn::Add(v, o));
    }
    hn::StoreU(v, df, x + i);
  }
  for (; i < n; ++i) x[i] = dequantize_value(q[i], {scale[i], zero_point[i], offset[i]});
}

#define ZP_QUANTIZE_EACH_ENTRY(NAME, IN, CODE)                                                              \
  void NAME(const IN* x, size_t n, const float* scale, const int32_t* zp, const float* offset, bool has_offset, \
            const QuantizeSpec& s, CODE* q) {                                                                 \
    QuantizeEach(x, n, scale, zp, offset, has_offset, s, q);                                                  \
  }
ZP_QUANTIZE_EACH_ENTRY(F32QS8Each, float, int8_t)
ZP_QUANTIZE_EACH_ENTRY(F32QU8Each, float, uint8_t)
ZP_QUANTIZE_EACH_ENTRY(F32QS16Each, float, int16_t)
ZP_QUANTIZE_EACH_ENTRY(F32QU16Each, float, uint16_t)
ZP_QUANTIZE_EACH_ENTRY(F16QS8Each, hwy::float16_t, int8_t)
ZP_QUANTIZE_EACH_ENTRY(F16QU8Each, hwy::float16_t, uint8_t)
ZP_QUANTIZE_EACH_ENTRY(F16QS16Each, hwy::float16_t, int16_t)
ZP_QUANTIZE_EACH_ENTRY(F16QU16Each, hwy::float16_t, uint16_t)
ZP_QUANTIZE_EACH_ENTRY(BF16QS8Each, hwy::bfloat16_t, int8_t)
ZP_QUANTIZE_EACH_ENTRY(BF16QU8Each, hwy::bfloat16_t, uint8_t)
ZP_QUANTIZE_EACH_ENTRY(BF16QS16Each, hwy::bfloat16_t, int16_t)
ZP_QUANTIZE_EACH_ENTRY(BF16QU16Each, hwy::bfloat16_t, uint16_t)
#undef ZP_QUANTIZE_EACH_ENTRY

#define ZP_DEQUANTIZE_EACH_ENTRY(NAME, CODE)                                                             \
  void NAME(const CODE* q, size_t n, const float* scale, const int32_t* zp, const float* offset, bool has_offset, \
            float* x) {                                                                                    \
    DequantizeEach(q, n, scale, zp, offset, has_offset, x);                                                \
  }
ZP_DEQUANTIZE_EACH_ENTRY(QS8F32Each, int8_t)
ZP_DEQUANTIZE_EACH_ENTRY(QU8F32Each, uint8_t)
ZP_DEQUANTIZE_EACH_ENTRY(QS16F32Each, int16_t)
ZP_DEQUANTIZE_EACH_ENTRY(QU16F32Each, uint16_t)
#undef ZP_DEQUANTIZE_EACH_ENTRY

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

// f32_f16_convert_ref lane-wise, in integer operations on the bits (Highway 1.0's DemoteTo to
// float16 is not that function on every target: NaN payloads and the emulated paths differ).
// The subnormal results are round-to-nearest-even of |f| * 2^24 (the subnormal step is 2^-24,
// and the product is exact), which also gives the reference's zero below 2^-25 and at it.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> F32ToF16Bits(DF df, hn::Vec<DF> f) {
  const hn::RebindToUnsigned<DF> du;
  const auto x = hn::BitCast(du, f);
  const auto sign = hn::And(hn::ShiftRight<16>(x), hn::Set(du, 0x8000u));
  const auto abs = hn::And(x, hn::Set(du, 0x7FFFFFFFu));
  const auto nan = hn::Or(hn::Set(du, 0x7E00u), hn::And(hn::ShiftRight<13>(abs), hn::Set(du, 0x3FFu)));
  const auto rounded = hn::Add(abs, hn::Add(hn::Set(du, 0xFFFu), hn::And(hn::ShiftRight<13>(abs), hn::Set(du, 1u))));
  const auto normal = hn::ShiftRight<13>(hn::Sub(rounded, hn::Set(du, 0x38000000u)));
  auto small = hn::BitCast(df, abs);
#if HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
  // Only lanes below 2^-14 use `tiny`; the others are capped there first, as Highway's emulated
  // ConvertTo is a C cast, undefined for NaN (the instructions elsewhere are defined for it).
  small = hn::BitCast(df, hn::Min(abs, hn::Set(du, 0x38800000u)));
#endif
  const auto tiny = hn::BitCast(du, hn::ConvertTo(hn::RebindToSigned<DF>(), hn::Round(hn::Mul(small, hn::Set(df, 16777216.0f)))));
  // abs >= bound as a signed comparison (abs < 2^31, so signed and unsigned agree; Highway 1.0
  // has no integer Ge).
  const hn::RebindToSigned<DF> di;
  auto ge = [&](hn::Vec<decltype(du)> v, std::uint32_t bound) {
    return hn::RebindMask(du, hn::Gt(hn::BitCast(di, v), hn::Set(di, static_cast<std::int32_t>(bound - 1))));
  };
  auto bits = hn::IfThenElse(ge(abs, 0x38800000u), normal, tiny);
  bits = hn::IfThenElse(ge(abs, 0x477FF000u), hn::Set(du, 0x7C00u), bits);
  bits = hn::IfThenElse(ge(abs, 0x7F800001u), nan, bits);
  return hn::Or(bits, sign);
}

// f32_bf16_convert_ref lane-wise.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> F32ToBF16Bits(DF, hn::Vec<DF> f) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const auto x = hn::BitCast(du, f);
  const auto rounded = hn::ShiftRight<16>(hn::Add(x, hn::Add(hn::Set(du, 0x7FFFu), hn::And(hn::ShiftRight<16>(x), hn::Set(du, 1u)))));
  const auto quiet = hn::Or(hn::ShiftRight<16>(x), hn::Set(du, 0x40u));
  const auto abs = hn::BitCast(di, hn::And(x, hn::Set(du, 0x7FFFFFFFu)));
  return hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs, hn::Set(di, 0x7F800000))), quiet, rounded);
}

template <bool kBrain>
void Narrow(const float* HWY_RESTRICT x, size_t n, uint16_t* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<uint16_t, decltype(df)> d16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(df, x + i);
    const auto bits = kBrain ? F32ToBF16Bits(df, v) : F32ToF16Bits(df, v);
    // Every lane is below 2^16: the saturating narrowing (one instruction) keeps it as it is.
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(hn::RebindToSigned<decltype(df)>(), bits)), d16, out + i);
  }
  for (; i < n; ++i) out[i] = kBrain ? f32_bf16_convert_ref(x[i]) : f32_f16_convert_ref(x[i]);
}
void F32F16(const float* x, size_t n, uint16_t* out) { Narrow<false>(x, n, out); }
void F32BF16(const float* x, size_t n, uint16_t* out) { Narrow<true>(x, n, out); }

#define ZP_BLOCKS_ENTRY(NAME, CODE)                                                                      \
  bool NAME(const float* x, size_t blocks, size_t block, const BlockScheme& b, float* scale, int32_t* zp, \
            float* offset, CODE* q) {                                                                    \
    return QuantizeBlocks(x, blocks, block, b, scale, zp, offset, q);                                    \
  }
ZP_BLOCKS_ENTRY(F32QS8Blocks, int8_t)
ZP_BLOCKS_ENTRY(F32QU8Blocks, uint8_t)
ZP_BLOCKS_ENTRY(F32QS16Blocks, int16_t)
ZP_BLOCKS_ENTRY(F32QU16Blocks, uint16_t)
#undef ZP_BLOCKS_ENTRY
bool F32QS4Blocks(const float* x, size_t blocks, size_t block, const BlockScheme& b, float* scale, int32_t* zp,
                  float* offset, uint8_t* packed) {
  return QuantizeNibbleBlocks<int8_t>(x, blocks, block, b, scale, zp, offset, packed);
}
bool F32QU4Blocks(const float* x, size_t blocks, size_t block, const BlockScheme& b, float* scale, int32_t* zp,
                  float* offset, uint8_t* packed) {
  return QuantizeNibbleBlocks<uint8_t>(x, blocks, block, b, scale, zp, offset, packed);
}
void U8U4Pack(const uint8_t* codes, size_t n, uint8_t* packed) { PackNibbles(codes, n, packed); }
void U4U8Unpack(const uint8_t* packed, size_t n, bool is_signed, uint8_t* codes) { UnpackNibbles(packed, n, is_signed, codes); }

#define ZP_DEQUANTIZE_ENTRY(NAME, CODE) \
  void NAME(const CODE* q, size_t n, const AffineParams& p, float* x) { Dequantize(q, n, p, x); }
ZP_DEQUANTIZE_ENTRY(QS8F32, int8_t)
ZP_DEQUANTIZE_ENTRY(QU8F32, uint8_t)
ZP_DEQUANTIZE_ENTRY(QS16F32, int16_t)
ZP_DEQUANTIZE_ENTRY(QU16F32, uint16_t)
#undef ZP_DEQUANTIZE_ENTRY

#undef ZP_PACK_FOUR
}  // namespace zp::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/dispatch.hpp"

namespace zp::kernels {
namespace {
// x holds whole blocks and the parameter spans one entry per block.
void expect_blocks(std::span<const float> x, std::size_t block, std::span<float> scale,
                   std::span<std::int32_t> zero_point, std::span<float> offset) noexcept {
  detail::expect(block > 0 && x.size() % block == 0);
  const std::size_t blocks = x.size() / block;
  detail::expect(scale.size() >= blocks && zero_point.size() >= blocks && offset.size() >= blocks);
  detail::expect(detail::disjoint(x, scale) && detail::disjoint(x, zero_point) && detail::disjoint(x, offset));
}
}  // namespace

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
HWY_EXPORT(F32QS8Blocks);
HWY_EXPORT(F32QU8Blocks);
HWY_EXPORT(F32QS16Blocks);
HWY_EXPORT(F32QU16Blocks);
HWY_EXPORT(F32QS4Blocks);
HWY_EXPORT(F32QU4Blocks);
HWY_EXPORT(U8U4Pack);
HWY_EXPORT(U4U8Unpack);
HWY_EXPORT(F16F32);
HWY_EXPORT(BF16F32);
HWY_EXPORT(F32F16);
HWY_EXPORT(F32BF16);
HWY_EXPORT(QS8F32);
HWY_EXPORT(QU8F32);
HWY_EXPORT(QS16F32);
HWY_EXPORT(QU16F32);
HWY_EXPORT(F32QS8Each);
HWY_EXPORT(F32QU8Each);
HWY_EXPORT(F32QS16Each);
HWY_EXPORT(F32QU16Each);
HWY_EXPORT(F16QS8Each);
HWY_EXPORT(F16QU8Each);
HWY_EXPORT(F16QS16Each);
HWY_EXPORT(F16QU16Each);
HWY_EXPORT(BF16QS8Each);
HWY_EXPORT(BF16QU8Each);
HWY_EXPORT(BF16QS16Each);
HWY_EXPORT(BF16QU16Each);
HWY_EXPORT(QS8F32Each);
HWY_EXPORT(QU8F32Each);
HWY_EXPORT(QS16F32Each);
HWY_EXPORT(QU16F32Each);

// The dispatched boundary takes pointers and sizes; vector types never cross it.
#define ZP_QUANTIZE_PUBLIC(PUBLIC, IN_T, HWY_IN, CODE, EXPORTED)                                      \
  void PUBLIC(std::span<const IN_T> x, const AffineParams& p, const QuantizeSpec& s, std::span<CODE> q) noexcept { \
    detail::expect_output(x, q, x.size());                                                             \
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

#define ZP_BLOCKS_PUBLIC(PUBLIC, CODE, EXPORTED)                                                             \
  bool PUBLIC(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,      \
              std::span<std::int32_t> zero_point, std::span<float> offset, std::span<CODE> q) noexcept {      \
    expect_blocks(x, block, scale, zero_point, offset);                                                     \
    detail::expect_output(x, q, x.size());                                                                  \
    detail::configure_dispatch_once();                                                                      \
    return HWY_DYNAMIC_DISPATCH(EXPORTED)(x.data(), x.size() / block, block, b, scale.data(), zero_point.data(), \
                                   offset.data(), q.data());                                                 \
  }
ZP_BLOCKS_PUBLIC(f32_qs8_quantize_blocks, std::int8_t, F32QS8Blocks)
ZP_BLOCKS_PUBLIC(f32_qu8_quantize_blocks, std::uint8_t, F32QU8Blocks)
ZP_BLOCKS_PUBLIC(f32_qs16_quantize_blocks, std::int16_t, F32QS16Blocks)
ZP_BLOCKS_PUBLIC(f32_qu16_quantize_blocks, std::uint16_t, F32QU16Blocks)
#undef ZP_BLOCKS_PUBLIC

#define ZP_NIBBLE_BLOCKS_PUBLIC(PUBLIC, EXPORTED)                                                              \
  bool PUBLIC(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,          \
              std::span<std::int32_t> zero_point, std::span<float> offset, std::span<std::uint8_t> packed) noexcept { \
    expect_blocks(x, block, scale, zero_point, offset);                                                         \
    detail::expect(block % 2 == 0);                                                                             \
    detail::expect_output(x, packed, x.size() / 2);                                                             \
    detail::configure_dispatch_once();                                                                          \
    return HWY_DYNAMIC_DISPATCH(EXPORTED)(x.data(), x.size() / block, block, b, scale.data(), zero_point.data(), \
                                          offset.data(), packed.data());                                         \
  }
ZP_NIBBLE_BLOCKS_PUBLIC(f32_qs4_quantize_blocks, F32QS4Blocks)
ZP_NIBBLE_BLOCKS_PUBLIC(f32_qu4_quantize_blocks, F32QU4Blocks)
#undef ZP_NIBBLE_BLOCKS_PUBLIC

void u8_u4_pack(std::span<const std::uint8_t> codes, std::span<std::uint8_t> packed) noexcept {
  detail::expect_output(codes, packed, (codes.size() + 1) / 2);
  detail::configure_dispatch_once();
  const std::size_t even = codes.size() & ~std::size_t{1};
  HWY_DYNAMIC_DISPATCH(U8U4Pack)(codes.data(), even, packed.data());
  if (even < codes.size()) packed[even / 2] = codes[even] & 0xFu;  // the last code alone, zero-padded
}

void u4_u8_unpack(std::span<const std::uint8_t> packed, bool is_signed, std::span<std::uint8_t> codes) noexcept {
  detail::expect_output(packed, codes, 0);
  detail::expect(packed.size() >= (codes.size() + 1) / 2);
  detail::configure_dispatch_once();
  const std::size_t even = codes.size() & ~std::size_t{1};
  HWY_DYNAMIC_DISPATCH(U4U8Unpack)(packed.data(), even, is_signed, codes.data());
  if (even < codes.size()) {  // the last code alone, in a low nibble
    const unsigned lo = packed[even / 2] & 0xFu;
    codes[even] = static_cast<std::uint8_t>(is_signed ? (lo ^ 8u) - 8u : lo);
  }
}

void f16_f32_convert(std::span<const std::uint16_t> x, std::span<float> out) noexcept {
  detail::expect_output(x, out, x.size());
  detail::configure_dispatch_once();
  HWY_DYNAMIC_DISPATCH(F16F32)(reinterpret_cast<const hwy::float16_t*>(x.data()), x.size(), out.data());
}

void bf16_f32_convert(std::span<const std::uint16_t> x, std::span<float> out) noexcept {
  detail::expect_output(x, out, x.size());
  detail::configure_dispatch_once();
  HWY_DYNAMIC_DISPATCH(BF16F32)(reinterpret_cast<const hwy::bfloat16_t*>(x.data()), x.size(), out.data());
}

void f32_f16_convert(std::span<const float> x, std::span<std::uint16_t> out) noexcept {
  detail::expect_output(x, out, x.size());
  detail::configure_dispatch_once();
  HWY_DYNAMIC_DISPATCH(F32F16)(x.data(), x.size(), out.data());
}

void f32_bf16_convert(std::span<const float> x, std::span<std::uint16_t> out) noexcept {
  detail::expect_output(x, out, x.size());
  detail::configure_dispatch_once();
  HWY_DYNAMIC_DISPATCH(F32BF16)(x.data(), x.size(), out.data());
}

#define ZP_DEQUANTIZE_PUBLIC(PUBLIC, CODE, EXPORTED)                                              \
  void PUBLIC(std::span<const CODE> q, const AffineParams& p, std::span<float> x) noexcept { \
    detail::expect_output(q, x, q.size());                                                     \
    detail::configure_dispatch_once();                                                         \
    HWY_DYNAMIC_DISPATCH(EXPORTED)(q.data(), q.size(), p, x.data());                            \
  }
ZP_DEQUANTIZE_PUBLIC(qs8_f32_dequantize, std::int8_t, QS8F32)
ZP_DEQUANTIZE_PUBLIC(qu8_f32_dequantize, std::uint8_t, QU8F32)
ZP_DEQUANTIZE_PUBLIC(qs16_f32_dequantize, std::int16_t, QS16F32)
ZP_DEQUANTIZE_PUBLIC(qu16_f32_dequantize, std::uint16_t, QU16F32)
#undef ZP_DEQUANTIZE_PUBLIC

namespace {
// The parameter spans cover x and are not written by the kernel's output.
template <class In, class Out>
void expect_each(std::span<In> x, const ParamSpans& p, std::span<Out> out) noexcept {
  detail::expect_output(x, out, x.size());
  detail::expect(p.scale.size() >= x.size() && p.zero_point.size() >= x.size() && p.offset.size() >= x.size());
  detail::expect(detail::disjoint(p.scale, out) && detail::disjoint(p.zero_point, out) && detail::disjoint(p.offset, out));
}
}  // namespace

#define ZP_QUANTIZE_EACH_PUBLIC(PUBLIC, IN_T, HWY_IN, CODE, EXPORTED)                                              \
  void PUBLIC(std::span<const IN_T> x, const ParamSpans& p, const QuantizeSpec& s, std::span<CODE> q) noexcept { \
    expect_each(x, p, q);                                                                                         \
    detail::configure_dispatch_once();                                                                            \
    HWY_DYNAMIC_DISPATCH(EXPORTED)(reinterpret_cast<const HWY_IN*>(x.data()), x.size(), p.scale.data(),            \
                                   p.zero_point.data(), p.offset.data(), p.has_offset, s, q.data());             \
  }
ZP_QUANTIZE_EACH_PUBLIC(f32_qs8_quantize_each, float, float, std::int8_t, F32QS8Each)
ZP_QUANTIZE_EACH_PUBLIC(f32_qu8_quantize_each, float, float, std::uint8_t, F32QU8Each)
ZP_QUANTIZE_EACH_PUBLIC(f32_qs16_quantize_each, float, float, std::int16_t, F32QS16Each)
ZP_QUANTIZE_EACH_PUBLIC(f32_qu16_quantize_each, float, float, std::uint16_t, F32QU16Each)
ZP_QUANTIZE_EACH_PUBLIC(f16_qs8_quantize_each, std::uint16_t, hwy::float16_t, std::int8_t, F16QS8Each)
ZP_QUANTIZE_EACH_PUBLIC(f16_qu8_quantize_each, std::uint16_t, hwy::float16_t, std::uint8_t, F16QU8Each)
ZP_QUANTIZE_EACH_PUBLIC(f16_qs16_quantize_each, std::uint16_t, hwy::float16_t, std::int16_t, F16QS16Each)
ZP_QUANTIZE_EACH_PUBLIC(f16_qu16_quantize_each, std::uint16_t, hwy::float16_t, std::uint16_t, F16QU16Each)
ZP_QUANTIZE_EACH_PUBLIC(bf16_qs8_quantize_each, std::uint16_t, hwy::bfloat16_t, std::int8_t, BF16QS8Each)
ZP_QUANTIZE_EACH_PUBLIC(bf16_qu8_quantize_each, std::uint16_t, hwy::bfloat16_t, std::uint8_t, BF16QU8Each)
ZP_QUANTIZE_EACH_PUBLIC(bf16_qs16_quantize_each, std::uint16_t, hwy::bfloat16_t, std::int16_t, BF16QS16Each)
ZP_QUANTIZE_EACH_PUBLIC(bf16_qu16_quantize_each, std::uint16_t, hwy::bfloat16_t, std::uint16_t, BF16QU16Each)
#undef ZP_QUANTIZE_EACH_PUBLIC

#define ZP_DEQUANTIZE_EACH_PUBLIC(PUBLIC, CODE, EXPORTED)                                                       \
  void PUBLIC(std::span<const CODE> q, const ParamSpans& p, std::span<float> x) noexcept {                    \
    expect_each(q, p, x);                                                                                      \
    detail::configure_dispatch_once();                                                                         \
    HWY_DYNAMIC_DISPATCH(EXPORTED)(q.data(), q.size(), p.scale.data(), p.zero_point.data(), p.offset.data(),   \
                                   p.has_offset, x.data());                                                    \
  }
ZP_DEQUANTIZE_EACH_PUBLIC(qs8_f32_dequantize_each, std::int8_t, QS8F32Each)
ZP_DEQUANTIZE_EACH_PUBLIC(qu8_f32_dequantize_each, std::uint8_t, QU8F32Each)
ZP_DEQUANTIZE_EACH_PUBLIC(qs16_f32_dequantize_each, std::int16_t, QS16F32Each)
ZP_DEQUANTIZE_EACH_PUBLIC(qu16_f32_dequantize_each, std::uint16_t, QU16F32Each)
#undef ZP_DEQUANTIZE_EACH_PUBLIC

}  // namespace zp::kernels
#endif  // HWY_ONCE
