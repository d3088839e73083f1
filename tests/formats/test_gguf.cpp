// GGUF: round trips through the Writer (every value type, nested arrays, several ggml types), a
// file written by ggml's own writer (tests/data/gguf/, see README there) read and rewritten byte
// for byte, the writer's atomicity and refusals, and one hand-made corrupt file per rule the
// header parser enforces: each must be refused with a one-line message naming the file, the key
// or tensor, and the position.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "formats/file_test_util.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace {

namespace fs = std::filesystem;
using zp::testing::error_of;
using zp::testing::slurp;
using zp::testing::TempDir;
using zp::testing::expect_names;
namespace gguf = zp::gguf;
using zp::ggml::Type;
using gguf::Array;
using gguf::Metadata;
using gguf::PlannedTensor;
using gguf::Value;
using gguf::ValueType;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string string_of(std::span<const std::uint8_t> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Opens `bytes` as bad.gguf and returns the error, which must name the file and `parts`.
std::string refused(std::string_view bytes, std::initializer_list<std::string_view> parts = {}) {
  TempDir dir;
  const fs::path path = dir.put("bad.gguf", bytes);
  const std::string message = error_of([&] { gguf::File::open(path); });
  expect_names(message, {"bad.gguf"});
  expect_names(message, parts);
  return message;
}

// Builds GGUF bytes by hand, little-endian, so that each corrupt file breaks exactly one rule.
class Bytes {
 public:
  Bytes& u8(std::uint8_t x) { return raw(&x, 1); }
  Bytes& u32(std::uint32_t x) { return raw(&x, 4); }
  Bytes& u64(std::uint64_t x) { return raw(&x, 8); }
  Bytes& f32(float x) { return raw(&x, 4); }
  Bytes& str(std::string_view s) {
    u64(s.size());
    b_.append(s);
    return *this;
  }
  Bytes& header(std::uint64_t tensors, std::uint64_t entries, std::uint32_t version = 3) {
    b_.append("GGUF");
    return u32(version).u64(tensors).u64(entries);
  }
  Bytes& kv_u32(std::string_view key, std::uint32_t x) { return str(key).u32(4).u32(x); }
  Bytes& tensor(std::string_view name, std::vector<std::uint64_t> dims, std::uint32_t type, std::uint64_t offset) {
    str(name).u32(static_cast<std::uint32_t>(dims.size()));
    for (auto d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad(std::size_t alignment = 32) {
    b_.append((alignment - b_.size() % alignment) % alignment, '\0');
    return *this;
  }
  Bytes& data(std::size_t n, char c = '\x5a') {
    b_.append(n, c);
    return *this;
  }
  std::size_t size() const { return b_.size(); }
  operator std::string_view() const { return b_; }
  const std::string& str() const { return b_; }

 private:
  Bytes& raw(const void* p, std::size_t n) {
    static_assert(std::endian::native == std::endian::little, "the hand-made files are little-endian");
    b_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string b_;
};

// A tensor to write: its plan and its bytes.
struct Sample {
  PlannedTensor plan;
  std::string bytes;
};

Sample sample(std::string name, std::vector<std::uint64_t> dims, Type type, int seed) {
  const std::uint64_t size = gguf::tensor_bytes(type, dims);
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<char>((i * 131 + 7 + static_cast<std::size_t>(seed)) & 0xFF);
  }
  return {{std::move(name), std::move(dims), type}, std::move(bytes)};
}

std::vector<PlannedTensor> plans_of(const std::vector<Sample>& samples) {
  std::vector<PlannedTensor> out;
  for (const auto& s : samples) out.push_back(s.plan);
  return out;
}

void write_file(const fs::path& path, const Metadata& metadata, const std::vector<Sample>& samples) {
  gguf::Writer w(path, metadata, plans_of(samples));
  for (const auto& s : samples) w.write(s.plan.name, bytes_of(s.bytes));
  w.commit();
}

// Every value type once as a scalar and once as an array, empty arrays, and arrays of arrays
// (of numbers, of strings, of arrays, and empty ones), in an order that is not sorted.
Metadata every_value_type() {
  Metadata m;
  m.set("general.architecture", "llama");
  m.set("z.u8", Value(std::uint8_t{250}));
  m.set("z.i8", Value(std::int8_t{-128}));
  m.set("z.u16", Value(std::uint16_t{65535}));
  m.set("z.i16", Value(std::int16_t{-2}));
  m.set("z.u32", Value(std::uint32_t{4000000000u}));
  m.set("z.i32", Value(std::int32_t{-7}));
  m.set("z.f32", Value(-0.0f));
  m.set("z.bool", Value(false));
  m.set("z.string", Value(std::string("with\0zero and \xff byte", 20)));
  m.set("z.u64", Value(std::uint64_t{1} << 63));
  m.set("z.i64", Value(std::numeric_limits<std::int64_t>::min()));
  m.set("z.f64", Value(std::numeric_limits<double>::denorm_min()));
  m.set("a.u8", Value(Array(std::vector<std::uint8_t>{0, 255})));
  m.set("a.i8", Value(Array(std::vector<std::int8_t>{-1})));
  m.set("a.u16", Value(Array(std::vector<std::uint16_t>{1, 2, 3})));
  m.set("a.i16", Value(Array(std::vector<std::int16_t>{-300})));
  m.set("a.u32", Value(Array(std::vector<std::uint32_t>{7, 8})));
  m.set("a.i32", Value(Array(std::vector<std::int32_t>{-1, 1})));
  m.set("a.f32", Value(Array(std::vector<float>{1.5f, std::numeric_limits<float>::infinity()})));
  m.set("a.bool", Value(Array(std::vector<bool>{true, false, true})));
  m.set("a.string", Value(Array(std::vector<std::string>{"<s>", "", "\xe2\x96\x81the"})));
  m.set("a.u64", Value(Array(std::vector<std::uint64_t>{~std::uint64_t{0}})));
  m.set("a.i64", Value(Array(std::vector<std::int64_t>{-5, 5})));
  m.set("a.f64", Value(Array(std::vector<double>{0.1, -0.2})));
  m.set("a.empty_f32", Value(Array(std::vector<float>{})));
  m.set("a.empty_array", Value(Array(std::vector<Array>{})));
  m.set("nested.numbers", Value(Array(std::vector<Array>{Array(std::vector<std::int32_t>{1, 2}),
                                                          Array(std::vector<std::int32_t>{}),
                                                          Array(std::vector<float>{3.0f})})));
  m.set("nested.strings", Value(Array(std::vector<Array>{Array(std::vector<std::string>{"a", "bc"})})));
  m.set("nested.deep", Value(Array(std::vector<Array>{Array(std::vector<Array>{
                           Array(std::vector<bool>{true}), Array(std::vector<std::uint8_t>{9})})})));
  return m;
}

std::vector<Sample> several_types() {
  return {
      sample("token_embd.weight", {8, 3}, Type::f32, 1),
      sample("blk.0.attn_q.weight", {64, 2}, Type::q4_0, 2),
      sample("blk.0.ffn_up.weight", {256, 1, 2}, Type::q4_K, 3),
      sample("odd", {5}, Type::f16, 4),  // 10 bytes: the next tensor needs padding
      sample("empty", {0, 4}, Type::i8, 5),
      sample("scalar", {}, Type::bf16, 6),
      sample("blk.0.ffn_down.weight", {32, 1, 1, 3}, Type::q8_0, 7),
  };
}

const char* kFixture = ZP_TEST_DATA_DIR "/gguf/ggml_written.gguf";

// ---------------------------------------------------------------------------------------------

TEST(GgufValue, TypesFollowTheCppType) {
  EXPECT_EQ(Value(std::uint8_t{1}).type(), ValueType::u8);
  EXPECT_EQ(Value(std::uint32_t{1}).type(), ValueType::u32);
  EXPECT_EQ(Value(1.0f).type(), ValueType::f32);
  EXPECT_EQ(Value(1.0).type(), ValueType::f64);
  EXPECT_EQ(Value(true).type(), ValueType::boolean);
  EXPECT_EQ(Value("text").type(), ValueType::string);
  EXPECT_EQ(Value(std::string_view("text")).type(), ValueType::string);
  EXPECT_EQ(Value(Array(std::vector<Array>{})).type(), ValueType::array);
  EXPECT_EQ(Array(std::vector<Array>{}).element_type(), ValueType::array);
  EXPECT_EQ(Array(std::vector<bool>{}).element_type(), ValueType::boolean);
  EXPECT_EQ(Value(std::int16_t{-3}).to_u64(), std::nullopt);
  EXPECT_EQ(Value(std::int16_t{3}).to_u64(), 3u);
  EXPECT_EQ(Value(std::uint64_t{1} << 40).to_u64(), std::uint64_t{1} << 40);
  EXPECT_EQ(Value(true).to_u64(), std::nullopt);
  EXPECT_EQ(Value(2.0f).to_u64(), std::nullopt);
  EXPECT_EQ(gguf::type_name(ValueType::boolean), "bool");
  EXPECT_EQ(gguf::type_name(static_cast<ValueType>(13)), "unknown");
}

TEST(GgufMetadata, SetKeepsThePlaceEraseAndInsert) {
  Metadata m;
  m.set("a", Value(std::uint32_t{1}));
  m.set("b", "x");
  m.set("c", Value(2.0f));
  m.set("a", "now a string");  // in place
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.entries()[0].first, "a");
  EXPECT_EQ(*m.find("a")->string(), "now a string");
  EXPECT_FALSE(m.insert("b", Value(std::uint8_t{1})));
  EXPECT_TRUE(m.erase("b"));
  EXPECT_FALSE(m.erase("b"));
  EXPECT_EQ(m.find("b"), nullptr);
  EXPECT_EQ(*m.get_if<float>("c"), 2.0f);  // the index follows the erase
  EXPECT_EQ(m.get_if<std::uint32_t>("c"), nullptr);
  EXPECT_TRUE(m.insert("b", Value(std::uint8_t{1})));
  EXPECT_EQ(m.entries().back().first, "b");
}

TEST(GgufMetadata, QuantizerKeysAndLlamaFileTypes) {
  Metadata m;
  m.set("general.architecture", "llama");
  m.set(std::string(gguf::kFileTypeKey), Value(std::int32_t{1}));  // another tool's type: replaced by u32
  gguf::set_file_type(m, *gguf::file_type_of(Type::q4_K));
  gguf::set_quantization_version(m);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.entries()[1].first, "general.file_type");
  EXPECT_EQ(*m.get_if<std::uint32_t>("general.file_type"), 15u);
  EXPECT_EQ(m.entries()[2].first, "general.quantization_version");
  EXPECT_EQ(*m.get_if<std::uint32_t>("general.quantization_version"), 2u);

  // llama.cpp's llama_ftype numbers (include/llama.h), _M for the uniform K types.
  const std::pair<Type, std::uint32_t> expected[] = {
      {Type::f32, 0},   {Type::f16, 1},   {Type::q4_0, 2},  {Type::q4_1, 3},  {Type::q8_0, 7},
      {Type::q5_0, 8},  {Type::q5_1, 9},  {Type::q2_K, 10}, {Type::q3_K, 12}, {Type::q4_K, 15},
      {Type::q5_K, 17}, {Type::q6_K, 18}, {Type::bf16, 32}, {Type::tq1_0, 36}, {Type::tq2_0, 37}};
  for (const auto& [type, ftype] : expected) EXPECT_EQ(gguf::file_type_of(type), ftype) << static_cast<int>(type);
  EXPECT_EQ(gguf::file_type_of(Type::q8_K), std::nullopt);
  EXPECT_EQ(gguf::file_type_of(Type::i32), std::nullopt);
}

TEST(GgufTensorBytes, BlocksRowsAndOverflow) {
  EXPECT_EQ(gguf::tensor_bytes(Type::f32, std::vector<std::uint64_t>{3, 2}), 24u);
  EXPECT_EQ(gguf::tensor_bytes(Type::q4_0, std::vector<std::uint64_t>{64, 3}), 3u * 2 * 18);
  EXPECT_EQ(gguf::tensor_bytes(Type::q6_K, std::vector<std::uint64_t>{512, 2, 2}), 4u * 2 * 210);
  EXPECT_EQ(gguf::tensor_bytes(Type::f16, std::vector<std::uint64_t>{}), 2u);
  EXPECT_EQ(gguf::tensor_bytes(Type::q8_0, std::vector<std::uint64_t>{0, 5}), 0u);
  expect_names(error_of([] { gguf::tensor_bytes(Type::q4_0, std::vector<std::uint64_t>{33}); }),
               {"33 values", "q4_0", "32"});
  expect_names(error_of([] { gguf::tensor_bytes(Type::f32, std::vector<std::uint64_t>{1ull << 32, 1ull << 31}); }),
               {"2^63"});
  expect_names(error_of([] { gguf::tensor_bytes(Type::f64, std::vector<std::uint64_t>{1ull << 61}); }), {"bytes"});
  expect_names(error_of([] { gguf::tensor_bytes(Type::f32, std::vector<std::uint64_t>{0, 1ull << 40, 1ull << 40}); }),
               {"2^63"});
  expect_names(error_of([] { gguf::tensor_bytes(Type::f32, std::vector<std::uint64_t>{1, 1, 1, 1, 1}); }), {"5"});
}

TEST(GgufRoundTrip, EveryValueTypeNestedArraysAndSeveralTensorTypes) {
  TempDir dir;
  const Metadata metadata = every_value_type();
  const std::vector<Sample> samples = several_types();
  write_file(dir / "m.gguf", metadata, samples);

  const gguf::File f = gguf::File::open(dir / "m.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata(), metadata);  // same keys, same order, same values and types
  ASSERT_EQ(f.tensors().size(), samples.size());
  for (std::size_t k = 0; k < samples.size(); ++k) {
    const gguf::TensorInfo& t = f.tensors()[k];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, samples[k].plan.name);
    EXPECT_EQ(t.dims, samples[k].plan.dims);
    EXPECT_EQ(t.type, samples[k].plan.type);
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ((f.header().data_offset + t.offset) % 32, 0u);
    EXPECT_EQ(string_of(f.data(t)), samples[k].bytes);
    EXPECT_EQ(f.find_tensor(t.name), &t);
    std::string copy(t.bytes, '\0');
    f.read(t, {reinterpret_cast<std::uint8_t*>(copy.data()), copy.size()});
    EXPECT_EQ(copy, samples[k].bytes);
    if (t.bytes >= 2) {  // a part of it: its second half
      std::string half(t.bytes - t.bytes / 2, '\0');
      f.read(t, t.bytes / 2, {reinterpret_cast<std::uint8_t*>(half.data()), half.size()});
      EXPECT_EQ(half, samples[k].bytes.substr(t.bytes / 2));
    }
  }
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  EXPECT_EQ(f.find_tensor("scalar")->elements(), 1u);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->rows(), 2u);
  EXPECT_EQ(fs::file_size(dir / "m.gguf"), gguf::file_size(metadata, plans_of(samples)));

  // Nested arrays, read back as what they were.
  const Array* deep = f.find("nested.deep")->array();
  ASSERT_NE(deep, nullptr);
  const auto* level2 = deep->get_if<Array>();
  ASSERT_TRUE(level2 && level2->size() == 1);
  const auto* level3 = (*level2)[0].get_if<Array>();
  ASSERT_TRUE(level3 && level3->size() == 2);
  EXPECT_EQ(*(*level3)[1].get_if<std::uint8_t>(), std::vector<std::uint8_t>{9});
}

TEST(GgufRoundTrip, AlignmentFromTheMetadataAndNoTensors) {
  TempDir dir;
  Metadata m;
  m.set(std::string(gguf::kAlignmentKey), Value(std::uint32_t{64}));
  write_file(dir / "a.gguf", m, {sample("a", {3}, Type::f32, 0), sample("b", {33}, Type::i8, 1)});
  const gguf::File a = gguf::File::open(dir / "a.gguf");
  EXPECT_EQ(a.alignment(), 64u);
  EXPECT_EQ(a.header().data_offset % 64, 0u);
  EXPECT_EQ(a.find_tensor("b")->offset, 64u);
  EXPECT_EQ(fs::file_size(dir / "a.gguf") % 64, 0u);  // the last tensor is padded too, as ggml does

  write_file(dir / "none.gguf", Metadata{}, {});
  const gguf::File none = gguf::File::open(dir / "none.gguf");
  EXPECT_TRUE(none.metadata().empty());
  EXPECT_TRUE(none.tensors().empty());
  EXPECT_EQ(fs::file_size(dir / "none.gguf"), 32u);  // 24 bytes of header, padded
  // Without the padding (a writer may leave it out when nothing follows) it reads the same.
  const std::string bytes = slurp(dir / "none.gguf");
  EXPECT_NO_THROW(gguf::File::open(dir.put("short.gguf", std::string_view(bytes).substr(0, 24))));

  // A large alignment pads the header with that many zeros, as ggml does, written as they go.
  Metadata wide;
  wide.set(std::string(gguf::kAlignmentKey), Value(std::uint32_t{1} << 24));
  write_file(dir / "wide.gguf", wide, {});
  EXPECT_EQ(fs::file_size(dir / "wide.gguf"), std::uint64_t{1} << 24);
  EXPECT_EQ(gguf::file_size(wide, {}), std::uint64_t{1} << 24);
  EXPECT_EQ(gguf::File::open(dir / "wide.gguf").alignment(), 1u << 24);
}

TEST(GgufRoundTrip, VersionTwoReadsLikeThree) {
  const Bytes b = Bytes().header(1, 1, 2).kv_u32("k", 5).tensor("t", {2}, 0, 0).pad().data(8);
  TempDir dir;
  const gguf::File f = gguf::File::open(dir.put("v2.gguf", b));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(*f.metadata().get_if<std::uint32_t>("k"), 5u);
  EXPECT_EQ(f.tensors()[0].bytes, 8u);
}

TEST(GgufRoundTrip, TensorsInAnyOrderAndWithGaps) {
  // The specification asks only for aligned, non-overlapping offsets inside the data section.
  const Bytes b = Bytes()
                      .header(3, 0)
                      .tensor("late", {4}, 0, 64)
                      .tensor("early", {2}, 0, 0)
                      .tensor("none", {0}, 0, 96)
                      .pad()
                      .data(96);
  TempDir dir;
  const gguf::File f = gguf::File::open(dir.put("order.gguf", b));
  EXPECT_EQ(f.tensors()[0].name, "late");
  EXPECT_EQ(f.find_tensor("late")->offset, 64u);
  EXPECT_EQ(f.find_tensor("none")->bytes, 0u);
  EXPECT_TRUE(f.data(*f.find_tensor("none")).empty());
}

// ggml's own writer made tests/data/gguf/ggml_written.gguf; its reader printed what it holds.
TEST(GgufGgml, ReadsAFileGgmlWrote) {
  const gguf::File f = gguf::File::open(kFixture);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.header().data_offset, 1536u);
  EXPECT_EQ(f.metadata().size(), 27u);
  EXPECT_EQ(*f.find("general.name")->string(), "ggml-written fixture");
  EXPECT_EQ(*f.metadata().get_if<std::uint8_t>("test.u8"), 200);
  EXPECT_EQ(*f.metadata().get_if<std::int8_t>("test.i8"), -100);
  EXPECT_EQ(*f.metadata().get_if<std::uint16_t>("test.u16"), 60000);
  EXPECT_EQ(*f.metadata().get_if<std::int16_t>("test.i16"), -30000);
  EXPECT_EQ(*f.metadata().get_if<std::uint32_t>("test.u32"), 4000000000u);
  EXPECT_EQ(*f.metadata().get_if<std::int32_t>("test.i32"), -2000000000);
  EXPECT_EQ(*f.metadata().get_if<float>("test.f32"), 0.15625f);
  EXPECT_EQ(*f.metadata().get_if<bool>("test.bool"), true);
  EXPECT_EQ(*f.metadata().get_if<std::string>("test.string"), "h\xc3\xa9llo");
  EXPECT_EQ(*f.metadata().get_if<std::uint64_t>("test.u64"), 18000000000000000000ull);
  EXPECT_EQ(*f.metadata().get_if<std::int64_t>("test.i64"), -9000000000000000000ll);
  EXPECT_EQ(*f.metadata().get_if<double>("test.f64"), -2.5e-300);
  EXPECT_EQ(*f.find("test.arr.u8")->array()->get_if<std::uint8_t>(), (std::vector<std::uint8_t>{1, 2, 255}));
  EXPECT_EQ(*f.find("test.arr.i16")->array()->get_if<std::int16_t>(), (std::vector<std::int16_t>{-32768, 7}));
  EXPECT_EQ(*f.find("test.arr.f32")->array()->get_if<float>(), (std::vector<float>{0.5f, -1.25f, 3e38f}));
  EXPECT_EQ(*f.find("test.arr.bool")->array()->get_if<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(*f.find("test.arr.u64")->array()->get_if<std::uint64_t>(), (std::vector<std::uint64_t>{1ull << 63}));
  EXPECT_EQ(*f.find("test.arr.f64")->array()->get_if<double>(), (std::vector<double>{1.0 / 3.0}));
  EXPECT_EQ(f.find("test.arr.empty")->array()->element_type(), ValueType::i32);
  EXPECT_EQ(*f.find("tokenizer.ggml.tokens")->array()->get_if<std::string>(),
            (std::vector<std::string>{"<s>", "", "\xe2\x96\x81the"}));

  // What ggml's reader printed: name, type, ggml's four dims, offset and bytes.
  struct Expected {
    const char* name;
    Type type;
    std::vector<std::uint64_t> dims;
    std::uint64_t offset, bytes;
  };
  const Expected expected[] = {
      {"token_embd.weight", Type::f32, {4, 3}, 0, 48},
      {"blk.0.attn_norm.weight", Type::f32, {3}, 64, 12},
      {"blk.0.attn_q.weight", Type::q4_0, {64, 2}, 96, 72},
      {"blk.0.attn_k.weight", Type::q8_0, {32, 1, 2}, 192, 68},
      {"blk.0.ffn_up.weight", Type::q4_K, {256}, 288, 144},  // ggml writes no trailing 1s
      {"blk.0.ffn_down.weight", Type::q6_K, {256, 2}, 448, 420},
      {"output_norm.weight", Type::f16, {5}, 896, 10},
      {"rope_freqs.weight", Type::bf16, {2, 1, 1, 3}, 928, 12},
      {"pos.weight", Type::i32, {3}, 960, 12},
  };
  ASSERT_EQ(f.tensors().size(), std::size(expected));
  for (std::size_t k = 0; k < std::size(expected); ++k) {
    const gguf::TensorInfo& t = f.tensors()[k];
    EXPECT_EQ(t.name, expected[k].name);
    EXPECT_EQ(t.type, expected[k].type) << t.name;
    EXPECT_EQ(t.dims, expected[k].dims) << t.name;
    EXPECT_EQ(t.offset, expected[k].offset) << t.name;
    EXPECT_EQ(t.bytes, expected[k].bytes) << t.name;
  }
  // The generator filled f32 tensors with 0.25 k - seed (seed = the tensor's place, from 1).
  const auto embd = f.data(*f.find_tensor("token_embd.weight"));
  std::vector<float> values(12);
  std::memcpy(values.data(), embd.data(), 48);
  for (std::size_t k = 0; k < values.size(); ++k) EXPECT_EQ(values[k], 0.25f * static_cast<float>(k) - 1.0f);
}

// Copying a file through the Writer, changing nothing, gives back ggml's bytes exactly: the same
// metadata encoding, the same tensor layout and padding. Setting the two quantizer keys keeps
// every other key, in its place, and every tensor byte.
TEST(GgufGgml, RewritesAGgmlFileByteForByte) {
  TempDir dir;
  const gguf::File in = gguf::File::open(kFixture);
  const auto copy = [&](const Metadata& metadata, const fs::path& path) {
    std::vector<PlannedTensor> plan;
    for (const auto& t : in.tensors()) plan.push_back({t.name, t.dims, t.type});
    gguf::Writer w(path, metadata, plan);
    for (const auto& t : in.tensors()) {
      const auto bytes = in.data(t);
      // In pieces, as a streaming pipeline sends them.
      w.write(t.name, bytes.first(bytes.size() / 2));
      w.write(t.name, bytes.subspan(bytes.size() / 2));
    }
    EXPECT_EQ(w.current(), in.tensors().size());
    w.commit();
  };
  copy(in.metadata(), dir / "same.gguf");
  EXPECT_EQ(slurp(dir / "same.gguf"), slurp(kFixture));

  Metadata changed = in.metadata();
  gguf::set_quantization_version(changed);
  gguf::set_file_type(changed, 7);
  copy(changed, dir / "changed.gguf");
  const gguf::File out = gguf::File::open(dir / "changed.gguf");
  ASSERT_EQ(out.metadata().size(), in.metadata().size() + 2);
  for (std::size_t k = 0; k < in.metadata().size(); ++k) EXPECT_EQ(out.metadata().entries()[k], in.metadata().entries()[k]);
  EXPECT_EQ(*out.metadata().get_if<std::uint32_t>("general.file_type"), 7u);
  for (const auto& t : in.tensors()) EXPECT_EQ(string_of(out.data(*out.find_tensor(t.name))), string_of(in.data(t)));
}

// ---------------------------------------------------------------------------------------------
// The writer

TEST(GgufWriter, DestroyedWithoutCommitLeavesNoFileAndTheOldOneUntouched) {
  TempDir dir;
  const Sample s = sample("w", {4}, Type::f32, 0);
  {
    gguf::Writer w(dir / "new.gguf", {}, {s.plan});
    w.write(bytes_of(s.bytes));
    EXPECT_EQ(dir.files().size(), 1u);  // the temporary file
  }
  EXPECT_TRUE(dir.files().empty());

  dir.put("old.gguf", "old content");
  {
    gguf::Writer w(dir / "old.gguf", {}, {s.plan});
    w.write(bytes_of(std::string_view(s.bytes).substr(0, 5)));
  }
  EXPECT_EQ(dir.files(), std::vector<std::string>{"old.gguf"});
  EXPECT_EQ(slurp(dir / "old.gguf"), "old content");
}

TEST(GgufWriter, WrongAmountsAndOrderAreErrorsNamingTheTensor) {
  TempDir dir;
  const fs::path path = dir / "m.gguf";
  gguf::Writer w(path, {}, {{"a", {2}, Type::f32}, {"b", {3}, Type::i8}});
  expect_names(error_of([&] { w.write(bytes_of("123456789")); }), {"m.gguf", "'a'", "9 bytes", "8"});
  expect_names(error_of([&] { w.write("b", bytes_of("1")); }), {"m.gguf", "'b'", "'a'", "order"});
  w.write("a", bytes_of("12345"));
  expect_names(error_of([&] { w.write(bytes_of("6789")); }), {"'a'", "need only 3 more"});
  expect_names(error_of([&] { w.commit(); }), {"m.gguf", "'a'", "5 of its 8 bytes"});
  w.write(bytes_of("678"));
  EXPECT_EQ(w.current(), 1u);
  w.write("b", bytes_of("xyz"));
  expect_names(error_of([&] { w.write(bytes_of("!")); }), {"m.gguf", "after the last tensor"});
  expect_names(error_of([&] { w.write("c", bytes_of("!")); }), {"'c'", "after the last tensor"});
  w.commit();
  expect_names(error_of([&] { w.write(bytes_of("!")); }), {"m.gguf", "committed"});
  const gguf::File f = gguf::File::open(path);
  EXPECT_EQ(string_of(f.data(*f.find_tensor("b"))), "xyz");
}

TEST(GgufWriter, RefusesWhatTheReaderWouldRefuse) {
  TempDir dir;
  const fs::path path = dir / "m.gguf";
  const auto refuse = [&](const Metadata& m, std::vector<PlannedTensor> t, std::initializer_list<std::string_view> parts) {
    expect_names(error_of([&] { gguf::Writer(path, m, t); }), parts);
  };
  refuse({}, {{"a", {2}, Type::f32}, {"a", {1}, Type::f32}}, {"m.gguf", "'a'", "twice"});
  refuse({}, {{std::string(64, 'n'), {1}, Type::f32}}, {"64 bytes", "63"});
  refuse({}, {{"q", {48}, Type::q4_0}}, {"'q'", "48 values", "q4_0"});
  refuse({}, {{"d", {1, 1, 1, 1, 1}, Type::f32}}, {"'d'", "5 dimensions"});
  refuse({}, {{"t", {1}, static_cast<Type>(4)}}, {"'t'", "unknown ggml type id 4"});
  Metadata bad_alignment;
  bad_alignment.set("general.alignment", Value(std::uint64_t{32}));
  refuse(bad_alignment, {}, {"general.alignment", "u64"});
  bad_alignment.set("general.alignment", Value(std::uint32_t{48}));
  refuse(bad_alignment, {}, {"general.alignment", "48", "power of two"});
  Metadata empty_key;
  empty_key.set("", Value(true));
  refuse(empty_key, {}, {"key", "empty"});
  Array deep(std::vector<std::uint8_t>{1});
  for (int k = 1; k < gguf::kMaxArrayDepth + 1; ++k) deep = Array(std::vector<Array>{deep});
  Metadata too_deep;
  too_deep.set("deep", Value(deep));
  refuse(too_deep, {}, {"'deep'", "nest more than 16"});
  EXPECT_TRUE(dir.files().empty());
}

TEST(GgufWriter, UnwritableDestination) {
  TempDir dir;
  const fs::path missing = dir / "no-such-folder" / "m.gguf";
  expect_names(error_of([&] { gguf::Writer(missing, {}, {}); }), {missing.string()});
}

TEST(GgufWriter, MovedWriterKeepsWriting) {
  TempDir dir;
  gguf::Writer a(dir / "m.gguf", {}, {{"a", {2}, Type::i8}});
  a.write(bytes_of("1"));
  gguf::Writer b = std::move(a);
  b.write(bytes_of("2"));
  b.commit();
  const gguf::File f = gguf::File::open(dir / "m.gguf");
  EXPECT_EQ(string_of(f.data(f.tensors()[0])), "12");
}

// ---------------------------------------------------------------------------------------------
// Corrupt files: one rule each

TEST(GgufCorrupt, WrongMagic) {
  refused(Bytes().u32(0x46554746).u32(3).u64(0).u64(0), {"not a GGUF file", "'FGUF'", "byte 0"});
  refused("GGML and some more bytes to make 24", {"not a GGUF file"});
}

TEST(GgufCorrupt, TooShortOrEmpty) {
  refused("", {"0 bytes", "shorter than a GGUF header"});
  refused(std::string_view("GGUF\3\0\0\0", 8), {"8 bytes"});
}

TEST(GgufCorrupt, UnsupportedVersions) {
  refused(Bytes().header(0, 0, 1), {"version 1", "not supported", "byte 4"});
  refused(Bytes().header(0, 0, 4), {"version 4", "2 and 3"});
  refused(Bytes().header(0, 0, 0), {"version 0"});
  // A big-endian file: "GGUF" at the byte level, then a version of 3 written big-endian.
  refused(Bytes().header(0, 0, 0x03000000), {"big-endian", "50331648", "3"});
}

TEST(GgufCorrupt, CountsNeedMoreBytesThanTheFileHas) {
  refused(Bytes().header(0, 1ull << 60), {"header", "metadata count", "1152921504606846976", "byte 16"});
  refused(Bytes().header(~0ull, 0), {"tensor count", "byte 8"});
  // Each count alone fits, both together do not.
  refused(Bytes().header(1, 1).data(30), {"1 tensor infos and 1 metadata entries", "38"});
}

TEST(GgufCorrupt, StringLongerThanTheFile) {
  refused(Bytes().header(0, 1).u64(1000).data(20), {"metadata entry #0", "the key is 1000 bytes", "byte 24"});
  refused(Bytes().header(0, 1).str("k").u32(8).u64(~0ull >> 1), {"metadata key 'k' (#0)", "the string", "byte 37"});
  refused(Bytes().header(1, 0).u64(1ull << 62).data(20), {"tensor info #0", "name"});
}

TEST(GgufCorrupt, ArrayLongerThanTheFile) {
  // 2^40 u32s would be 4 TiB: refused before any allocation.
  refused(Bytes().header(0, 1).str("a").u32(9).u32(4).u64(1ull << 40).data(16),
          {"'a'", "u32 array", "1099511627776", "byte 41"});
  // Strings take at least their 8-byte length each.
  refused(Bytes().header(0, 1).str("a").u32(9).u32(8).u64(3).str("x").str("y"), {"'a'", "string array", "3"});
  refused(Bytes().header(0, 1).str("a").u32(9).u32(9).u64(1ull << 50).data(16), {"'a'", "array array"});
  // A string in an array that claims more than is left.
  refused(Bytes().header(0, 1).str("a").u32(9).u32(8).u64(2).str("x").u64(1000).data(8), {"'a'", "string #1"});
}

TEST(GgufCorrupt, UnknownValueTypes) {
  refused(Bytes().header(0, 1).str("general.odd").u32(13).u32(0), {"'general.odd'", "unknown value type id 13",
                                                                     "byte 43"});
  refused(Bytes().header(0, 1).str("arr").u32(9).u32(0xFFFFFFFF).u64(0), {"'arr'", "array of unknown value type id "
                                                                                    "4294967295"});
  refused(Bytes().header(0, 1).str("b").u32(7).u8(2), {"'b'", "bool value is 2"});
  refused(Bytes().header(0, 1).str("b").u32(9).u32(7).u64(2).u8(1).u8(7), {"'b'", "element #1", "is 7"});
}

TEST(GgufCorrupt, ArraysNestedTooDeep) {
  Bytes b;
  b.header(0, 1).str("deep").u32(9);
  for (int k = 0; k < gguf::kMaxArrayDepth + 1; ++k) b.u32(9).u64(1);
  b.u32(0).u64(0);
  refused(b, {"'deep'", "nest more than 16"});
}

TEST(GgufCorrupt, KeysEmptyOrTwice) {
  refused(Bytes().header(0, 1).str("").u32(4).u32(1), {"metadata entry #0", "empty"});
  refused(Bytes().header(0, 2).kv_u32("k", 1).kv_u32("k", 2), {"metadata key 'k' (#1)", "twice"});
}

TEST(GgufCorrupt, BadAlignment) {
  refused(Bytes().header(0, 1).str("general.alignment").u32(10).u64(32), {"general.alignment", "u64"});
  refused(Bytes().header(0, 1).kv_u32("general.alignment", 0), {"general.alignment", "0", "power of two"});
  refused(Bytes().header(0, 1).kv_u32("general.alignment", 24), {"general.alignment", "24"});
}

TEST(GgufCorrupt, UnknownTensorType) {
  refused(Bytes().header(1, 0).tensor("w", {32}, 4, 0).pad().data(32), {"tensor 'w' (#0)", "unknown ggml type id 4"});
  refused(Bytes().header(1, 0).tensor("w", {32}, 1000, 0).pad().data(32), {"'w'", "id 1000", "byte 45"});
}

TEST(GgufCorrupt, DimensionsTooManyOrOverflowing) {
  refused(Bytes().header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad().data(32), {"'w'", "5 dimensions"});
  refused(Bytes().header(1, 0).tensor("w", {1ull << 32, 1ull << 32}, 0, 0).pad().data(32), {"'w'", "2^63"});
  refused(Bytes().header(1, 0).tensor("w", {~0ull}, 0, 0).pad().data(32), {"'w'", "dimension 0"});
  refused(Bytes().header(1, 0).tensor("w", {1ull << 62}, 0, 0).pad().data(32), {"'w'", "bytes"});
  refused(Bytes().header(1, 0).tensor("w", {33}, 2, 0).pad().data(64), {"'w'", "33 values", "q4_0"});
}

TEST(GgufCorrupt, TensorNamesTwiceOrTooLong) {
  refused(Bytes().header(2, 0).tensor("w", {1}, 0, 0).tensor("w", {1}, 0, 32).pad().data(64),
          {"tensor 'w' (#1)", "tensor #0"});
  refused(Bytes().header(1, 0).tensor(std::string(64, 'n'), {1}, 0, 0).pad().data(32), {"tensor info #0", "64 bytes",
                                                                                       "63"});
}

TEST(GgufCorrupt, OffsetNotAligned) {
  refused(Bytes().header(1, 0).tensor("w", {1}, 0, 4).pad().data(32), {"'w'", "offset 4", "alignment 32"});
}

TEST(GgufCorrupt, TensorOutsideTheData) {
  refused(Bytes().header(1, 0).tensor("w", {16}, 0, 0).pad().data(60), {"'w'", "64 bytes at offset 0", "truncated"});
  refused(Bytes().header(1, 0).tensor("w", {1}, 0, 1ull << 60).pad().data(32), {"'w'", "offset 1152921504606846976"});
  refused(Bytes().header(1, 0).tensor("w", {1}, 0, ~0ull << 5).pad().data(32), {"'w'"});
}

TEST(GgufCorrupt, DataSectionStartsPastTheEnd) {
  const Bytes b = Bytes().header(1, 0).tensor("w", {0}, 0, 0);  // 57 bytes, data would start at 64
  refused(b, {"data section starts at byte 64", "57 bytes"});
}

TEST(GgufCorrupt, OverlappingTensors) {
  refused(Bytes().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad().data(96),
          {"tensor 'b' (#1)", "overlaps", "'a'", "[0, 64)"});
  refused(Bytes().header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 0).pad().data(32), {"'b'", "overlaps"});
}

// Every proper prefix of a valid file is refused with a message (or still complete: only the last
// tensor's trailing padding may go), never a crash or a misread.
TEST(GgufCorrupt, EveryTruncationOfAValidFile) {
  TempDir dir;
  write_file(dir / "full.gguf", every_value_type(), several_types());
  const std::string full = slurp(dir / "full.gguf");
  const gguf::File f = gguf::File::open(dir / "full.gguf");
  std::uint64_t needed = 0;
  for (const auto& t : f.tensors()) needed = std::max(needed, f.header().data_offset + t.offset + t.bytes);
  // From memory (File::open parses its mapping the same way), and a few through real files.
  const auto bytes = bytes_of(full);
  for (std::size_t n = 0; n < full.size(); ++n) {
    if (n >= needed) {
      EXPECT_NO_THROW(gguf::parse_header(bytes.first(n), n, "cut.gguf")) << n;
    } else {
      expect_names(error_of([&] { gguf::parse_header(bytes.first(n), n, "cut.gguf"); }), {"cut.gguf"});
    }
  }
  for (const std::uint64_t n : {std::uint64_t{0}, std::uint64_t{30}, f.header().data_offset - 1, needed - 1}) {
    const fs::path path = dir.put("cut.gguf", std::string_view(full).substr(0, n));
    expect_names(error_of([&] { gguf::File::open(path); }), {"cut.gguf"});
  }
}

TEST(GgufFile, RefusesATensorInfoFromElsewhere) {
  const gguf::File f = gguf::File::open(kFixture);
  gguf::TensorInfo other = f.tensors()[0];
  other.offset = 1ull << 40;
  expect_names(error_of([&] { f.data(other); }), {"ggml_written.gguf", "'token_embd.weight'", "not inside"});
  other = f.tensors()[0];
  std::vector<std::uint8_t> small(3);
  expect_names(error_of([&] { f.read(other, small); }), {"'token_embd.weight'", "48 bytes, not 3"});
  // A part must lie inside the tensor.
  expect_names(error_of([&] { f.read(other, 46, small); }), {"'token_embd.weight'", "48 bytes, not 3 from byte 46"});
  expect_names(error_of([&] { f.read(other, 49, {}); }), {"'token_embd.weight'", "from byte 49"});
  f.read(other, 45, small);  // the last three bytes
  EXPECT_EQ(std::vector<std::uint8_t>(f.data(other).end() - 3, f.data(other).end()), small);
}

TEST(GgufFile, MissingFileAndFolder) {
  TempDir dir;
  expect_names(error_of([&] { gguf::File::open(dir / "none.gguf"); }), {"none.gguf", "cannot open"});
  fs::create_directory(dir / "folder.gguf");
  expect_names(error_of([&] { gguf::File::open(dir / "folder.gguf"); }), {"folder.gguf", "not a regular file"});
}

TEST(GgufHeader, ParsesFromMemoryAndSaysWhenTheHeaderRunsPastThePrefix) {
  const std::string bytes = slurp(kFixture);
  const auto all = bytes_of(bytes);
  const gguf::Header h = gguf::parse_header(all, all.size(), "mem");
  EXPECT_EQ(h.tensors.size(), 9u);
  // The header alone is enough when the size of the whole file is given.
  EXPECT_EQ(gguf::parse_header(all.first(h.data_offset), all.size(), "mem").tensors.size(), 9u);
  expect_names(error_of([&] { gguf::parse_header(all.first(100), all.size(), "mem"); }), {"mem", "100 bytes of the header"});
}

}  // namespace
