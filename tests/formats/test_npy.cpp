// .npy reading and writing: round trips, numpy's own files (tests/data/npy, made by
// tests/data/make_npy_golden.py), and one crafted corrupt file per way a file can lie.
#include <gtest/gtest.h>

#include "formats/file_test_util.hpp"
#include "formats/tensor_test_util.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "core/file_io.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"

namespace {

namespace fs = std::filesystem;
using zp::DType;
using zp::Shape;
using zp::Tensor;
using zp::TensorView;
using zp::testing::expect_same;
using zp::testing::patterned;

const fs::path kGolden = fs::path(ZP_TEST_DATA_DIR) / "npy";

std::vector<std::byte> bytes_of(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

std::string string_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::vector<std::byte> golden_bytes(const std::string& name) { return zp::detail::read_file(kGolden / name); }

// A .npy file whose header dict is `dict` (padded as numpy pads it), followed by `data`.
std::vector<std::byte> craft(std::string_view dict, std::string_view data = {}, int major = 1) {
  const std::size_t length_size = major == 1 ? 2 : 4;
  std::string header(dict);
  const std::size_t unpadded = 8 + length_size + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string file = "\x93NUMPY";
  file += static_cast<char>(major);
  file += '\0';
  for (std::size_t k = 0; k < length_size; ++k) file += static_cast<char>((header.size() >> (8 * k)) & 0xFF);
  return bytes_of(file + header + std::string(data));
}

std::vector<std::byte> craft_f32(std::string_view shape, std::string_view data) {
  return craft(fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}", shape), data);
}

// Expects parsing `bytes` to fail with one line that names the file and contains every fragment.
void expect_refused(std::span<const std::byte> bytes, const std::vector<std::string_view>& fragments) {
  try {
    (void)zp::npy::parse(bytes, "bad.npy");
    ADD_FAILURE() << "parsed without an error";
  } catch (const zp::Error& e) {
    const std::string message = e.what();
    EXPECT_TRUE(message.starts_with("bad.npy: ")) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (auto fragment : fragments) EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

std::vector<DType> writable_dtypes() {
  std::vector<DType> out;
  for (int d = 0; d <= static_cast<int>(DType::i64); ++d) {
    if (static_cast<DType>(d) != DType::bf16) out.push_back(static_cast<DType>(d));
  }
  return out;
}

// The values make_npy_golden.py stores at flat index i of n.
template <class T>
T golden_value(std::int64_t i, std::int64_t n) {
  const std::int64_t base = (7 * i) % 23;
  if constexpr (std::is_integral_v<T>) {
    if (n >= 2 && i == 0) return std::numeric_limits<T>::min();
    if (n >= 2 && i == n - 1) return std::numeric_limits<T>::max();
    return static_cast<T>(std::is_signed_v<T> ? base - 11 : base);
  } else {
    return static_cast<T>(static_cast<double>(base - 11) / 2 + 0.125);
  }
}

template <class T>
void expect_golden_values(const Tensor& t) {
  const auto values = t.span<const T>();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    EXPECT_EQ(values[static_cast<std::size_t>(i)], golden_value<T>(i, t.numel())) << "at " << i;
  }
}

void expect_golden_values(const Tensor& t) {
  switch (t.dtype()) {
    case DType::f32: return expect_golden_values<float>(t);
    case DType::f64: return expect_golden_values<double>(t);
    case DType::f16: {
      const Tensor f = zp::to_f32(t);
      for (std::int64_t i = 0; i < t.numel(); ++i) {
        EXPECT_EQ(f.span<const float>()[static_cast<std::size_t>(i)], golden_value<float>(i, t.numel()));
      }
      return;
    }
    case DType::i8: return expect_golden_values<std::int8_t>(t);
    case DType::u8: return expect_golden_values<std::uint8_t>(t);
    case DType::i16: return expect_golden_values<std::int16_t>(t);
    case DType::u16: return expect_golden_values<std::uint16_t>(t);
    case DType::i32: return expect_golden_values<std::int32_t>(t);
    case DType::u32: return expect_golden_values<std::uint32_t>(t);
    case DType::i64: return expect_golden_values<std::int64_t>(t);
    case DType::bf16: FAIL() << "no bf16 golden file";
  }
}

using zp::testing::TempDir;

// ---------------------------------------------------------------------------------------------
TEST(NpyRoundTrip, EveryWritableDTypeAndShape) {
  for (DType dtype : writable_dtypes()) {
    for (const Shape& shape : {Shape{}, Shape{0}, Shape{5}, Shape{2, 3, 4}, Shape{3, 0, 2}}) {
      SCOPED_TRACE(fmt::format("{} {}", zp::dtype_name(dtype), zp::shape_str(shape)));
      const Tensor t = patterned(dtype, shape);
      const std::vector<std::byte> file = zp::npy::serialize(t);
      EXPECT_EQ((file.size() - t.nbytes()) % 64, 0u) << "the data must start 64-byte aligned";
      expect_same(zp::npy::parse(file, "t.npy"), t);
      const zp::npy::Info info = zp::npy::parse_info(file, "t.npy");
      EXPECT_FALSE(info.is_text);
      EXPECT_EQ(info.dtype, dtype);
      EXPECT_EQ(info.shape, shape);
    }
  }
}

TEST(NpyRoundTrip, StridedViewsAreWrittenInCOrder) {
  const Tensor base = patterned(DType::i16, {4, 6});
  const auto* data = base.data();
  struct Case {
    const char* name;
    TensorView view;
  };
  const Case cases[] = {
      {"every other column", TensorView(data, DType::i16, {4, 3}, {6, 2})},
      {"transposed", TensorView(data, DType::i16, {6, 4}, {1, 6})},
      {"rows 1..2", TensorView(static_cast<const std::int16_t*>(data) + 6, DType::i16, {2, 6}, {6, 1})},
      {"3-d permuted", TensorView(data, DType::i16, {3, 2, 4}, {2, 1, 6})},
      {"broadcast row", TensorView(data, DType::i16, {3, 6}, {0, 1})},
      {"empty strided", TensorView(data, DType::i16, {0, 3}, {6, 2})},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Tensor expected = Tensor::copy_of(c.view);
    const std::vector<std::byte> file = zp::npy::serialize(c.view);
    expect_same(zp::npy::parse(file, "t.npy"), expected);
    // The same bytes a contiguous copy gives: the header does not depend on the strides.
    EXPECT_EQ(file, zp::npy::serialize(expected));
  }
}

TEST(NpyRoundTrip, WriteAndReadFile) {
  TempDir dir;
  const fs::path path = dir.path() / "w.npy";
  const Tensor t = patterned(DType::f32, {3, 5});
  zp::npy::write(path, t);
  expect_same(zp::npy::read(path), t);
  EXPECT_EQ(zp::npy::read_info(path).shape, (Shape{3, 5}));
  EXPECT_EQ(dir.files().size(), 1u) << "no temporary file left behind";
  // Overwriting replaces the whole file.
  const Tensor smaller = patterned(DType::u8, {2});
  zp::npy::write(path, smaller);
  expect_same(zp::npy::read(path), smaller);
}

TEST(NpyRoundTrip, ReadingIntoATensorOfTheSameShapeReusesItsMemory) {
  TempDir dir;
  const fs::path first = dir.path() / "1.npy", second = dir.path() / "2.npy", other = dir.path() / "3.npy";
  const Tensor a = patterned(DType::f32, {3, 5});
  Tensor b = patterned(DType::f32, {3, 5});
  for (float& v : b.span<float>()) v = -v - 1.0f;
  zp::npy::write(first, a);
  zp::npy::write(second, b);
  zp::npy::write(other, patterned(DType::i16, {3, 5}));

  Tensor t = zp::npy::read(first);
  const void* memory = t.data();
  t = zp::npy::read(second, std::move(t));
  EXPECT_EQ(t.data(), memory);
  expect_same(t, b);
  // Another dtype (or shape) cannot use it: a tensor of the file's own.
  t = zp::npy::read(other, std::move(t));
  expect_same(t, patterned(DType::i16, {3, 5}));
  t = zp::npy::read(first, zp::Tensor(DType::f32, {5, 3}));
  expect_same(t, a);
}

TEST(NpyWrite, HeaderIsWhatNumpyWrites) {
  const Tensor t(DType::f32, {2, 3});
  const std::string file = string_of(zp::npy::serialize(t));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ASSERT_EQ(file.size(), 128u + 24u);
  EXPECT_EQ(file.substr(0, 10), std::string("\x93NUMPY\x01\x00\x76\x00", 10));
  EXPECT_EQ(file.substr(10, dict.size()), dict);
  EXPECT_EQ(file.substr(10 + dict.size(), 128 - 11 - dict.size()), std::string(128 - 11 - dict.size(), ' '));
  EXPECT_EQ(file[127], '\n');
}

TEST(NpyWrite, RefusesBf16AndLeavesTheOldFile) {
  const Tensor t(DType::bf16, {2});
  try {
    (void)zp::npy::serialize(t);
    ADD_FAILURE() << "bf16 was written";
  } catch (const zp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("numpy has no such type"), std::string::npos) << e.what();
  }
  TempDir dir;
  const fs::path path = dir.path() / "keep.npy";
  const Tensor old = patterned(DType::i32, {4});
  zp::npy::write(path, old);
  try {
    zp::npy::write(path, t);
    ADD_FAILURE() << "bf16 was written";
  } catch (const zp::Error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(path.string() + ": ")) << e.what();
  }
  expect_same(zp::npy::read(path), old);
  EXPECT_EQ(dir.files().size(), 1u);
}

TEST(NpyWrite, RefusesMoreThan64Dimensions) {
  const float one = 1.0f;
  EXPECT_NO_THROW((void)zp::npy::serialize(TensorView(&one, DType::f32, Shape(64, 1))));
  EXPECT_THROW((void)zp::npy::serialize(TensorView(&one, DType::f32, Shape(65, 1))), zp::Error);
}

TEST(NpyWrite, MissingFolderIsAnError) {
  TempDir dir;
  EXPECT_THROW(zp::npy::write(dir.path() / "no" / "such.npy", Tensor(DType::f32, {1})), zp::Error);
}

// ---------------------------------------------------------------------------------------------
struct GoldenCase {
  const char* file;
  DType dtype;
  Shape shape;
};

void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.file; }

class NpyGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(NpyGolden, ReadsNumpysFileAndWritesTheSameBytes) {
  const GoldenCase& c = GetParam();
  const std::vector<std::byte> file = golden_bytes(c.file);
  const Tensor t = zp::npy::parse(file, c.file);
  EXPECT_EQ(t.dtype(), c.dtype);
  EXPECT_EQ(t.shape(), c.shape);
  expect_golden_values(t);
  expect_same(zp::npy::read(kGolden / c.file), t);
  EXPECT_EQ(zp::npy::serialize(t), file) << "differs from what numpy.save wrote";
}

INSTANTIATE_TEST_SUITE_P(
    Npy, NpyGolden,
    ::testing::Values(GoldenCase{"f32_2x3.npy", DType::f32, {2, 3}}, GoldenCase{"f64_5.npy", DType::f64, {5}},
                      GoldenCase{"f16_scalar.npy", DType::f16, {}},
                      GoldenCase{"i8_empty.npy", DType::i8, {0}}, GoldenCase{"u8_2x3.npy", DType::u8, {2, 3}},
                      GoldenCase{"i16_5.npy", DType::i16, {5}},
                      GoldenCase{"u16_2x3x4.npy", DType::u16, {2, 3, 4}},
                      GoldenCase{"i32_2x3.npy", DType::i32, {2, 3}}, GoldenCase{"u32_5.npy", DType::u32, {5}},
                      GoldenCase{"i64_2x3x4.npy", DType::i64, {2, 3, 4}},
                      GoldenCase{"f32_3x0x2.npy", DType::f32, {3, 0, 2}}),
    [](const auto& info) {
      std::string name = info.param.file;
      return name.substr(0, name.find('.'));
    });

TEST(NpyGoldenFiles, SpecialFloatsKeepTheirBits) {
  const std::vector<std::byte> file = golden_bytes("f32_special.npy");
  const Tensor t = zp::npy::parse(file, "f32_special.npy");
  const auto v = t.span<const float>();
  ASSERT_EQ(v.size(), 8u);
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_FALSE(std::signbit(v[0]));
  EXPECT_TRUE(std::signbit(v[1]));
  EXPECT_EQ(v[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[3], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[4]));
  EXPECT_EQ(v[5], std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(v[6], std::numeric_limits<float>::max());
  EXPECT_EQ(zp::npy::serialize(t), file);
}

TEST(NpyGoldenFiles, ReadsVersions2And3) {
  for (const char* name : {"v2_f32_2x3.npy", "v3_f32_2x3.npy"}) {
    SCOPED_TRACE(name);
    const Tensor t = zp::npy::read(kGolden / name);
    EXPECT_EQ(t.shape(), (Shape{2, 3}));
    expect_golden_values(t);
    // Written back as version 1.0, like numpy does for the same array.
    EXPECT_EQ(zp::npy::serialize(t), golden_bytes("f32_2x3.npy"));
  }
}

TEST(NpyGoldenFiles, RefusesWhatItCannotRepresent) {
  const std::pair<const char*, std::vector<std::string_view>> cases[] = {
      {"refused_big_endian.npy", {"'>f4'", "big-endian"}},
      {"refused_fortran.npy", {"Fortran-order arrays are not supported; save with np.ascontiguousarray"}},
      {"refused_bool.npy", {"'|b1' is not supported", "'<f4'", "'|u1'"}},
      {"refused_u64.npy", {"'<u8' is not supported"}},
      {"refused_structured.npy", {"structured dtype"}},
      {"refused_object.npy", {"Python objects"}},
      {"refused_text_1d.npy", {"'<U2'", "shape [2]", "only a 0-d string"}},
  };
  for (const auto& [name, fragments] : cases) {
    SCOPED_TRACE(name);
    expect_refused(golden_bytes(name), fragments);
    try {
      (void)zp::npy::read(kGolden / name);
      ADD_FAILURE() << "read without an error";
    } catch (const zp::Error& e) {
      EXPECT_TRUE(std::string(e.what()).starts_with((kGolden / name).string() + ": ")) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
constexpr std::string_view kText = "h\u00e9llo w\u00f6rld \u2713 \U0001d11e";

TEST(NpyText, ReadsAndWritesWhatNumpyWrites) {
  const std::vector<std::byte> file = golden_bytes("text.npy");
  EXPECT_EQ(zp::npy::parse_text(file, "text.npy"), kText);
  EXPECT_EQ(zp::npy::serialize_text(kText), file);
  EXPECT_TRUE(zp::npy::parse_info(file, "text.npy").is_text);

  const std::vector<std::byte> empty = golden_bytes("text_empty.npy");
  EXPECT_EQ(zp::npy::parse_text(empty, "text_empty.npy"), "");
  EXPECT_EQ(zp::npy::serialize_text(""), empty);
}

TEST(NpyText, KeepsInnerNulsAndDropsPadding) {
  const std::string inner("a\0b", 3);
  EXPECT_EQ(zp::npy::parse_text(zp::npy::serialize_text(inner), "t.npy"), inner);
  // A '<U4' holding "ab" is padded with two NULs, which numpy drops.
  const auto padded = craft("{'descr': '<U4', 'fortran_order': False, 'shape': (), }",
                            std::string("a\0\0\0b\0\0\0\0\0\0\0\0\0\0\0", 16));
  EXPECT_EQ(zp::npy::parse_text(padded, "t.npy"), "ab");
  // A '<U0' (numpy's dtype('U0')) has no characters and no data bytes.
  EXPECT_EQ(zp::npy::parse_text(craft("{'descr': '<U0', 'fortran_order': False, 'shape': (), }", ""), "t.npy"), "");
}

TEST(NpyText, RefusesWhatNumpyWouldNotRoundTrip) {
  EXPECT_THROW((void)zp::npy::serialize_text("\xff"), zp::Error);
  EXPECT_THROW((void)zp::npy::serialize_text("\xc0\x80"), zp::Error);          // overlong NUL
  EXPECT_THROW((void)zp::npy::serialize_text("\xed\xa0\x80"), zp::Error);      // surrogate
  EXPECT_THROW((void)zp::npy::serialize_text("\xf4\x90\x80\x80"), zp::Error);  // past U+10FFFF
  EXPECT_THROW((void)zp::npy::serialize_text("abc\xe2\x9c"), zp::Error);       // cut short
  EXPECT_THROW((void)zp::npy::serialize_text(std::string("end\0", 4)), zp::Error);
}

TEST(NpyText, RefusesInvalidCodePoints) {
  const std::string_view dict = "{'descr': '<U1', 'fortran_order': False, 'shape': (), }";
  for (const auto& [data, fragment] :
       {std::pair{std::string("\x00\x00\x11\x00", 4), "invalid code point 0x110000"},
        std::pair{std::string("\x00\xd8\x00\x00", 4), "invalid code point 0xD800"}}) {
    try {
      (void)zp::npy::parse_text(craft(dict, data), "bad.npy");
      ADD_FAILURE() << "parsed without an error";
    } catch (const zp::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
}

TEST(NpyText, TextAndArraysAreNotMixedUp) {
  try {
    (void)zp::npy::parse(golden_bytes("text.npy"), "text.npy");
    ADD_FAILURE();
  } catch (const zp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds text"), std::string::npos) << e.what();
  }
  try {
    (void)zp::npy::parse_text(golden_bytes("f32_2x3.npy"), "f32_2x3.npy");
    ADD_FAILURE();
  } catch (const zp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("f32 array of shape [2, 3], not text"), std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// One crafted file per way a .npy file can be broken. None may crash or allocate what it claims.

const std::string kF32x6(24, '\0');

TEST(NpyHostile, EmptyFile) { expect_refused({}, {"empty file"}); }

TEST(NpyHostile, WrongMagic) {
  expect_refused(bytes_of("PK\x03\x04 this is a zip"), {"not a .npy file"});
  expect_refused(bytes_of("\x93NUMPZ\x01\x00"), {"not a .npy file"});
}

TEST(NpyHostile, TruncatedMagic) { expect_refused(bytes_of("\x93NUM"), {"truncated"}); }

TEST(NpyHostile, TruncatedVersion) { expect_refused(bytes_of("\x93NUMPY\x01"), {"truncated", "7 bytes"}); }

TEST(NpyHostile, UnsupportedVersion) {
  auto file = zp::npy::serialize(Tensor(DType::f32, {1}));
  file[6] = std::byte{4};
  expect_refused(file, {"version 4.0 is not supported", "1.0, 2.0 and 3.0"});
  file[6] = std::byte{1};
  file[7] = std::byte{1};
  expect_refused(file, {"version 1.1"});
}

TEST(NpyHostile, TruncatedHeaderLength) {
  expect_refused(bytes_of(std::string("\x93NUMPY\x01\x00\x76", 9)), {"truncated", "header length"});
  expect_refused(bytes_of(std::string("\x93NUMPY\x02\x00\x76\x00\x00", 11)), {"truncated", "header length"});
}

TEST(NpyHostile, HeaderLongerThanFile) {
  auto file = craft_f32("(2, 3)", kF32x6);
  file.resize(100);
  expect_refused(file, {"header claims 118 bytes but only 90 follow"});
  // A version 2.0 length of 4 GiB, in a file of a few bytes: refused before any allocation.
  expect_refused(bytes_of(std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14)),
                 {"header claims 4294967295 bytes"});
}

TEST(NpyHostile, HeaderNotADict) {
  expect_refused(craft("hello"), {"malformed .npy header", "does not start with '{'"});
  expect_refused(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"), {"malformed"});
  expect_refused(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x", kF32x6),
                 {"unexpected text after the header dict"});
  expect_refused(craft("{descr: '<f4'}"), {"expected a quoted key"});
  expect_refused(craft("{'descr' '<f4'}"), {"expected ':'"});
  expect_refused(craft("{'descr': '<f4' 'shape': ()}"), {"expected ',' or '}'"});
  expect_refused(craft("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (), }"), {"escape"});
  expect_refused(craft("{'descr': '<f4, 'fortran_order': False, 'shape': (), }"), {"malformed"});
  expect_refused(
      craft(std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (), }\0", 57), "\0\0\0\0"),
      {"unexpected text"});
  expect_refused(craft("{'descr': '<f4', 'fortran_order': 0, 'shape': (), }"), {"not True or False"});
  expect_refused(craft("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (), }"), {"not True or False"});
  expect_refused(craft("{'descr': 4, 'fortran_order': False, 'shape': (), }"), {"'descr' is not a string"});
}

TEST(NpyHostile, MissingKey) {
  expect_refused(craft("{'fortran_order': False, 'shape': (2, 3), }", kF32x6), {"no 'descr' key"});
  expect_refused(craft("{'descr': '<f4', 'shape': (2, 3), }", kF32x6), {"no 'fortran_order' key"});
  expect_refused(craft("{'descr': '<f4', 'fortran_order': False, }", kF32x6), {"no 'shape' key"});
  expect_refused(craft("{}"), {"no 'descr' key"});
}

TEST(NpyHostile, UnexpectedOrRepeatedKey) {
  expect_refused(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1, }", "\0\0\0\0"),
                 {"unexpected key 'x'"});
  expect_refused(craft("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (), }", "\0\0\0\0"),
                 {"key 'descr' twice"});
}

TEST(NpyHostile, ShapeNotATupleOfIntegers) {
  expect_refused(craft_f32("(6)", kF32x6), {"not a tuple"});
  expect_refused(craft_f32("[2, 3]", kF32x6), {"'shape' is not a tuple"});
  expect_refused(craft_f32("6", kF32x6), {"'shape' is not a tuple"});
  expect_refused(craft_f32("(2, 3", kF32x6), {"malformed"});
  expect_refused(craft_f32("(2,, 3)", kF32x6), {"not an integer"});
  expect_refused(craft_f32("(, )", kF32x6), {"not an integer"});
  for (const char* dim : {"2.0", "3L", "1e3", "0x10", "1_0", "two", "+2"}) {
    SCOPED_TRACE(dim);
    expect_refused(craft_f32(fmt::format("({},)", dim), kF32x6), {"is not an integer"});
  }
  expect_refused(craft_f32("(06,)", kF32x6), {"leading zero"});
}

TEST(NpyHostile, NegativeDimension) {
  expect_refused(craft_f32("(2, -3)", kF32x6), {"negative dimension (-3)"});
}

TEST(NpyHostile, DimensionTooLarge) {
  expect_refused(craft_f32("(99999999999999999999,)", ""),
                 {"99999999999999999999", "does not fit in 64 bits"});
}

TEST(NpyHostile, DimensionProductOverflows) {
  expect_refused(craft_f32("(4294967296, 4294967296)", ""), {"more elements than fit in 64 bits"});
}

TEST(NpyHostile, DataSizeOverflows) {
  expect_refused(craft("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }"),
                 {"more bytes than fit in 64 bits"});
}

TEST(NpyHostile, EmptyShapeWithHugeDimensions) {
  // No elements, but numpy still refuses it, and the dimensions' product would overflow any
  // stride computed from the shape (found by npy_fuzz).
  expect_refused(craft_f32("(0, 4294967296, 4294967296)", ""), {"than fit in 64 bits"});
  expect_refused(craft_f32("(2, 3, 0, 2305843009213693952)", ""), {"than fit in 64 bits"});
  EXPECT_EQ(zp::npy::parse(craft_f32("(0, 1000000, 1000000)", ""), "t").numel(), 0);
}

TEST(NpyHostile, HugeShapeWithoutDataIsNotAllocated) {
  // 4 TB claimed, 0 bytes present: refused from the file size alone.
  expect_refused(
      craft_f32("(1000000000000,)", ""),
      {"truncated", "f32 array of shape [1000000000000] needs 4000000000000 bytes of data, the file has 0"});
}

TEST(NpyHostile, TooManyDimensions) {
  std::string shape = "(";
  for (int i = 0; i < 65; ++i) shape += "1, ";
  expect_refused(craft_f32(shape + ")", "\0\0\0\0"), {"more than 64 dimensions"});
}

TEST(NpyHostile, DataShorterThanShape) {
  expect_refused(craft_f32("(2, 3)", std::string(20, '\0')), {"needs 24 bytes of data, the file has 20"});
}

TEST(NpyHostile, DataLongerThanShape) {
  expect_refused(craft_f32("(2, 3)", std::string(25, '\0')),
                 {"1 bytes of unexpected data after the 24 bytes"});
}

TEST(NpyHostile, UnsupportedDtypes) {
  const auto with_descr = [](std::string_view descr) {
    return craft(fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': (2,), }}", descr),
                 "\0\0\0\0\0\0\0\0");
  };
  expect_refused(with_descr(">i2"), {"'>i2' is big-endian"});
  expect_refused(with_descr(">U1"), {"big-endian"});
  expect_refused(with_descr("<c8"), {"'<c8' is not supported",
                                     "supported: '<f2', '<f4', '<f8', '|i1', '|u1', "
                                     "'<i2', '<u2', '<i4', '<u4', '<i8', and 0-d '<U{n}' text"});
  expect_refused(with_descr("float32"), {"'float32' is not supported"});
  expect_refused(with_descr("f4"), {"'f4' is not supported"});
  expect_refused(with_descr(""), {"'' is not supported"});
  expect_refused(with_descr("<U"), {"'<U' is not supported"});
  expect_refused(with_descr("<U99999999999999999999"), {"is not supported"});
  // Bytes from the file are escaped, so a message stays one printable line.
  expect_refused(with_descr("<\x01\x7f\xff"), {"'<\\x01\\x7f\\xff' is not supported"});
}

TEST(NpyHostile, ByteOrderFreeAndNativeMarksAreLittleEndian) {
  const std::string data("\x01\x00\x02\x00", 4);
  for (const char* descr : {"<i2", "=i2", "|i2"}) {
    SCOPED_TRACE(descr);
    const Tensor t = zp::npy::parse(
        craft(fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': (2,), }}", descr), data),
        "t.npy");
    EXPECT_EQ(t.span<const std::int16_t>()[1], 2);
  }
  const Tensor t =
      zp::npy::parse(craft("{'descr': '>u1', 'fortran_order': False, 'shape': (2,), }", "\x05\x06"), "t");
  EXPECT_EQ(t.span<const std::uint8_t>()[1], 6);
}

TEST(NpyHostile, FortranOrder) {
  expect_refused(craft("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", kF32x6),
                 {"Fortran-order arrays are not supported; save with np.ascontiguousarray"});
}

TEST(NpyHostile, AcceptsHeaderLayoutsOtherWritersUse) {
  // Other key order, double quotes, no trailing comma or padding, tabs: still the same array.
  for (const char* dict : {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
                           "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3,)}",
                           "{\t'descr': '<f4',\n 'fortran_order': False, 'shape': (2, 3)}"}) {
    SCOPED_TRACE(dict);
    EXPECT_EQ(zp::npy::parse(craft(dict, kF32x6), "t.npy").shape(), (Shape{2, 3}));
  }
  EXPECT_EQ(
      zp::npy::parse(craft("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", kF32x6, 2), "t")
          .shape(),
      (Shape{2, 3}));
}

TEST(NpyFile, MissingOrSpecialFile) {
  TempDir dir;
  try {
    (void)zp::npy::read(dir.path() / "absent.npy");
    ADD_FAILURE();
  } catch (const zp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.npy: cannot open"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)zp::npy::read(dir.path()), zp::Error);
}

}  // namespace
