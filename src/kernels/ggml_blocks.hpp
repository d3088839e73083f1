// The kernels behind the ggml type table (ggml_types.cpp). Each `_ref` is the specification:
// the bytes ggml's own reference (ggml-quants.c quantize_row_*_ref, dequantize_row_*) produces
// for the same float32 input. The unsuffixed versions are the SIMD paths, byte-identical.
// Signatures are ggml::QuantizeFn / ggml::DequantizeFn (zeropoint/ggml.hpp).
#pragma once

#include <cstdint>
#include <span>

#include "zeropoint/ggml.hpp"

namespace zp::ggml::kernels {

// Declarations are added here type by type, e.g.
//   void f32_q8_0_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
//                              std::span<const float> importance) noexcept;
//   void q8_0_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept;

}  // namespace zp::ggml::kernels
