// Helpers shared by the format tests: deterministic tensors and byte-exact comparison.
#pragma once

#include <cstring>

#include <gtest/gtest.h>

#include "zeropoint/tensor.hpp"

namespace zp::testing {

/// A tensor whose bytes follow a fixed pattern (shifted by `seed`), so any misplaced byte shows.
inline Tensor patterned(DType dtype, const Shape& shape, int seed = 0) {
  Tensor t(dtype, shape);
  auto bytes = t.bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::byte>((i * 37 + 11 + static_cast<std::size_t>(seed)) & 0xFF);
  }
  return t;
}

/// Same dtype, shape and bytes.
inline void expect_same(const Tensor& actual, const Tensor& expected) {
  EXPECT_EQ(actual.dtype(), expected.dtype());
  EXPECT_EQ(actual.shape(), expected.shape());
  ASSERT_EQ(actual.nbytes(), expected.nbytes());
  EXPECT_EQ(std::memcmp(actual.data(), expected.data(), actual.nbytes()), 0);
}

}  // namespace zp::testing
