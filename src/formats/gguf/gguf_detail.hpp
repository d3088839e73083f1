// Private to the GGUF reader and writer: byte order, value sizes, and how names appear in messages.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "core/quoted.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace zp::gguf::detail {

inline constexpr std::uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr std::uint32_t kVersion = 3;

using zp::detail::in_quotes;

/// A little-endian T at p, whatever the host's byte order.
template <class T>
T load(const std::uint8_t* p) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  if constexpr (std::endian::native == std::endian::little) {
    T x;
    std::memcpy(&x, p, sizeof x);
    return x;
  } else {
    using U = std::conditional_t<sizeof(T) == 1, std::uint8_t,
                                 std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                                    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
    U u = 0;
    for (std::size_t k = 0; k < sizeof(T); ++k) u |= static_cast<U>(U{p[k]} << (8 * k));
    return std::bit_cast<T>(u);
  }
}

/// Appends T little-endian.
template <class T>
void store(std::string& out, T x) {
  static_assert(std::is_trivially_copyable_v<T>);
  if constexpr (std::endian::native == std::endian::little) {
    out.append(reinterpret_cast<const char*>(&x), sizeof x);
  } else {
    using U = std::conditional_t<sizeof(T) == 1, std::uint8_t,
                                 std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                                    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
    const U u = std::bit_cast<U>(x);
    for (std::size_t k = 0; k < sizeof(T); ++k) out.push_back(static_cast<char>((u >> (8 * k)) & 0xFF));
  }
}

/// Whether `id` is a value type the format defines.
constexpr bool is_known(std::uint32_t id) noexcept { return id <= static_cast<std::uint32_t>(ValueType::f64); }

/// Bytes one value of `type` takes in a file at least: its exact size for numbers and bools, the
/// length field for a string, type and count fields for an array. What bounds a count read from a
/// file by the bytes left in it.
constexpr std::uint64_t min_encoded_bytes(ValueType type) noexcept {
  switch (type) {
    case ValueType::u8:
    case ValueType::i8:
    case ValueType::boolean:
      return 1;
    case ValueType::u16:
    case ValueType::i16:
      return 2;
    case ValueType::u32:
    case ValueType::i32:
    case ValueType::f32:
      return 4;
    case ValueType::u64:
    case ValueType::i64:
    case ValueType::f64:
    case ValueType::string:
      return 8;
    case ValueType::array:
      return 12;
  }
  return 1;
}

constexpr std::uint64_t align_up(std::uint64_t x, std::uint64_t alignment) noexcept {
  return (x + alignment - 1) / alignment * alignment;
}

constexpr bool is_power_of_two(std::uint64_t x) noexcept { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace zp::gguf::detail
