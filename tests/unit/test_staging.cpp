// ReadAhead: tensors read one ahead into staging buffers, whole or in parts that the waiting
// thread helps read; every byte must arrive, in order, and a failed read must reach next().
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "pipeline/staging.hpp"

namespace zp::detail {
namespace {

// The byte at `offset` of item k: differs between items and positions.
std::byte pattern(std::size_t k, std::size_t offset) { return static_cast<std::byte>((k * 131 + offset * 7 + offset / 251) & 0xFF); }

TEST(ReadAhead, ItemsArriveWholeAndInOrderWhenReadInParts) {
  constexpr std::size_t kPart = 4096;
  const std::vector<std::size_t> sizes{0, 1, kPart - 1, kPart, kPart + 1, 5 * kPart + 3, 3, 64 * kPart + 17};
  for (std::size_t part : {kPart, std::size_t{1} << 40}) {  // in parts, and whole
    ReadAhead ahead(
        sizes.size(), [&](std::size_t k) { return sizes[k]; },
        [&](std::size_t k, std::size_t offset, std::span<std::byte> out) {
          ASSERT_LE(offset + out.size(), sizes[k]);
          ASSERT_TRUE(out.size() == std::min(part, sizes[k] - offset));
          for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern(k, offset + i);
        },
        part);
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      const std::span<const std::byte> got = ahead.next();
      ASSERT_EQ(got.size(), sizes[k]) << "item " << k;
      for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], pattern(k, i)) << "item " << k << " byte " << i;
    }
  }
}

TEST(ReadAhead, AFailedPartReachesNextForItsItem) {
  constexpr std::size_t kPart = 1024;
  const std::vector<std::size_t> sizes{10 * kPart, 10 * kPart, 10 * kPart};
  ReadAhead ahead(
      sizes.size(), [&](std::size_t k) { return sizes[k]; },
      [&](std::size_t k, std::size_t offset, std::span<std::byte> out) {
        if (k == 1 && offset == 7 * kPart) throw std::runtime_error("disk gone");
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern(k, offset + i);
      },
      kPart);
  const auto first = ahead.next();
  ASSERT_EQ(first.size(), sizes[0]);
  EXPECT_EQ(first[123], pattern(0, 123));
  EXPECT_THROW(ahead.next(), std::runtime_error);
}

}  // namespace
}  // namespace zp::detail
