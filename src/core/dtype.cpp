#include "zeropoint/dtype.hpp"

#include <array>

namespace zp {
namespace {

struct DTypeInfo {
  DType dtype;
  std::size_t size;
  std::string_view name;
  std::string_view long_name;
};

// One row per DType; every function below reads this table.
constexpr std::array<DTypeInfo, 11> kDTypes{{
    {DType::f32, 4, "f32", "float32"},
    {DType::f64, 8, "f64", "float64"},
    {DType::f16, 2, "f16", "float16"},
    {DType::bf16, 2, "bf16", "bfloat16"},
    {DType::i8, 1, "i8", "int8"},
    {DType::u8, 1, "u8", "uint8"},
    {DType::i16, 2, "i16", "int16"},
    {DType::u16, 2, "u16", "uint16"},
    {DType::i32, 4, "i32", "int32"},
    {DType::u32, 4, "u32", "uint32"},
    {DType::i64, 8, "i64", "int64"},
}};

constexpr bool rows_follow_enum_order() {
  for (std::size_t i = 0; i < kDTypes.size(); ++i) {
    if (static_cast<std::size_t>(kDTypes[i].dtype) != i) return false;
  }
  return true;
}
static_assert(rows_follow_enum_order(), "kDTypes is indexed by DType: keep the rows in enum order");

const DTypeInfo& info(DType d) noexcept { return kDTypes[static_cast<std::size_t>(d)]; }

}  // namespace

std::size_t dtype_size(DType dtype) noexcept { return info(dtype).size; }

std::string_view dtype_name(DType dtype) noexcept { return info(dtype).name; }

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const auto& row : kDTypes) {
    if (name == row.name || name == row.long_name) return row.dtype;
  }
  return std::nullopt;
}

}  // namespace zp
