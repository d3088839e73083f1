// The GGUF plan: llama-quantize's choices of which tensor gets which ggml type.
#include <gtest/gtest.h>

#include "zeropoint/error.hpp"
#include "zeropoint/ggml_model.hpp"

namespace zp {
namespace {

using ggml::Type;
using Dims = std::vector<std::uint64_t>;

GgmlPlan plan_for(Type type, std::vector<GgmlRule> rules = {}) {
  GgmlPlanOptions o;
  o.type = type;
  o.rules = std::move(rules);
  return GgmlPlan(o);
}

TEST(GgmlPlan, WeightMatricesGetTheTypeAndTheRestStays) {
  const GgmlPlan plan = plan_for(Type::q4_0);
  const GgmlDecision q = plan.decide("blk.0.attn_q.weight", Type::f32, {4096, 4096}, true);
  EXPECT_TRUE(q.convert);
  EXPECT_EQ(q.type, Type::q4_0);
  const GgmlDecision norm = plan.decide("blk.0.attn_norm.weight", Type::f32, {4096}, true);
  EXPECT_FALSE(norm.convert);
  EXPECT_EQ(norm.type, Type::f32);
  EXPECT_EQ(norm.reason, "1-D (norm or bias)");
  // 2-D yet never quantized by llama-quantize.
  EXPECT_FALSE(plan.decide("blk.0.ffn_gate_inp.weight", Type::f32, {4096, 8}, true).convert);
  EXPECT_FALSE(plan.decide("position_embd.weight", Type::f32, {768, 512}, true).convert);
  EXPECT_FALSE(plan.decide("blk.3.ssm_conv1d.weight", Type::f32, {4, 1536}, true).convert);
  EXPECT_FALSE(plan.decide("blk.0.attn_q.bias", Type::f32, {64, 64}, true).convert);
}

TEST(GgmlPlan, OutputTensorGetsQ6KUnlessTheTypeIsQ8_0OrPure) {
  EXPECT_EQ(plan_for(Type::q4_0).decide("output.weight", Type::f16, {4096, 32000}, true).type, Type::q6_K);
  EXPECT_EQ(plan_for(Type::q8_0).decide("output.weight", Type::f16, {4096, 32000}, true).type, Type::q8_0);
  // Tied embeddings: token_embd plays the output's part when there is no output.weight.
  EXPECT_EQ(plan_for(Type::q4_K).decide("token_embd.weight", Type::f16, {4096, 32000}, false).type, Type::q6_K);
  EXPECT_EQ(plan_for(Type::q4_K).decide("token_embd.weight", Type::f16, {4096, 32000}, true).type, Type::q4_K);
  // Rows that do not fill q6_K's 256-value blocks.
  EXPECT_EQ(plan_for(Type::q4_0).decide("output.weight", Type::f32, {4000, 10}, true).type, Type::q8_0);
  GgmlPlanOptions pure;
  pure.type = Type::q4_0;
  pure.pure = true;
  EXPECT_EQ(GgmlPlan(pure).decide("output.weight", Type::f32, {4096, 10}, true).type, Type::q4_0);
  GgmlPlanOptions chosen;
  chosen.type = Type::q4_0;
  chosen.output_type = Type::f16;
  chosen.token_embedding_type = Type::q8_0;
  EXPECT_EQ(GgmlPlan(chosen).decide("output.weight", Type::f32, {4096, 10}, true).type, Type::f16);
  EXPECT_EQ(GgmlPlan(chosen).decide("token_embd.weight", Type::f32, {4096, 10}, true).type, Type::q8_0);
}

TEST(GgmlPlan, RowsThatDoNotFillBlocksFallBackAsLlamaQuantize) {
  const Dims odd{4096 + 32, 8};  // a multiple of 32, not of 256
  EXPECT_EQ(plan_for(Type::q4_K).decide("w.weight", Type::f32, odd, true).type, Type::q5_0);
  EXPECT_EQ(plan_for(Type::q5_K).decide("w.weight", Type::f32, odd, true).type, Type::q5_1);
  EXPECT_EQ(plan_for(Type::q6_K).decide("w.weight", Type::f32, odd, true).type, Type::q8_0);
  EXPECT_EQ(plan_for(Type::q3_K).decide("w.weight", Type::f32, odd, true).type, Type::q4_0);
  const GgmlDecision d = plan_for(Type::q4_K).decide("w.weight", Type::f32, {100, 8}, true);
  EXPECT_EQ(d.type, Type::f16);  // neither 256 nor 32 divides 100
  EXPECT_NE(d.reason.find("rows of 100 do not fill q4_K's 256-value blocks, so q5_0"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("q5_0's 32-value blocks, so f16"), std::string::npos) << d.reason;
}

TEST(GgmlPlan, RulesComeFirstAndTheFirstMatchWins) {
  const GgmlPlan plan = plan_for(Type::q4_0, {GgmlRule::parse("ffn_down=q8_0"), GgmlRule::keep("attn_v"),
                                              GgmlRule::parse("blk\\.0\\.=q5_1")});
  EXPECT_EQ(plan.decide("blk.0.ffn_down.weight", Type::f32, {256, 256}, true).type, Type::q8_0);
  EXPECT_FALSE(plan.decide("blk.0.attn_v.weight", Type::f32, {256, 256}, true).convert);
  EXPECT_EQ(plan.decide("blk.0.attn_q.weight", Type::f32, {256, 256}, true).type, Type::q5_1);
  EXPECT_EQ(plan.decide("blk.1.attn_q.weight", Type::f32, {256, 256}, true).type, Type::q4_0);
  // A rule may quantize what the default keeps.
  EXPECT_EQ(plan_for(Type::q4_0, {GgmlRule::parse("norm=f16")}).decide("attn_norm.weight", Type::f32, {256}, true).type,
            Type::f16);
}

TEST(GgmlPlan, TheSameTypeIsACopy) {
  const GgmlDecision d = plan_for(Type::f16).decide("blk.0.attn_q.weight", Type::f16, {64, 64}, true);
  EXPECT_FALSE(d.convert);
  EXPECT_EQ(d.type, Type::f16);
}

TEST(GgmlPlan, RefusesWhatItCannotDo) {
  EXPECT_THROW(GgmlRule::parse("nothing"), Error);
  EXPECT_THROW(GgmlRule::parse("x=q9_0"), Error);
  EXPECT_THROW(plan_for(Type::iq2_xxs), Error);  // a type zeropoint does not write
  EXPECT_THROW(plan_for(Type::q4_0, {GgmlRule::parse("(=q8_0")}), Error);
  try {
    plan_for(Type::q4_0).decide("blk.0.attn_q.weight", Type::q8_0, {64, 64}, true);
    FAIL() << "requantized without --allow-requantize";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'blk.0.attn_q.weight' is already q8_0"), std::string::npos) << e.what();
  }
  GgmlPlanOptions o;
  o.type = Type::q4_0;
  o.allow_requantize = true;
  EXPECT_TRUE(GgmlPlan(o).decide("blk.0.attn_q.weight", Type::q8_0, {64, 64}, true).convert);
}

}  // namespace
}  // namespace zp
