// Scalar references of ggml's legacy block formats and plain row conversions: the specification
// the SIMD versions (ggml_legacy_hwy.cpp) match byte for byte. Each computes what ggml-quants.c's
// quantize_row_*_ref / dequantize_row_* compute, operation for operation in float32 (no fused
// multiply-add: ggml-base is built for baseline x86-64), including what its undefined float ->
// integer casts do there (docs/math.md §11 lists every convention).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>

#include "kernels/convert_ref.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ggml_blocks.hpp"

namespace zp::ggml::kernels {
namespace {

using zp::kernels::detail::expect;
using zp::kernels::detail::expect_output;

constexpr std::size_t kBlock = 32;  // values per block, every legacy type

// Block layouts (little-endian; "half" is an IEEE binary16 scale). The structs document the
// bytes; the code reads and writes through offsets.
struct BlockQ4_0 { std::uint8_t d[2], qs[16]; };
struct BlockQ4_1 { std::uint8_t d[2], m[2], qs[16]; };
struct BlockQ5_0 { std::uint8_t d[2], qh[4], qs[16]; };
struct BlockQ5_1 { std::uint8_t d[2], m[2], qh[4], qs[16]; };
struct BlockQ8_0 { std::uint8_t d[2]; std::int8_t qs[32]; };
struct BlockQ8_1 { std::uint8_t d[2], s[2]; std::int8_t qs[32]; };
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);

void put_u16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
std::uint16_t get_u16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
void put_u32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get_u32(const std::uint8_t* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 | static_cast<std::uint32_t>(p[2]) << 16 |
         static_cast<std::uint32_t>(p[3]) << 24;
}

// ggml casts floats to int8_t / uint8_t without a range check. In C that is undefined for NaN
// and out-of-range values; GCC on x86 compiles it to cvttss2si / cvttps2dq (truncation, with
// INT32_MIN for NaN and anything outside int32) followed by keeping the low byte, and llama.cpp's
// model files were written that way. These two functions are that, defined.
std::int32_t truncate_like_x86(float v) noexcept {
  if (!(v >= -0x1p31f && v < 0x1p31f)) return INT32_MIN;
  return static_cast<std::int32_t>(v);
}
std::uint8_t low_byte_like_x86(float v) noexcept { return static_cast<std::uint8_t>(truncate_like_x86(v) & 0xFF); }
int int8_like_x86(float v) noexcept { return static_cast<std::int8_t>(low_byte_like_x86(v)); }

void expect_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::size_t block_bytes) noexcept {
  expect(x.size() % kBlock == 0);
  expect_output(x, out, x.size() / kBlock * block_bytes);
}
void expect_dequantize(std::span<const std::uint8_t> blocks, std::span<float> out, std::size_t block_bytes) noexcept {
  expect(out.size() % kBlock == 0 && blocks.size() >= out.size() / kBlock * block_bytes);
  expect_output(blocks, out, 0);
}

// The scale of q4_0 / q5_0: the value of largest magnitude (the first one on a tie of +a and -a;
// NaN never compares larger, so it is skipped), divided by -2^(bits-1).
float signed_absmax(const float* x) noexcept {
  float amax = 0.0f, max = 0.0f;
  for (std::size_t j = 0; j < kBlock; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

struct Range {
  float min, max;
};
// q4_1 / q5_1: NaN never compares smaller or larger, so it is skipped; a block of NaN keeps the
// starting values (min FLT_MAX, max -FLT_MAX).
Range block_range(const float* x) noexcept {
  Range r{3.40282347e38f, -3.40282347e38f};
  for (std::size_t j = 0; j < kBlock; ++j) {
    if (x[j] < r.min) r.min = x[j];
    if (x[j] > r.max) r.max = x[j];
  }
  return r;
}

// q8_0 / q8_1: ggml's MAX(a, b) is `a > b ? a : b`, so a NaN replaces the running maximum and
// the next value replaces the NaN: the result is the largest magnitude after the last NaN (NaN
// when the block ends in one).
float running_absmax(const float* x) noexcept {
  float amax = 0.0f;
  for (std::size_t j = 0; j < kBlock; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;
  }
  return amax;
}

float inverse_or_zero(float d) noexcept { return d != 0.0f ? 1.0f / d : 0.0f; }  // NaN d: NaN

void q4_0_block(const float* x, std::uint8_t* out) noexcept {
  const float d = signed_absmax(x) / -8.0f;
  const float id = inverse_or_zero(d);
  put_u16(out, f32_f16_ggml(d));
  for (std::size_t j = 0; j < kBlock / 2; ++j) {
    // Truncation of x/d + 8.5 (rounds half up around the zero point 8), clamped above only.
    const auto lo = static_cast<std::uint8_t>(std::min(15, int8_like_x86(x[j] * id + 8.5f)));
    const auto hi = static_cast<std::uint8_t>(std::min(15, int8_like_x86(x[j + 16] * id + 8.5f)));
    out[2 + j] = static_cast<std::uint8_t>(lo | hi << 4);
  }
}

void q4_1_block(const float* x, std::uint8_t* out) noexcept {
  const Range r = block_range(x);
  const float d = (r.max - r.min) / 15.0f;
  const float id = inverse_or_zero(d);
  put_u16(out, f32_f16_ggml(d));
  put_u16(out + 2, f32_f16_ggml(r.min));
  for (std::size_t j = 0; j < kBlock / 2; ++j) {
    const auto lo = static_cast<std::uint8_t>(std::min(15, int8_like_x86((x[j] - r.min) * id + 0.5f)));
    const auto hi = static_cast<std::uint8_t>(std::min(15, int8_like_x86((x[j + 16] - r.min) * id + 0.5f)));
    out[4 + j] = static_cast<std::uint8_t>(lo | hi << 4);
  }
}

// Five-bit codes: low nibbles as in q4_*, bit 4 of code i in bit i of the 32-bit qh.
void put_five_bit_codes(const std::uint8_t* codes, std::uint8_t* qh, std::uint8_t* qs) noexcept {
  std::uint32_t high = 0;
  for (std::size_t j = 0; j < kBlock / 2; ++j) {
    qs[j] = static_cast<std::uint8_t>((codes[j] & 0x0F) | (codes[j + 16] & 0x0F) << 4);
    high |= static_cast<std::uint32_t>((codes[j] & 0x10u) >> 4) << j;
    high |= static_cast<std::uint32_t>((codes[j + 16] & 0x10u) >> 4) << (j + 16);
  }
  put_u32(qh, high);
}

void q5_0_block(const float* x, std::uint8_t* out) noexcept {
  const float d = signed_absmax(x) / -16.0f;
  const float id = inverse_or_zero(d);
  put_u16(out, f32_f16_ggml(d));
  std::uint8_t codes[kBlock];
  for (std::size_t j = 0; j < kBlock; ++j) codes[j] = static_cast<std::uint8_t>(std::min(31, int8_like_x86(x[j] * id + 16.5f)));
  put_five_bit_codes(codes, out + 2, out + 6);
}

void q5_1_block(const float* x, std::uint8_t* out) noexcept {
  const Range r = block_range(x);
  const float d = (r.max - r.min) / 31.0f;
  const float id = inverse_or_zero(d);
  put_u16(out, f32_f16_ggml(d));
  put_u16(out + 2, f32_f16_ggml(r.min));
  std::uint8_t codes[kBlock];
  // No clamp here in ggml: (x - min) / d never exceeds 31.5 once rounded.
  for (std::size_t j = 0; j < kBlock; ++j) codes[j] = low_byte_like_x86((x[j] - r.min) * id + 0.5f);
  put_five_bit_codes(codes, out + 4, out + 8);
}

// Returns the sum of the codes (q8_1 stores it).
int q8_block(const float* x, std::uint8_t* d_out, std::uint8_t* qs) noexcept {
  const float d = running_absmax(x) / 127.0f;
  const float id = inverse_or_zero(d);
  put_u16(d_out, f32_f16_ggml(d));
  int sum = 0;
  for (std::size_t j = 0; j < kBlock; ++j) {
    qs[j] = low_byte_like_x86(std::round(x[j] * id));  // roundf: ties away from zero
    sum += static_cast<std::int8_t>(qs[j]);
  }
  return sum;
}

template <std::size_t kBytes, class Block>
void quantize_blocks(std::span<const float> x, std::span<std::uint8_t> out, Block block) noexcept {
  expect_quantize(x, out, kBytes);
  for (std::size_t b = 0; b < x.size() / kBlock; ++b) block(x.data() + b * kBlock, out.data() + b * kBytes);
}

}  // namespace

void f32_q4_0_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  quantize_blocks<sizeof(BlockQ4_0)>(x, out, q4_0_block);
}
void f32_q4_1_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  quantize_blocks<sizeof(BlockQ4_1)>(x, out, q4_1_block);
}
void f32_q5_0_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  quantize_blocks<sizeof(BlockQ5_0)>(x, out, q5_0_block);
}
void f32_q5_1_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  quantize_blocks<sizeof(BlockQ5_1)>(x, out, q5_1_block);
}
void f32_q8_0_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  quantize_blocks<sizeof(BlockQ8_0)>(x, out, [](const float* v, std::uint8_t* o) { q8_block(v, o, o + 2); });
}
void f32_q8_1_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  quantize_blocks<sizeof(BlockQ8_1)>(x, out, [](const float* v, std::uint8_t* o) {
    const int sum = q8_block(v, o, o + 4);
    // s = sum * d with d the float32 scale before its conversion to half, as ggml does.
    const float d = running_absmax(v) / 127.0f;
    put_u16(o + 2, f32_f16_ggml(static_cast<float>(sum) * d));
  });
}

namespace {
// c * d + m in two roundings (ggml-base has no fused multiply-add). When both the product and m
// are NaN, x86 keeps the first operand's NaN, which in ggml's build is the product: said here
// rather than left to the compiler's choice of operand order.
float affine(int code, float d, float m) noexcept {
  const float p = static_cast<float>(code) * d;
  return std::isnan(p) ? p : p + m;
}
}  // namespace

void q4_0_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize(blocks, out, sizeof(BlockQ4_0));
  for (std::size_t b = 0; b < out.size() / kBlock; ++b) {
    const std::uint8_t* in = blocks.data() + b * sizeof(BlockQ4_0);
    float* y = out.data() + b * kBlock;
    const float d = f16_f32_ggml(get_u16(in));
    for (std::size_t j = 0; j < kBlock / 2; ++j) {
      y[j] = static_cast<float>((in[2 + j] & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((in[2 + j] >> 4) - 8) * d;
    }
  }
}

void q4_1_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize(blocks, out, sizeof(BlockQ4_1));
  for (std::size_t b = 0; b < out.size() / kBlock; ++b) {
    const std::uint8_t* in = blocks.data() + b * sizeof(BlockQ4_1);
    float* y = out.data() + b * kBlock;
    const float d = f16_f32_ggml(get_u16(in)), m = f16_f32_ggml(get_u16(in + 2));
    for (std::size_t j = 0; j < kBlock / 2; ++j) {
      y[j] = affine(in[4 + j] & 0x0F, d, m);
      y[j + 16] = affine(in[4 + j] >> 4, d, m);
    }
  }
}

namespace {
int five_bit_code(const std::uint8_t* qh, const std::uint8_t* qs, std::size_t j) noexcept {
  const std::uint32_t high = (get_u32(qh) >> j) & 1u;
  const unsigned nibble = j < 16 ? qs[j] & 0x0Fu : qs[j - 16] >> 4;
  return static_cast<int>(nibble | high << 4);
}
}  // namespace

void q5_0_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize(blocks, out, sizeof(BlockQ5_0));
  for (std::size_t b = 0; b < out.size() / kBlock; ++b) {
    const std::uint8_t* in = blocks.data() + b * sizeof(BlockQ5_0);
    const float d = f16_f32_ggml(get_u16(in));
    for (std::size_t j = 0; j < kBlock; ++j) out[b * kBlock + j] = static_cast<float>(five_bit_code(in + 2, in + 6, j) - 16) * d;
  }
}

void q5_1_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize(blocks, out, sizeof(BlockQ5_1));
  for (std::size_t b = 0; b < out.size() / kBlock; ++b) {
    const std::uint8_t* in = blocks.data() + b * sizeof(BlockQ5_1);
    const float d = f16_f32_ggml(get_u16(in)), m = f16_f32_ggml(get_u16(in + 2));
    for (std::size_t j = 0; j < kBlock; ++j) out[b * kBlock + j] = affine(five_bit_code(in + 4, in + 8, j), d, m);
  }
}

void q8_0_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize(blocks, out, sizeof(BlockQ8_0));
  for (std::size_t b = 0; b < out.size() / kBlock; ++b) {
    const std::uint8_t* in = blocks.data() + b * sizeof(BlockQ8_0);
    const float d = f16_f32_ggml(get_u16(in));
    for (std::size_t j = 0; j < kBlock; ++j) out[b * kBlock + j] = static_cast<float>(static_cast<std::int8_t>(in[2 + j])) * d;
  }
}

// ---- Plain types -------------------------------------------------------------------------------
void f32_f32_convert_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  expect_output(x, out, x.size_bytes());
  if (!x.empty()) std::memcpy(out.data(), x.data(), x.size_bytes());  // little-endian host
}
void f32_f32_convert_ref(std::span<const std::uint8_t> values, std::span<float> out) noexcept {
  expect(values.size() >= out.size_bytes());
  expect_output(values, out, 0);
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size_bytes());
}

void f32_f16_convert_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  expect_output(x, out, 2 * x.size());
  for (std::size_t i = 0; i < x.size(); ++i) put_u16(out.data() + 2 * i, f32_f16_ggml(x[i]));
}
void f16_f32_convert_ref(std::span<const std::uint8_t> values, std::span<float> out) noexcept {
  expect(values.size() >= 2 * out.size());
  expect_output(values, out, 0);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = f16_f32_ggml(get_u16(values.data() + 2 * i));
}

void f32_bf16_convert_ref(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float>) noexcept {
  expect_output(x, out, 2 * x.size());
  // ggml_compute_fp32_to_bf16: nearest even, NaN made quiet by setting bit 6 of the top half.
  for (std::size_t i = 0; i < x.size(); ++i) put_u16(out.data() + 2 * i, zp::kernels::f32_bf16_convert_ref(x[i]));
}
void bf16_f32_convert_ref(std::span<const std::uint8_t> values, std::span<float> out) noexcept {
  expect(values.size() >= 2 * out.size());
  expect_output(values, out, 0);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = zp::kernels::bf16_f32_convert_ref(get_u16(values.data() + 2 * i));
}

}  // namespace zp::ggml::kernels
