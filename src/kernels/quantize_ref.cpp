// Scalar reference kernels: the element formulas of kernels.hpp applied to spans.
#include <cmath>
#include <limits>

#include "zeropoint/kernels.hpp"

namespace zp::kernels {
namespace {

template <class Code>
void quantize_span(std::span<const float> x, const AffineParams& params, const QuantizeSpec& quantize_spec,
                   std::span<Code> q) noexcept {
  // Local copies: int8 stores may alias anything, which would otherwise force the compiler to
  // reload the parameters for every element.
  const AffineParams p = params;
  const QuantizeSpec spec = quantize_spec;
  for (std::size_t i = 0; i < x.size(); ++i) q[i] = static_cast<Code>(quantize_value(x[i], p, spec));
}

template <class Code>
void dequantize_span(std::span<const Code> q, const AffineParams& params, std::span<float> x) noexcept {
  const AffineParams p = params;
  for (std::size_t i = 0; i < q.size(); ++i) x[i] = dequantize_value(q[i], p);
}

template <class Code>
void quantize_each(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<Code> q) noexcept {
  for (std::size_t i = 0; i < x.size(); ++i) q[i] = static_cast<Code>(quantize_value(x[i], p.at(i), spec));
}

template <class Code>
void dequantize_each(std::span<const Code> q, const ParamSpans& p, std::span<float> x) noexcept {
  for (std::size_t i = 0; i < q.size(); ++i) x[i] = dequantize_value(q[i], p.at(i));
}

}  // namespace

void f32_qs8_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                          std::span<std::int8_t> q) noexcept {
  quantize_span(x, p, spec, q);
}
void f32_qu8_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                          std::span<std::uint8_t> q) noexcept {
  quantize_span(x, p, spec, q);
}
void f32_qs16_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                           std::span<std::int16_t> q) noexcept {
  quantize_span(x, p, spec, q);
}
void f32_qu16_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                           std::span<std::uint16_t> q) noexcept {
  quantize_span(x, p, spec, q);
}

void qs8_f32_dequantize_ref(std::span<const std::int8_t> q, const AffineParams& p, std::span<float> x) noexcept {
  dequantize_span(q, p, x);
}
void qu8_f32_dequantize_ref(std::span<const std::uint8_t> q, const AffineParams& p, std::span<float> x) noexcept {
  dequantize_span(q, p, x);
}
void qs16_f32_dequantize_ref(std::span<const std::int16_t> q, const AffineParams& p, std::span<float> x) noexcept {
  dequantize_span(q, p, x);
}
void qu16_f32_dequantize_ref(std::span<const std::uint16_t> q, const AffineParams& p, std::span<float> x) noexcept {
  dequantize_span(q, p, x);
}

void f32_qs8_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                               std::span<std::int8_t> q) noexcept {
  quantize_each(x, p, spec, q);
}
void f32_qu8_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                               std::span<std::uint8_t> q) noexcept {
  quantize_each(x, p, spec, q);
}
void f32_qs16_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                                std::span<std::int16_t> q) noexcept {
  quantize_each(x, p, spec, q);
}
void f32_qu16_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                                std::span<std::uint16_t> q) noexcept {
  quantize_each(x, p, spec, q);
}

void qs8_f32_dequantize_each_ref(std::span<const std::int8_t> q, const ParamSpans& p, std::span<float> x) noexcept {
  dequantize_each(q, p, x);
}
void qu8_f32_dequantize_each_ref(std::span<const std::uint8_t> q, const ParamSpans& p, std::span<float> x) noexcept {
  dequantize_each(q, p, x);
}
void qs16_f32_dequantize_each_ref(std::span<const std::int16_t> q, const ParamSpans& p, std::span<float> x) noexcept {
  dequantize_each(q, p, x);
}
void qu16_f32_dequantize_each_ref(std::span<const std::uint16_t> q, const ParamSpans& p, std::span<float> x) noexcept {
  dequantize_each(q, p, x);
}

bool f32_minmax_accumulate_ref(std::span<const float> x, std::span<float> min, std::span<float> max) noexcept {
  bool finite = true;
  const std::size_t columns = min.size();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) {
      finite = false;
      continue;
    }
    const std::size_t j = i % columns;
    if (v < min[j]) min[j] = v;
    if (v > max[j]) max[j] = v;
  }
  return finite;
}

MinMax f32_minmax_ref(std::span<const float> x, bool skip_nonfinite) noexcept {
  MinMax m{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), true};
  for (float v : x) {
    if (!std::isfinite(v)) {
      m.finite = false;
      if (skip_nonfinite) continue;
    }
    if (v < m.min) m.min = v;
    if (v > m.max) m.max = v;
  }
  // A zero extreme is +0.0 whichever zero came first, so vector kernels (which combine lanes in
  // another order) can return the same bits.
  if (m.min == 0.0f) m.min = 0.0f;
  if (m.max == 0.0f) m.max = 0.0f;
  return m;
}

float f32_absmax_ref(std::span<const float> x, bool skip_nonfinite) noexcept {
  float m = 0.0f;
  for (float v : x) {
    if (skip_nonfinite && !std::isfinite(v)) continue;
    const float a = std::fabs(v);
    if (a > m || a != a) m = a;  // a NaN, when not skipped, is the answer (and stays)
  }
  return m;
}

ErrorSums f32_error_sums_ref(std::span<const float> r, std::span<const float> a) noexcept {
  constexpr std::size_t kLanes = 8;
  double err2[kLanes] = {}, ref2[kLanes] = {}, app2[kLanes] = {}, dot[kLanes] = {};
  ErrorSums s;
  const std::size_t whole = r.size() / kLanes * kLanes;
  auto track = [&](double e, std::size_t i) {
    if (e > s.max_abs_error) {
      s.max_abs_error = e;
      s.max_index = i;
    }
  };
  for (std::size_t i = 0; i < whole; ++i) {
    const std::size_t k = i % kLanes;
    const double ref = r[i], app = a[i], err = ref - app;
    err2[k] += err * err;
    ref2[k] += ref * ref;
    app2[k] += app * app;
    dot[k] += ref * app;
    track(std::fabs(err), i);
  }
  for (std::size_t k = 0; k < kLanes; ++k) {
    s.err2 += err2[k];
    s.ref2 += ref2[k];
    s.app2 += app2[k];
    s.dot += dot[k];
  }
  for (std::size_t i = whole; i < r.size(); ++i) {
    const double ref = r[i], app = a[i], err = ref - app;
    s.err2 += err * err;
    s.ref2 += ref * ref;
    s.app2 += app * app;
    s.dot += ref * app;
    track(std::fabs(err), i);
  }
  return s;
}

std::size_t f32_find_nonfinite_ref(std::span<const float> x) noexcept {
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return x.size();
}

void pack_ref(std::span<const std::uint8_t> codes, int container_bits, std::span<std::uint8_t> packed) noexcept {
  // Field k of byte j holds code j * per_byte + k. Written per whole byte so that compilers
  // vectorize it; the last, partly filled byte is zero-padded.
  const std::size_t per_byte = 8 / static_cast<std::size_t>(container_bits);
  const unsigned mask = (1u << container_bits) - 1u;
  const std::size_t whole = codes.size() / per_byte;
  if (container_bits == 4) {
    for (std::size_t j = 0; j < whole; ++j) {
      packed[j] = static_cast<std::uint8_t>((codes[2 * j] & 0xFu) | (codes[2 * j + 1] << 4));
    }
  } else {
    for (std::size_t j = 0; j < whole; ++j) {
      packed[j] = static_cast<std::uint8_t>((codes[4 * j] & 3u) | ((codes[4 * j + 1] & 3u) << 2) |
                                            ((codes[4 * j + 2] & 3u) << 4) | (codes[4 * j + 3] << 6));
    }
  }
  if (whole < packed.size()) {
    unsigned last = 0;
    for (std::size_t i = whole * per_byte; i < codes.size(); ++i) {
      last |= (codes[i] & mask) << ((i - whole * per_byte) * static_cast<std::size_t>(container_bits));
    }
    packed[whole] = static_cast<std::uint8_t>(last);
  }
}

void unpack_ref(std::span<const std::uint8_t> packed, int container_bits, bool is_signed,
                std::span<std::uint8_t> codes) noexcept {
  const std::size_t per_byte = 8 / static_cast<std::size_t>(container_bits);
  const unsigned mask = (1u << container_bits) - 1u;
  const unsigned sign_bit = 1u << (container_bits - 1);
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const unsigned shift = static_cast<unsigned>((i % per_byte) * container_bits);
    unsigned field = (packed[i / per_byte] >> shift) & mask;
    if (is_signed && (field & sign_bit)) field |= ~mask;  // sign-extend into the byte
    codes[i] = static_cast<std::uint8_t>(field);
  }
}

}  // namespace zp::kernels
