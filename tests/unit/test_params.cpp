// The anchors of docs/math.md: the seed article's examples and the conventions of PyTorch,
// ONNX Runtime, TFLite and ggml, pinned to exact numbers.
#include <cfloat>
#include <cmath>

#include <gtest/gtest.h>

#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"
#include "zeropoint/params.hpp"

namespace zp {
namespace {

std::int32_t q(float x, const AffineParams& p, const Scheme& s) {
  return kernels::quantize_value(x, p, kernels::quantize_spec(s));
}

TEST(Params, SeedSymmetricExample) {
  // Article: range [-10, 10] to int8, scale = 10/127; Q(0)=0, Q(10)=127, Q(-10)=-127, Q(5)=64,
  // Q(-7.5)=-95.
  const Scheme s = Scheme::parse("int8");
  const AffineParams p = choose_params(-10.0f, 10.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(10.0 / 127.0));
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_EQ(q(0.0f, p, s), 0);
  EXPECT_EQ(q(10.0f, p, s), 127);
  EXPECT_EQ(q(-10.0f, p, s), -127);
  EXPECT_EQ(q(5.0f, p, s), 64);  // 5 / scale is exactly 63.5 in float32: the tie goes to even 64
  EXPECT_EQ(q(-7.5f, p, s), -95);
}

TEST(Params, PyTorchFullRangeSymmetric) {
  // PyTorch's qint8 per_tensor_symmetric: scale = amax / ((qmax - qmin) / 2) = 10 / 127.5.
  const Scheme s = Scheme::parse("int8:full");
  const AffineParams p = choose_params(-10.0f, 10.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(10.0 / 127.5));
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_EQ(q(-7.5f, p, s), -96);
  // The float32 scale is a hair above 10/127.5, so +-10 land at +-127.49999, not on the tie.
  EXPECT_EQ(q(-10.0f, p, s), -127);
  EXPECT_EQ(q(10.0f, p, s), 127);
  EXPECT_EQ(q(-10.0001f, p, s), -128);  // the full range reaches -128
}

TEST(Params, ReciprocalQuotientReproducesPyTorchFbgemm) {
  // fbgemm's own example: x * (1/scale) is exactly 127.5 (ties to even 128), while x / scale is
  // 127.499992 (127). ONNX divides; PyTorch and ggml multiply by the reciprocal.
  const AffineParams p{0.00214854861f, 0, 0.0f};
  const float x = 0.273939937f;
  EXPECT_EQ(q(x, p, Scheme::parse("int8:full:recip")), 127);  // 128 saturates to qmax 127
  EXPECT_EQ(q(x, p, Scheme::parse("int16:recip")), 128);
  EXPECT_EQ(q(x, p, Scheme::parse("int16")), 127);
}

TEST(Params, PyTorchSymmetricQuint8CentresOn128) {
  const Scheme s = Scheme::parse("uint8:sym");
  const AffineParams p = choose_params(-1.0f, 3.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(3.0 / 127.5));
  EXPECT_EQ(p.zero_point, 128);
  EXPECT_EQ(q(0.0f, p, s), 128);
}

TEST(Params, SeedAsymmetricExampleStandardWidensToZero) {
  // Article: [10, 260] to uint8. The standard (PyTorch, ONNX Runtime, TFLite) widens the range
  // to include 0: scale = 260/255, zero point 0, Q(10)=10, Q(260)=255.
  const Scheme s = Scheme::parse("uint8:asym");
  const AffineParams p = choose_params(10.0f, 260.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(260.0 / 255.0));
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_EQ(p.offset, 0.0f);
  EXPECT_EQ(q(10.0f, p, s), 10);
  EXPECT_EQ(q(260.0f, p, s), 255);
  EXPECT_EQ(q(135.0f, p, s), 132);
}

TEST(Params, SeedAsymmetricExampleFloatOffset) {
  // ggml Q4_1 / HQQ style: x = q * scale + min, no widening: scale = 250/255, Q(10)=0, Q(260)=255.
  const Scheme s = Scheme::parse("uint8:asym:zp=float");
  const AffineParams p = choose_params(10.0f, 260.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(250.0 / 255.0));
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_EQ(p.offset, 10.0f);
  EXPECT_EQ(q(10.0f, p, s), 0);
  EXPECT_EQ(q(260.0f, p, s), 255);
  EXPECT_EQ(kernels::dequantize_value(0, p), 10.0f);
}

TEST(Params, FloatOffsetWithSignedCodesMapsMinToQmin) {
  const Scheme s = Scheme::parse("int4:asym:zp=float");
  const AffineParams p = choose_params(2.0f, 17.0f, s);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.offset, 10.0f);  // 2 - (-8) * 1
  EXPECT_EQ(q(2.0f, p, s), -8);
  EXPECT_EQ(q(17.0f, p, s), 7);
}

TEST(Params, AsymmetricZeroPointFormula) {
  // scale = (max - min) / (qmax - qmin), zero_point = qmin - round(min / scale).
  const Scheme s = Scheme::parse("int8:asym");
  const AffineParams p = choose_params(-1.0f, 3.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(4.0 / 255.0));
  const double expected_zp = -128 - std::nearbyint(-1.0 / static_cast<double>(p.scale));
  EXPECT_EQ(p.zero_point, static_cast<std::int32_t>(expected_zp));
  EXPECT_EQ(p.zero_point, -64);
  EXPECT_EQ(q(0.0f, p, s), p.zero_point);  // 0.0 is exactly representable
}

TEST(Params, OnnxRuntimeUint8Activations) {
  // ONNX Runtime's QuantizeLinear parameters for a ReLU-like range [0, 6] in uint8.
  const Scheme s = Scheme::parse("uint8:asym");
  const AffineParams p = choose_params(0.0f, 6.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(6.0 / 255.0));
  EXPECT_EQ(p.zero_point, 0);
  // An all-positive range away from zero still gets zero point 0 after widening.
  EXPECT_EQ(choose_params(2.0f, 6.0f, s).zero_point, 0);
  // An all-negative range puts the zero point at qmax.
  EXPECT_EQ(choose_params(-6.0f, -2.0f, s).zero_point, 255);
}

TEST(Params, SymmetricUsesTheLargerMagnitude) {
  const Scheme s = Scheme::parse("int8");
  EXPECT_EQ(choose_params(-3.0f, 1.0f, s).scale, static_cast<float>(3.0 / 127.0));
  EXPECT_EQ(choose_params(0.5f, 2.0f, s).scale, static_cast<float>(2.0 / 127.0));
  const Scheme s4 = Scheme::parse("int4");
  EXPECT_EQ(choose_params(-7.0f, 7.0f, s4).scale, 1.0f);
}

TEST(Params, DegenerateRangesUseScaleOneZeroPointZero) {
  for (const char* text : {"int8", "uint8:asym", "int8:asym", "int8:full", "int4:block=32", "uint8:sym", "uint4:sym"}) {
    const Scheme s = Scheme::parse(text);
    // Symmetric unsigned codes keep their fixed centre; everything else gets zero point 0.
    const std::int32_t expected_zp = s.symmetric ? s.symmetric_zero_point() : 0;
    const AffineParams zero = choose_params(0.0f, 0.0f, s);
    EXPECT_EQ(zero.scale, 1.0f) << text;
    EXPECT_EQ(zero.zero_point, expected_zp) << text;
    EXPECT_EQ(kernels::dequantize_value(q(0.0f, zero, s), zero), 0.0f) << text;
    // A range so small its float scale underflows follows the same rule.
    const AffineParams tiny = choose_params(0.0f, 1e-40f, s);
    EXPECT_EQ(tiny.scale, 1.0f) << text;
    EXPECT_EQ(tiny.zero_point, expected_zp) << text;
  }
}

TEST(Params, ConstantRangeWithFloatOffsetIsExact) {
  const Scheme s = Scheme::parse("uint4:asym:zp=float");
  const AffineParams p = choose_params(5.0f, 5.0f, s);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.offset, 5.0f);
  EXPECT_EQ(kernels::dequantize_value(q(5.0f, p, s), p), 5.0f);
}

TEST(Params, ConstantNonZeroRangeWithIntegerZeroPoint) {
  // Widening makes [3, 3] into [0, 3]: 3 is representable exactly.
  const Scheme s = Scheme::parse("uint8:asym");
  const AffineParams p = choose_params(3.0f, 3.0f, s);
  EXPECT_EQ(p.scale, static_cast<float>(3.0 / 255.0));
  EXPECT_EQ(q(3.0f, p, s), 255);
}

TEST(Params, ExtremeRangesStayFinite) {
  const float big = FLT_MAX;
  for (const char* text : {"int8", "uint8:asym", "int2", "int2:asym", "uint4:asym:zp=float", "int16:asym"}) {
    const AffineParams p = choose_params(-big, big, Scheme::parse(text));
    EXPECT_TRUE(std::isfinite(p.scale)) << text;
    EXPECT_GT(p.scale, 0.0f) << text;
  }
}

TEST(Params, RejectsNonFiniteOrInvertedRanges) {
  const Scheme s = Scheme::parse("int8");
  EXPECT_THROW(choose_params(NAN, 1.0f, s), Error);
  EXPECT_THROW(choose_params(0.0f, INFINITY, s), Error);
  EXPECT_THROW(choose_params(2.0f, 1.0f, s), Error);
}

TEST(ParamLayout, ShapesPerGranularity) {
  const Shape shape{4, 6, 10};
  const ParamLayout t = ParamLayout::of(shape, Scheme::parse("int8"));
  EXPECT_EQ(t.param_shape, Shape{});
  EXPECT_EQ(t.groups, 1);

  const ParamLayout c = ParamLayout::of(shape, Scheme::parse("int8:channel=1"));
  EXPECT_EQ(c.param_shape, Shape{6});
  EXPECT_EQ(c.groups, 6);
  EXPECT_EQ(c.group_of(0), 0);
  EXPECT_EQ(c.group_of(10), 1);
  EXPECT_EQ(c.group_of(60), 0);
  EXPECT_EQ(c.group_of(239), 5);

  const ParamLayout b = ParamLayout::of(shape, Scheme::parse("int4:block=4"));
  EXPECT_EQ(b.param_shape, (Shape{4, 6, 3}));  // ceil(10 / 4) = 3, the last block partial
  EXPECT_EQ(b.group_of(0), 0);
  EXPECT_EQ(b.group_of(3), 0);
  EXPECT_EQ(b.group_of(4), 1);
  EXPECT_EQ(b.group_of(9), 2);
  EXPECT_EQ(b.group_of(10), 3);

  const ParamLayout b0 = ParamLayout::of(shape, Scheme::parse("int4:block=3:axis=0"));
  EXPECT_EQ(b0.param_shape, (Shape{2, 6, 10}));
  EXPECT_EQ(b0.group_of(0), 0);
  EXPECT_EQ(b0.group_of(2 * 60), 0);
  EXPECT_EQ(b0.group_of(3 * 60 + 7), 60 + 7);
}

TEST(ParamLayout, BadAxisIsAnError) {
  EXPECT_THROW(ParamLayout::of({4, 4}, Scheme::parse("int8:channel=2")), Error);
  EXPECT_THROW(ParamLayout::of({}, Scheme::parse("int8:channel=0")), Error);
}

TEST(QParams, CheckFitsCatchesLies) {
  const Scheme s = Scheme::parse("int8:channel=0");
  QParams p{s, {3}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}};
  EXPECT_NO_THROW(p.check_fits({3, 5}));
  EXPECT_THROW(p.check_fits({4, 5}), Error);
  QParams bad_scale = p;
  bad_scale.scale[1] = 0.0f;
  EXPECT_THROW(bad_scale.check_fits({3, 5}), Error);
  bad_scale.scale[1] = NAN;
  EXPECT_THROW(bad_scale.check_fits({3, 5}), Error);
  QParams bad_zp = p;
  bad_zp.zero_point[2] = 128;
  EXPECT_THROW(bad_zp.check_fits({3, 5}), Error);
  QParams short_arrays = p;
  short_arrays.zero_point.pop_back();
  EXPECT_THROW(short_arrays.check_fits({3, 5}), Error);
}

}  // namespace
}  // namespace zp
