// The kernels behind the ggml type table (ggml_types.cpp). Each `_ref` is the specification:
// the bytes ggml's own reference (ggml-quants.c quantize_row_*_ref, dequantize_row_*) produces
// for the same float32 input. The unsuffixed versions are the SIMD paths, byte-identical.
// Signatures are ggml::QuantizeFn / ggml::DequantizeFn (zeropoint/ggml.hpp).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <span>

#include "kernels/convert_ref.hpp"
#include "zeropoint/ggml.hpp"

namespace zp::ggml::kernels {

// Declarations are added here type by type, e.g.
//   void f32_q8_0_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
//                              std::span<const float> importance) noexcept;
//   void q8_0_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept;

// ---- legacy: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1 (ggml_legacy_ref.cpp, ggml_legacy_hwy.cpp)
// Block types: f32_<t>_quantize[_ref] and <t>_f32_dequantize[_ref] (ggml's quantize_row_<t>_ref
// and dequantize_row_<t>).
#define ZP_GGML_LEGACY_BLOCKS(T)                                                                                \
  void f32_##T##_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,                           \
                              std::span<const float> importance) noexcept;                                    \
  void f32_##T##_quantize(std::span<const float> x, std::span<std::uint8_t> out,                               \
                          std::span<const float> importance) noexcept;                                        \
  void T##_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept;            \
  void T##_f32_dequantize(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept;
ZP_GGML_LEGACY_BLOCKS(q4_0)
ZP_GGML_LEGACY_BLOCKS(q4_1)
ZP_GGML_LEGACY_BLOCKS(q5_0)
ZP_GGML_LEGACY_BLOCKS(q5_1)
ZP_GGML_LEGACY_BLOCKS(q8_0)
#undef ZP_GGML_LEGACY_BLOCKS
// q8_1 (llama.cpp's activation format): ggml itself has no dequantizer for it.
void f32_q8_1_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
                           std::span<const float> importance) noexcept;
void f32_q8_1_quantize(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance) noexcept;

// Plain types as blocks of one value, with the same signatures: f32 is a copy, f16 and bf16 are
// ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row_ref and their inverses (rows of little-endian
// 16-bit values).
#define ZP_GGML_LEGACY_PLAIN(T)                                                                                 \
  void f32_##T##_convert_ref(std::span<const float> x, std::span<std::uint8_t> out,                            \
                             std::span<const float> importance) noexcept;                                     \
  void f32_##T##_convert(std::span<const float> x, std::span<std::uint8_t> out,                                \
                         std::span<const float> importance) noexcept;                                         \
  void T##_f32_convert_ref(std::span<const std::uint8_t> values, std::span<float> out) noexcept;               \
  void T##_f32_convert(std::span<const std::uint8_t> values, std::span<float> out) noexcept;
ZP_GGML_LEGACY_PLAIN(f32)
ZP_GGML_LEGACY_PLAIN(f16)
ZP_GGML_LEGACY_PLAIN(bf16)
#undef ZP_GGML_LEGACY_PLAIN

/// ggml's scalar half conversions (ggml-impl.h), which the legacy blocks use for their scales:
/// float32 -> binary16 rounds to nearest even and turns every NaN into sign | 0x7E00 (the
/// payload is dropped, unlike zp::kernels::f32_f16_convert_ref); binary16 -> float32 is exact
/// and quiets a signalling NaN (sets bit 22), as ggml's float multiplication does.
inline std::uint16_t f32_f16_ggml(float f) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | 0x7E00u);
  return zp::kernels::f32_f16_convert_ref(f);
}
inline float f16_f32_ggml(std::uint16_t h) noexcept {
  const bool nan = (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0;
  const float f = zp::kernels::f16_f32_convert_ref(h);
  return nan ? std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) | 0x00400000u) : f;
}
// ---- end legacy

// ---------------------------------------------------------------------------------------------
// K-quants (ggml_kquants_ref.cpp, ggml_kquants_hwy.cpp): super-blocks of 256 values.
// Quantize with `importance` empty gives ggml's quantize_row_qX_K_ref bytes; with one weight per
// value, the bytes of ggml's quantize_qX_K(..., quant_weights) for x as one row (q8_K ignores
// importance, as ggml has no weighted q8_K).
#define ZP_GGML_KQUANT_KERNELS(T)                                                                  \
  void f32_##T##_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,              \
                              std::span<const float> importance) noexcept;                        \
  void f32_##T##_quantize(std::span<const float> x, std::span<std::uint8_t> out,                  \
                          std::span<const float> importance) noexcept;                            \
  void T##_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept; \
  void T##_f32_dequantize(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept;
ZP_GGML_KQUANT_KERNELS(q2_K)
ZP_GGML_KQUANT_KERNELS(q3_K)
ZP_GGML_KQUANT_KERNELS(q4_K)
ZP_GGML_KQUANT_KERNELS(q5_K)
ZP_GGML_KQUANT_KERNELS(q6_K)
ZP_GGML_KQUANT_KERNELS(q8_K)
#undef ZP_GGML_KQUANT_KERNELS

namespace detail {

// ggml's nearest_int: round half to even through the float adder (exact for |v| < 2^22; beyond
// that, and for NaN, the same garbage ggml computes, so bytes still match).
inline int kq_nearest_int(float v) noexcept {
  const float biased = v + 12582912.f;  // 1.5 * 2^23: the integer lands in the low mantissa bits
  return (std::bit_cast<std::int32_t>(biased) & 0x007fffff) - 0x00400000;
}
// The affine (scale, minimum) search of q2_K, q4_K and q5_K (ggml's make_qkx2_quants /
// make_qkx3_quants); shared so the SIMD path can finish a sub-block it hands back.
float kq_fit_affine(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                    float rmin, float rdelta, int nstep, bool use_mad) noexcept;
// What follows the per-sub-block searches without importance: the super-block scales, the codes
// requantized from the stored scales (sub-blocks whose stored scale is zero keep the search's
// codes L), and the packing. Shared by the reference and the SIMD path.
void kq_q2_K_finish(const float* x, const float* scales, const float* mins, std::uint8_t* L, std::uint8_t* y) noexcept;
void kq_k4_finish(const float* x, const float* scales, const float* mins, std::uint8_t* L, int nmax,
                  std::uint8_t* y) noexcept;  // q4_K (nmax 15) and q5_K (31)
void kq_q6_K_finish(const float* x, const float* scales, std::int8_t* L, std::uint8_t* y) noexcept;
// The parts of kq_k4_finish and kq_q6_K_finish around the requantization, for the SIMD path's own
// (vectorized) requantization: the 6-bit scales and minimums with d and dmin; the packing of the
// codes. kq_q6_K_scales returns false for a block whose scales are all zero (it has then written
// the whole, all-zero block).
void kq_k4_scales(const float* scales, const float* mins, std::uint8_t* y) noexcept;
void kq_k4_pack(const std::uint8_t* L, int nmax, std::uint8_t* y) noexcept;
bool kq_q6_K_scales(const float* scales, std::uint8_t* y) noexcept;
void kq_q6_K_pack(const std::int8_t* L, std::uint8_t* y) noexcept;
// q3_K's tail around the requantization: the 6-bit signed scales with d; the packing of codes
// 0..7 (hmask and 2-bit low parts).
void kq_q3_K_scales(const float* scales, std::uint8_t* y) noexcept;
void kq_q3_K_pack(const std::int8_t* L, std::uint8_t* y) noexcept;
// The reference's symmetric searches of one group, for the SIMD paths, which recompute the rare
// sub-blocks whose stored scale is zero (their codes are the search's) instead of transposing
// every sub-block's codes back out: make_qx_quants (rmse_type 1; codes offset by nmax, weights
// x^2 or qw) and q3_K's make_q3_quants (16 values, nmax 4, codes offset by 4; an all-zero group
// gives codes 0).
float kq_fit_symmetric(int n, int nmax, const float* x, std::int8_t* L, const float* qw) noexcept;
float kq_fit_symmetric_q3(const float* x, std::int8_t* L) noexcept;

}  // namespace detail

}  // namespace zp::ggml::kernels
