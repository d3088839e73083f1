// The table of ggml types: sizes from ggml (ggml.c's type_traits, checked against ggml_blck_size
// and ggml_type_size), kernels from ggml_blocks.hpp.
#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include "kernels/ggml_blocks.hpp"
#include "zeropoint/ggml.hpp"

namespace zp::ggml {
namespace {

using namespace zp::ggml::kernels;

constexpr std::array kTypes = {
    //         type          name       block  bytes  quantized  quantize_ref  quantize  dequantize_ref  dequantize
    TypeTraits{Type::f32, "f32", 1, 4, false, f32_f32_convert_ref, f32_f32_convert, f32_f32_convert_ref, f32_f32_convert},
    TypeTraits{Type::f16, "f16", 1, 2, false, f32_f16_convert_ref, f32_f16_convert, f16_f32_convert_ref, f16_f32_convert},
    TypeTraits{Type::q4_0, "q4_0", 32, 18, true, f32_q4_0_quantize_ref, f32_q4_0_quantize, q4_0_f32_dequantize_ref, q4_0_f32_dequantize},
    TypeTraits{Type::q4_1, "q4_1", 32, 20, true, f32_q4_1_quantize_ref, f32_q4_1_quantize, q4_1_f32_dequantize_ref, q4_1_f32_dequantize},
    TypeTraits{Type::q5_0, "q5_0", 32, 22, true, f32_q5_0_quantize_ref, f32_q5_0_quantize, q5_0_f32_dequantize_ref, q5_0_f32_dequantize},
    TypeTraits{Type::q5_1, "q5_1", 32, 24, true, f32_q5_1_quantize_ref, f32_q5_1_quantize, q5_1_f32_dequantize_ref, q5_1_f32_dequantize},
    TypeTraits{Type::q8_0, "q8_0", 32, 34, true, f32_q8_0_quantize_ref, f32_q8_0_quantize, q8_0_f32_dequantize_ref, q8_0_f32_dequantize},
    TypeTraits{Type::q8_1, "q8_1", 32, 36, true, f32_q8_1_quantize_ref, f32_q8_1_quantize},
    TypeTraits{Type::q2_K, "q2_K", 256, 84, true, f32_q2_K_quantize_ref, f32_q2_K_quantize, q2_K_f32_dequantize_ref,
               q2_K_f32_dequantize},
    TypeTraits{Type::q3_K, "q3_K", 256, 110, true, f32_q3_K_quantize_ref, f32_q3_K_quantize, q3_K_f32_dequantize_ref,
               q3_K_f32_dequantize},
    TypeTraits{Type::q4_K, "q4_K", 256, 144, true, f32_q4_K_quantize_ref, f32_q4_K_quantize, q4_K_f32_dequantize_ref,
               q4_K_f32_dequantize},
    TypeTraits{Type::q5_K, "q5_K", 256, 176, true, f32_q5_K_quantize_ref, f32_q5_K_quantize, q5_K_f32_dequantize_ref,
               q5_K_f32_dequantize},
    TypeTraits{Type::q6_K, "q6_K", 256, 210, true, f32_q6_K_quantize_ref, f32_q6_K_quantize, q6_K_f32_dequantize_ref,
               q6_K_f32_dequantize},
    TypeTraits{Type::q8_K, "q8_K", 256, 292, true, f32_q8_K_quantize_ref, f32_q8_K_quantize, q8_K_f32_dequantize_ref,
               q8_K_f32_dequantize},
    TypeTraits{Type::iq2_xxs, "iq2_xxs", 256, 66, true},
    TypeTraits{Type::iq2_xs, "iq2_xs", 256, 74, true},
    TypeTraits{Type::iq3_xxs, "iq3_xxs", 256, 98, true},
    TypeTraits{Type::iq1_s, "iq1_s", 256, 50, true},
    TypeTraits{Type::iq4_nl, "iq4_nl", 32, 18, true},
    TypeTraits{Type::iq3_s, "iq3_s", 256, 110, true},
    TypeTraits{Type::iq2_s, "iq2_s", 256, 82, true},
    TypeTraits{Type::iq4_xs, "iq4_xs", 256, 136, true},
    TypeTraits{Type::i8, "i8", 1, 1, false},
    TypeTraits{Type::i16, "i16", 1, 2, false},
    TypeTraits{Type::i32, "i32", 1, 4, false},
    TypeTraits{Type::i64, "i64", 1, 8, false},
    TypeTraits{Type::f64, "f64", 1, 8, false},
    TypeTraits{Type::iq1_m, "iq1_m", 256, 56, true},
    TypeTraits{Type::bf16, "bf16", 1, 2, false, f32_bf16_convert_ref, f32_bf16_convert, bf16_f32_convert_ref, bf16_f32_convert},
    TypeTraits{Type::tq1_0, "tq1_0", 256, 54, true},
    TypeTraits{Type::tq2_0, "tq2_0", 256, 66, true},
    TypeTraits{Type::mxfp4, "mxfp4", 32, 17, true},
    TypeTraits{Type::nvfp4, "nvfp4", 64, 36, true},
    TypeTraits{Type::q1_0, "q1_0", 128, 18, true},
    TypeTraits{Type::q2_0, "q2_0", 64, 18, true},
};

constexpr bool sorted_by_id() {
  for (std::size_t i = 1; i < kTypes.size(); ++i) {
    if (static_cast<std::uint32_t>(kTypes[i - 1].type) >= static_cast<std::uint32_t>(kTypes[i].type)) return false;
  }
  return true;
}
static_assert(sorted_by_id(), "find_traits searches the table by id");

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::span<const TypeTraits> all_types() noexcept { return kTypes; }

const TypeTraits* find_traits(std::uint32_t id) noexcept {
  const auto it = std::lower_bound(kTypes.begin(), kTypes.end(), id, [](const TypeTraits& t, std::uint32_t v) {
    return static_cast<std::uint32_t>(t.type) < v;
  });
  return it != kTypes.end() && static_cast<std::uint32_t>(it->type) == id ? &*it : nullptr;
}

const TypeTraits& traits(Type type) noexcept { return *find_traits(static_cast<std::uint32_t>(type)); }

std::optional<Type> type_from_name(std::string_view name) noexcept {
  for (const TypeTraits& t : kTypes) {
    if (equal_ignoring_case(t.name, name)) return t.type;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> row_bytes(Type type, std::uint64_t n) noexcept {
  const TypeTraits& t = traits(type);
  if (n % t.block_size != 0) return std::nullopt;
  const std::uint64_t blocks = n / t.block_size;
  if (blocks > std::numeric_limits<std::uint64_t>::max() / t.block_bytes) return std::nullopt;
  return blocks * t.block_bytes;
}

}  // namespace zp::ggml
