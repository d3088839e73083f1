// Scalar reference conversions between float32 and the 16-bit float formats.
// These are the specification the SIMD conversions (a later issue) must match bit for bit.
#pragma once

#include <bit>
#include <cstdint>

namespace zp::kernels {

/// binary16 -> binary32. Exact for every input (subnormals, infinities; NaN payload kept).
inline float f16_f32_convert_ref(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: shift the mantissa up until its leading one becomes the implicit bit.
    std::uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

/// binary32 -> binary16, round to nearest, ties to even (as IEEE 754 and F16C's VCVTPS2PH with
/// imm 0 do). Overflow gives infinity; NaN stays NaN (quiet).
inline std::uint16_t f32_f16_convert_ref(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds past 65504
  if (abs >= 0x38800000u) {                                                   // normal half
    const std::uint32_t rounded = abs + 0xFFFu + ((abs >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: rounds to zero
  // Subnormal half: value = mant * 2^-24 with the implicit bit made explicit.
  const std::uint32_t e = abs >> 23;
  const std::uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126u - e;  // 14..24
  const std::uint32_t half_mant = m >> shift;
  const std::uint32_t rest = m & ((1u << shift) - 1u);
  const std::uint32_t halfway = 1u << (shift - 1u);
  const std::uint32_t round_up = rest > halfway || (rest == halfway && (half_mant & 1u));
  return static_cast<std::uint16_t>(sign | (half_mant + round_up));
}

/// bfloat16 -> float32: exact (bfloat16 is the top half of a float32).
inline float bf16_f32_convert_ref(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// float32 -> bfloat16, round to nearest even; NaN stays a quiet NaN (as PyTorch and
/// Hugging Face do, rather than truncating).
inline std::uint16_t f32_bf16_convert_ref(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  const std::uint32_t rounded = x + 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

}  // namespace zp::kernels
