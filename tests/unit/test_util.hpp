// Shared helpers for the unit tests: reproducible random data with the seed in every message.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "zeropoint/tensor.hpp"

namespace zp::testing {

/// A seeded generator whose seed is printed by any failing assertion in its scope.
class Rng {
 public:
  explicit Rng(std::uint32_t seed) : seed_(seed), engine_(seed), trace_(__FILE__, __LINE__, "seed " + std::to_string(seed)) {}
  std::uint32_t seed() const { return seed_; }
  std::mt19937& engine() { return engine_; }

  float normal(float sigma = 1.0f) { return std::normal_distribution<float>(0.0f, sigma)(engine_); }
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(engine_); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(engine_); }

  /// Heavy-tailed values (as LLM weights are): mostly normal, a few large outliers.
  Tensor heavy_tailed(const Shape& shape, float sigma = 1.0f) {
    Tensor t(DType::f32, shape);
    for (float& v : t.span<float>()) {
      v = normal(sigma);
      if (integer(0, 99) == 0) v *= 20.0f;
    }
    return t;
  }

 private:
  std::uint32_t seed_;
  std::mt19937 engine_;
  ::testing::ScopedTrace trace_;
};

inline Tensor tensor_of(const Shape& shape, const std::vector<float>& values) {
  Tensor t(DType::f32, shape);
  auto s = t.span<float>();
  for (std::size_t i = 0; i < values.size() && i < s.size(); ++i) s[i] = values[i];
  return t;
}

}  // namespace zp::testing
