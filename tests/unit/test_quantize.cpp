// Tensor-level quantize / dequantize: properties over random tensors of every granularity and
// width, the double-precision oracle, and bad input.
#include <cstring>
#include <cfloat>
#include <cmath>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/runs.hpp"
#include "kernels/convert_ref.hpp"
#include "test_util.hpp"
#include "zeropoint/threads.hpp"
#include "zeropoint/zeropoint.hpp"

namespace zp {
namespace {

using testing::Rng;
using testing::tensor_of;

std::int32_t code_at(const Tensor& codes, std::size_t i) {
  switch (codes.dtype()) {
    case DType::i8: return codes.span<std::int8_t>()[i];
    case DType::u8: return codes.span<std::uint8_t>()[i];
    case DType::i16: return codes.span<std::int16_t>()[i];
    default: return codes.span<std::uint16_t>()[i];
  }
}

// Schemes for the property sweep: every width, both signs, sym/asym, both zero-point kinds,
// every granularity including blocks that do not divide the axis and the innermost axis.
std::vector<std::string> sweep_schemes() {
  std::vector<std::string> out;
  for (const char* type : {"int2", "int3", "int4", "int5", "int6", "int7", "int8", "int16", "uint2", "uint4", "uint8", "uint16"}) {
    for (const char* gran : {"", ":channel=0", ":channel=1", ":channel=-1", ":block=2", ":block=5", ":block=7:axis=1",
                             ":block=3:axis=0"}) {
      const bool is_signed = type[0] == 'i';
      std::vector<std::string> variants;
      if (is_signed) variants = {"", ":full", ":asym", ":asym:zp=float"};
      else variants = {":asym", ":sym", ":asym:zp=float"};
      for (const auto& v : variants) out.push_back(std::string(type) + gran + v);
    }
  }
  return out;
}

TEST(QuantizeProperties, CodesInRangeAndErrorWithinHalfAScale) {
  Rng rng(2024);
  const Shape shape{6, 5, 11};
  int schemes = 0;
  for (const auto& text : sweep_schemes()) {
    SCOPED_TRACE(text);
    const Scheme s = Scheme::parse(text);
    const Tensor x = rng.heavy_tailed(shape, rng.uniform(0.01f, 10.0f));
    const QParams p = compute_params(x, s);
    const QuantizedTensor q = quantize(x, p);
    ASSERT_EQ(static_cast<std::int64_t>(q.data.size()), packed_size(x.numel(), s.bits));
    const Tensor codes = unpack_codes(q);
    const Tensor y = dequantize(q);
    const Tensor fq = fake_quantize(x, p);
    const ParamLayout layout = ParamLayout::of(shape, s);
    const auto xv = x.span<float>();
    const auto yv = y.span<float>();
    const auto fv = fq.span<float>();
    for (std::size_t i = 0; i < xv.size(); ++i) {
      const AffineParams ap = p.at(static_cast<std::size_t>(layout.group_of(static_cast<std::int64_t>(i))));
      const std::int32_t c = code_at(codes, i);
      ASSERT_GE(c, s.qmin());
      ASSERT_LE(c, s.qmax());
      // Every element used its own group's parameters.
      ASSERT_EQ(c, kernels::quantize_value(xv[i], ap, kernels::quantize_spec(s))) << i;
      ASSERT_EQ(std::bit_cast<std::uint32_t>(fv[i]), std::bit_cast<std::uint32_t>(yv[i])) << i;
      // Inside the representable range the error is at most half a step (plus float rounding
      // in the division and the dequantization).
      const double lo = kernels::dequantize_value(s.qmin(), ap);
      const double hi = kernels::dequantize_value(s.qmax(), ap);
      if (xv[i] >= lo && xv[i] <= hi) {
        const double tol = ap.scale * 0.5 * (1 + 1e-5) + std::fabs(xv[i]) * 1e-6 + std::fabs(ap.offset) * 1e-6;
        ASSERT_LE(std::fabs(static_cast<double>(xv[i]) - yv[i]), tol) << "element " << i << " x " << xv[i];
      }
    }
    ++schemes;
  }
  EXPECT_GT(schemes, 250);
}

TEST(Runs, CoverEveryElementOnceWithItsGroup) {
  Rng rng(31);
  for (const char* text : {"int8", "int8:channel=0", "int8:channel=1", "int8:channel=2", "int4:block=4",
                           "int4:block=3:axis=1", "int4:block=2:axis=0", "int4:block=7"}) {
    SCOPED_TRACE(text);
    const Shape shape{3, 5, 7};
    const ParamLayout layout = ParamLayout::of(shape, Scheme::parse(text));
    for (int trial = 0; trial < 50; ++trial) {
      const std::int64_t begin = rng.integer(0, 104);
      const std::int64_t end = rng.integer(static_cast<int>(begin), 105);
      std::vector<int> seen(105, 0);
      std::int64_t next = begin;
      detail::for_each_run_in(layout, begin, end, [&](const detail::Run& r) {
        ASSERT_EQ(r.start, next);  // in order, no gaps
        ASSERT_GT(r.length, 0);
        for (std::int64_t i = 0; i < r.length; ++i) {
          ++seen[static_cast<std::size_t>(r.start + i)];
          ASSERT_EQ(r.group + i * r.group_step, layout.group_of(r.start + i));
        }
        next = r.start + r.length;
      });
      EXPECT_EQ(next, std::max(begin, end));
      for (std::int64_t i = 0; i < 105; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i >= begin && i < end ? 1 : 0);
    }
  }
}

TEST(QuantizeProperties, MinMaxObservationCoversEachGroup) {
  Rng rng(7);
  const Shape shape{4, 9, 6};
  for (const char* text : {"int8", "int8:channel=1", "int8:channel=-1", "int4:block=4", "int4:block=4:axis=1",
                           "int4:block=3:axis=0"}) {
    SCOPED_TRACE(text);
    const Scheme s = Scheme::parse(text);
    const Tensor x = rng.heavy_tailed(shape);
    const Ranges r = observe_minmax(x, s);
    const ParamLayout layout = ParamLayout::of(shape, s);
    std::vector<float> lo(static_cast<std::size_t>(layout.groups), INFINITY), hi(lo.size(), -INFINITY);
    const auto v = x.span<float>();
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto g = static_cast<std::size_t>(layout.group_of(static_cast<std::int64_t>(i)));
      lo[g] = std::min(lo[g], v[i]);
      hi[g] = std::max(hi[g], v[i]);
    }
    EXPECT_EQ(r.min, lo);
    EXPECT_EQ(r.max, hi);
    EXPECT_EQ(r.param_shape, layout.param_shape);
  }
}

// Tier one of two: the float32 reference against a double-precision oracle. They may differ only
// where the exact quotient lies within a relative 1e-6 of a rounding tie (float32 division can
// land on either side of it).
TEST(QuantizeOracle, ReferenceMatchesDoublePrecisionExceptAtTies) {
  Rng rng(99);
  int near_ties = 0;
  for (const char* text : {"int8", "uint8:asym", "int4:asym", "int8:full", "uint4:asym:zp=float", "int16:asym"}) {
    const Scheme s = Scheme::parse(text);
    const Tensor x = rng.heavy_tailed({4096});
    const QParams p = compute_params(x, s);
    const Tensor codes = unpack_codes(quantize(x, p));
    const AffineParams ap = p.at(0);
    const auto v = x.span<float>();
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double exact = (static_cast<double>(v[i]) - ap.offset) / ap.scale;
      const double frac = std::fabs(exact - std::trunc(exact));
      double rounded = std::nearbyint(exact) + ap.zero_point;
      rounded = std::clamp(rounded, static_cast<double>(s.qmin()), static_cast<double>(s.qmax()));
      if (std::fabs(frac - 0.5) < 1e-6 * std::max(1.0, std::fabs(exact))) {
        ++near_ties;
        continue;
      }
      ASSERT_EQ(code_at(codes, i), static_cast<std::int32_t>(rounded)) << text << " element " << i << " x " << v[i];
    }
  }
  EXPECT_LT(near_ties, 50);
}

// The tensor-level path (SIMD kernels, chunks, threads, packing) against the element formula, on
// every instruction set and with several thread counts, on tensors larger than one chunk.
TEST(QuantizeTensorPath, MatchesTheElementFormulaOnEveryTargetAndThreadCount) {
  Rng rng(808);
  const Shape shape{3, 40009};  // chunks of 16384 do not divide it, nor does any block size
  Tensor x = rng.heavy_tailed(shape);
  x.span<float>()[12345] = NAN;  // observed with ignore_nonfinite, quantized to the zero point
  x.span<float>()[54321] = -INFINITY;
  ObserveOptions skip;
  skip.ignore_nonfinite = true;
  const int threads_before = thread_count();
  for (const std::string& target : kernels::available_targets()) {
    kernels::force_target(target);
    for (int threads : {1, 3}) {
      set_thread_count(threads);
      for (const char* text : {"int8", "uint8:asym", "int8:channel=0", "int8:channel=1:asym", "int4:block=32",
                               "uint4:block=7:asym:zp=float", "int2:block=16:round=away", "int16:asym:recip",
                               "int3:block=5:axis=0", "int4:block=8:asym", "uint8:channel=0:asym:round=up"}) {
        SCOPED_TRACE(fmt::format("{} threads={} {}", target, threads, text));
        const Scheme s = Scheme::parse(text);
        for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
          const Tensor input = dtype == DType::f32 ? Tensor::copy_of(x) : from_f32(x, dtype);
          const Tensor widened = to_f32(input);
          const QParams p = compute_params(input, s, skip);
          ASSERT_EQ(p.scale, compute_params(widened, s, skip).scale);
          const QuantizedTensor q = quantize(input, p);
          // The one-call form (one pass where the groups allow) gives the same parameters and bytes.
          const QuantizedTensor fused = quantize(input, s, skip);
          ASSERT_EQ(fused.params.scale, p.scale);
          ASSERT_EQ(fused.params.zero_point, p.zero_point);
          ASSERT_EQ(fused.params.offset, p.offset);
          ASSERT_EQ(fused.params.param_shape, p.param_shape);
          ASSERT_EQ(fused.data, q.data);
          const Tensor codes = unpack_codes(q);
          const ParamLayout layout = ParamLayout::of(shape, s);
          const auto v = widened.span<float>();
          for (std::size_t i = 0; i < v.size(); ++i) {
            const AffineParams ap = p.at(static_cast<std::size_t>(layout.group_of(static_cast<std::int64_t>(i))));
            ASSERT_EQ(code_at(codes, i), kernels::quantize_value(v[i], ap, kernels::quantize_spec(s))) << i;
          }
          const Tensor y = dequantize(q);
          for (std::size_t i = 0; i < v.size(); i += 97) {
            const AffineParams ap = p.at(static_cast<std::size_t>(layout.group_of(static_cast<std::int64_t>(i))));
            ASSERT_EQ(std::bit_cast<std::uint32_t>(y.span<float>()[i]),
                      std::bit_cast<std::uint32_t>(kernels::dequantize_value(code_at(codes, i), ap))) << i;
          }
        }
      }
    }
  }
  kernels::force_target("");
  set_thread_count(threads_before);
}

// Dequantizing to 16-bit floats narrows each chunk in cache: the bits of dequantizing to
// float32 and converting afterwards, for every granularity, packed codes, several chunks and
// thread counts.
TEST(Dequantize, SixteenBitOutputsEqualNarrowingTheFloat32Result) {
  Rng rng(41);
  Tensor x(DType::f32, {5, 9001});  // several chunks of 16,384, the last one partial
  for (float& v : x.span<float>()) v = rng.normal(3.0f);
  const int threads_before = thread_count();
  for (const char* text : {"int8", "uint8:asym", "int8:channel=0", "int8:channel=1", "int4:block=32",
                           "uint4:block=7:asym", "int16:channel=1"}) {
    const QuantizedTensor q = quantize(TensorView(x), Scheme::parse(text));
    const Tensor f32 = dequantize(q);
    for (DType dtype : {DType::f16, DType::bf16}) {
      const Tensor expected = from_f32(f32, dtype);
      for (int threads : {1, 2}) {
        set_thread_count(threads);
        const Tensor got = dequantize(q, dtype);
        ASSERT_EQ(got.dtype(), dtype);
        ASSERT_EQ(got.shape(), q.shape);
        EXPECT_EQ(0, std::memcmp(got.data(), expected.data(), expected.nbytes())) << text << " " << dtype_name(dtype);
      }
    }
    EXPECT_EQ(0, std::memcmp(dequantize(q, DType::f32).data(), f32.data(), f32.nbytes())) << text;
  }
  set_thread_count(threads_before);
  const QuantizedTensor q = quantize(TensorView(x), Scheme::parse("int8"));
  EXPECT_THROW(dequantize(q, DType::i8), Error);
  std::vector<std::uint16_t> short_out(10);
  EXPECT_THROW(dequantize(q, DType::f16, short_out), Error);
}

// fake_quantize makes the codes of each chunk and turns them back in cache: the bits of
// dequantize(quantize(x)), for every granularity, 16-bit inputs, several chunks and threads.
TEST(FakeQuantize, OnePassEqualsDequantizeOfTheCodes) {
  Rng rng(43);
  Tensor x(DType::f32, {5, 9001});
  for (float& v : x.span<float>()) v = rng.normal(2.0f);
  const int threads_before = thread_count();
  for (const char* text : {"int8", "uint8:asym", "int8:channel=0", "int8:channel=1", "int4:block=32",
                           "uint4:block=7:asym", "int16:channel=1", "uint8:zp=float"}) {
    const Scheme s = Scheme::parse(text);
    for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
      const Tensor input = from_f32(x, dtype);  // (a copy for f32)
      const QParams p = compute_params(TensorView(input), s);
      const Tensor expected = dequantize(quantize(TensorView(input), p));
      for (int threads : {1, 2}) {
        set_thread_count(threads);
        const Tensor got = fake_quantize(TensorView(input), p);
        ASSERT_EQ(got.shape(), expected.shape());
        EXPECT_EQ(0, std::memcmp(got.data(), expected.data(), expected.nbytes())) << text << " " << dtype_name(dtype);
      }
    }
  }
  set_thread_count(threads_before);
}

TEST(Quantize, OtherFloatInputsMatchTheirFloat32Conversion) {
  Rng rng(3);
  const Tensor x32 = rng.heavy_tailed({3, 17});
  const Scheme s = Scheme::parse("int4:block=8");
  for (DType d : {DType::f16, DType::bf16, DType::f64}) {
    const Tensor xd = from_f32(x32, d);
    const Tensor back = to_f32(xd);  // the values the quantizer actually sees
    const QParams p = compute_params(xd, s);
    EXPECT_EQ(p.scale, compute_params(back, s).scale);
    EXPECT_EQ(quantize(xd, p).data, quantize(back, p).data) << dtype_name(d);
  }
}

TEST(Quantize, StridedViewsEqualTheirContiguousCopy) {
  Rng rng(5);
  const Tensor base = rng.heavy_tailed({6, 8});
  // The transpose of base, as a view: shape [8, 6], strides [1, 8].
  const TensorView transposed(base.data(), DType::f32, {8, 6}, {1, 8});
  const Tensor copy = Tensor::copy_of(transposed);
  EXPECT_EQ(copy.span<float>()[1], base.span<float>()[8]);
  const Scheme s = Scheme::parse("int8:channel=0");
  const QParams p = compute_params(transposed, s);
  EXPECT_EQ(p.scale, compute_params(copy, s).scale);
  EXPECT_EQ(quantize(transposed, p).data, quantize(copy, p).data);
}

TEST(Quantize, PackedLayoutForInt4) {
  const Tensor x = tensor_of({5}, {-7.0f, 1.0f, 7.0f, 0.0f, -1.0f});
  const Scheme s = Scheme::parse("int4");
  const QParams p = compute_params(x, s);
  EXPECT_EQ(p.scale[0], 1.0f);
  const QuantizedTensor q = quantize(x, p);
  // codes -7, 1, 7, 0, -1 -> nibbles 9, 1, 7, 0, F, element 0 low.
  EXPECT_EQ(q.data, (std::vector<std::uint8_t>{0x19, 0x07, 0x0F}));
}

TEST(Quantize, NonFiniteIsAnErrorNamingTheIndex) {
  const Tensor x = tensor_of({2, 3}, {1.0f, 2.0f, 3.0f, 4.0f, NAN, 6.0f});
  ObserveOptions named;
  named.name = "layer.weight";
  try {
    compute_params(x, Scheme::parse("int8"), named);
    FAIL() << "NaN accepted";
  } catch (const NonFiniteError& e) {
    EXPECT_EQ(e.flat_index(), 4);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'layer.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("NaN at index [1, 1]"), std::string::npos) << msg;
  }
  const Tensor inf = tensor_of({3}, {1.0f, -INFINITY, 0.0f});
  EXPECT_THROW(compute_params(inf, Scheme::parse("int8")), NonFiniteError);
}

TEST(Quantize, OneCallFormReportsNonFiniteLikeComputeParams) {
  Tensor x(DType::f32, {4, 64});
  x.span<float>()[200] = INFINITY;
  x.span<float>()[70] = NAN;  // the first one must be reported, whichever thread meets it
  ObserveOptions named;
  named.name = "w";
  for (const char* text : {"int8:channel=0", "int4:block=32", "int8"}) {
    try {
      quantize(x, Scheme::parse(text), named);
      FAIL() << text;
    } catch (const NonFiniteError& e) {
      EXPECT_EQ(e.flat_index(), 70) << text;
      EXPECT_NE(std::string(e.what()).find("'w' has NaN at index [1, 6]"), std::string::npos) << e.what();
    }
  }
}

TEST(Quantize, IgnoringNonFiniteObservesTheRestAndSaturates) {
  const Tensor x = tensor_of({5}, {1.0f, NAN, -2.0f, INFINITY, -INFINITY});
  ObserveOptions opts;
  opts.ignore_nonfinite = true;
  const Scheme s = Scheme::parse("int8");
  const QParams p = compute_params(x, s, opts);
  EXPECT_EQ(p.scale[0], static_cast<float>(2.0 / 127.0));
  const Tensor codes = unpack_codes(quantize(x, p));
  const auto c = codes.span<std::int8_t>();
  EXPECT_EQ(c[1], 0);
  EXPECT_EQ(c[3], 127);
  EXPECT_EQ(c[4], -127);
  // A group with no finite value gets the degenerate parameters.
  const Tensor all_nan = tensor_of({2, 2}, {NAN, NAN, 1.0f, 2.0f});
  const QParams pc = compute_params(all_nan, Scheme::parse("int8:channel=0"), opts);
  EXPECT_EQ(pc.scale[0], 1.0f);
  EXPECT_EQ(pc.scale[1], static_cast<float>(2.0 / 127.0));
}

TEST(Quantize, BadInputIsAClearError) {
  const Tensor empty(DType::f32, {0, 4});
  EXPECT_THROW(compute_params(empty, Scheme::parse("int8")), Error);
  const Tensor ints(DType::i32, {4});
  EXPECT_THROW(compute_params(ints, Scheme::parse("int8")), Error);
  const Tensor x = tensor_of({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_THROW(compute_params(x, Scheme::parse("int8:channel=2")), Error);
  const QParams p = compute_params(x, Scheme::parse("int8:channel=0"));
  const Tensor other = tensor_of({3, 2}, {1, 2, 3, 4, 5, 6});
  EXPECT_THROW(quantize(other, p), Error);  // 3 channels, parameters for 2
}

TEST(PackCodes, ValidatesCodesAgainstTheScheme) {
  const Scheme s = Scheme::parse("int4");
  QParams p{s, {}, {1.0f}, {0}, {0.0f}};
  Tensor codes(DType::i8, {3});
  codes.span<std::int8_t>()[0] = -7;
  codes.span<std::int8_t>()[1] = 7;
  const QuantizedTensor ok = pack_codes(codes, p);
  EXPECT_EQ(unpack_codes(ok).span<std::int8_t>()[0], -7);
  codes.span<std::int8_t>()[2] = 8;  // not an int4 code
  EXPECT_THROW(pack_codes(codes, p), Error);
  codes.span<std::int8_t>()[2] = -8;  // int4 but outside the narrow range
  EXPECT_THROW(pack_codes(codes, p), Error);
  Tensor wrong_type(DType::u8, {3});
  EXPECT_THROW(pack_codes(wrong_type, p), Error);
}

TEST(UnpackCodes, RefusesDataOfTheWrongLength) {
  QuantizedTensor q;
  q.shape = {5};
  q.params = QParams{Scheme::parse("int4"), {}, {1.0f}, {0}, {0.0f}};
  q.data = {0x00, 0x00};  // 5 nibbles need 3 bytes
  EXPECT_THROW(unpack_codes(q), Error);
  q.data = {0x00, 0x00, 0x00};
  EXPECT_NO_THROW(unpack_codes(q));
  q.data = {0x08, 0x00, 0x00};  // -8 is outside int4's narrow range
  EXPECT_THROW(unpack_codes(q), Error);
}

TEST(Shape, OverflowIsCaughtEvenWhenEmpty) {
  EXPECT_EQ(checked_numel({0, 5}), 0);
  EXPECT_EQ(checked_numel({}), 1);
  EXPECT_THROW(checked_numel({1LL << 32, 1LL << 32}), Error);
  EXPECT_THROW(checked_numel({0, 1LL << 32, 1LL << 32}), Error);  // strides would overflow
  EXPECT_THROW(checked_numel({3, -1}), Error);
  EXPECT_THROW(TensorView(nullptr, DType::f32, {0, 1LL << 32, 1LL << 32}), Error);
}

TEST(Metrics, KnownValues) {
  const Tensor a = tensor_of({4}, {1, 2, 3, 4});
  const Tensor b = tensor_of({4}, {1, 2, 3, 5});
  const ErrorMetrics m = measure_error(a, b);
  EXPECT_EQ(m.count, 4);
  EXPECT_DOUBLE_EQ(m.mse, 0.25);
  EXPECT_DOUBLE_EQ(m.max_abs_error, 1.0);
  EXPECT_EQ(m.max_abs_error_index, 3);
  EXPECT_NEAR(m.sqnr_db, 10 * std::log10(30.0), 1e-12);
  EXPECT_NEAR(m.cosine, 34.0 / (std::sqrt(30.0) * std::sqrt(39.0)), 1e-12);
  EXPECT_NEAR(m.relative_mse, 1.0 / 30.0, 1e-15);
  const ErrorMetrics same = measure_error(a, a);
  EXPECT_EQ(same.mse, 0);
  EXPECT_TRUE(std::isinf(same.sqnr_db));
  EXPECT_DOUBLE_EQ(same.cosine, 1.0);
  const Tensor zeros = tensor_of({4}, {0, 0, 0, 0});
  EXPECT_EQ(measure_error(zeros, zeros).cosine, 1.0);
  EXPECT_EQ(measure_error(a, zeros).cosine, 0.0);
  EXPECT_THROW(measure_error(a, tensor_of({2, 2}, {1, 2, 3, 4})), Error);
  const Tensor with_nan = tensor_of({2}, {NAN, 1});
  const ErrorMetrics skipped = measure_error(with_nan, tensor_of({2}, {0, 1}));
  EXPECT_EQ(skipped.skipped, 1);
  EXPECT_EQ(skipped.count, 1);
}

// add_finite skips add's scan for NaN and infinity; on finite values the sums are the same bits.
TEST(Metrics, AddFiniteEqualsAddOnFiniteValues) {
  Rng rng(37);
  std::vector<float> r(1003), a(1003);
  for (std::size_t i = 0; i < r.size(); ++i) {
    r[i] = rng.normal(1.0f);
    a[i] = r[i] + rng.normal(0.01f);
  }
  a[517] = r[517] + 0.5f;  // the largest error
  ErrorAccumulator checked, trusted;
  checked.add(r, a, 40);
  trusted.add_finite(r, a, 40);
  const ErrorMetrics x = checked.result(), y = trusted.result();
  EXPECT_EQ(x.count, y.count);
  EXPECT_EQ(x.mse, y.mse);
  EXPECT_EQ(x.cosine, y.cosine);
  EXPECT_EQ(x.sqnr_db, y.sqnr_db);
  EXPECT_EQ(x.max_abs_error, y.max_abs_error);
  EXPECT_EQ(y.max_abs_error_index, 40 + 517);
}

// The chunked measurement equals the one on full float copies (up to the order of the double
// sums) for packed and byte codes, from f32 and bf16, and does not depend on the thread count.
TEST(Metrics, QuantizationErrorMatchesTheFullCopyMeasurement) {
  Rng rng(31);
  Tensor x(DType::f32, {3, 40000});  // several chunks, the last one partial
  for (float& v : x.span<float>()) v = rng.normal(0.02f);
  x.span<float>()[70001] = 3.0f;  // the largest error lands here
  const Tensor xb = from_f32(x, DType::bf16);
  const int threads_before = thread_count();
  for (const char* text : {"int8", "int8:channel=0", "int4:block=32", "uint4:block=128:asym", "int8:block=1000",
                           "int8:channel=1", "uint8:channel=1:asym", "int4:channel=1"}) {
    for (const TensorView& input : {TensorView(x), TensorView(xb)}) {
      const QuantizedTensor q = quantize(input, Scheme::parse(text));
      const ErrorMetrics full = measure_error(input, dequantize(q));
      set_thread_count(1);
      const ErrorMetrics one = quantization_error(input, q);
      set_thread_count(2);
      const ErrorMetrics two = quantization_error(input, q);
      set_thread_count(threads_before);
      EXPECT_EQ(one.count, full.count) << text;
      EXPECT_EQ(one.max_abs_error, full.max_abs_error) << text;
      EXPECT_EQ(one.max_abs_error_index, full.max_abs_error_index) << text;
      EXPECT_NEAR(one.mse, full.mse, full.mse * 1e-12) << text;
      EXPECT_NEAR(one.sqnr_db, full.sqnr_db, 1e-9) << text;
      EXPECT_NEAR(one.cosine, full.cosine, 1e-12) << text;
      EXPECT_EQ(one.mse, two.mse) << text;  // bit for bit across thread counts
      EXPECT_EQ(one.cosine, two.cosine) << text;
      // Measured during quantization, each chunk while it is in cache: the same bits.
      for (int threads : {1, 2}) {
        set_thread_count(threads);
        QuantizedTensor again;
        ErrorMetrics during;
        quantize(input, Scheme::parse(text), {}, again, during);
        EXPECT_EQ(again.data, q.data) << text;
        EXPECT_EQ(during.mse, one.mse) << text << " threads " << threads;
        EXPECT_EQ(during.sqnr_db, one.sqnr_db) << text;
        EXPECT_EQ(during.cosine, one.cosine) << text;
        EXPECT_EQ(during.max_abs_error_index, one.max_abs_error_index) << text;
        EXPECT_EQ(during.count, one.count) << text;
      }
      set_thread_count(threads_before);
    }
  }
  const TensorView transposed_shape(x.data(), DType::f32, {40000, 3});
  EXPECT_THROW(quantization_error(transposed_shape, quantize(TensorView(x), Scheme::parse("int8"))), Error);
}

}  // namespace
}  // namespace zp
