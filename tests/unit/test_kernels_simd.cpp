// Tier two of two: every SIMD kernel equals its scalar reference bit for bit, on every
// instruction set this CPU has (the others are skipped visibly), on random data and on the edges
// SIMD gets wrong: ties of both signs, saturation, -0.0, subnormals, NaN/Inf, every length from 0
// to three vectors and beyond, unaligned pointers.
#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/convert_ref.hpp"
#include "unit/target_fixture.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/scheme.hpp"

namespace zp::kernels {
namespace {

// Bit for bit, so that NaN payloads and the sign of zero count.
bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

class SimdKernels : public zp::testing::OnEveryTarget {};

// Values that stress every step: ties, saturation, signed zeros, subnormals, non-finite.
std::vector<float> edge_values(float scale, std::uint32_t seed, std::size_t n) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 40.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  std::uniform_int_distribution<int> k(-300, 300);
  std::vector<float> v(n);
  for (float& x : v) {
    switch (pick(rng)) {
      case 0: x = (static_cast<float>(k(rng)) + 0.5f) * scale; break;  // an exact tie
      case 1: x = -0.0f; break;
      case 2: x = std::numeric_limits<float>::denorm_min() * static_cast<float>(k(rng)); break;
      case 3: x = std::numeric_limits<float>::quiet_NaN(); break;
      case 4: x = k(rng) > 0 ? INFINITY : -INFINITY; break;
      case 5: x = static_cast<float>(k(rng)) * 1e30f; break;  // saturates
      case 6: x = 8388608.5f * scale * (k(rng) > 0 ? 1.0f : -1.0f); break;  // quotient near 2^23
      default: x = normal(rng) * scale; break;
    }
  }
  return v;
}

struct Case {
  AffineParams params;
  int qmin, qmax;
};

template <class Code, class Simd, class Ref>
void check_quantize(const std::vector<float>& x, const Case& c, Simd simd, Ref ref, const char* what) {
  for (auto rounding : {Rounding::half_even, Rounding::half_away, Rounding::half_up}) {
    for (auto quotient : {Quotient::divide, Quotient::reciprocal}) {
      // The code range must fit the code type (the kernels' contract): intersect the case's.
      const int qmin = std::max<int>(c.qmin, std::numeric_limits<Code>::min());
      const int qmax = std::min<int>(c.qmax, std::numeric_limits<Code>::max());
      const QuantizeSpec spec{{qmin, qmax}, rounding, quotient};
      // Every length up to 3 vectors of the widest target and a few more, at offsets 0..3 so the
      // loads are unaligned.
      for (std::size_t offset = 0; offset < 4; ++offset) {
        for (std::size_t n = 0; n + offset <= x.size() && n <= 100; n += (n < 50 ? 1 : 13)) {
          const std::span<const float> in(x.data() + offset, n);
          std::vector<Code> expected(n + 1, Code{42}), actual(n + 1, Code{42});
          ref(in, c.params, spec, std::span<Code>(expected.data(), n));
          simd(in, c.params, spec, std::span<Code>(actual.data(), n));
          ASSERT_EQ(actual, expected) << what << " n=" << n << " offset=" << offset << " rounding="
                                      << static_cast<int>(rounding) << " quotient=" << static_cast<int>(quotient);
        }
      }
    }
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c{
      {{0.5f, 0, 0.0f}, -127, 127},    {{0.25f, 3, 0.0f}, -128, 127},   {{0.0787401571f, 0, 0.0f}, -127, 127},
      {{1.0196079f, 0, 0.0f}, 0, 255}, {{0.1f, -40, 0.0f}, -128, 127},  {{0.98039216f, 0, 10.0f}, 0, 255},
      {{0.5f, 0, -3.25f}, -8, 7},      {{0.01f, 100, 0.0f}, -32768, 32767}, {{1e-3f, 32768, 0.0f}, 0, 65535},
      {{0.5f, 0, 0.0f}, -7, 7},        {{3e-39f, 0, 0.0f}, -127, 127}};  // a subnormal-sized scale
  return c;
}

TEST_P(SimdKernels, QuantizeF32MatchesReference) {
  std::uint32_t seed = 1;
  for (const Case& c : cases()) {
    const auto x = edge_values(c.params.scale, seed++, 104);
    check_quantize<std::int8_t>(x, c, f32_qs8_quantize, f32_qs8_quantize_ref, "f32_qs8");
    check_quantize<std::uint8_t>(x, c, f32_qu8_quantize, f32_qu8_quantize_ref, "f32_qu8");
    check_quantize<std::int16_t>(x, c, f32_qs16_quantize, f32_qs16_quantize_ref, "f32_qs16");
    check_quantize<std::uint16_t>(x, c, f32_qu16_quantize, f32_qu16_quantize_ref, "f32_qu16");
  }
}

TEST_P(SimdKernels, QuantizeLargeRandomArrays) {
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(100003);
  for (float& v : x) v = normal(rng);
  for (const Case& c : cases()) {
    for (auto rounding : {Rounding::half_even, Rounding::half_away}) {
      const QuantizeSpec spec{{std::max(c.qmin, -32768), std::min(c.qmax, 32767)}, rounding, Quotient::divide};
      std::vector<std::int16_t> expected(x.size()), actual(x.size());
      f32_qs16_quantize_ref(x, c.params, spec, expected);
      f32_qs16_quantize(x, c.params, spec, actual);
      ASSERT_EQ(actual, expected);
    }
  }
}

// The fast path multiplies by 1/scale and re-checks quotients next to a tie k + 0.5, where the
// product and the true quotient may round apart; and it leaves the clamp at the code type's ends
// to the packing instructions. Values a few ulps from ties and at the int32 limits of the
// quotient aim at exactly those shortcuts.
std::vector<float> values_next_to_ties(float scale, std::uint32_t seed, std::size_t n) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> k(-140, 140), ulps(-3, 3), pick(0, 9);
  const float limits[] = {0x1p31f, 0x1p31f - 128.0f, 0x1p32f, -0x1p31f, -0x1p31f - 256.0f, 0x1p24f, 65535.5f};
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    float x = pick(rng) == 0 ? limits[i % std::size(limits)] * scale : (static_cast<float>(k(rng)) + 0.5f) * scale;
    for (int u = ulps(rng); u != 0; u += u > 0 ? -1 : 1) x = std::nextafter(x, u > 0 ? INFINITY : -INFINITY);
    v[i] = x;
  }
  return v;
}

TEST_P(SimdKernels, QuantizeQuotientsNextToTies) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::size_t product_differs = 0;
  for (std::uint32_t seed = 0; seed < 40; ++seed) {
    const float scale = std::ldexp(mantissa(rng), static_cast<int>(seed % 9) - 6);
    const auto x = values_next_to_ties(scale, seed, 96);
    for (const Case& c : {Case{{scale, 0, 0.0f}, -128, 127}, Case{{scale, 0, 0.0f}, -127, 127},
                          Case{{scale, 5, 0.0f}, 0, 255}, Case{{scale, -100, 0.0f}, -128, 127},
                          Case{{scale, 200, 0.0f}, 0, 255}, Case{{scale, 30000, 0.0f}, 0, 65535}}) {
      check_quantize<std::int8_t>(x, c, f32_qs8_quantize, f32_qs8_quantize_ref, "f32_qs8");
      check_quantize<std::uint8_t>(x, c, f32_qu8_quantize, f32_qu8_quantize_ref, "f32_qu8");
      check_quantize<std::int16_t>(x, c, f32_qs16_quantize, f32_qs16_quantize_ref, "f32_qs16");
      check_quantize<std::uint16_t>(x, c, f32_qu16_quantize, f32_qu16_quantize_ref, "f32_qu16");
    }
    for (float v : x) {
      const AffineParams p{scale, 0, 0.0f};
      const QuantizeSpec divide{{-32768, 32767}, Rounding::half_even, Quotient::divide};
      const QuantizeSpec multiply{{-32768, 32767}, Rounding::half_even, Quotient::reciprocal};
      product_differs += quantize_value(v, p, divide) != quantize_value(v, p, multiply);
    }
  }
  // The data must contain values where the shortcut alone would be wrong.
  EXPECT_GT(product_differs, 10u);
}

// Spans past 16 MiB take the streaming-store path (with an unaligned head); same bits.
TEST_P(SimdKernels, QuantizeStreamingSizes) {
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 30.0f);
  std::vector<float> x((std::size_t{1} << 22) + 101);
  for (float& v : x) v = normal(rng);
  x[7] = NAN;
  x[x.size() - 3] = (7.0f + 0.5f) * 0.5f;  // a tie in the tail
  const AffineParams p{0.5f, 3, 0.0f};
  const QuantizeSpec spec{{-128, 127}, Rounding::half_even, Quotient::divide};
  const std::span<const float> in(x.data() + 1, x.size() - 1);
  std::vector<std::int8_t> expected(in.size() + 5), actual(in.size() + 5);
  f32_qs8_quantize_ref(in, p, spec, std::span<std::int8_t>(expected.data() + 3, in.size()));
  f32_qs8_quantize(in, p, spec, std::span<std::int8_t>(actual.data() + 3, in.size()));  // unaligned
  ASSERT_EQ(actual, expected);
  std::vector<std::uint8_t> e8(in.size()), a8(in.size());
  const QuantizeSpec uspec{{0, 255}, Rounding::half_even, Quotient::divide};
  f32_qu8_quantize_ref(in, p, uspec, e8);
  f32_qu8_quantize(in, p, uspec, a8);
  ASSERT_EQ(a8, e8);
}

// f16 / bf16 inputs: the SIMD kernel widens in registers; the reference is the f32 reference on
// the exactly widened values.
TEST_P(SimdKernels, QuantizeHalfInputsMatchWidenedReference) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> bits(0, 0xFFFF);
  for (const Case& c : cases()) {
    std::vector<std::uint16_t> h(97);
    for (auto& b : h) b = static_cast<std::uint16_t>(bits(rng));
    h[0] = 0x7C00;  // +inf
    h[1] = 0xFE00;  // NaN
    h[2] = 0x8000;  // -0
    for (bool brain : {false, true}) {
      std::vector<float> widened(h.size());
      for (std::size_t i = 0; i < h.size(); ++i) widened[i] = brain ? bf16_f32_convert_ref(h[i]) : f16_f32_convert_ref(h[i]);
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{17}, std::size_t{33}, h.size()}) {
        const QuantizeSpec spec8{{std::max(c.qmin, -128), std::min(c.qmax, 127)}, Rounding::half_even, Quotient::divide};
        const QuantizeSpec spec16{{std::max(c.qmin, 0), std::min(c.qmax, 65535)}, Rounding::half_away, Quotient::reciprocal};
        std::vector<std::int8_t> e8(n), a8(n);
        std::vector<std::uint16_t> e16(n), a16(n);
        f32_qs8_quantize_ref(std::span<const float>(widened.data(), n), c.params, spec8, e8);
        f32_qu16_quantize_ref(std::span<const float>(widened.data(), n), c.params, spec16, e16);
        const std::span<const std::uint16_t> in(h.data(), n);
        if (brain) {
          bf16_qs8_quantize(in, c.params, spec8, a8);
          bf16_qu16_quantize(in, c.params, spec16, a16);
        } else {
          f16_qs8_quantize(in, c.params, spec8, a8);
          f16_qu16_quantize(in, c.params, spec16, a16);
        }
        ASSERT_EQ(a8, e8) << (brain ? "bf16" : "f16") << " n=" << n;
        ASSERT_EQ(a16, e16) << (brain ? "bf16" : "f16") << " n=" << n;
      }
    }
  }
}

template <class Code, class Simd, class Ref>
void check_dequantize(Simd simd, Ref ref, const char* what) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> code(std::numeric_limits<Code>::min(), std::numeric_limits<Code>::max());
  std::vector<Code> q(120);
  for (auto& c : q) c = static_cast<Code>(code(rng));
  q[0] = std::numeric_limits<Code>::min();
  q[1] = std::numeric_limits<Code>::max();
  for (const Case& c : cases()) {
    for (std::size_t offset = 0; offset < 3; ++offset) {
      for (std::size_t n = 0; n + offset <= q.size(); n += (n < 40 ? 1 : 11)) {
        const std::span<const Code> in(q.data() + offset, n);
        std::vector<float> expected(n), actual(n);
        ref(in, c.params, expected);
        simd(in, c.params, actual);
        ASSERT_TRUE(same_bits(expected, actual)) << what << " n=" << n;
      }
    }
  }
}

TEST_P(SimdKernels, DequantizeMatchesReference) {
  check_dequantize<std::int8_t>(qs8_f32_dequantize, qs8_f32_dequantize_ref, "qs8");
  check_dequantize<std::uint8_t>(qu8_f32_dequantize, qu8_f32_dequantize_ref, "qu8");
  check_dequantize<std::int16_t>(qs16_f32_dequantize, qs16_f32_dequantize_ref, "qs16");
  check_dequantize<std::uint16_t>(qu16_f32_dequantize, qu16_f32_dequantize_ref, "qu16");
}

bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

TEST_P(SimdKernels, ReductionsMatchReference) {
  std::uint32_t seed = 100;
  for (float scale : {1.0f, 1e-30f, 1e30f}) {
    auto x = edge_values(scale, seed++, 200);
    std::vector<float> finite;
    for (float v : x) {
      if (std::isfinite(v)) finite.push_back(v);
    }
    finite.push_back(-0.0f);  // zero extremes must come back as +0.0 everywhere
    for (std::size_t offset = 0; offset < 3; ++offset) {
      for (std::size_t n = 0; n + offset <= finite.size(); n += (n < 70 ? 1 : 7)) {
        const std::span<const float> f(finite.data() + offset, n);
        const MinMax e = f32_minmax_ref(f, false), a = f32_minmax(f, false);
        ASSERT_TRUE(same_bits(e.min, a.min) && same_bits(e.max, a.max)) << "n=" << n;
        ASSERT_TRUE(e.finite && a.finite) << "n=" << n;
        ASSERT_TRUE(same_bits(f32_absmax_ref(f, false), f32_absmax(f, false))) << "n=" << n;
        ASSERT_EQ(f32_find_nonfinite_ref(f), f32_find_nonfinite(f));
      }
      for (std::size_t n = 0; n + offset <= x.size(); n += (n < 70 ? 1 : 7)) {
        const std::span<const float> all(x.data() + offset, n);
        const MinMax e = f32_minmax_ref(all, true), a = f32_minmax(all, true);
        ASSERT_TRUE(same_bits(e.min, a.min) && same_bits(e.max, a.max)) << "n=" << n;
        ASSERT_EQ(e.finite, a.finite) << "n=" << n;
        ASSERT_EQ(f32_minmax_ref(all, false).finite, f32_minmax(all, false).finite) << "n=" << n;
        ASSERT_EQ(f32_minmax(all, false).finite, f32_find_nonfinite_ref(all) == all.size()) << "n=" << n;
        ASSERT_TRUE(same_bits(f32_absmax_ref(all, true), f32_absmax(all, true))) << "n=" << n;
        const float ea = f32_absmax_ref(all, false), aa = f32_absmax(all, false);
        ASSERT_TRUE(same_bits(ea, aa) || (std::isnan(ea) && std::isnan(aa))) << "n=" << n;
        ASSERT_EQ(f32_find_nonfinite_ref(all), f32_find_nonfinite(all)) << "n=" << n;
      }
    }
  }
  // All zeros of both signs, in both orders.
  const std::vector<float> zeros{-0.0f, 0.0f, -0.0f, -0.0f, 0.0f, -0.0f, -0.0f, -0.0f, 0.0f, -0.0f, -0.0f, -0.0f,
                                 -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, 0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
                                 -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};
  const MinMax z = f32_minmax(zeros, false);
  EXPECT_TRUE(same_bits(z.min, 0.0f));
  EXPECT_TRUE(same_bits(z.max, 0.0f));
}

// The one-pass block kernel against the three reference steps, for every kind of scheme.
template <class Code, class Kernel, class Ref>
void check_blocks(Kernel kernel, Ref ref, const char* type) {
  std::mt19937 rng(4242);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const char* options : {"", ":full", ":asym", ":asym:narrow", ":asym:zp=float", ":sym", ":round=away", ":recip",
                              ":asym:round=up"}) {
    const std::string text = std::string(type) + ":block=2" + options;
    Scheme scheme;
    try {
      scheme = Scheme::parse(text);
    } catch (const Error&) {
      continue;  // e.g. sym on a signed type is the default spelled out; narrow unsigned sym is refused
    }
    for (std::size_t block : {2, 3, 16, 17, 32, 33, 128}) {
      for (bool skip : {false, true}) {
        const std::size_t blocks = 70;  // more than one internal batch of 64
        std::vector<float> x(blocks * block);
        for (std::size_t i = 0; i < x.size(); ++i) {
          const std::size_t b = i / block;
          if (b % 7 == 0) x[i] = 0.0f;                                // all-zero block
          else if (b % 7 == 1) x[i] = 3.5f;                           // constant block
          else if (b % 7 == 2) x[i] = normal(rng) * 1e-42f;           // range underflows the scale
          else if (b % 7 == 3) x[i] = -std::fabs(normal(rng)) - 1.0f;  // all negative
          else if (b % 14 == 4) x[i] = i % 3 ? 3.2e38f : -3.1e38f;  // 1/scale is not a normal float
          else if (b % 14 == 5) x[i] = normal(rng) * 2e-37f;  // nor here (scale just above FLT_MIN)
          else x[i] = normal(rng) * static_cast<float>(b);
        }
        if (skip) {
          x[block + 1] = NAN;
          x[5 * block] = INFINITY;
          for (std::size_t i = 6 * block; i < 7 * block; ++i) x[i] = NAN;  // no finite value at all
        }
        const BlockScheme bs = BlockScheme::of(scheme, skip);
        std::vector<float> scale(blocks), offset(blocks), e_scale(blocks), e_offset(blocks);
        std::vector<std::int32_t> zp(blocks), e_zp(blocks);
        std::vector<Code> q(x.size()), e_q(x.size());
        const bool finite = kernel(x, block, bs, scale, zp, offset, q);
        ASSERT_EQ(finite, !skip) << text << " block " << block;  // the skip cases hold NaN and inf
        for (std::size_t b = 0; b < blocks; ++b) {
          const std::span<const float> values(x.data() + b * block, block);
          MinMax m = f32_minmax_ref(values, skip);
          if (m.min > m.max) m.min = m.max = 0.0f;
          const AffineParams p = choose_params(m.min, m.max, scheme);
          e_scale[b] = p.scale;
          e_zp[b] = p.zero_point;
          e_offset[b] = p.offset;
          ref(values, p, quantize_spec(scheme), std::span<Code>(e_q.data() + b * block, block));
        }
        ASSERT_EQ(scale, e_scale) << text << " block " << block;
        ASSERT_EQ(zp, e_zp) << text << " block " << block;
        for (std::size_t b = 0; b < blocks; ++b) ASSERT_TRUE(same_bits(offset[b], e_offset[b])) << text << " " << b;
        ASSERT_EQ(q, e_q) << text << " block " << block;
        if (scheme.bits == 4 && block % 2 == 0) {  // the same with the codes packed in the kernel
          std::vector<std::uint8_t> packed(x.size() / 2), e_packed(x.size() / 2);
          pack_ref({reinterpret_cast<const std::uint8_t*>(e_q.data()), e_q.size()}, 4, e_packed);
          std::fill(scale.begin(), scale.end(), -1.0f);
          const bool packed_finite = std::is_signed_v<Code>
                                         ? f32_qs4_quantize_blocks(x, block, bs, scale, zp, offset, packed)
                                         : f32_qu4_quantize_blocks(x, block, bs, scale, zp, offset, packed);
          ASSERT_EQ(packed_finite, !skip) << text << " block " << block;
          ASSERT_EQ(scale, e_scale) << text << " block " << block;
          ASSERT_EQ(packed, e_packed) << text << " block " << block;
        }
      }
    }
  }
}

TEST_P(SimdKernels, BlockKernelMatchesReferenceSteps) {
  check_blocks<std::int8_t>(f32_qs8_quantize_blocks, f32_qs8_quantize_ref, "int4");
  check_blocks<std::int8_t>(f32_qs8_quantize_blocks, f32_qs8_quantize_ref, "int8");
  check_blocks<std::uint8_t>(f32_qu8_quantize_blocks, f32_qu8_quantize_ref, "uint4");
  check_blocks<std::uint8_t>(f32_qu8_quantize_blocks, f32_qu8_quantize_ref, "uint8");
  check_blocks<std::int8_t>(f32_qs8_quantize_blocks, f32_qs8_quantize_ref, "int2");
  check_blocks<std::int16_t>(f32_qs16_quantize_blocks, f32_qs16_quantize_ref, "int16");
  check_blocks<std::uint16_t>(f32_qu16_quantize_blocks, f32_qu16_quantize_ref, "uint16");
}

TEST_P(SimdKernels, NibblePackingMatchesReference) {
  std::mt19937 rng(9);
  std::vector<std::uint8_t> codes(300);
  for (auto& c : codes) c = static_cast<std::uint8_t>(rng());  // high nibbles must be ignored
  for (std::size_t offset = 0; offset < 3; ++offset) {
    for (std::size_t n = 0; n + offset <= codes.size(); n += (n < 80 ? 1 : 37)) {
      const std::span<const std::uint8_t> in(codes.data() + offset, n);
      std::vector<std::uint8_t> expected((n + 1) / 2 + 1, 0xAA), actual((n + 1) / 2 + 1, 0xAA);
      pack_ref(in, 4, std::span<std::uint8_t>(expected.data(), (n + 1) / 2));
      u8_u4_pack(in, std::span<std::uint8_t>(actual.data(), (n + 1) / 2));
      ASSERT_EQ(actual, expected) << "n=" << n << " offset=" << offset;
    }
  }
}

TEST_P(SimdKernels, NibbleUnpackingMatchesReference) {
  std::mt19937 rng(10);
  std::vector<std::uint8_t> packed(200);
  for (auto& b : packed) b = static_cast<std::uint8_t>(rng());
  for (bool is_signed : {false, true}) {
    for (std::size_t offset = 0; offset < 3; ++offset) {
      for (std::size_t n = 0; (n + 1) / 2 + offset <= packed.size(); n += (n < 80 ? 1 : 41)) {
        const std::span<const std::uint8_t> in(packed.data() + offset, (n + 1) / 2);
        std::vector<std::uint8_t> expected(n + 1, 0xAA), actual(n + 1, 0xAA);
        unpack_ref(in, 4, is_signed, std::span<std::uint8_t>(expected.data(), n));
        u4_u8_unpack(in, is_signed, std::span<std::uint8_t>(actual.data(), n));
        ASSERT_EQ(actual, expected) << "n=" << n << " offset=" << offset << " signed=" << is_signed;
      }
    }
  }
}

template <class Code>
void check_codes_in_range() {
  std::vector<Code> q(70);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<Code>(i % 7);
  for (std::size_t n = 0; n <= q.size(); ++n) {
    const std::span<const Code> part(q.data(), n);
    EXPECT_TRUE(codes_in_range(part, 0, 6)) << n;
    EXPECT_EQ(codes_in_range(part, 1, 6), n == 0) << n;  // code 0 is at index 0
    EXPECT_EQ(codes_in_range(part, 0, 5), n < 7) << n;   // code 6 first appears at index 6
    EXPECT_TRUE(codes_in_range(part, -100000, 100000)) << n;  // wider than the type
  }
  q[69] = std::numeric_limits<Code>::max();  // the last lane, past every full vector
  EXPECT_FALSE(codes_in_range(std::span<const Code>(q), 0, 6));
  EXPECT_TRUE(codes_in_range(std::span<const Code>(q), 0, std::numeric_limits<Code>::max()));
}

TEST_P(SimdKernels, CodesInRange) {
  check_codes_in_range<std::int8_t>();
  check_codes_in_range<std::uint8_t>();
  check_codes_in_range<std::int16_t>();
  check_codes_in_range<std::uint16_t>();
}

TEST_P(SimdKernels, WideningMatchesReference) {
  // Every one of the 65536 patterns, at an odd offset so the tail path runs too.
  std::vector<std::uint16_t> all(65536 + 3);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i * 40503u);
  for (std::uint32_t i = 0; i < 65536; ++i) all[i + 1] = static_cast<std::uint16_t>(i);
  std::vector<float> f16(all.size()), bf16(all.size());
  f16_f32_convert(all, f16);
  bf16_f32_convert(all, bf16);
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_TRUE(same_bits(f16[i], f16_f32_convert_ref(all[i]))) << std::hex << all[i];
    ASSERT_TRUE(same_bits(bf16[i], bf16_f32_convert_ref(all[i]))) << std::hex << all[i];
  }
}

TEST_P(SimdKernels, NarrowingMatchesReference) {
  // Every pattern of the upper 16 bits with lower halves around each rounding point (f16 rounds
  // at bit 13 with bits 0-12 as the rest, bf16 at bit 16), and random patterns for the f16
  // subnormals, whose rounding point moves; an odd length so the tail path runs too.
  const std::uint32_t lows[] = {0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x2FFF, 0x3000, 0x3001,
                                0x6000, 0x7FFF, 0x8000, 0x8001, 0xA000, 0xE000, 0xF000, 0xF001, 0xFFFF};
  std::vector<std::uint32_t> bits;
  for (std::uint32_t hi = 0; hi < 65536; ++hi) {
    for (std::uint32_t lo : lows) bits.push_back(hi << 16 | lo);
  }
  std::mt19937 rng(21);
  std::uniform_int_distribution<std::uint32_t> tiny(0x32800000u, 0x38900000u), any;
  for (int i = 0; i < 200000; ++i) bits.push_back(tiny(rng) | (i % 2 ? 0x80000000u : 0u));
  for (int i = 0; i < 100001; ++i) bits.push_back(any(rng));
  std::vector<float> x(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) x[i] = std::bit_cast<float>(bits[i]);
  std::vector<std::uint16_t> f16(x.size()), bf16(x.size());
  f32_f16_convert(x, f16);
  f32_bf16_convert(x, bf16);
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(f16[i], f32_f16_convert_ref(x[i])) << std::hex << bits[i];
    ASSERT_EQ(bf16[i], f32_bf16_convert_ref(x[i])) << std::hex << bits[i];
  }
}

// Parameters that change at every element (channels along the innermost axis): a different
// scale, zero point and offset per lane, with subnormal and huge scales, zero points at the code
// range's ends and signed zero offsets among them.
struct EachParams {
  std::vector<float> scale, offset;
  std::vector<std::int32_t> zero_point;
  ParamSpans spans(std::size_t from, bool has_offset) const {
    return {std::span<const float>(scale).subspan(from), std::span<const std::int32_t>(zero_point).subspan(from),
            std::span<const float>(offset).subspan(from), has_offset};
  }
};

EachParams each_params(std::size_t n, int qmin, int qmax, bool offsets, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::uniform_int_distribution<int> exponent(-12, 4), zp(qmin, qmax), pick(0, 9);
  EachParams p;
  for (std::size_t i = 0; i < n; ++i) {
    float s = std::ldexp(mantissa(rng), exponent(rng));
    if (pick(rng) == 0) s = 3e-39f;  // 1/scale overflows: the reciprocal is infinite
    if (pick(rng) == 0) s = 0x1p126f;
    p.scale.push_back(s);
    p.zero_point.push_back(offsets ? 0 : (pick(rng) < 2 ? (pick(rng) < 5 ? qmin : qmax) : zp(rng)));
    p.offset.push_back(offsets ? (pick(rng) < 3 ? (pick(rng) < 5 ? 0.0f : -0.0f) : (mantissa(rng) - 1.5f) * 100.0f) : 0.0f);
  }
  return p;
}

// Values around each element's own ties, saturating, and the edge values.
std::vector<float> each_values(const EachParams& p, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> k(-200, 200), pick(0, 3);
  auto v = edge_values(1.0f, seed, p.scale.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (pick(rng) == 0) v[i] = (static_cast<float>(k(rng)) + 0.5f) * p.scale[i] + p.offset[i];
    else if (pick(rng) == 0) v[i] = static_cast<float>(k(rng)) * p.scale[i];
  }
  return v;
}

template <class Code, class Simd, class Ref>
void check_quantize_each(Simd simd, Ref ref, const char* what) {
  constexpr int kMin = std::numeric_limits<Code>::min(), kMax = std::numeric_limits<Code>::max();
  for (const auto& [qmin, qmax] : {std::pair{kMin, kMax}, std::pair{kMin + 1, kMax}, std::pair{kMin / 2, kMax / 3 + 1}}) {
    for (bool offsets : {false, true}) {
      const EachParams p = each_params(110, qmin, qmax, offsets, static_cast<std::uint32_t>(qmax + offsets));
      const auto x = each_values(p, static_cast<std::uint32_t>(qmin + 7));
      for (auto rounding : {Rounding::half_even, Rounding::half_away, Rounding::half_up}) {
        for (auto quotient : {Quotient::divide, Quotient::reciprocal}) {
          const QuantizeSpec spec{{qmin, qmax}, rounding, quotient};
          for (std::size_t from = 0; from < 4; ++from) {
            for (std::size_t n = 0; n + from <= x.size() && n <= 104; n += (n < 70 ? 1 : 11)) {
              const std::span<const float> in(x.data() + from, n);
              std::vector<Code> expected(n + 1, Code{42}), actual(n + 1, Code{42});
              ref(in, p.spans(from, true), spec, std::span<Code>(expected.data(), n));
              simd(in, p.spans(from, offsets), spec, std::span<Code>(actual.data(), n));
              ASSERT_EQ(actual, expected) << what << " n=" << n << " from=" << from << " offsets=" << offsets
                                          << " rounding=" << static_cast<int>(rounding)
                                          << " quotient=" << static_cast<int>(quotient);
            }
          }
        }
      }
    }
  }
}

TEST_P(SimdKernels, PerElementQuantizeMatchesReference) {
  check_quantize_each<std::int8_t>(f32_qs8_quantize_each, f32_qs8_quantize_each_ref, "f32_qs8_each");
  check_quantize_each<std::uint8_t>(f32_qu8_quantize_each, f32_qu8_quantize_each_ref, "f32_qu8_each");
  check_quantize_each<std::int16_t>(f32_qs16_quantize_each, f32_qs16_quantize_each_ref, "f32_qs16_each");
  check_quantize_each<std::uint16_t>(f32_qu16_quantize_each, f32_qu16_quantize_each_ref, "f32_qu16_each");
}

TEST_P(SimdKernels, PerElementQuantizeOfHalfInputsMatchesWidenedReference) {
  std::mt19937 rng(15);
  std::uniform_int_distribution<int> bits(0, 0xFFFF);
  std::vector<std::uint16_t> h(99);
  for (auto& b : h) b = static_cast<std::uint16_t>(bits(rng));
  h[0] = 0x7C00;  // f16 +inf
  h[1] = 0xFE00;  // NaN in both
  h[2] = 0x8000;  // -0
  const EachParams p = each_params(h.size(), -128, 127, false, 3);
  const EachParams u = each_params(h.size(), 0, 65535, true, 4);
  for (bool brain : {false, true}) {
    std::vector<float> widened(h.size());
    for (std::size_t i = 0; i < h.size(); ++i) widened[i] = brain ? bf16_f32_convert_ref(h[i]) : f16_f32_convert_ref(h[i]);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{17}, std::size_t{64}, std::size_t{65}, h.size()}) {
      const QuantizeSpec spec8{{-128, 127}, Rounding::half_even, Quotient::divide};
      const QuantizeSpec spec16{{0, 65535}, Rounding::half_away, Quotient::reciprocal};
      std::vector<std::int8_t> e8(n), a8(n);
      std::vector<std::uint16_t> e16(n), a16(n);
      const std::span<const float> w(widened.data(), n);
      f32_qs8_quantize_each_ref(w, p.spans(0, true), spec8, e8);
      f32_qu16_quantize_each_ref(w, u.spans(0, true), spec16, e16);
      const std::span<const std::uint16_t> in(h.data(), n);
      if (brain) {
        bf16_qs8_quantize_each(in, p.spans(0, false), spec8, a8);
        bf16_qu16_quantize_each(in, u.spans(0, true), spec16, a16);
      } else {
        f16_qs8_quantize_each(in, p.spans(0, false), spec8, a8);
        f16_qu16_quantize_each(in, u.spans(0, true), spec16, a16);
      }
      ASSERT_EQ(a8, e8) << (brain ? "bf16" : "f16") << " n=" << n;
      ASSERT_EQ(a16, e16) << (brain ? "bf16" : "f16") << " n=" << n;
    }
  }
}

template <class Code, class Simd, class Ref>
void check_dequantize_each(Simd simd, Ref ref, const char* what) {
  std::mt19937 rng(19);
  std::uniform_int_distribution<int> code(std::numeric_limits<Code>::min(), std::numeric_limits<Code>::max());
  std::vector<Code> q(120);
  for (auto& c : q) c = static_cast<Code>(code(rng));
  q[0] = std::numeric_limits<Code>::min();
  q[1] = std::numeric_limits<Code>::max();
  for (bool offsets : {false, true}) {
    EachParams p = each_params(q.size(), std::numeric_limits<Code>::min(), std::numeric_limits<Code>::max(), offsets, 8);
    // A code equal to its zero point times a negative scale is -0.0, which an offset of 0.0
    // must leave alone (the reference adds only a non-zero offset).
    for (std::size_t i = 5; i < q.size(); i += 9) {
      q[i] = static_cast<Code>(p.zero_point[i]);
      p.scale[i] = -p.scale[i];  // (q - zp) = 0 times a negative scale is -0.0
    }
    for (std::size_t from = 0; from < 3; ++from) {
      for (std::size_t n = 0; n + from <= q.size(); n += (n < 40 ? 1 : 11)) {
        const std::span<const Code> in(q.data() + from, n);
        std::vector<float> expected(n), actual(n);
        ref(in, p.spans(from, true), expected);
        simd(in, p.spans(from, offsets), actual);
        ASSERT_TRUE(same_bits(expected, actual)) << what << " n=" << n;
      }
    }
  }
}

TEST_P(SimdKernels, PerElementDequantizeMatchesReference) {
  check_dequantize_each<std::int8_t>(qs8_f32_dequantize_each, qs8_f32_dequantize_each_ref, "qs8_each");
  check_dequantize_each<std::uint8_t>(qu8_f32_dequantize_each, qu8_f32_dequantize_each_ref, "qu8_each");
  check_dequantize_each<std::int16_t>(qs16_f32_dequantize_each, qs16_f32_dequantize_each_ref, "qs16_each");
  check_dequantize_each<std::uint16_t>(qu16_f32_dequantize_each, qu16_f32_dequantize_each_ref, "qu16_each");
}

TEST_P(SimdKernels, MinMaxAccumulateMatchesReference) {
  auto x = edge_values(1.0f, 31, 600);
  x[3] = 0.0f;  // both zeros, so that which one stays is visible
  x[70] = -0.0f;
  for (std::size_t from = 0; from < 3; ++from) {
    for (std::size_t columns = 1; columns <= 100; columns += (columns < 70 ? 1 : 9)) {
      for (std::size_t rows : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{5}}) {
        if (from + rows * columns > x.size()) continue;
        const std::span<const float> in(x.data() + from, rows * columns);
        // Start from ranges that hold zeros of the other sign, values and the empty range.
        std::vector<float> elo(columns), ehi(columns);
        for (std::size_t i = 0; i < columns; ++i) {
          elo[i] = i % 4 == 0 ? INFINITY : (i % 4 == 1 ? 0.0f : (i % 4 == 2 ? -0.0f : -1.0f));
          ehi[i] = i % 4 == 0 ? -INFINITY : (i % 4 == 1 ? -0.0f : (i % 4 == 2 ? 0.0f : 1.0f));
        }
        std::vector<float> alo = elo, ahi = ehi;
        const bool e = f32_minmax_accumulate_ref(in, elo, ehi);
        const bool a = f32_minmax_accumulate(in, alo, ahi);
        ASSERT_EQ(e, a) << "columns=" << columns << " rows=" << rows;
        ASSERT_TRUE(same_bits(elo, alo)) << "columns=" << columns << " rows=" << rows;
        ASSERT_TRUE(same_bits(ehi, ahi)) << "columns=" << columns << " rows=" << rows;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, SimdKernels, ::testing::ValuesIn(zp::testing::kAllTargets),
                         [](const auto& info) { return info.param; });

TEST(Dispatch, UnknownTargetIsAClearError) {
  EXPECT_THROW(force_target("AVX9000"), Error);
  EXPECT_FALSE(available_targets().empty());
  force_target("");
  EXPECT_EQ(current_target(), available_targets().front());
}


// The span kernels' preconditions (kernels.hpp) are checked on every call; a violation aborts.
TEST(KernelPreconditions, ViolationsAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<float> x(64, 1.5f);
  std::vector<std::int8_t> q(64);
  const AffineParams p{0.5f, 0, 0.0f};
  const QuantizeSpec spec{{-127, 127}, Rounding::half_even, Quotient::divide};
  f32_qs8_quantize(x, p, spec, q);  // a valid call
  EXPECT_EQ(q[0], 3);
  const std::span<std::int8_t> into_x(reinterpret_cast<std::int8_t*>(x.data()), 64);
  EXPECT_DEATH(f32_qs8_quantize(x, p, spec, into_x), "") << "output overlapping the input";
  std::vector<std::int8_t> short_q(63);
  EXPECT_DEATH(f32_qs8_quantize(x, p, spec, short_q), "") << "output shorter than the input";
  alignas(64) unsigned char raw[4 * 65] = {};
  const std::span<const float> misaligned(reinterpret_cast<const float*>(raw + 1), 64);
  EXPECT_DEATH(f32_qs8_quantize(misaligned, p, spec, q), "") << "float input not aligned to 4 bytes";
  const std::span<float> floats_over_q(reinterpret_cast<float*>(x.data()) + 8, 64 - 8);
  const std::span<const std::int8_t> codes_in_x(reinterpret_cast<const std::int8_t*>(x.data()), 56);
  EXPECT_DEATH(qs8_f32_dequantize(codes_in_x, p, floats_over_q), "") << "dequantize over its own codes";
  const BlockScheme b = BlockScheme::of(Scheme::parse("int8:block=32"), false);
  std::vector<float> scale(2), offset(2);
  std::vector<std::int32_t> zp(2);
  EXPECT_DEATH(f32_qs8_quantize_blocks(std::span<const float>(x).first(33), 32, b, scale, zp, offset, q), "")
      << "a partial block";
  EXPECT_DEATH(f32_qs8_quantize_blocks(x, 16, b, scale, zp, offset, q), "") << "4 blocks, 2 scales";
  EXPECT_TRUE(f32_qs8_quantize_blocks(x, 32, b, scale, zp, offset, q));
}
}  // namespace
}  // namespace zp::kernels
