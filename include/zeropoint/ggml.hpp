// zeropoint/ggml.hpp — llama.cpp's tensor types (ggml_type) and their block formats, as data.
//
// One table (ggml::traits) says, for every type id a GGUF file may carry, how many values a block
// holds and how many bytes it takes, and for the types zeropoint can produce, the scalar
// reference quantizer (the specification: the bytes ggml's quantize_row_*_ref writes), the fast
// quantizer (the same bytes), and the dequantizer. Kernels here take whole rows of blocks and
// know no file format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace zp::ggml {

/// ggml_type, with ggml's numbers (they are what GGUF stores). Gaps are ids ggml retired.
enum class Type : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_K = 10,
  q3_K = 11,
  q4_K = 12,
  q5_K = 13,
  q6_K = 14,
  q8_K = 15,
  iq2_xxs = 16,
  iq2_xs = 17,
  iq3_xxs = 18,
  iq1_s = 19,
  iq4_nl = 20,
  iq3_s = 21,
  iq2_s = 22,
  iq4_xs = 23,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  iq1_m = 29,
  bf16 = 30,
  tq1_0 = 34,
  tq2_0 = 35,
  mxfp4 = 39,
  nvfp4 = 40,
  q1_0 = 41,
  q2_0 = 42,
};

/// Values per block of the K-quants ("super-block").
inline constexpr std::size_t kSuperBlock = 256;

/// Quantizes x (a whole number of blocks) into x.size() / block_size blocks at out (exactly
/// that many bytes). `importance`, when not empty, holds one non-negative weight per value of x
/// (llama.cpp's imatrix, already expanded to the row); types that take no importance ignore it.
using QuantizeFn = void (*)(std::span<const float> x, std::span<std::uint8_t> out,
                            std::span<const float> importance) noexcept;
/// Expands whole blocks back to float32: out.size() values from out.size() / block_size blocks.
using DequantizeFn = void (*)(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept;

struct TypeTraits {
  Type type;
  std::string_view name;       ///< ggml's name: "q4_0", "q4_K", "bf16", ...
  std::uint32_t block_size;    ///< values per block (1 for plain element types)
  std::uint32_t block_bytes;   ///< bytes per block
  bool quantized;              ///< a block format (not a plain element type)
  QuantizeFn quantize_ref = nullptr;  ///< nullptr: zeropoint cannot write this type
  QuantizeFn quantize = nullptr;      ///< the fast path, equal to quantize_ref byte for byte
  DequantizeFn dequantize_ref = nullptr;
  DequantizeFn dequantize = nullptr;  ///< nullptr: zeropoint cannot read this type's values
};

/// Every type id ggml defines, in id order.
std::span<const TypeTraits> all_types() noexcept;

/// The traits of a type id read from a file; nullptr for an id ggml does not define (or retired).
const TypeTraits* find_traits(std::uint32_t id) noexcept;
const TypeTraits& traits(Type type) noexcept;

/// By ggml's name, case-insensitive ("Q4_K" and "q4_k" both work).
std::optional<Type> type_from_name(std::string_view name) noexcept;

/// Bytes of a row of n values: n / block_size * block_bytes. Nothing when n is not a multiple
/// of the block size or the byte count overflows.
std::optional<std::uint64_t> row_bytes(Type type, std::uint64_t n) noexcept;

}  // namespace zp::ggml
