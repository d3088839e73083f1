// The fixture of the SIMD-against-reference tests: each test runs once per instruction set,
// with Highway's dispatch forced to it, and is skipped where this CPU or build lacks it.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "zeropoint/kernels.hpp"

namespace zp::testing {

/// Every target Highway can build for on x86 and ARM, best first.
inline const std::vector<std::string> kAllTargets{"AVX3_DL", "AVX3", "AVX2", "SSE4", "SSSE3",
                                                  "NEON",    "SVE",  "EMU128", "SCALAR"};

/// Derive a suite from it and instantiate with ::testing::ValuesIn(kAllTargets).
class OnEveryTarget : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto available = zp::kernels::available_targets();
    if (std::find(available.begin(), available.end(), GetParam()) == available.end()) {
      GTEST_SKIP() << GetParam() << " is not available on this CPU or not built";
    }
    zp::kernels::force_target(GetParam());
    ASSERT_EQ(zp::kernels::current_target(), GetParam());
  }
  void TearDown() override { zp::kernels::force_target(""); }
};

}  // namespace zp::testing
