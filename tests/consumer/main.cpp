// Quantizes the seed article's example through the public API only; exits non-zero on a wrong
// answer so the ctest that runs it fails.
#include <cstdio>
#include <vector>

#include <zeropoint/zeropoint.hpp>

int main() {
  const std::vector<float> values{0.0f, 10.0f, -10.0f, 5.0f, -7.5f};
  const zp::TensorView view(values.data(), zp::DType::f32, {5});
  const auto scheme = zp::Scheme::parse("int8");
  const auto params = zp::compute_params(view, scheme);
  const auto q = zp::quantize(view, params);
  const auto codes = zp::unpack_codes(q);
  const std::vector<int> expected{0, 127, -127, 64, -95};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (codes.span<std::int8_t>()[i] != expected[i]) {
      std::fprintf(stderr, "code %zu is %d, expected %d\n", i, codes.span<std::int8_t>()[i], expected[i]);
      return 1;
    }
  }
  const auto error = zp::measure_error(view, zp::dequantize(q));
  std::printf("consumer ok: scale %.9g, max error %.9g\n", params.scale[0], error.max_abs_error);
  return error.max_abs_error <= params.scale[0] / 2 ? 0 : 1;
}
