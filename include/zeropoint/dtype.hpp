// zeropoint/dtype.hpp — element types of tensors and of stored codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace zp {

/// Element type of a tensor in memory. Codes of sub-byte schemes are not a DType: they live
/// packed in bytes inside a QuantizedTensor (see quantize.hpp).
enum class DType : std::uint8_t {
  f32,
  f64,
  f16,   ///< IEEE 754 binary16
  bf16,  ///< bfloat16: the upper 16 bits of a float32
  i8,
  u8,
  i16,
  u16,
  i32,
  u32,
  i64,
};

/// Bytes one element occupies.
std::size_t dtype_size(DType dtype) noexcept;

/// Short lower-case name used in messages, reports and the CLI: "f32", "bf16", "i8", ...
std::string_view dtype_name(DType dtype) noexcept;

/// Inverse of dtype_name; also accepts the long forms "float32", "float16", "bfloat16",
/// "float64", "int8", ... Returns nothing for an unknown name.
std::optional<DType> dtype_from_name(std::string_view name) noexcept;

constexpr bool is_float(DType d) noexcept {
  return d == DType::f32 || d == DType::f64 || d == DType::f16 || d == DType::bf16;
}

}  // namespace zp
