// The element formulas and the scalar reference kernels, on worked examples and edges.
#include <bit>
#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/convert_ref.hpp"
#include "zeropoint/kernels.hpp"

namespace zp::kernels {
namespace {

TEST(Rounding, TieCaseSeparatesTheModes) {
  // x / scale = 62.5: half-even 62, half-away 63, half-up 63; and the negative mirror.
  EXPECT_EQ(round_to_integer(62.5f, Rounding::half_even), 62.0f);
  EXPECT_EQ(round_to_integer(62.5f, Rounding::half_away), 63.0f);
  EXPECT_EQ(round_to_integer(62.5f, Rounding::half_up), 63.0f);
  EXPECT_EQ(round_to_integer(-62.5f, Rounding::half_even), -62.0f);
  EXPECT_EQ(round_to_integer(-62.5f, Rounding::half_away), -63.0f);
  EXPECT_EQ(round_to_integer(-62.5f, Rounding::half_up), -62.0f);
  // Odd integer part: half-even now goes up in magnitude.
  EXPECT_EQ(round_to_integer(63.5f, Rounding::half_even), 64.0f);
  EXPECT_EQ(round_to_integer(-63.5f, Rounding::half_even), -64.0f);
  EXPECT_EQ(round_to_integer(0.5f, Rounding::half_even), 0.0f);
  EXPECT_EQ(round_to_integer(-0.5f, Rounding::half_up), 0.0f);
  EXPECT_EQ(round_to_integer(-0.5f, Rounding::half_away), -1.0f);
}

TEST(Rounding, NonTiesGoToNearestInEveryMode) {
  for (auto mode : {Rounding::half_even, Rounding::half_away, Rounding::half_up}) {
    EXPECT_EQ(round_to_integer(2.4999998f, mode), 2.0f);
    EXPECT_EQ(round_to_integer(2.5000002f, mode), 3.0f);
    EXPECT_EQ(round_to_integer(-2.5000002f, mode), -3.0f);
    EXPECT_EQ(round_to_integer(0.49999997f, mode), 0.0f);  // floor(x + 0.5) would give 1 here
    EXPECT_EQ(round_to_integer(8388606.5f, mode), mode == Rounding::half_even ? 8388606.0f : 8388607.0f);
    EXPECT_EQ(round_to_integer(1e20f, mode), 1e20f);
    EXPECT_TRUE(std::isnan(round_to_integer(NAN, mode)));
    EXPECT_EQ(round_to_integer(INFINITY, mode), INFINITY);
  }
}

TEST(Rounding, MatchesNearbyintForHalfEvenOnManyValues) {
  // Under the default environment std::nearbyint is ties-to-even: an independent oracle.
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> exponent(-30, 30);
  std::uniform_real_distribution<float> mantissa(-2.0f, 2.0f);
  for (int i = 0; i < 200000; ++i) {
    const float v = std::ldexp(mantissa(rng), exponent(rng));
    ASSERT_EQ(round_to_integer(v, Rounding::half_even), std::nearbyint(v)) << v;
    ASSERT_EQ(round_to_integer(v, Rounding::half_away), std::round(v)) << v;
  }
  for (float half = 0.5f; half < 1e7f; half += 1.0f) {
    ASSERT_EQ(round_to_integer(half, Rounding::half_even), std::nearbyint(half));
    ASSERT_EQ(round_to_integer(-half, Rounding::half_even), std::nearbyint(-half));
    ASSERT_EQ(round_to_integer(half, Rounding::half_up), std::floor(static_cast<double>(half) + 0.5));
    ASSERT_EQ(round_to_integer(-half, Rounding::half_up), std::floor(-static_cast<double>(half) + 0.5));
    if (half > 1000.0f) half += 997.0f;
  }
}

TEST(QuantizeValue, SaturatesAndHandlesNonFinite) {
  const AffineParams p{0.5f, 3, 0.0f};
  const CodeRange r{-7, 7};
  EXPECT_EQ(quantize_value(1.0f, p, {r}), 5);
  EXPECT_EQ(quantize_value(100.0f, p, {r}), 7);
  EXPECT_EQ(quantize_value(-100.0f, p, {r}), -7);
  EXPECT_EQ(quantize_value(FLT_MAX, p, {r}), 7);
  EXPECT_EQ(quantize_value(-FLT_MAX, p, {r}), -7);
  EXPECT_EQ(quantize_value(INFINITY, p, {r}), 7);
  EXPECT_EQ(quantize_value(-INFINITY, p, {r}), -7);
  EXPECT_EQ(quantize_value(NAN, p, {r}), 3);  // NaN -> the zero point's code
  EXPECT_EQ(quantize_value(-0.0f, p, {r}), 3);
  EXPECT_EQ(quantize_value(1e-45f, p, {r}), 3);  // subnormal
  // A zero point outside the code range still yields codes inside it.
  EXPECT_EQ(quantize_value(NAN, AffineParams{1.0f, 9, 0.0f}, {r}), 7);
}

TEST(QuantizeValue, FloatOffsetSubtractsBeforeDividing) {
  const AffineParams p{0.25f, 0, 1.0f};  // x = q * 0.25 + 1
  const CodeRange r{0, 15};
  EXPECT_EQ(quantize_value(1.0f, p, {r}), 0);
  EXPECT_EQ(quantize_value(1.5f, p, {r}), 2);
  EXPECT_EQ(quantize_value(0.0f, p, {r}), 0);
  EXPECT_EQ(quantize_value(4.75f, p, {r}), 15);
  EXPECT_EQ(dequantize_value(2, p), 1.5f);
  EXPECT_EQ(dequantize_value(15, p), 4.75f);
}

TEST(DequantizeValue, IsScaledDifferenceFromZeroPoint) {
  const AffineParams p{0.1f, -5, 0.0f};
  EXPECT_EQ(dequantize_value(-5, p), 0.0f);
  EXPECT_FALSE(std::signbit(dequantize_value(-5, p)));
  EXPECT_EQ(dequantize_value(5, p), 10.0f * 0.1f);
  EXPECT_EQ(dequantize_value(-128, p), -123.0f * 0.1f);
}

TEST(SpanKernels, QuantizeEveryCodeTypeAgreesWithTheFormula) {
  const std::vector<float> x{-300.0f, -2.5f, -1.0f, -0.0f, 0.0f, 0.49f, 1.5f, 2.5f, 64.0f, 1e30f, NAN, -INFINITY};
  const AffineParams p{0.5f, 2, 0.0f};
  const CodeRange r8{-128, 127}, ru8{0, 255}, r16{-32768, 32767}, ru16{0, 65535};
  std::vector<std::int8_t> s8(x.size());
  std::vector<std::uint8_t> u8(x.size());
  std::vector<std::int16_t> s16(x.size());
  std::vector<std::uint16_t> u16(x.size());
  f32_qs8_quantize_ref(x, p, {r8}, s8);
  f32_qu8_quantize_ref(x, p, {ru8}, u8);
  f32_qs16_quantize_ref(x, p, {r16}, s16);
  f32_qu16_quantize_ref(x, p, {ru16}, u16);
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(s8[i], quantize_value(x[i], p, {r8})) << i;
    EXPECT_EQ(u8[i], quantize_value(x[i], p, {ru8})) << i;
    EXPECT_EQ(s16[i], quantize_value(x[i], p, {r16})) << i;
    EXPECT_EQ(u16[i], quantize_value(x[i], p, {ru16})) << i;
  }
  EXPECT_EQ(s8[0], -128);
  EXPECT_EQ(s8[1], -3);  // -2.5 / 0.5 = -5, plus the zero point 2
  EXPECT_EQ(s16[0], -598);
  EXPECT_EQ(u8[0], 0);
  EXPECT_EQ(s16[9], 32767);
  EXPECT_EQ(u16[10], 2);
}

TEST(SpanKernels, DequantizeEveryCodeType) {
  const AffineParams p{0.25f, -3, 0.0f};
  const std::vector<std::int8_t> s8{-128, -3, 0, 127};
  std::vector<float> out(4);
  qs8_f32_dequantize_ref(s8, p, out);
  EXPECT_EQ(out, (std::vector<float>{-31.25f, 0.0f, 0.75f, 32.5f}));
  const std::vector<std::uint16_t> u16{0, 65535};
  std::vector<float> out2(2);
  qu16_f32_dequantize_ref(u16, AffineParams{1.0f, 32768, 0.0f}, out2);
  EXPECT_EQ(out2, (std::vector<float>{-32768.0f, 32767.0f}));
}

TEST(MinMax, SkipsNonFiniteOnlyWhenAsked) {
  const std::vector<float> x{3.0f, NAN, -2.0f, INFINITY, 1.0f};
  const MinMax skip = f32_minmax_ref(x, true);
  EXPECT_EQ(skip.min, -2.0f);
  EXPECT_EQ(skip.max, 3.0f);
  EXPECT_EQ(f32_find_nonfinite_ref(x), 1u);
  const std::vector<float> ok{1.0f, -0.0f};
  EXPECT_EQ(f32_find_nonfinite_ref(ok), 2u);
  const MinMax empty = f32_minmax_ref({}, false);
  EXPECT_GT(empty.min, empty.max);
}

TEST(AbsMax, LargestMagnitudeOfEitherSign) {
  const std::vector<float> x{0.5f, -3.0f, 2.0f, -0.0f};
  EXPECT_EQ(f32_absmax_ref(x, false), 3.0f);
  EXPECT_EQ(f32_absmax_ref({}, false), 0.0f);
  const std::vector<float> with_nan{1.0f, NAN, -2.0f, -INFINITY};
  EXPECT_EQ(f32_absmax_ref(with_nan, true), 2.0f);
  EXPECT_TRUE(std::isnan(f32_absmax_ref(with_nan, false)));
  // For any input, absmax equals max(|min|, |max|), the amax of symmetric schemes.
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int len = 1; len < 40; ++len) {
    std::vector<float> v(static_cast<std::size_t>(len));
    for (float& e : v) e = dist(rng);
    const MinMax mm = f32_minmax_ref(v, false);
    EXPECT_EQ(f32_absmax_ref(v, false), std::max(-mm.min, mm.max)) << len;
  }
}

TEST(Pack, NibblesLowFirstAsOnnx) {
  // ONNX int4: element 0 in the low nibble. -1 -> 0xF, 7 -> 0x7.
  const std::vector<std::uint8_t> codes{static_cast<std::uint8_t>(-1), 7, 2, static_cast<std::uint8_t>(-8), 5};
  std::vector<std::uint8_t> packed(3);
  pack_ref(codes, 4, packed);
  EXPECT_EQ(packed, (std::vector<std::uint8_t>{0x7F, 0x82, 0x05}));
  std::vector<std::uint8_t> back(5);
  unpack_ref(packed, 4, true, back);
  EXPECT_EQ(back, codes);
  unpack_ref(packed, 4, false, back);
  EXPECT_EQ(back, (std::vector<std::uint8_t>{15, 7, 2, 8, 5}));
}

TEST(Pack, TwoBitFieldsFourPerByte) {
  const std::vector<std::uint8_t> codes{1, 2, 3, 0, 1};
  std::vector<std::uint8_t> packed(2);
  pack_ref(codes, 2, packed);
  EXPECT_EQ(packed, (std::vector<std::uint8_t>{0b00111001, 0b00000001}));
  std::vector<std::uint8_t> back(5);
  unpack_ref(packed, 2, false, back);
  EXPECT_EQ(back, codes);
  unpack_ref(packed, 2, true, back);  // 2-bit two's complement: 2 -> -2, 3 -> -1
  EXPECT_EQ(back, (std::vector<std::uint8_t>{1, static_cast<std::uint8_t>(-2), static_cast<std::uint8_t>(-1), 0, 1}));
}

TEST(Pack, RoundTripsEveryCodeOfEveryWidth) {
  for (int cbits : {2, 4}) {
    for (bool is_signed : {false, true}) {
      const int lo = is_signed ? -(1 << (cbits - 1)) : 0;
      const int hi = is_signed ? (1 << (cbits - 1)) - 1 : (1 << cbits) - 1;
      for (std::size_t n = 0; n <= 13; ++n) {
        std::vector<std::uint8_t> codes(n);
        for (std::size_t i = 0; i < n; ++i) codes[i] = static_cast<std::uint8_t>(lo + static_cast<int>(i * 7 % (hi - lo + 1)));
        std::vector<std::uint8_t> packed((n * cbits + 7) / 8);
        pack_ref(codes, cbits, packed);
        std::vector<std::uint8_t> back(n);
        unpack_ref(packed, cbits, is_signed, back);
        EXPECT_EQ(back, codes) << "bits " << cbits << " n " << n;
      }
    }
  }
}

TEST(Convert, F16ToF32IsExactAndRoundTrips) {
  EXPECT_EQ(f16_f32_convert_ref(0x3C00), 1.0f);
  EXPECT_EQ(f16_f32_convert_ref(0xC000), -2.0f);
  EXPECT_EQ(f16_f32_convert_ref(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_f32_convert_ref(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_f32_convert_ref(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_f32_convert_ref(0x7C00), INFINITY);
  EXPECT_TRUE(std::isnan(f16_f32_convert_ref(0x7E00)));
  EXPECT_TRUE(std::signbit(f16_f32_convert_ref(0x8000)));
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_f32_convert_ref(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_f16_convert_ref(f), h) << h;
  }
}

TEST(Convert, F32ToF16RoundsToNearestEven) {
  EXPECT_EQ(f32_f16_convert_ref(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  EXPECT_EQ(f32_f16_convert_ref(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(f32_f16_convert_ref(1.0f + std::ldexp(1.5f, -11)), 0x3C01);
  EXPECT_EQ(f32_f16_convert_ref(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_f16_convert_ref(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_f16_convert_ref(65520.0f), 0x7C00);  // the tie above 65504 overflows
  EXPECT_EQ(f32_f16_convert_ref(1e10f), 0x7C00);
  EXPECT_EQ(f32_f16_convert_ref(-1e10f), 0xFC00);
  EXPECT_EQ(f32_f16_convert_ref(std::ldexp(1.0f, -25)), 0x0000);      // half the least subnormal: tie -> 0
  EXPECT_EQ(f32_f16_convert_ref(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_f16_convert_ref(std::ldexp(3.0f, -25)), 0x0002);      // 1.5 ulp tie -> even 2
  EXPECT_EQ(f32_f16_convert_ref(std::ldexp(1.0f, -14)), 0x0400);      // smallest normal
  EXPECT_EQ(f32_f16_convert_ref(std::ldexp(1023.5f, -24)), 0x0400);   // rounds up into normal
  EXPECT_EQ(f32_f16_convert_ref(NAN) & 0x7E00, 0x7E00);
  // Against a double-precision oracle on random floats across the half range.
  std::uint32_t state = 7;
  for (int i = 0; i < 100000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float f = std::bit_cast<float>((state & 0x80FFFFFFu) | ((100u + (state >> 24) % 50u) << 23));
    const std::uint16_t h = f32_f16_convert_ref(f);
    const double back = f16_f32_convert_ref(h);
    // No other half is closer (the neighbours either side are at least as far).
    const double up = f16_f32_convert_ref(static_cast<std::uint16_t>(h + 1));
    const double down = (h & 0x7FFF) ? f16_f32_convert_ref(static_cast<std::uint16_t>(h - 1)) : back;
    if (std::isinf(back)) continue;
    ASSERT_LE(std::fabs(back - f), std::fabs(up - f)) << f;
    ASSERT_LE(std::fabs(back - f), std::fabs(down - f)) << f;
  }
}

TEST(Convert, Bf16) {
  EXPECT_EQ(bf16_f32_convert_ref(0x3F80), 1.0f);
  EXPECT_EQ(f32_bf16_convert_ref(1.0f), 0x3F80);
  EXPECT_EQ(f32_bf16_convert_ref(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(f32_bf16_convert_ref(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(f32_bf16_convert_ref(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(f32_bf16_convert_ref(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX -> inf
  const std::uint16_t nan = f32_bf16_convert_ref(std::bit_cast<float>(0x7F800001u));
  EXPECT_TRUE(std::isnan(bf16_f32_convert_ref(nan)));  // truncation would have made it +inf
}

}  // namespace
}  // namespace zp::kernels
