// SIMD versions of ggml's legacy block formats and row conversions, compiled once per
// instruction set and chosen at run time (Highway's foreach_target / HWY_DYNAMIC_DISPATCH). Each
// writes exactly the bytes of its scalar reference in ggml_legacy_ref.cpp;
// tests/unit/test_ggml_legacy.cpp checks that on every target this CPU has.
//
// Quantizers work on batches of as many blocks as a vector has float lanes (16 with AVX-512):
// one pass over the batch reduces each block to its range and leaves one lane per block, so the
// scale, its inverse and the conversion of the scale to half precision are one vector operation
// for the whole batch; a second pass, over data still in L1, writes the codes. A block whose
// values or scale are not ordinary (NaN, infinity, a zero at the end of the range where its sign
// decides a byte, a +a / -a tie for the largest magnitude, an inverse scale that overflows) is
// then rewritten by the reference, so the vector code only ever sees values whose codes lie in
// range and whose casts are plain truncations.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ggml_legacy_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>

#include "kernels/dispatch.hpp"
#include "kernels/ggml_blocks.hpp"

HWY_BEFORE_NAMESPACE();
namespace zp::ggml::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;
using VI = hn::Vec<DI>;

constexpr size_t kBlock = 32;
constexpr size_t kMaxLanes = 16;  // x86: at most 16 float lanes (AVX-512)

// ---- Building blocks ---------------------------------------------------------------------------

// float -> int32 by truncation, for lanes known to be in range (the batch's ordinary blocks):
// the bare instruction, without Highway's fix-up of out-of-range lanes.
HWY_INLINE VI TruncateInRange(VF v) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  return VI{_mm512_cvttps_epi32(v.raw)};
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
  return VI{_mm256_cvttps_epi32(v.raw)};
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
  return VI{_mm_cvttps_epi32(v.raw)};
#else
  // Elsewhere ConvertTo may be a C cast (Highway's emulated targets), undefined for the lanes out
  // of range whose codes the batch discards: those become 0 first.
  const DF df;
  return hn::ConvertTo(DI(), hn::IfThenElseZero(hn::Lt(hn::Abs(v), hn::Set(df, 2147483520.0f)), v));
#endif
}

// Lane k of the result is op over all lanes of m[k], for each k < N; m is overwritten. A
// transposing tree: every level halves the number of vectors and the lanes each one reduces, so
// N reductions cost about 3 operations each instead of 2 log2(N).
template <class D, class Op>
HWY_INLINE hn::Vec<D> ReduceEach(D d, hn::Vec<D>* m, Op op) {
  const size_t N = hn::Lanes(d);
#if HWY_TARGET == HWY_SCALAR
  (void)N;
  (void)op;
  return m[0];  // one lane: the block was reduced lane-wise
#else
  if (N % 4 != 0 || N > kMaxLanes) {  // (not an x86 shape) one lane at a time
    HWY_ALIGN hn::TFromD<D> lanes[kMaxLanes], out[kMaxLanes];
    for (size_t k = 0; k < N; ++k) {
      hn::Store(m[k], d, lanes);
      hn::Vec<D> r = hn::Set(d, lanes[0]);
      for (size_t i = 1; i < N; ++i) r = op(r, hn::Set(d, lanes[i]));
      out[k] = hn::GetLane(r);
    }
    return hn::Load(d, out);
  }
  const hn::Repartition<uint64_t, D> d64;
  // Within 128 bits: pairs of vectors share one (lanes 0, 2 for the first, 1, 3 the second),
  // then quadruples (lane i of each 128 bits for vector 4j + i).
  for (size_t i = 0; i < N / 2; ++i) {
    m[i] = op(hn::InterleaveLower(d, m[2 * i], m[2 * i + 1]), hn::InterleaveUpper(d, m[2 * i], m[2 * i + 1]));
  }
  for (size_t j = 0; j < N / 4; ++j) {
    const auto a = hn::BitCast(d64, m[2 * j]), b = hn::BitCast(d64, m[2 * j + 1]);
    m[j] = op(hn::BitCast(d, hn::InterleaveLower(d64, a, b)), hn::BitCast(d, hn::InterleaveUpper(d64, a, b)));
  }
  if (N == 4) return m[0];
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  if constexpr (HWY_MAX_BYTES >= 32) {
    const auto halves = [&](hn::Vec<D> lo, hn::Vec<D> hi) {
      return op(hn::ConcatLowerLower(d, hi, lo), hn::ConcatUpperUpper(d, hi, lo));
    };
    if (N == 8) return halves(m[0], m[1]);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    // 128-bit blocks [u0 B0 B1 B2 B3] hold vectors 0, 1 (B0 B1 vector 0's halves of 128 bits ...)
    const hn::Vec<D> u0 = halves(m[0], m[1]), u1 = halves(m[2], m[3]);
    const hn::RebindToFloat<D> df;
    const __m512 a = hn::BitCast(df, u0).raw, b = hn::BitCast(df, u1).raw;
    const hn::Vec<D> even = hn::BitCast(d, hn::Vec<decltype(df)>{_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0))});
    const hn::Vec<D> odd = hn::BitCast(d, hn::Vec<decltype(df)>{_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1))});
    return op(even, odd);
#endif
  }
#endif
  return m[0];  // unreachable on x86
#endif
}

// float32 -> binary16 as f32_f16_ggml, lane-wise (the half in the low 16 bits of each lane).
HWY_INLINE VU F32ToF16Ggml(VF f) {
  const DU du;
  const DF df;
  const VU bits = hn::BitCast(du, f);
  const VU sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000u));
  const VU abs = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
  // Normal halves: round the 13 dropped mantissa bits to nearest even, rebias the exponent.
  const VU normal = hn::ShiftRight<13>(hn::Sub(
      hn::Add(abs, hn::Add(hn::Set(du, 0xFFFu), hn::And(hn::ShiftRight<13>(abs), hn::Set(du, 1u)))), hn::Set(du, 0x38000000u)));
  // Below 2^-14 the half is a multiple of 2^-24: |f| * 2^24 is exact and the conversion rounds it
  // to nearest even (1024 is the smallest normal half, encoded the same way).
  const VU tiny = hn::BitCast(du, hn::NearestInt(hn::Mul(hn::BitCast(df, abs), hn::Set(df, 16777216.0f))));
  VU h = hn::IfThenElse(hn::Lt(abs, hn::Set(du, 0x38800000u)), tiny, normal);
  h = hn::IfThenElse(hn::Gt(abs, hn::Set(du, 0x477FEFFFu)), hn::Set(du, 0x7C00u), h);  // rounds past 65504
  h = hn::IfThenElse(hn::Gt(abs, hn::Set(du, 0x7F800000u)), hn::Set(du, 0x7E00u), h);  // NaN
  return hn::Or(h, sign);
}

// binary16 (low 16 bits of each lane) -> float32 as f16_f32_ggml.
HWY_INLINE VF F16ToF32Ggml(VU h) {
  const DU du;
  const DF df;
  const DI di;
  const VU sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const VU exp = hn::And(hn::ShiftRight<10>(h), hn::Set(du, 0x1Fu));
  const VU mant = hn::And(h, hn::Set(du, 0x3FFu));
  const VU normal = hn::Or(hn::ShiftLeft<23>(hn::Add(exp, hn::Set(du, 112u))), hn::ShiftLeft<13>(mant));
  // Infinity, and NaN made quiet.
  const VU quiet = hn::IfThenElseZero(hn::Ne(mant, hn::Zero(du)), hn::Set(du, 0x00400000u));
  const VU special = hn::Or(hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(mant)), quiet);
  const VU tiny = hn::BitCast(du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, mant)), hn::Set(df, 5.9604644775390625e-8f)));
  VU bits = hn::IfThenElse(hn::Eq(exp, hn::Set(du, 0x1Fu)), special, normal);
  bits = hn::IfThenElse(hn::Eq(exp, hn::Zero(du)), tiny, bits);
  return hn::BitCast(df, hn::Or(bits, sign));
}

// The float32 scales of a batch of n blocks whose half scale sits at `offset` in each block.
HWY_INLINE VF LoadHalfScales(const uint8_t* blocks, size_t n, size_t block_bytes, size_t offset) {
  const DU du;
  HWY_ALIGN uint32_t halves[kMaxLanes] = {};
  for (size_t k = 0; k < n; ++k) {
    const uint8_t* p = blocks + k * block_bytes + offset;
    halves[k] = static_cast<uint32_t>(p[0] | (p[1] << 8));
  }
  return F16ToF32Ggml(hn::Load(du, halves));
}

HWY_INLINE void PutHalf(uint8_t* p, uint32_t h) {
  p[0] = static_cast<uint8_t>(h);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// The inverse scale as ggml takes it: 1/d, or 0 for d = 0.
HWY_INLINE VF InverseOrZero(VF d) {
  const DF df;
  return hn::IfThenZeroElse(hn::Eq(d, hn::Zero(df)), hn::Div(hn::Set(df, 1.0f), d));
}
HWY_INLINE hn::Mask<DF> IsFiniteF(VF v) { return hn::Lt(hn::Abs(v), hn::Set(DF(), hwy::HighestValue<float>() * 2.0f)); }

// Integer keys whose signed order is the order of the floats (-0 below +0; NaN beyond infinity).
HWY_INLINE VI OrderedKey(VU bits) {
  const DI di;
  const VI s = hn::BitCast(di, bits);
  return hn::Xor(s, hn::And(hn::ShiftRight<31>(s), hn::Set(di, 0x7FFFFFFF)));
}
HWY_INLINE VF FromOrderedKey(VI key) { return hn::BitCast(DF(), OrderedKey(hn::BitCast(DU(), key))); }

// Nibble codes of one block: element j and j + 16 in the low and high nibble of byte j. `codes`
// holds 32 / N vectors of int32 codes in [0, 15], in element order.
HWY_INLINE void StoreNibblePairs(const VI* codes, uint8_t* qs) {
  const DI di;
  const hn::Rebind<uint8_t, DI> d8;
  const size_t N = hn::Lanes(di);
  const size_t half = kBlock / 2 / N;  // vectors per 16 elements
  for (size_t k = 0; k < half; ++k) {
    const VI pair = hn::Or(codes[k], hn::ShiftLeft<4>(codes[k + half]));
    hn::StoreU(hn::DemoteTo(d8, pair), d8, qs + k * N);
  }
}

// Bit 4 of each of the 32 codes, code i in bit i.
HWY_INLINE uint32_t FifthBits(const VI* codes) {
  const DI di;
  const size_t N = hn::Lanes(di);
  uint32_t qh = 0;
  for (size_t v = 0; v < kBlock / N; ++v) {
    uint8_t bits[8] = {};
    hn::StoreMaskBits(di, hn::Ne(hn::And(codes[v], hn::Set(di, 16)), hn::Zero(di)), bits);
    uint32_t word;
    std::memcpy(&word, bits, sizeof(word));
    if (N < 32) word &= (1u << N) - 1u;
    qh |= word << (v * N);
  }
  return qh;
}

// Asks for the batch after next while this one is computed: from DRAM, the hardware
// prefetchers alone leave the two passes per batch waiting on memory.
HWY_INLINE void PrefetchAhead(const float* batch, size_t blocks) {
  const float* ahead = batch + 2 * blocks * kBlock;
  for (size_t i = 0; i < blocks * kBlock; i += 16) hwy::Prefetch(ahead + i);
}

// ---- Quantizers ---------------------------------------------------------------------------------
// Each does whole batches; the caller finishes the last blocks with the reference. `fix(k)`
// rewrites block k of the batch with the reference.

// Rewrites with `ref` the blocks of a batch whose lane in `ordinary` is false.
template <class Ref>
HWY_INLINE void FixBatch(hn::Mask<DF> ordinary, const float* xb, uint8_t* ob, size_t block_bytes, Ref ref) {
  const DF df;
  const DI di;
  if (hn::AllTrue(df, ordinary)) return;
  HWY_ALIGN int32_t ok[kMaxLanes];
  hn::Store(hn::VecFromMask(di, hn::RebindMask(di, ordinary)), di, ok);
  for (size_t k = 0; k < hn::Lanes(df); ++k) {
    if (ok[k] == 0) ref(std::span<const float>(xb + k * kBlock, kBlock), std::span<uint8_t>(ob + k * block_bytes, block_bytes), {});
  }
}

// q8_0 and q8_1: scale amax / 127, codes roundf(x / d) in [-127, 127].
template <bool kWithSum>
size_t QuantizeQ8Batches(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) {
  const DF df;
  const DU du;
  const DI di;
  const hn::Rebind<int8_t, DI> d8;
  const size_t N = hn::Lanes(df);
  const size_t per_block = kBlock / N;
  constexpr size_t kBytes = kWithSum ? 36 : 34;
  constexpr size_t kCodes = kWithSum ? 4 : 2;
  size_t b = 0;
  for (; b + N <= blocks; b += N) {
    const float* xb = x + b * kBlock;
    uint8_t* ob = out + b * kBytes;
    PrefetchAhead(xb, N);
    VU m[kMaxLanes];
    for (size_t k = 0; k < N; ++k) {
      VU acc = hn::Zero(du);  // magnitudes compared as integers: NaN comes out above infinity
      for (size_t v = 0; v < per_block; ++v) {
        acc = hn::Max(acc, hn::And(hn::BitCast(du, hn::LoadU(df, xb + k * kBlock + v * N)), hn::Set(du, 0x7FFFFFFFu)));
      }
      m[k] = acc;
    }
    const VU amax = ReduceEach(du, m, [](VU a, VU c) { return hn::Max(a, c); });
    const VF d = hn::Div(hn::BitCast(df, amax), hn::Set(df, 127.0f));
    const VF id = InverseOrZero(d);
    const auto ordinary = hn::And(hn::RebindMask(df, hn::Lt(amax, hn::Set(du, 0x7F800000u))), IsFiniteF(id));
    HWY_ALIGN float ids[kMaxLanes];
    HWY_ALIGN uint32_t halves[kMaxLanes];
    hn::Store(id, df, ids);
    hn::Store(F32ToF16Ggml(d), du, halves);
    VI sums[kMaxLanes];
    const VF half_down = hn::Set(df, 0.49999997f);  // the float below 0.5: see RoundHalfAway
    for (size_t k = 0; k < N; ++k) {
      uint8_t* o = ob + k * kBytes;
      PutHalf(o, halves[k]);
      const VF idk = hn::Set(df, ids[k]);
      VI sum = hn::Zero(di);
      for (size_t v = 0; v < per_block; ++v) {
        const VF y = hn::Mul(hn::LoadU(df, xb + k * kBlock + v * N), idk);
        // roundf(y) = trunc(y + copysign(0.49999997, y)) for |y| < 2^31 (checked for every float):
        // adding 0.5 instead would round 0.49999997 up.
        const VI code = TruncateInRange(hn::Add(y, hn::CopySignToAbs(half_down, y)));
        if constexpr (kWithSum) sum = hn::Add(sum, code);
        hn::StoreU(hn::DemoteTo(d8, code), d8, reinterpret_cast<int8_t*>(o + kCodes + v * N));
      }
      sums[k] = sum;
    }
    if constexpr (kWithSum) {
      const VI total = ReduceEach(di, sums, [](VI a, VI c) { return hn::Add(a, c); });
      HWY_ALIGN uint32_t s[kMaxLanes];
      hn::Store(F32ToF16Ggml(hn::Mul(hn::ConvertTo(df, total), d)), du, s);
      for (size_t k = 0; k < N; ++k) PutHalf(ob + k * kBytes + 2, s[k]);
    }
    FixBatch(ordinary, xb, ob, kBytes, kWithSum ? f32_q8_1_quantize_ref : f32_q8_0_quantize_ref);
  }
  return b;
}

size_t F32Q8_0(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) { return QuantizeQ8Batches<false>(x, blocks, out); }
size_t F32Q8_1(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) { return QuantizeQ8Batches<true>(x, blocks, out); }

// q4_0 and q5_0: d = (the value of largest magnitude) / -2^(bits-1), codes trunc(x / d + 2^(bits-1) + 0.5).
template <int kBits>
size_t QuantizeSymmetricBatches(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) {
  const DF df;
  const DU du;
  const DI di;
  const size_t N = hn::Lanes(df);
  const size_t per_block = kBlock / N;
  constexpr size_t kBytes = kBits == 4 ? 18 : 22;
  constexpr int kMaxCode = (1 << kBits) - 1;
  const float zero_point = static_cast<float>(1 << (kBits - 1)) + 0.5f;
  size_t b = 0;
  for (; b + N <= blocks; b += N) {
    const float* xb = x + b * kBlock;
    uint8_t* ob = out + b * kBytes;
    PrefetchAhead(xb, N);
    // Keys: the bits rotated left by one, (magnitude << 1) | sign. Their maximum is the value of
    // largest magnitude, negative on a tie; the maximum of key ^ 1 equals it only when both
    // signs of that magnitude are present (then ggml takes the first, decided by the reference).
    VU keys[kMaxLanes], flipped[kMaxLanes];
    for (size_t k = 0; k < N; ++k) {
      VU acc = hn::Zero(du), acc_flipped = hn::Zero(du);
      for (size_t v = 0; v < per_block; ++v) {
        const VU key = hn::RotateRight<31>(hn::BitCast(du, hn::LoadU(df, xb + k * kBlock + v * N)));
        acc = hn::Max(acc, key);
        acc_flipped = hn::Max(acc_flipped, hn::Xor(key, hn::Set(du, 1u)));
      }
      keys[k] = acc;
      flipped[k] = acc_flipped;
    }
    const auto max_op = [](VU a, VU c) { return hn::Max(a, c); };
    const VU key = ReduceEach(du, keys, max_op);
    const VU key_flipped = ReduceEach(du, flipped, max_op);
    const VU magnitude = hn::ShiftRight<1>(key);
    // All zeros: ggml keeps its starting max = +0 (so d = -0).
    const VU max_bits = hn::IfThenZeroElse(hn::Eq(magnitude, hn::Zero(du)), hn::RotateRight<1>(key));
    const VF d = hn::Div(hn::BitCast(df, max_bits), hn::Set(df, -static_cast<float>(1 << (kBits - 1))));
    const VF id = InverseOrZero(d);
    const auto tie = hn::And(hn::Eq(key, key_flipped), hn::Ne(magnitude, hn::Zero(du)));
    const auto ordinary = hn::And(hn::RebindMask(df, hn::AndNot(tie, hn::Lt(magnitude, hn::Set(du, 0x7F800000u)))), IsFiniteF(id));
    HWY_ALIGN float ids[kMaxLanes];
    HWY_ALIGN uint32_t halves[kMaxLanes];
    hn::Store(id, df, ids);
    hn::Store(F32ToF16Ggml(d), du, halves);
    for (size_t k = 0; k < N; ++k) {
      uint8_t* o = ob + k * kBytes;
      PutHalf(o, halves[k]);
      const VF idk = hn::Set(df, ids[k]);
      VI codes[kBlock];
      for (size_t v = 0; v < per_block; ++v) {
        const VF y = hn::Add(hn::Mul(hn::LoadU(df, xb + k * kBlock + v * N), idk), hn::Set(df, zero_point));
        codes[v] = hn::Min(TruncateInRange(y), hn::Set(di, kMaxCode));
      }
      if constexpr (kBits == 4) {
        StoreNibblePairs(codes, o + 2);
      } else {
        const uint32_t qh = FifthBits(codes);
        std::memcpy(o + 2, &qh, 4);  // little-endian host, as ggml's memcpy
        for (size_t v = 0; v < per_block; ++v) codes[v] = hn::And(codes[v], hn::Set(di, 0x0F));
        StoreNibblePairs(codes, o + 6);
      }
    }
    FixBatch(ordinary, xb, ob, kBytes, kBits == 4 ? f32_q4_0_quantize_ref : f32_q5_0_quantize_ref);
  }
  return b;
}

size_t F32Q4_0(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) { return QuantizeSymmetricBatches<4>(x, blocks, out); }
size_t F32Q5_0(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) { return QuantizeSymmetricBatches<5>(x, blocks, out); }

// q4_1 and q5_1: d = (max - min) / (2^bits - 1), m = min, codes trunc((x - min) / d + 0.5).
template <int kBits>
size_t QuantizeAffineBatches(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) {
  const DF df;
  const DU du;
  const DI di;
  const size_t N = hn::Lanes(df);
  const size_t per_block = kBlock / N;
  constexpr size_t kBytes = kBits == 4 ? 20 : 24;
  size_t b = 0;
  for (; b + N <= blocks; b += N) {
    const float* xb = x + b * kBlock;
    uint8_t* ob = out + b * kBytes;
    PrefetchAhead(xb, N);
    VI lo[kMaxLanes], hi[kMaxLanes];
    for (size_t k = 0; k < N; ++k) {
      VI key = OrderedKey(hn::BitCast(du, hn::LoadU(df, xb + k * kBlock)));
      VI acc_lo = key, acc_hi = key;
      for (size_t v = 1; v < per_block; ++v) {
        key = OrderedKey(hn::BitCast(du, hn::LoadU(df, xb + k * kBlock + v * N)));
        acc_lo = hn::Min(acc_lo, key);
        acc_hi = hn::Max(acc_hi, key);
      }
      lo[k] = acc_lo;
      hi[k] = acc_hi;
    }
    const VF min = FromOrderedKey(ReduceEach(di, lo, [](VI a, VI c) { return hn::Min(a, c); }));
    const VF max = FromOrderedKey(ReduceEach(di, hi, [](VI a, VI c) { return hn::Max(a, c); }));
    const VF d = hn::Div(hn::Sub(max, min), hn::Set(df, static_cast<float>((1 << kBits) - 1)));
    const VF id = InverseOrZero(d);
    // A NaN comes out as min or max; a zero there has a sign ggml takes from the first zero.
    const auto nonzero = hn::And(hn::Ne(min, hn::Zero(df)), hn::Ne(max, hn::Zero(df)));
    const auto ordinary = hn::And(hn::And(nonzero, IsFiniteF(d)), hn::And(IsFiniteF(id), hn::And(IsFiniteF(min), IsFiniteF(max))));
    HWY_ALIGN float ids[kMaxLanes], mins[kMaxLanes];
    HWY_ALIGN uint32_t d_halves[kMaxLanes], m_halves[kMaxLanes];
    hn::Store(id, df, ids);
    hn::Store(min, df, mins);
    hn::Store(F32ToF16Ggml(d), du, d_halves);
    hn::Store(F32ToF16Ggml(min), du, m_halves);
    for (size_t k = 0; k < N; ++k) {
      uint8_t* o = ob + k * kBytes;
      PutHalf(o, d_halves[k]);
      PutHalf(o + 2, m_halves[k]);
      const VF idk = hn::Set(df, ids[k]), mink = hn::Set(df, mins[k]);
      VI codes[kBlock];
      for (size_t v = 0; v < per_block; ++v) {
        const VF y = hn::Add(hn::Mul(hn::Sub(hn::LoadU(df, xb + k * kBlock + v * N), mink), idk), hn::Set(df, 0.5f));
        codes[v] = TruncateInRange(y);  // in [0, 2^bits - 1] for ordinary blocks
        if constexpr (kBits == 4) codes[v] = hn::Min(codes[v], hn::Set(di, 15));
      }
      if constexpr (kBits == 4) {
        StoreNibblePairs(codes, o + 4);
      } else {
        const uint32_t qh = FifthBits(codes);
        std::memcpy(o + 4, &qh, 4);
        for (size_t v = 0; v < per_block; ++v) codes[v] = hn::And(codes[v], hn::Set(di, 0x0F));
        StoreNibblePairs(codes, o + 8);
      }
    }
    FixBatch(ordinary, xb, ob, kBytes, kBits == 4 ? f32_q4_1_quantize_ref : f32_q5_1_quantize_ref);
  }
  return b;
}

size_t F32Q4_1(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) { return QuantizeAffineBatches<4>(x, blocks, out); }
size_t F32Q5_1(const float* HWY_RESTRICT x, size_t blocks, uint8_t* HWY_RESTRICT out) { return QuantizeAffineBatches<5>(x, blocks, out); }

// ---- Dequantizers -------------------------------------------------------------------------------
// Whole batches of N blocks (the caller does the rest with the reference). Streaming stores
// when the output is large and aligned to the vector: it is written once and not read soon.

template <bool kStream>
HWY_INLINE void PutFloats(VF v, float* HWY_RESTRICT p) {
  if constexpr (kStream) hn::Stream(v, DF(), p);
  else hn::StoreU(v, DF(), p);
}

// The codes of one block as N-lane int32 vectors, element order; `kAffine`: y = c * d + m, else
// y = c * d (the caller's codes already offset).
template <bool kStream, bool kAffine>
HWY_INLINE void PutBlock(const VI* codes, VF d, VF m, float* HWY_RESTRICT y) {
  const DF df;
  const size_t N = hn::Lanes(df);
  for (size_t v = 0; v < kBlock / N; ++v) {
    VF r = hn::Mul(hn::ConvertTo(df, codes[v]), d);
    if constexpr (kAffine) r = hn::Add(r, m);  // two roundings, as ggml's baseline build
    PutFloats<kStream>(r, y + v * N);
  }
}

// Nibbles of 16 bytes: element j the low nibble of byte j, element j + 16 its high nibble.
HWY_INLINE void Nibbles(const uint8_t* HWY_RESTRICT qs, VI* codes) {
  const DI di;
  const hn::Rebind<uint8_t, DI> d8;
  const size_t N = hn::Lanes(di);
  const size_t half = kBlock / 2 / N;
  for (size_t k = 0; k < half; ++k) {
    const VI bytes = hn::BitCast(di, hn::PromoteTo(DU(), hn::LoadU(d8, qs + k * N)));
    codes[k] = hn::And(bytes, hn::Set(di, 0x0F));
    codes[k + half] = hn::ShiftRight<4>(bytes);
  }
}

HWY_INLINE void AddFifthBits(const uint8_t* HWY_RESTRICT qh_bytes, VI* codes) {
  const DI di;
  const DU du;
  const size_t N = hn::Lanes(di);
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const VU all = hn::Set(du, qh);
  for (size_t v = 0; v < kBlock / N; ++v) {
    const VU bit = hn::And(hn::Shr(all, hn::Add(hn::Iota(du, 0), hn::Set(du, static_cast<uint32_t>(v * N)))), hn::Set(du, 1u));
    codes[v] = hn::Or(codes[v], hn::BitCast(di, hn::ShiftLeft<4>(bit)));
  }
}

enum class Kind { q4_0, q4_1, q5_0, q5_1, q8_0 };

template <Kind kKind, bool kStream>
size_t DequantizeBatches(const uint8_t* HWY_RESTRICT in, size_t blocks, float* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const size_t N = hn::Lanes(df);
  constexpr bool kAffine = kKind == Kind::q4_1 || kKind == Kind::q5_1;
  constexpr size_t kBytes = kKind == Kind::q4_0 ? 18 : kKind == Kind::q4_1 ? 20 : kKind == Kind::q5_0 ? 22 : kKind == Kind::q5_1 ? 24 : 34;
  size_t b = 0;
  for (; b + N <= blocks; b += N) {
    const uint8_t* ib = in + b * kBytes;
    for (size_t i = 0; i < N * kBytes; i += 64) hwy::Prefetch(ib + 2 * N * kBytes + i);  // as PrefetchAhead
    HWY_ALIGN float ds[kMaxLanes], ms[kMaxLanes];
    hn::Store(LoadHalfScales(ib, N, kBytes, 0), df, ds);
    if constexpr (kAffine) hn::Store(LoadHalfScales(ib, N, kBytes, 2), df, ms);
    for (size_t k = 0; k < N; ++k) {
      const uint8_t* p = ib + k * kBytes;
      if (kAffine && !(std::fabs(ds[k]) <= hwy::HighestValue<float>() && std::fabs(ms[k]) <= hwy::HighestValue<float>())) {
        // Which NaN comes out of c * d + m is the reference's to say.
        const std::span<float> y(out + (b + k) * kBlock, kBlock);
        if constexpr (kKind == Kind::q4_1) q4_1_f32_dequantize_ref(std::span<const uint8_t>(p, kBytes), y);
        else q5_1_f32_dequantize_ref(std::span<const uint8_t>(p, kBytes), y);
        continue;
      }
      VI codes[kBlock];
      if constexpr (kKind == Kind::q8_0) {
        const hn::Rebind<int8_t, DI> d8;
        for (size_t v = 0; v < kBlock / N; ++v) codes[v] = hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const int8_t*>(p + 2 + v * N)));
      } else if constexpr (kKind == Kind::q4_0 || kKind == Kind::q4_1) {
        Nibbles(p + (kAffine ? 4 : 2), codes);
      } else {
        Nibbles(p + (kAffine ? 8 : 6), codes);
        AddFifthBits(p + (kAffine ? 4 : 2), codes);
      }
      if constexpr (kKind == Kind::q4_0 || kKind == Kind::q5_0) {
        const VI offset = hn::Set(di, kKind == Kind::q4_0 ? 8 : 16);
        for (size_t v = 0; v < kBlock / N; ++v) codes[v] = hn::Sub(codes[v], offset);
      }
      PutBlock<kStream, kAffine>(codes, hn::Set(df, ds[k]), hn::Set(df, kAffine ? ms[k] : 0.0f), out + (b + k) * kBlock);
    }
  }
  return b;
}

template <Kind kKind>
size_t Dequantize(const uint8_t* HWY_RESTRICT in, size_t blocks, float* HWY_RESTRICT out, bool stream) {
  if (!stream) return DequantizeBatches<kKind, false>(in, blocks, out);
  const size_t done = DequantizeBatches<kKind, true>(in, blocks, out);
  hwy::FlushStream();
  return done;
}
size_t Q4_0F32(const uint8_t* in, size_t blocks, float* out, bool stream) { return Dequantize<Kind::q4_0>(in, blocks, out, stream); }
size_t Q4_1F32(const uint8_t* in, size_t blocks, float* out, bool stream) { return Dequantize<Kind::q4_1>(in, blocks, out, stream); }
size_t Q5_0F32(const uint8_t* in, size_t blocks, float* out, bool stream) { return Dequantize<Kind::q5_0>(in, blocks, out, stream); }
size_t Q5_1F32(const uint8_t* in, size_t blocks, float* out, bool stream) { return Dequantize<Kind::q5_1>(in, blocks, out, stream); }
size_t Q8_0F32(const uint8_t* in, size_t blocks, float* out, bool stream) { return Dequantize<Kind::q8_0>(in, blocks, out, stream); }

// ---- Plain rows (whole vectors; the caller does the rest) ----------------------------------------
size_t F32F16(const float* HWY_RESTRICT x, size_t n, uint8_t* HWY_RESTRICT out) {
  const DF df;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::TruncateTo(d16, F32ToF16Ggml(hn::LoadU(df, x + i))), d16, reinterpret_cast<uint16_t*>(out + 2 * i));
  }
  return i;
}
size_t F16F32(const uint8_t* HWY_RESTRICT in, size_t n, float* HWY_RESTRICT out) {
  const DF df;
  const DU du;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(F16ToF32Ggml(hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(in + 2 * i)))), df, out + i);
  }
  return i;
}
size_t F32BF16(const float* HWY_RESTRICT x, size_t n, uint8_t* HWY_RESTRICT out) {
  const DF df;
  const DU du;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VU u = hn::BitCast(du, hn::LoadU(df, x + i));
    const VU rounded = hn::ShiftRight<16>(hn::Add(u, hn::Add(hn::Set(du, 0x7FFFu), hn::And(hn::ShiftRight<16>(u), hn::Set(du, 1u)))));
    const VU quiet_nan = hn::Or(hn::ShiftRight<16>(u), hn::Set(du, 0x40u));
    const auto nan = hn::Gt(hn::And(u, hn::Set(du, 0x7FFFFFFFu)), hn::Set(du, 0x7F800000u));
    hn::StoreU(hn::TruncateTo(d16, hn::IfThenElse(nan, quiet_nan, rounded)), d16, reinterpret_cast<uint16_t*>(out + 2 * i));
  }
  return i;
}
size_t BF16F32(const uint8_t* HWY_RESTRICT in, size_t n, float* HWY_RESTRICT out) {
  const DF df;
  const DU du;
  const hn::Rebind<uint16_t, DF> d16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VU u = hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(in + 2 * i))));
    hn::StoreU(hn::BitCast(df, u), df, out + i);
  }
  return i;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace zp::ggml::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace zp::ggml::kernels {

HWY_EXPORT(F32Q4_0);
HWY_EXPORT(F32Q4_1);
HWY_EXPORT(F32Q5_0);
HWY_EXPORT(F32Q5_1);
HWY_EXPORT(F32Q8_0);
HWY_EXPORT(F32Q8_1);
HWY_EXPORT(Q4_0F32);
HWY_EXPORT(Q4_1F32);
HWY_EXPORT(Q5_0F32);
HWY_EXPORT(Q5_1F32);
HWY_EXPORT(Q8_0F32);
HWY_EXPORT(F32F16);
HWY_EXPORT(F16F32);
HWY_EXPORT(F32BF16);
HWY_EXPORT(BF16F32);

namespace {

namespace zk = zp::kernels::detail;

constexpr std::size_t kBlock = 32;
// Beyond this the output does not stay in the caches that matter, so it is written around them.
constexpr std::size_t kStreamingBytes = std::size_t{16} << 20;

// The dispatched functions do whole batches of the target's vector length and say how many
// blocks that was; the reference does the rest.
template <class Simd, class Ref>
void quantize(std::span<const float> x, std::span<std::uint8_t> out, std::size_t block_bytes, Simd simd, Ref ref) noexcept {
  zk::expect(x.size() % kBlock == 0);
  zk::expect_output(x, out, x.size() / kBlock * block_bytes);
  zk::configure_dispatch_once();
  const std::size_t blocks = x.size() / kBlock;
  const std::size_t done = simd(x.data(), blocks, out.data());
  if (done < blocks) ref(x.subspan(done * kBlock), out.subspan(done * block_bytes), {});
}

template <class Simd, class Ref>
void dequantize(std::span<const std::uint8_t> in, std::span<float> out, std::size_t block_bytes, Simd simd, Ref ref) noexcept {
  zk::expect(out.size() % kBlock == 0 && in.size() >= out.size() / kBlock * block_bytes);
  zk::expect_output(in, out, 0);
  zk::configure_dispatch_once();
  const std::size_t blocks = out.size() / kBlock;
  const bool stream = out.size_bytes() >= kStreamingBytes && reinterpret_cast<std::uintptr_t>(out.data()) % 64 == 0;
  const std::size_t done = simd(in.data(), blocks, out.data(), stream);
  if (done < blocks) ref(in.subspan(done * block_bytes), out.subspan(done * kBlock));
}

}  // namespace

#define ZP_GGML_LEGACY_PUBLIC(T, BYTES, QUANTIZE, DEQUANTIZE)                                                \
  void f32_##T##_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept { \
    quantize(x, out, BYTES, HWY_DYNAMIC_DISPATCH(QUANTIZE), f32_##T##_quantize_ref);                       \
  }                                                                                                      \
  void T##_f32_dequantize(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {           \
    dequantize(blocks, out, BYTES, HWY_DYNAMIC_DISPATCH(DEQUANTIZE), T##_f32_dequantize_ref);               \
  }
ZP_GGML_LEGACY_PUBLIC(q4_0, 18, F32Q4_0, Q4_0F32)
ZP_GGML_LEGACY_PUBLIC(q4_1, 20, F32Q4_1, Q4_1F32)
ZP_GGML_LEGACY_PUBLIC(q5_0, 22, F32Q5_0, Q5_0F32)
ZP_GGML_LEGACY_PUBLIC(q5_1, 24, F32Q5_1, Q5_1F32)
ZP_GGML_LEGACY_PUBLIC(q8_0, 34, F32Q8_0, Q8_0F32)
#undef ZP_GGML_LEGACY_PUBLIC

void f32_q8_1_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  quantize(x, out, 36, HWY_DYNAMIC_DISPATCH(F32Q8_1), f32_q8_1_quantize_ref);
}

// Plain rows: whole vectors by the SIMD path, the last few values by the reference.
void f32_f32_convert(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept {
  f32_f32_convert_ref(x, out, importance);  // a copy: memcpy is the fast path
}
void f32_f32_convert(std::span<const std::uint8_t> values, std::span<float> out) noexcept { f32_f32_convert_ref(values, out); }

void f32_f16_convert(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  zk::expect_output(x, out, 2 * x.size());
  zk::configure_dispatch_once();
  const std::size_t done = HWY_DYNAMIC_DISPATCH(F32F16)(x.data(), x.size(), out.data());
  f32_f16_convert_ref(x.subspan(done), out.subspan(2 * done), {});
}
void f16_f32_convert(std::span<const std::uint8_t> values, std::span<float> out) noexcept {
  zk::expect(values.size() >= 2 * out.size());
  zk::expect_output(values, out, 0);
  zk::configure_dispatch_once();
  const std::size_t done = HWY_DYNAMIC_DISPATCH(F16F32)(values.data(), out.size(), out.data());
  f16_f32_convert_ref(values.subspan(2 * done), out.subspan(done));
}
void f32_bf16_convert(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  zk::expect_output(x, out, 2 * x.size());
  zk::configure_dispatch_once();
  const std::size_t done = HWY_DYNAMIC_DISPATCH(F32BF16)(x.data(), x.size(), out.data());
  f32_bf16_convert_ref(x.subspan(done), out.subspan(2 * done), {});
}
void bf16_f32_convert(std::span<const std::uint8_t> values, std::span<float> out) noexcept {
  zk::expect(values.size() >= 2 * out.size());
  zk::expect_output(values, out, 0);
  zk::configure_dispatch_once();
  const std::size_t done = HWY_DYNAMIC_DISPATCH(BF16F32)(values.data(), out.size(), out.data());
  bf16_f32_convert_ref(values.subspan(2 * done), out.subspan(done));
}

}  // namespace zp::ggml::kernels
#endif  // HWY_ONCE
