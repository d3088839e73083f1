// The pipeline's step from one ggml type to another: bytes as the reference kernels write them,
// error as measure_error gives it, whatever the threads and pieces.
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "pipeline/ggml_convert.hpp"
#include "test_util.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/threads.hpp"

namespace zp::detail {
namespace {

using ggml::Type;

std::vector<float> heavy_tailed(std::size_t n, std::uint32_t seed) {
  testing::Rng rng(seed);
  const Tensor t = rng.heavy_tailed({static_cast<std::int64_t>(n)});
  return {t.span<float>().begin(), t.span<float>().end()};
}

std::vector<std::uint8_t> reference_bytes(Type type, const std::vector<float>& x) {
  std::vector<std::uint8_t> out(*ggml::row_bytes(type, x.size()));
  ggml::traits(type).quantize_ref(x, out, {});
  return out;
}

TEST(GgmlConvert, BytesAreTheReferencesAndTheErrorIsMeasureErrors) {
  // More than one piece (16384 values) and a last piece that is not full.
  const std::vector<float> x = heavy_tailed(3 * 16384 + 512, 7);
  for (Type type : {Type::q8_0, Type::q4_0, Type::q5_1, Type::q4_K, Type::q6_K}) {
    SCOPED_TRACE(ggml::traits(type).name);
    std::vector<std::uint8_t> out(*ggml::row_bytes(type, x.size()));
    ErrorAccumulator acc;
    convert_values({reinterpret_cast<const std::uint8_t*>(x.data()), Type::f32, x.size()}, type, out, acc);
    EXPECT_EQ(out, reference_bytes(type, x));
    std::vector<float> back(x.size());
    ggml::traits(type).dequantize_ref(out, back);
    const ErrorMetrics direct = measure_error(TensorView(x.data(), DType::f32, {static_cast<std::int64_t>(x.size())}),
                                              TensorView(back.data(), DType::f32, {static_cast<std::int64_t>(x.size())}));
    const ErrorMetrics got = acc.result();
    EXPECT_EQ(got.count, direct.count);
    // The sums are formed piece by piece (16384 values), measure_error's in one run: the same
    // terms, grouped differently.
    EXPECT_NEAR(got.mse, direct.mse, 1e-12 * direct.mse);
    EXPECT_EQ(got.max_abs_error, direct.max_abs_error);
    EXPECT_EQ(got.max_abs_error_index, direct.max_abs_error_index);
    EXPECT_NEAR(got.sqnr_db, direct.sqnr_db, 1e-9);
  }
}

TEST(GgmlConvert, ThreadsDoNotChangeAnything) {
  const std::vector<float> x = heavy_tailed(8 * 16384, 11);
  auto run = [&](int threads) {
    set_thread_count(threads);
    std::vector<std::uint8_t> out(*ggml::row_bytes(Type::q4_K, x.size()));
    ErrorAccumulator acc;
    convert_values({reinterpret_cast<const std::uint8_t*>(x.data()), Type::f32, x.size()}, Type::q4_K, out, acc);
    return std::make_pair(out, acc.result());
  };
  const auto one = run(1), two = run(2);
  set_thread_count(2);
  EXPECT_EQ(one.first, two.first);
  EXPECT_EQ(one.second.mse, two.second.mse);
  EXPECT_EQ(one.second.cosine, two.second.cosine);
}

TEST(GgmlConvert, HalfAndBlockSourcesAreWidenedFirst) {
  const std::vector<float> x = heavy_tailed(4096, 3);
  // bf16 source: the top halves; the result must be the reference on the widened values.
  std::vector<std::uint16_t> bf16(x.size());
  std::vector<float> widened(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    bf16[i] = static_cast<std::uint16_t>(bits >> 16);
    bits = std::uint32_t{bf16[i]} << 16;
    std::memcpy(&widened[i], &bits, 4);
  }
  std::vector<std::uint8_t> out(*ggml::row_bytes(Type::q8_0, x.size()));
  ErrorAccumulator acc;
  convert_values({reinterpret_cast<const std::uint8_t*>(bf16.data()), Type::bf16, x.size()}, Type::q8_0, out, acc);
  EXPECT_EQ(out, reference_bytes(Type::q8_0, widened));
  // A q8_0 source requantized to q4_0: the reference on q8_0's dequantized values.
  std::vector<float> q8_values(x.size());
  ggml::traits(Type::q8_0).dequantize_ref(out, q8_values);
  std::vector<std::uint8_t> q4(*ggml::row_bytes(Type::q4_0, x.size()));
  ErrorAccumulator acc2;
  convert_values({out.data(), Type::q8_0, x.size()}, Type::q4_0, q4, acc2);
  EXPECT_EQ(q4, reference_bytes(Type::q4_0, q8_values));
}

TEST(GgmlConvert, RefusesWhatDoesNotFit) {
  std::vector<float> x(100, 1.0f);
  std::vector<std::uint8_t> out(1000);
  ErrorAccumulator acc;
  EXPECT_THROW(convert_values({reinterpret_cast<const std::uint8_t*>(x.data()), Type::f32, 100}, Type::q8_0, out, acc),
               Error);  // 100 values are not whole blocks of 32
  EXPECT_THROW(convert_values({reinterpret_cast<const std::uint8_t*>(x.data()), Type::f32, 64}, Type::q8_0, out, acc),
               Error);  // the output is not 2 blocks long
  EXPECT_THROW(convert_values({reinterpret_cast<const std::uint8_t*>(x.data()), Type::f32, 64}, Type::iq2_xs, {}, acc),
               Error);  // a type zeropoint does not write
}

}  // namespace
}  // namespace zp::detail
