#include <gtest/gtest.h>

#include "zeropoint/error.hpp"
#include "zeropoint/scheme.hpp"

namespace zp {
namespace {

TEST(Scheme, DefaultsFollowTheCodeType) {
  const Scheme s8 = Scheme::parse("int8");
  EXPECT_TRUE(s8.is_signed);
  EXPECT_EQ(s8.bits, 8);
  EXPECT_TRUE(s8.symmetric);
  EXPECT_TRUE(s8.narrow);
  EXPECT_EQ(s8.qmin(), -127);
  EXPECT_EQ(s8.qmax(), 127);
  EXPECT_EQ(s8.granularity, Granularity::tensor);
  EXPECT_EQ(s8.rounding, Rounding::half_even);

  const Scheme u8 = Scheme::parse("uint8");
  EXPECT_FALSE(u8.symmetric);
  EXPECT_FALSE(u8.narrow);
  EXPECT_EQ(u8.qmin(), 0);
  EXPECT_EQ(u8.qmax(), 255);

  const Scheme a8 = Scheme::parse("int8:asym");
  EXPECT_FALSE(a8.narrow);
  EXPECT_EQ(a8.qmin(), -128);
}

TEST(Scheme, CodeRangesForEveryWidth) {
  EXPECT_EQ(Scheme::parse("int2").qmin(), -1);
  EXPECT_EQ(Scheme::parse("int2").qmax(), 1);
  EXPECT_EQ(Scheme::parse("int2:full").qmin(), -2);
  EXPECT_EQ(Scheme::parse("uint2").qmax(), 3);
  EXPECT_EQ(Scheme::parse("int4").qmin(), -7);
  EXPECT_EQ(Scheme::parse("uint4").qmax(), 15);
  EXPECT_EQ(Scheme::parse("int16").qmax(), 32767);
  EXPECT_EQ(Scheme::parse("int16:full").qmin(), -32768);
  EXPECT_EQ(Scheme::parse("uint16").qmax(), 65535);
  EXPECT_EQ(Scheme::parse("int8:asym:narrow").qmin(), -127);
  EXPECT_EQ(Scheme::parse("uint8:asym:narrow").qmin(), 1);
}

TEST(Scheme, GranularityOptions) {
  const Scheme c = Scheme::parse("int8:channel=1");
  EXPECT_EQ(c.granularity, Granularity::channel);
  EXPECT_EQ(c.axis, 1);
  EXPECT_EQ(Scheme::parse("int8:channel").axis, 0);
  const Scheme b = Scheme::parse("int4:block=32");
  EXPECT_EQ(b.granularity, Granularity::block);
  EXPECT_EQ(b.block, 32);
  EXPECT_EQ(b.axis, -1);
  EXPECT_EQ(Scheme::parse("int4:block=32:axis=0").axis, 0);
  EXPECT_EQ(Scheme::parse("uint4:block=128:asym").block, 128);
}

TEST(Scheme, OtherOptions) {
  EXPECT_EQ(Scheme::parse("int8:round=away").rounding, Rounding::half_away);
  EXPECT_EQ(Scheme::parse("int8:round=up").rounding, Rounding::half_up);
  const Scheme f = Scheme::parse("uint4:block=32:zp=float");
  EXPECT_EQ(f.zero_point, ZeroPointKind::float_offset);
  EXPECT_FALSE(f.symmetric);
  // zp=float on a signed type implies asym (a fitted offset is asymmetric by nature).
  EXPECT_FALSE(Scheme::parse("int4:zp=float").symmetric);
  const Scheme us = Scheme::parse("uint8:sym");
  EXPECT_TRUE(us.symmetric);
  EXPECT_FALSE(us.narrow);
}

TEST(Scheme, MseOption) {
  EXPECT_FALSE(Scheme::parse("int4:block=32").mse);
  const Scheme s = Scheme::parse("int4:mse:block=32");
  EXPECT_TRUE(s.mse);
  EXPECT_EQ(s.block, 32);
  EXPECT_EQ(s.str(), "int4:block=32:mse");
  EXPECT_NE(s, Scheme::parse("int4:block=32"));
}

TEST(Scheme, CanonicalTextRoundTrips) {
  for (const char* text :
       {"int8", "uint8:asym", "int8:channel=0", "int4:block=32", "uint4:block=128:asym", "int8:full",
        "int8:asym:narrow", "uint8:sym", "int4:block=16:axis=0", "int2:channel=-1:round=away",
        "uint4:block=32:asym:zp=float", "int8:full:recip", "int16:round=up", "uint16:asym", "int3:asym", "int5:channel=2:full",
        "int4:block=32:mse", "int8:channel=0:mse", "uint4:block=32:asym:zp=float:recip:mse"}) {
    const Scheme s = Scheme::parse(text);
    EXPECT_EQ(s.str(), text);
    EXPECT_EQ(Scheme::parse(s.str()), s) << text;
  }
}

TEST(Scheme, EquivalentSpellingsPrintTheSame) {
  EXPECT_EQ(Scheme::parse("uint8").str(), "uint8:asym");
  EXPECT_EQ(Scheme::parse("int8:sym:narrow:round=even:zp=int").str(), "int8");
  EXPECT_EQ(Scheme::parse("int8:asym:full").str(), "int8:asym");
  EXPECT_EQ(Scheme::parse("int4:axis=-1:block=32").str(), "int4:block=32");
}

TEST(Scheme, EveryValidCombinationRoundTrips) {
  int checked = 0;
  for (int bits : {2, 3, 4, 5, 6, 7, 8, 16}) {
    for (bool is_signed : {true, false}) {
      for (bool symmetric : {true, false}) {
        for (bool narrow : {true, false}) {
          for (auto zpk : {ZeroPointKind::integer, ZeroPointKind::float_offset}) {
            for (auto r : {Rounding::half_even, Rounding::half_away, Rounding::half_up}) {
             for (bool recip : {false, true}) {
             for (bool mse : {false, true}) {
              for (int g = 0; g < 3; ++g) {
                Scheme s;
                s.bits = bits;
                s.is_signed = is_signed;
                s.symmetric = symmetric;
                s.narrow = narrow;
                s.zero_point = zpk;
                s.rounding = r;
                s.reciprocal = recip;
                s.mse = mse;
                s.granularity = static_cast<Granularity>(g);
                s.axis = g == 0 ? 0 : (g == 1 ? 1 : -1);
                s.block = g == 2 ? 64 : 0;
                try {
                  s.validate();
                } catch (const Error&) {
                  continue;
                }
                EXPECT_EQ(Scheme::parse(s.str()), s) << s.str();
                ++checked;
              }
             }
             }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 2000);
}

void expect_parse_error(const char* text, const char* fragment) {
  try {
    Scheme::parse(text);
    ADD_FAILURE() << "'" << text << "' parsed";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected TYPE"), std::string::npos) << msg;  // every error shows the grammar
  }
}

TEST(Scheme, BadStringsSayWhatWasExpected) {
  expect_parse_error("", "unknown type");
  expect_parse_error("float8", "unknown type");
  expect_parse_error("int", "needs an integer");
  expect_parse_error("int1", "1 bits is not supported");
  expect_parse_error("int9", "9 bits is not supported");
  expect_parse_error("int32", "32 bits is not supported");
  expect_parse_error("uint0", "0 bits");
  expect_parse_error("int8:block=1", "block size must be at least 2");
  expect_parse_error("int8:block=0", "block size must be at least 2");
  expect_parse_error("int8:block", "needs a size");
  expect_parse_error("int8:block=x", "needs an integer");
  expect_parse_error("int8:channel=a", "needs an integer");
  expect_parse_error("int8:channel=0:block=32", "more than one granularity");
  expect_parse_error("int8:axis=1", "axis= needs channel or block");
  expect_parse_error("int8:sym:asym", "given twice");
  expect_parse_error("int8:narrow:full", "given twice");
  expect_parse_error("int8:round=down", "round must be even, away or up");
  expect_parse_error("int8:zp=half", "zp must be int or float");
  expect_parse_error("int8:fast", "unknown option 'fast'");
  expect_parse_error("int8:sym=1", "takes no value");
  expect_parse_error("uint8:sym:narrow", "symmetric unsigned");
  expect_parse_error("int8:sym:zp=float", "needs asym");
  expect_parse_error("int8::asym", "unknown option ''");
  expect_parse_error("int8:mse=1", "takes no value");
}

TEST(Scheme, AxisResolution) {
  const Scheme s = Scheme::parse("int8:channel=-1");
  EXPECT_EQ(s.resolve_axis(3), 2);
  EXPECT_EQ(Scheme::parse("int8:channel=1").resolve_axis(2), 1);
  EXPECT_THROW(Scheme::parse("int8:channel=2").resolve_axis(2), Error);
  EXPECT_THROW(Scheme::parse("int8:channel=-3").resolve_axis(2), Error);
  EXPECT_THROW(Scheme::parse("int8:channel=0").resolve_axis(0), Error);
}

}  // namespace
}  // namespace zp
