// The ggml type table: ids, sizes and names as ggml defines them.
#include <limits>

#include <gtest/gtest.h>

#include "zeropoint/ggml.hpp"

namespace zp::ggml {
namespace {

TEST(GgmlTypes, SizesAreGgmls) {
  // ggml_blck_size / ggml_type_size as ggml reports them (printed by a program linked to ggml).
  struct Expected {
    std::uint32_t id, block, bytes;
  };
  for (const Expected& e : {Expected{0, 1, 4}, {1, 1, 2}, {2, 32, 18}, {3, 32, 20}, {6, 32, 22}, {7, 32, 24},
                            {8, 32, 34}, {10, 256, 84}, {11, 256, 110}, {12, 256, 144}, {13, 256, 176},
                            {14, 256, 210}, {15, 256, 292}, {30, 1, 2}, {39, 32, 17}, {40, 64, 36}}) {
    const TypeTraits* t = find_traits(e.id);
    ASSERT_NE(t, nullptr) << e.id;
    EXPECT_EQ(t->block_size, e.block) << t->name;
    EXPECT_EQ(t->block_bytes, e.bytes) << t->name;
  }
}

TEST(GgmlTypes, RetiredAndUnknownIdsAreNotTypes) {
  for (std::uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u, 1000u, 0xffffffffu}) {
    EXPECT_EQ(find_traits(id), nullptr) << id;
  }
}

TEST(GgmlTypes, NamesRoundTripIgnoringCase) {
  for (const TypeTraits& t : all_types()) {
    EXPECT_EQ(type_from_name(t.name), t.type);
    EXPECT_EQ(&traits(t.type), &t);
  }
  EXPECT_EQ(type_from_name("Q4_K"), Type::q4_K);
  EXPECT_EQ(type_from_name("BF16"), Type::bf16);
  EXPECT_FALSE(type_from_name("q4").has_value());
}

TEST(GgmlTypes, RowBytes) {
  EXPECT_EQ(row_bytes(Type::q4_0, 4096), 4096u / 32 * 18);
  EXPECT_EQ(row_bytes(Type::q6_K, 512), 2u * 210);
  EXPECT_EQ(row_bytes(Type::f16, 3), 6u);
  EXPECT_FALSE(row_bytes(Type::q4_K, 4096 + 32).has_value());  // not whole blocks
  EXPECT_FALSE(row_bytes(Type::f64, std::numeric_limits<std::uint64_t>::max()).has_value());  // overflow
}

}  // namespace
}  // namespace zp::ggml
