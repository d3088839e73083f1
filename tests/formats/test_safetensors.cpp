// safetensors: round trips through the Writer, one hand-made corrupt file per rule the header
// parser enforces (each must be refused with the file and the tensor named), indexes and sharded
// checkpoints, the writer's atomicity, shard planning, and (when NumPy is there) the written bytes
// read by Python's json module and numpy.frombuffer, the way the safetensors library reads them.
#include <gtest/gtest.h>

#include "formats/file_test_util.hpp"
#include "formats/tensor_test_util.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>

#include <fmt/format.h>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using zp::testing::error_of;
using zp::testing::slurp;
using zp::testing::TempDir;
using zp::testing::expect_names;
namespace st = zp::safetensors;
using zp::DType;
using zp::Shape;
using zp::Tensor;
using zp::TensorView;
using zp::testing::patterned;
using Bytes = std::vector<std::byte>;

std::string string_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A file: the little-endian length `n`, then `rest` (header and data).
std::string with_length(std::uint64_t n, std::string_view rest) {
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[static_cast<std::size_t>(k)] = static_cast<char>((n >> (8 * k)) & 0xFF);
  return out + std::string(rest);
}
// A file whose header is `json` followed by `data_bytes` bytes of data.
std::string craft(std::string_view json, std::size_t data_bytes = 0) {
  return with_length(json.size(), std::string(json) + std::string(data_bytes, '\x5a'));
}
std::string entry(std::string_view dtype, std::string_view shape, std::uint64_t begin, std::uint64_t end) {
  return fmt::format(R"({{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})", dtype, shape, begin, end);
}

// Opens `bytes` as bad.safetensors and returns the error, which must name the file and `parts`.
std::string refused(std::string_view bytes, std::initializer_list<std::string_view> parts = {}) {
  TempDir dir;
  const fs::path path = dir.put("bad.safetensors", bytes);
  const std::string message = error_of([&] { st::File::open(path); });
  expect_names(message, {"bad.safetensors"});
  expect_names(message, parts);
  return message;
}

// A tensor to write: its plan and its bytes.
struct Sample {
  st::PlannedTensor plan;
  std::string bytes;
};

Sample sample(std::string name, std::string dtype, Shape shape, int seed) {
  const std::size_t size = st::dtype_info(dtype)->size * static_cast<std::size_t>(zp::checked_numel(shape));
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<char>((i * 131 + 7 + static_cast<std::size_t>(seed)) & 0xFF);
  return {{std::move(name), std::move(dtype), std::move(shape)}, std::move(bytes)};
}

std::vector<st::PlannedTensor> plans_of(const std::vector<Sample>& samples) {
  std::vector<st::PlannedTensor> out;
  for (const auto& s : samples) out.push_back(s.plan);
  return out;
}

void write_file(const fs::path& path, const std::vector<Sample>& samples,
                const std::map<std::string, std::string>& metadata = {}) {
  st::Writer w(path, plans_of(samples), metadata);
  for (const auto& s : samples) w.write(bytes_of(s.bytes));
  w.commit();
}

// ---------------------------------------------------------------------------------------------

TEST(SafetensorsDtype, TableMatchesTheFormat) {
  const std::vector<std::pair<std::string_view, std::size_t>> expected{
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  for (const auto& [name, size] : expected) {
    const auto info = st::dtype_info(name);
    ASSERT_TRUE(info) << name;
    EXPECT_EQ(info->size, size) << name;
    if (info->dtype) {
      EXPECT_EQ(st::dtype_name(*info->dtype), name);
      EXPECT_EQ(zp::dtype_size(*info->dtype), size) << name;
    }
  }
  EXPECT_FALSE(st::dtype_info("f32"));
  EXPECT_FALSE(st::dtype_info("F128"));
  EXPECT_FALSE(st::dtype_info("BOOL "));
  EXPECT_EQ(st::dtype_info("BF16")->dtype, DType::bf16);
  EXPECT_FALSE(st::dtype_info("U64")->dtype);
  EXPECT_FALSE(st::dtype_info("F8_E4M3")->dtype);
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8, DType::u8, DType::i16, DType::u16,
                  DType::i32, DType::u32, DType::i64}) {
    EXPECT_EQ(st::dtype_info(st::dtype_name(d))->dtype, d);
  }
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(SafetensorsRoundTrip, EveryDtypeScalarAndZeroSizeWithMetadata) {
  TempDir dir;
  const std::vector<Sample> samples{sample("model.embed.weight", "F32", {2, 3}, 1),
                                    sample("bf", "BF16", {5}, 2),
                                    sample("scale", "F64", {}, 3),
                                    sample("empty", "U8", {0, 7}, 4),
                                    sample("mask", "BOOL", {3}, 5),
                                    sample("fp8", "F8_E4M3", {2, 2}, 6),
                                    sample("e5m2", "F8_E5M2", {1}, 7),
                                    sample("i8", "I8", {4}, 8),
                                    sample("i16", "I16", {3}, 9),
                                    sample("u16", "U16", {2}, 10),
                                    sample("half", "F16", {3, 1}, 11),
                                    sample("i32", "I32", {2}, 12),
                                    sample("u32", "U32", {1}, 13),
                                    sample("i64", "I64", {2}, 14),
                                    sample("u64", "U64", {2}, 15),
                                    sample("last_empty", "F32", {0}, 16)};
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "h\u00e9llo \"quoted\"\n"}};
  const fs::path path = dir / "model.safetensors";
  {
    st::Writer w(path, plans_of(samples), metadata);
    for (const auto& s : samples) {
      // Larger tensors arrive in two pieces, as a streaming producer would send them.
      const std::size_t half = s.bytes.size() / 2;
      w.write(bytes_of(std::string_view(s.bytes).substr(0, half)));
      w.write(bytes_of(std::string_view(s.bytes).substr(half)));
    }
    w.commit();
    EXPECT_EQ(w.bytes_written(), fs::file_size(path));
  }
  EXPECT_EQ(st::file_size(plans_of(samples), metadata), fs::file_size(path));
  EXPECT_EQ(dir.files(), std::vector<std::string>{"model.safetensors"});

  const st::File file = st::File::open(path);
  const st::Header& h = file.header();
  EXPECT_EQ(h.metadata, metadata);
  ASSERT_EQ(h.tensors.size(), samples.size());
  std::uint64_t data = 0;
  for (const auto& s : samples) {
    const st::TensorInfo* t = h.find(s.plan.name);
    ASSERT_NE(t, nullptr) << s.plan.name;
    EXPECT_EQ(t->dtype, s.plan.dtype);
    EXPECT_EQ(t->shape, s.plan.shape);
    EXPECT_EQ(t->type, st::dtype_info(s.plan.dtype)->dtype);
    EXPECT_EQ(t->size, s.bytes.size());
    EXPECT_EQ(string_of(file.bytes(*t)), s.bytes) << s.plan.name;
    data += s.bytes.size();
  }
  EXPECT_EQ(h.data_size, data);
  EXPECT_EQ(h.find("nope"), nullptr);
  // Written in plan order, so offset order is plan order (ties: zero-size first).
  for (std::size_t k = 1; k < h.tensors.size(); ++k) {
    EXPECT_EQ(h.tensors[k].offset, h.tensors[k - 1].offset + h.tensors[k - 1].size);
  }
  EXPECT_EQ(h.find("scale")->shape, Shape{});
  EXPECT_EQ(h.find("scale")->size, 8u);
  EXPECT_EQ(h.find("empty")->size, 0u);
}

TEST(SafetensorsRoundTrip, HeaderIsPaddedToAMultipleOf8WithMetadataFirst) {
  TempDir dir;
  for (std::size_t extra = 0; extra < 9; ++extra) {
    const fs::path path = dir / fmt::format("pad{}.safetensors", extra);
    const std::map<std::string, std::string> metadata{{"k", std::string(extra, 'x')}};
    write_file(path, {sample("w", "F32", {2}, 0)}, metadata);
    const std::string bytes = slurp(path);
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u) << extra;
    const std::string header = bytes.substr(8, n);
    EXPECT_TRUE(header.starts_with(R"({"__metadata__":{"k":")")) << header;
    const std::size_t close = header.find_last_of('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << header;
    EXPECT_LT(n - close - 1, 8u);
    EXPECT_EQ(st::File::open(path).header().metadata, metadata);
  }
  // No metadata: no "__metadata__" key at all.
  write_file(dir / "plain.safetensors", {sample("w", "F32", {2}, 0)});
  EXPECT_EQ(slurp(dir / "plain.safetensors").find("__metadata__"), std::string::npos);
}

TEST(SafetensorsRoundTrip, NoTensorsAtAll) {
  TempDir dir;
  write_file(dir / "empty.safetensors", {});
  const st::File file = st::File::open(dir / "empty.safetensors");
  EXPECT_TRUE(file.header().tensors.empty());
  EXPECT_EQ(file.header().data_size, 0u);
}

TEST(SafetensorsFile, ViewPointsIntoTheFileWhenAlignedAndCopiesWhenNot) {
  TempDir dir;
  const Tensor w = patterned(DType::f32, {4, 3}, 1);
  const Tensor b = patterned(DType::bf16, {5}, 2);
  // The 3-byte U8 tensor pushes the F32 after it off its 4-byte boundary.
  const std::vector<st::PlannedTensor> plan{{"aligned", "F32", {4, 3}},
                                            {"odd", "U8", {3}},
                                            {"unaligned", "F32", {4, 3}},
                                            {"half", "BF16", {5}},
                                            {"fp8", "F8_E4M3", {2}}};
  {
    st::Writer writer(dir / "m.safetensors", plan, {});
    writer.write(w.bytes());
    writer.write(bytes_of("abc"));
    writer.write(w.bytes());
    writer.write(b.bytes());
    writer.write(bytes_of("xy"));
    writer.commit();
  }
  const st::File file = st::File::open(dir / "m.safetensors");
  const st::Header& h = file.header();
  EXPECT_EQ(h.data_start() % 8, 0u);

  Tensor scratch;
  const TensorView aligned = file.view(*h.find("aligned"), scratch);
  EXPECT_EQ(aligned.data(), file.bytes(*h.find("aligned")).data());
  EXPECT_EQ(scratch.numel(), 0);
  zp::testing::expect_same(Tensor::copy_of(aligned), w);

  const TensorView unaligned = file.view(*h.find("unaligned"), scratch);
  EXPECT_NE(reinterpret_cast<std::uintptr_t>(file.bytes(*h.find("unaligned")).data()) % 4, 0u);
  EXPECT_EQ(unaligned.data(), scratch.data());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(unaligned.data()) % 4, 0u);
  zp::testing::expect_same(Tensor::copy_of(unaligned), w);

  Tensor scratch2;
  const TensorView half = file.view(*h.find("half"), scratch2);
  EXPECT_EQ(half.dtype(), DType::bf16);
  zp::testing::expect_same(Tensor::copy_of(half), b);

  expect_names(error_of([&] { file.view(*h.find("fp8"), scratch); }), {"m.safetensors", "'fp8'", "F8_E4M3"});
}

TEST(SafetensorsFile, ReleaseKeepsTheDataReadable) {
  TempDir dir;
  const Tensor big = patterned(DType::f32, {3, 20000}, 3);  // spans several pages
  const Tensor small = patterned(DType::i8, {5}, 4);
  {
    st::Writer w(dir / "r.safetensors", {{"small", "I8", {5}}, {"big", "F32", {3, 20000}}}, {});
    w.write(small.bytes());
    w.write(big.bytes());
    w.commit();
  }
  const st::File file = st::File::open(dir / "r.safetensors");
  const st::TensorInfo& t = *file.header().find("big");
  EXPECT_EQ(string_of(file.bytes(t)), string_of(big.bytes()));
  file.release(t);
  file.release(*file.header().find("small"));
  // Private read-only pages dropped are read again from the file.
  EXPECT_EQ(string_of(file.bytes(t)), string_of(big.bytes()));
  EXPECT_EQ(string_of(file.bytes(*file.header().find("small"))), string_of(small.bytes()));
}

TEST(SafetensorsFile, RefusesATensorInfoFromElsewhere) {
  TempDir dir;
  write_file(dir / "a.safetensors", {sample("w", "F32", {2}, 0)});
  const st::File file = st::File::open(dir / "a.safetensors");
  st::TensorInfo foreign = *file.header().find("w");
  foreign.offset = 4;
  expect_names(error_of([&] { (void)file.bytes(foreign); }), {"a.safetensors", "'w'"});
  file.release(foreign);  // ignored, never a fault
}

TEST(SafetensorsFile, MissingFileAndFolder) {
  TempDir dir;
  expect_names(error_of([&] { st::File::open(dir / "none.safetensors"); }), {"none.safetensors"});
  expect_names(error_of([&] { st::File::open(dir.path()); }), {"not a regular file"});
}

// ---------------------------------------------------------------------------------------------
// Corrupt headers: one rule per test.

TEST(SafetensorsCorrupt, ShorterThanTheLength) {
  refused("", {"0 bytes"});
  refused(std::string_view("\x10\0\0\0\0", 5), {"5 bytes", "too short"});
}

TEST(SafetensorsCorrupt, HeaderLengthPastTheEnd) {
  refused(with_length(1000, "{}"), {"1000", "past the end"});
  refused(with_length(3, "{}"), {"past the end"});
  // Through parse_header directly: N = file_size - 8 + 1.
  const std::string bytes = with_length(3, "{} ");
  expect_names(error_of([&] { st::parse_header(bytes_of(bytes), 10, "x.safetensors"); }), {"x.safetensors"});
}

TEST(SafetensorsCorrupt, HeaderLengthOverTheLimit) {
  refused(with_length(100'000'001, "{}"), {"100000001", "limit"});
  refused(with_length(~std::uint64_t{0}, "{}"), {"limit"});
}

TEST(SafetensorsCorrupt, HeaderNotJson) {
  refused(craft(R"({"w": )"), {"not valid JSON"});
  refused(craft("\x01\x02\xff garbage"), {"not valid JSON"});
  refused(craft(R"({"w": {}} trailing)"), {"not valid JSON"});
  refused(craft("{\"\xff\": {}}"), {"not valid JSON"});  // not UTF-8
}

TEST(SafetensorsCorrupt, HeaderNotAnObject) {
  refused(craft("[1, 2]"), {"not a JSON object"});
  refused(craft(R"("text")"), {"not a JSON object"});
  refused(craft("null"), {"not a JSON object"});
}

TEST(SafetensorsCorrupt, EntryNotAnObject) {
  refused(craft(R"({"w": 5})"), {"'w'", "not an object"});
  refused(craft(R"({"w": [1, 2]})"), {"'w'", "not an object"});
}

TEST(SafetensorsCorrupt, EntryLacksAKey) {
  refused(craft(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4), {"'w'", "'dtype'"});
  refused(craft(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4), {"'w'", "'shape'"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": [1]}})", 4), {"'w'", "'data_offsets'"});
}

TEST(SafetensorsCorrupt, EntryHasAnUnknownKey) {
  refused(craft(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "order": "big"}})", 4),
          {"'w'", "'order'"});
}

TEST(SafetensorsCorrupt, EntryKeysOfTheWrongType) {
  refused(craft(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4), {"'w'", "'dtype'", "string"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})", 4), {"'w'", "'shape'", "list"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": {}, "data_offsets": [0, 4]}})", 4), {"'w'", "'shape'"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})", 4), {"'w'", "'data_offsets'"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 4), {"'w'", "'data_offsets'"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}})", 4), {"'w'", "'data_offsets'"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})", 4),
          {"'w'", "data_offsets[1]", "not an integer"});
  refused(craft(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4),
          {"'w'", "data_offsets[0]", "negative"});
}

TEST(SafetensorsCorrupt, UnknownDtype) {
  refused(craft(R"({"w": {"dtype": "F7", "shape": [1], "data_offsets": [0, 4]}})", 4), {"'w'", "'F7'", "BF16"});
  refused(craft(R"({"w": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}})", 4), {"'w'", "'f32'"});
}

TEST(SafetensorsCorrupt, ShapeEntriesNegativeOrNotIntegers) {
  refused(craft(R"({"w": )" + entry("F32", "[2, -1]", 0, 8) + "}", 8), {"'w'", "shape entry 1", "negative"});
  refused(craft(R"({"w": )" + entry("F32", "[1.5]", 0, 8) + "}", 8), {"'w'", "shape entry 0", "not an integer"});
  refused(craft(R"({"w": )" + entry("F32", "[2.0]", 0, 8) + "}", 8), {"'w'", "not an integer"});
  refused(craft(R"({"w": )" + entry("F32", R"(["2"])", 0, 8) + "}", 8), {"'w'", "not an integer"});
  refused(craft(R"({"w": )" + entry("F32", "[null]", 0, 8) + "}", 8), {"'w'", "not an integer"});
  refused(craft(R"({"w": )" + entry("F32", "[9223372036854775808]", 0, 8) + "}", 8), {"'w'", "larger"});
  refused(craft(R"({"w": )" + entry("F32", "[[2]]", 0, 8) + "}", 8), {"deeper"});
}

TEST(SafetensorsCorrupt, ByteCountOverflows) {
  // numel fits in 64 bits, numel x 8 does not.
  refused(craft(R"({"w": )" + entry("F64", "[2305843009213693952]", 0, 8) + "}", 8),
          {"'w'", "more bytes than fit in 64 bits"});
  // numel itself overflows.
  refused(craft(R"({"w": )" + entry("U8", "[4294967296, 4294967296]", 0, 8) + "}", 8), {"'w'", "64 bits"});
  // A zero dimension makes it empty, but the other dimensions' product must still fit.
  refused(craft(R"({"w": )" + entry("U8", "[0, 4294967296, 4294967296]", 0, 0) + "}"), {"'w'", "64 bits"});
}

TEST(SafetensorsCorrupt, OffsetsOutsideTheDataSection) {
  refused(craft(R"({"w": )" + entry("F32", "[2]", 0, 8) + "}", 4), {"'w'", "[0, 8]", "past the end", "4 bytes"});
  refused(craft(R"({"w": )" + entry("U8", "[8]", 0, 18446744073709551615ull) + "}", 8), {"'w'", "past the end"});
}

TEST(SafetensorsCorrupt, BeginAfterEnd) {
  refused(craft(R"({"w": )" + entry("F32", "[1]", 8, 4) + "}", 8), {"'w'", "[8, 4]"});
}

TEST(SafetensorsCorrupt, SizeDoesNotMatchTheShape) {
  const std::string name = "model.layers.0.mlp.up_proj.weight";
  const std::string message =
      refused(craft(fmt::format(R"({{"{}": {}}})", name, entry("BF16", "[8, 8]", 0, 100)), 100));
  EXPECT_NE(message.find("bad.safetensors: tensor 'model.layers.0.mlp.up_proj.weight': data_offsets [0, 100] hold "
                         "100 bytes but BF16 x [8, 8] needs 128"),
            std::string::npos)
      << message;
  refused(craft(R"({"s": )" + entry("F32", "[]", 0, 0) + "}"), {"'s'", "needs 4"});
  refused(craft(R"({"z": )" + entry("F32", "[0, 3]", 0, 4) + "}", 4), {"'z'", "needs 0"});
}

TEST(SafetensorsCorrupt, TensorsOverlap) {
  refused(craft(R"({"a": )" + entry("F32", "[2]", 0, 8) + R"(, "b": )" + entry("F32", "[2]", 4, 12) + "}", 12),
          {"'a'", "'b'", "overlap"});
  // The same range twice.
  refused(craft(R"({"a": )" + entry("F32", "[2]", 0, 8) + R"(, "b": )" + entry("I32", "[2]", 0, 8) + "}", 8),
          {"'a'", "'b'", "overlap"});
  // A zero-size tensor inside another one.
  refused(craft(R"({"a": )" + entry("F32", "[2]", 0, 8) + R"(, "z": )" + entry("F32", "[0]", 4, 4) + "}", 8),
          {"'a'", "'z'", "overlap"});
}

TEST(SafetensorsCorrupt, GapsInTheDataSection) {
  refused(craft(R"({"a": )" + entry("F32", "[1]", 0, 4) + R"(, "b": )" + entry("F32", "[1]", 8, 12) + "}", 12),
          {"[4, 8)", "'a'", "'b'", "no tensor"});
  refused(craft(R"({"b": )" + entry("F32", "[1]", 4, 8) + "}", 8), {"[0, 4)", "'b'"});
  refused(craft(R"({"a": )" + entry("F32", "[1]", 0, 4) + "}", 6), {"6 bytes", "end at byte 4"});
  refused(craft("{}", 1), {"1 bytes"});
}

TEST(SafetensorsCorrupt, DuplicateTensorName) {
  refused(craft(R"({"w": )" + entry("F32", "[1]", 0, 4) + R"(, "w": )" + entry("F32", "[1]", 4, 8) + "}", 8),
          {"'w'", "twice"});
  refused(craft(R"({"w": {"dtype": "F32", "dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})", 4),
          {"'w'", "'dtype'", "twice"});
  refused(craft(R"({"__metadata__": {"a": "1", "a": "2"}})"), {"__metadata__", "'a'", "twice"});
}

TEST(SafetensorsCorrupt, MetadataNotAnObjectOfStrings) {
  refused(craft(R"({"__metadata__": "pt"})"), {"__metadata__", "not an object"});
  refused(craft(R"({"__metadata__": ["pt"]})"), {"__metadata__"});
  refused(craft(R"({"__metadata__": {"format": 1}})"), {"__metadata__", "'format'", "not a string"});
  refused(craft(R"({"__metadata__": {"format": {"x": "y"}}})"), {"__metadata__", "'format'"});
  // null is what the official library reads as "no metadata".
  TempDir dir;
  EXPECT_TRUE(st::File::open(dir.put("n.safetensors", craft(R"({"__metadata__": null})"))).header().metadata.empty());
}

TEST(SafetensorsHeader, AcceptsHandMadeScalarsZeroSizeAndWhitespace) {
  const std::string json = R"(  {"z": )" + entry("F32", "[0, 5]", 0, 0) + R"(, "s": )" + entry("F64", "[]", 0, 8) +
                           R"(, "t": )" + entry("U8", "[1, 1, 3]", 8, 11) + R"(, "__metadata__": {"a": "b"}}    )";
  const std::string bytes = craft(json, 11);
  const st::Header h = st::parse_header(bytes_of(bytes), bytes.size(), "ok.safetensors");
  EXPECT_EQ(h.header_size, json.size());
  EXPECT_EQ(h.data_start(), 8 + json.size());
  EXPECT_EQ(h.data_size, 11u);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "z");  // zero-size before the tensor at the same offset
  EXPECT_EQ(h.tensors[1].name, "s");
  EXPECT_EQ(h.tensors[2].name, "t");
  EXPECT_EQ(h.tensors[1].type, DType::f64);
  EXPECT_EQ(h.tensors[2].shape, (Shape{1, 1, 3}));
  EXPECT_EQ(h.tensors[2].offset, 8u);
  EXPECT_EQ(h.tensors[2].size, 3u);
  EXPECT_EQ(h.metadata.at("a"), "b");

  // Only the header needs to be in the prefix; the rest of the file is taken on its size.
  const st::Header again = st::parse_header(bytes_of(bytes).first(8 + json.size()), bytes.size(), "ok");
  EXPECT_EQ(again.tensors.size(), 3u);
  expect_names(error_of([&] { st::parse_header(bytes_of(bytes).first(20), bytes.size(), "short-prefix"); }),
               {"short-prefix"});
}

// ---------------------------------------------------------------------------------------------
// Writer

TEST(SafetensorsWriter, DestroyedWithoutCommitLeavesNoFileAndTheOldOneUntouched) {
  TempDir dir;
  const Sample s = sample("w", "F32", {4}, 0);
  {
    st::Writer w(dir / "new.safetensors", {s.plan}, {});
    w.write(bytes_of(s.bytes));
    EXPECT_EQ(dir.files().size(), 1u);  // the temporary file
  }
  EXPECT_TRUE(dir.files().empty());

  dir.put("old.safetensors", "old content");
  {
    st::Writer w(dir / "old.safetensors", {s.plan}, {});
    w.write(bytes_of(std::string_view(s.bytes).substr(0, 5)));
  }
  EXPECT_EQ(dir.files(), std::vector<std::string>{"old.safetensors"});
  EXPECT_EQ(slurp(dir / "old.safetensors"), "old content");

  // A commit replaces it.
  write_file(dir / "old.safetensors", {s});
  EXPECT_EQ(dir.files(), std::vector<std::string>{"old.safetensors"});
  const st::File replaced = st::File::open(dir / "old.safetensors");
  EXPECT_EQ(string_of(replaced.bytes(*replaced.header().find("w"))), s.bytes);
}

TEST(SafetensorsWriter, TooManyBytesIsAnErrorNamingTheTensor) {
  TempDir dir;
  const fs::path path = dir / "m.safetensors";
  st::Writer w(path, {{"a", "F32", {2}}, {"b", "I8", {3}}}, {});
  expect_names(error_of([&] { w.write(bytes_of("123456789")); }), {"m.safetensors", "'a'", "9 bytes", "8"});
  w.write(bytes_of("12345"));
  // A piece may not run into the next tensor either.
  expect_names(error_of([&] { w.write(bytes_of("6789")); }), {"'a'", "needs only 3 more"});
  w.write(bytes_of("678"));
  w.write(bytes_of("xyz"));
  expect_names(error_of([&] { w.write(bytes_of("!")); }), {"m.safetensors", "after the last tensor"});
  w.commit();
  expect_names(error_of([&] { w.write(bytes_of("!")); }), {"m.safetensors", "committed"});
  const st::File file = st::File::open(path);
  EXPECT_EQ(string_of(file.bytes(*file.header().find("b"))), "xyz");
}

TEST(SafetensorsWriter, TooFewBytesFailsCommitNamingTheFirstIncompleteTensor) {
  TempDir dir;
  {
    st::Writer w(dir / "m.safetensors", {{"a", "F32", {2}}, {"b", "I8", {3}}, {"c", "I8", {1}}}, {});
    w.write(bytes_of("12345678"));
    w.write(bytes_of("x"));
    expect_names(error_of([&] { w.commit(); }), {"m.safetensors", "'b'", "1 of the 3 bytes"});
  }
  {
    st::Writer w(dir / "m.safetensors", {{"a", "F32", {2}}}, {});
    expect_names(error_of([&] { w.commit(); }), {"'a'", "0 of the 8 bytes"});
  }
  EXPECT_TRUE(dir.files().empty());
}

TEST(SafetensorsWriter, UnwritableDestination) {
  TempDir dir;
  const fs::path missing = dir / "no-such-folder" / "m.safetensors";
  expect_names(error_of([&] { st::Writer(missing, {{"a", "F32", {2}}}, {}); }), {missing.string()});
  EXPECT_TRUE(dir.files().empty());

  // A folder where the file should go: found at the rename, and the temporary file goes away.
  fs::create_directory(dir / "taken.safetensors");
  {
    st::Writer w(dir / "taken.safetensors", {{"a", "I8", {1}}}, {});
    w.write(bytes_of("1"));
    expect_names(error_of([&] { w.commit(); }), {"taken.safetensors"});
  }
  EXPECT_EQ(dir.files(), std::vector<std::string>{"taken.safetensors"});
}

TEST(SafetensorsWriter, RefusesBadPlans) {
  TempDir dir;
  const fs::path path = dir / "m.safetensors";
  expect_names(error_of([&] { st::Writer(path, {{"a", "F7", {2}}}, {}); }), {"m.safetensors", "'a'", "'F7'"});
  expect_names(error_of([&] { st::Writer(path, {{"a", "F32", {2}}, {"a", "F32", {1}}}, {}); }), {"'a'", "twice"});
  expect_names(error_of([&] { st::Writer(path, {{"__metadata__", "F32", {2}}}, {}); }), {"reserved"});
  expect_names(error_of([&] { st::Writer(path, {{"a", "F32", {-2}}}, {}); }), {"'a'", "negative"});
  expect_names(error_of([&] { st::Writer(path, {{"a", "F64", {2305843009213693952}}}, {}); }), {"'a'", "64 bits"});
  expect_names(error_of([&] { st::Writer(path, {{"bad\xff", "F32", {2}}}, {}); }), {"UTF-8"});
  expect_names(error_of([&] { st::file_size({{"a", "X", {}}}, {}); }), {"'a'", "'X'"});
  EXPECT_TRUE(dir.files().empty());
}

TEST(SafetensorsWriter, MovedWriterKeepsWriting) {
  TempDir dir;
  st::Writer a(dir / "m.safetensors", {{"a", "I8", {2}}}, {});
  a.write(bytes_of("1"));
  st::Writer b = std::move(a);
  b.write(bytes_of("2"));
  b.commit();
  const st::File f = st::File::open(dir / "m.safetensors");
  EXPECT_EQ(string_of(f.bytes(f.header().tensors[0])), "12");
}

// The written file read the way the safetensors library reads it, by Python's json module and
// numpy.frombuffer (Debian's /usr/bin/python3; skipped without NumPy).
TEST(SafetensorsWriter, PythonReadsWhatWasWritten) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  TempDir dir;
  const fs::path path = dir / "py.safetensors";
  const std::vector<float> f32{0.5f, -1.0f, 2.25f, 3.0f, -4.5f, 1e-3f};
  const std::vector<std::int64_t> i64{-1, std::int64_t{1} << 40};
  const std::vector<std::uint16_t> f16{0x3C00, 0xC000, 0x0000};  // 1.0, -2.0, 0.0
  const std::vector<std::uint8_t> odd{1, 2, 3};
  {
    st::Writer w(path,
                 {{"w", "F32", {2, 3}}, {"odd", "U8", {3}}, {"i", "I64", {2}}, {"h", "F16", {3}}, {"e", "F32", {0, 2}}},
                 {{"format", "pt"}});
    w.write(std::as_bytes(std::span(f32)));
    w.write(std::as_bytes(std::span(odd)));
    w.write(std::as_bytes(std::span(i64)));
    w.write(std::as_bytes(std::span(f16)));
    w.commit();
  }
  const fs::path script = dir / "check.py";
  dir.put("check.py", R"PY(
import json, struct, sys
try:
    import numpy as np
except ImportError:
    sys.exit(77)
raw = open(sys.argv[1], "rb").read()
n, = struct.unpack("<Q", raw[:8])
assert (8 + n) % 8 == 0, n
pairs = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=lambda p: p)
assert pairs[0][0] == "__metadata__", pairs[0]
header = dict(pairs)
assert header.pop("__metadata__") == [("format", "pt")]
data = raw[8 + n:]
kinds = {"F32": np.float32, "U8": np.uint8, "I64": np.int64, "F16": np.float16}
arrays, end = {}, 0
for name, info in header.items():
    info = dict(info)
    begin, stop = info["data_offsets"]
    assert begin == end, (name, begin, end)
    end = stop
    a = np.frombuffer(data[begin:stop], dtype=np.dtype(kinds[info["dtype"]]).newbyteorder("<"))
    arrays[name] = a.reshape(info["shape"])
assert end == len(data)
np.testing.assert_array_equal(arrays["w"], np.array([[0.5, -1.0, 2.25], [3.0, -4.5, 1e-3]], dtype=np.float32))
np.testing.assert_array_equal(arrays["odd"], [1, 2, 3])
np.testing.assert_array_equal(arrays["i"], [-1, 1 << 40])
np.testing.assert_array_equal(arrays["h"], [1.0, -2.0, 0.0])
assert arrays["e"].shape == (0, 2)
)PY");
  const int status = std::system(fmt::format("/usr/bin/python3 '{}' '{}'", script.string(), path.string()).c_str());
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no numpy";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---------------------------------------------------------------------------------------------
// Shard planning

TEST(SafetensorsShards, NamesLikeHuggingFace) {
  const std::vector<st::PlannedTensor> three{{"a", "F32", {25}}, {"b", "F32", {25}}, {"c", "F32", {25}}};
  const st::ShardPlan plan = st::plan_shards(three, 100);
  EXPECT_EQ(plan.file_names,
            (std::vector<std::string>{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors"}));
  EXPECT_EQ(plan.shard_of, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(st::plan_shards(three, 300).file_names, std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(st::plan_shards(three, 300).shard_of, (std::vector<std::size_t>{0, 0, 0}));
  EXPECT_EQ(st::plan_shards(three, 200, "adapter").file_names,
            (std::vector<std::string>{"adapter-00001-of-00002.safetensors", "adapter-00002-of-00002.safetensors"}));
  EXPECT_EQ(st::plan_shards({}, 100).file_names, std::vector<std::string>{"model.safetensors"});
  EXPECT_TRUE(st::plan_shards({}, 100).shard_of.empty());
}

TEST(SafetensorsShards, SplitsInOrderAndGivesOversizedTensorsTheirOwnShard) {
  // Data sizes 40, 40, 40, 250, 10, 0, 60, 41.
  const std::vector<st::PlannedTensor> tensors{{"a", "F32", {10}},   {"b", "I8", {40}}, {"c", "I16", {20}},
                                               {"big", "U8", {250}}, {"d", "I8", {10}}, {"z", "F32", {0}},
                                               {"e", "I8", {60}},    {"f", "I8", {41}}};
  const st::ShardPlan plan = st::plan_shards(tensors, 100);
  EXPECT_EQ(plan.shard_of, (std::vector<std::size_t>{0, 0, 1, 2, 3, 3, 3, 4}));
  EXPECT_EQ(plan.file_names.size(), 5u);
  EXPECT_EQ(plan.file_names[4], "model-00005-of-00005.safetensors");
  // The oversized one first: still alone.
  EXPECT_EQ(st::plan_shards({{"big", "U8", {250}}, {"x", "U8", {1}}}, 100).shard_of, (std::vector<std::size_t>{0, 1}));
  expect_names(error_of([&] { st::plan_shards({{"a", "Q4", {2}}}, 100); }), {"'a'", "'Q4'"});
}

// ---------------------------------------------------------------------------------------------
// Index

TEST(SafetensorsIndex, ParsesWhatHuggingFaceWrites) {
  const std::string json = R"({
  "metadata": {"total_size": 123456, "format": "pt", "nested": {"a": [1, 2.5, null]}},
  "weight_map": {
    "lm_head.weight": "model-00002-of-00002.safetensors",
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors"
  }
})";
  const st::Index index = st::parse_index(json, "model.safetensors.index.json");
  EXPECT_EQ(index.weight_map.size(), 2u);
  EXPECT_EQ(index.weight_map.at("lm_head.weight"), "model-00002-of-00002.safetensors");
  EXPECT_EQ(index.total_size, 123456u);
  EXPECT_NE(index.metadata_json.find(R"("nested":{"a":[1,2.5,null]})"), std::string::npos) << index.metadata_json;

  const std::string text = st::serialize_index(index);
  EXPECT_TRUE(text.ends_with("}\n"));
  const st::Index again = st::parse_index(text, "again");
  EXPECT_EQ(again.weight_map, index.weight_map);
  EXPECT_EQ(again.total_size, index.total_size);
  EXPECT_EQ(again.metadata_json, index.metadata_json);

  // total_size set by the caller lands in the metadata.
  st::Index built;
  built.weight_map = {{"w", "model.safetensors"}};
  built.total_size = 42;
  const st::Index read = st::parse_index(st::serialize_index(built), "built");
  EXPECT_EQ(read.total_size, 42u);
  EXPECT_EQ(read.weight_map, built.weight_map);
}

TEST(SafetensorsIndex, OptionalPartsAndOddTotalSize) {
  const st::Index bare = st::parse_index(R"({"weight_map": {}})", "i.json");
  EXPECT_TRUE(bare.weight_map.empty());
  EXPECT_FALSE(bare.total_size);
  EXPECT_EQ(bare.metadata_json, "{}");
  EXPECT_FALSE(st::parse_index(R"({"metadata": {"total_size": 1.5e9}, "weight_map": {}})", "i").total_size);
  EXPECT_FALSE(st::parse_index(R"({"metadata": {"total_size": "12"}, "weight_map": {}})", "i").total_size);
  EXPECT_FALSE(st::parse_index(R"({"metadata": {"total_size": -12}, "weight_map": {}})", "i").total_size);
}

TEST(SafetensorsIndex, RefusesBrokenIndexes) {
  const auto refused_index = [](std::string_view json, std::initializer_list<std::string_view> parts) {
    const std::string message = error_of([&] { st::parse_index(json, "idx.json"); });
    expect_names(message, {"idx.json"});
    expect_names(message, parts);
  };
  refused_index("{", {"not valid JSON"});
  refused_index("[]", {"not a JSON object"});
  refused_index(R"({"metadata": {}})", {"'weight_map'"});
  refused_index(R"({"weight_map": ["a"]})", {"'weight_map'"});
  refused_index(R"({"weight_map": {"w": 1}})", {"'w'"});
  refused_index(R"({"weight_map": {"w": "a.safetensors", "w": "b.safetensors"}})", {"'w'", "twice"});
  refused_index(R"({"weight_map": {"w": "../model.safetensors"}})", {"'w'", "path"});
  refused_index(R"({"weight_map": {"w": "sub/model.safetensors"}})", {"'w'", "path"});
  refused_index(R"({"weight_map": {"w": "/etc/passwd"}})", {"'w'", "path"});
  refused_index(R"({"weight_map": {"w": ".."}})", {"'w'"});
  refused_index(R"({"weight_map": {"w": ""}})", {"'w'", "empty"});
  refused_index(R"({"weight_map": {"w": "a\u0000b"}})", {"'w'", "NUL"});
  refused_index(R"({"metadata": 5, "weight_map": {}})", {"'metadata'"});
  refused_index(R"({"metadata": {"a": 1, "a": 2}, "weight_map": {}})", {"'a'", "twice"});
  refused_index(std::string(100, '[') + std::string(100, ']'), {"deeper"});
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

// A two-shard checkpoint written as a converter would: plan, write each shard, write the index.
struct TwoShards {
  TempDir dir;
  std::vector<Sample> samples{sample("embed", "BF16", {4, 8}, 1), sample("layer.0.w", "F32", {8, 4}, 2),
                              sample("layer.0.b", "F32", {8}, 3), sample("head", "F16", {16}, 4)};
  st::ShardPlan plan;

  TwoShards() {
    plan = st::plan_shards(plans_of(samples), 200);
    EXPECT_EQ(plan.file_names.size(), 2u);
    st::Index index;
    std::uint64_t total = 0;
    for (std::size_t shard = 0; shard < plan.file_names.size(); ++shard) {
      std::vector<Sample> mine;
      for (std::size_t k = 0; k < samples.size(); ++k) {
        if (plan.shard_of[k] != shard) continue;
        mine.push_back(samples[k]);
        index.weight_map[samples[k].plan.name] = plan.file_names[shard];
        total += samples[k].bytes.size();
      }
      write_file(dir / plan.file_names[shard], mine, {{"format", "pt"}});
    }
    index.total_size = total;
    dir.put("model.safetensors.index.json", st::serialize_index(index));
  }
  fs::path index_path() const { return dir / "model.safetensors.index.json"; }
  void rewrite_index(const std::map<std::string, std::string>& weight_map) const {
    st::Index index;
    index.weight_map = weight_map;
    dir.put("model.safetensors.index.json", st::serialize_index(index));
  }
  std::map<std::string, std::string> weight_map() const {
    return st::parse_index(slurp(index_path()), "index").weight_map;
  }
};

void expect_checkpoint(const st::Checkpoint& c, const TwoShards& two) {
  ASSERT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.files()[0].path().filename(), "model-00001-of-00002.safetensors");
  EXPECT_EQ(c.files()[1].path().filename(), "model-00002-of-00002.safetensors");
  ASSERT_TRUE(c.index());
  EXPECT_EQ(c.metadata().at("format"), "pt");
  ASSERT_EQ(c.tensors().size(), two.samples.size());
  std::uint64_t total = 0;
  for (std::size_t k = 0; k < two.samples.size(); ++k) {
    const auto& e = c.tensors()[k];  // writer order is shard order is offset order
    EXPECT_EQ(e.info->name, two.samples[k].plan.name);
    EXPECT_EQ(e.file, two.plan.shard_of[k]);
    EXPECT_EQ(string_of(c.files()[e.file].bytes(*e.info)), two.samples[k].bytes);
    total += two.samples[k].bytes.size();
  }
  EXPECT_EQ(c.total_bytes(), total);
  EXPECT_EQ(c.index()->total_size, total);
}

TEST(SafetensorsCheckpoint, OpensTwoShardsByIndexAndByFolder) {
  const TwoShards two;
  expect_checkpoint(st::Checkpoint::open(two.index_path()), two);
  expect_checkpoint(st::Checkpoint::open(two.dir.path()), two);
  // Moving a checkpoint keeps its entries valid.
  st::Checkpoint moved = st::Checkpoint::open(two.index_path());
  const st::Checkpoint c = std::move(moved);
  expect_checkpoint(c, two);
  // Another index name, when it is the only one.
  fs::rename(two.index_path(), two.dir / "other.safetensors.index.json");
  expect_checkpoint(st::Checkpoint::open(two.dir.path()), two);
}

TEST(SafetensorsCheckpoint, SingleFileAndFolderOfOneFile) {
  TempDir dir;
  const Sample s = sample("w", "I32", {3}, 0);
  write_file(dir / "model.safetensors", {s}, {{"k", "v"}});
  for (const fs::path& p : {dir / "model.safetensors", dir.path()}) {
    const st::Checkpoint c = st::Checkpoint::open(p);
    ASSERT_EQ(c.files().size(), 1u);
    EXPECT_FALSE(c.index());
    EXPECT_EQ(c.metadata().at("k"), "v");
    ASSERT_EQ(c.tensors().size(), 1u);
    EXPECT_EQ(string_of(c.files()[0].bytes(*c.tensors()[0].info)), s.bytes);
    EXPECT_EQ(c.total_bytes(), 12u);
  }
}

TEST(SafetensorsCheckpoint, FoldersWithoutAnObviousChoice) {
  TempDir dir;
  expect_names(error_of([&] { st::Checkpoint::open(dir.path()); }), {dir.path().string(), "no .safetensors"});
  expect_names(error_of([&] { st::Checkpoint::open(dir / "nothing-here"); }), {"nothing-here"});
  write_file(dir / "a.safetensors", {sample("w", "I8", {1}, 0)});
  write_file(dir / "b.safetensors", {sample("w", "I8", {1}, 0)});
  expect_names(error_of([&] { st::Checkpoint::open(dir.path()); }), {"a.safetensors", "b.safetensors", "no index"});
  dir.put("x.safetensors.index.json", R"({"weight_map": {"w": "a.safetensors"}})");
  dir.put("y.safetensors.index.json", R"({"weight_map": {"w": "b.safetensors"}})");
  expect_names(error_of([&] { st::Checkpoint::open(dir.path()); }),
               {"x.safetensors.index.json", "y.safetensors.index.json"});
  // model.safetensors.index.json wins over the others.
  dir.put("model.safetensors.index.json", R"({"weight_map": {"w": "b.safetensors"}})");
  EXPECT_EQ(st::Checkpoint::open(dir.path()).files()[0].path().filename(), "b.safetensors");
}

TEST(SafetensorsCheckpoint, MissingShard) {
  const TwoShards two;
  fs::remove(two.dir / "model-00002-of-00002.safetensors");
  expect_names(error_of([&] { st::Checkpoint::open(two.index_path()); }),
               {"model.safetensors.index.json", "'model-00002-of-00002.safetensors'", "does not exist"});
}

TEST(SafetensorsCheckpoint, TensorInIndexButNotInItsShard) {
  const TwoShards two;
  auto map = two.weight_map();
  map["ghost"] = "model-00001-of-00002.safetensors";
  two.rewrite_index(map);
  expect_names(error_of([&] { st::Checkpoint::open(two.index_path()); }),
               {"model.safetensors.index.json", "'ghost'", "model-00001-of-00002.safetensors"});
}

TEST(SafetensorsCheckpoint, TensorInShardButNotInIndex) {
  const TwoShards two;
  auto map = two.weight_map();
  map.erase("head");
  two.rewrite_index(map);
  expect_names(error_of([&] { st::Checkpoint::open(two.index_path()); }),
               {"model-00002-of-00002.safetensors", "'head'", "model.safetensors.index.json"});
}

TEST(SafetensorsCheckpoint, TensorInTheWrongShard) {
  const TwoShards two;
  auto map = two.weight_map();
  map["head"] = "model-00001-of-00002.safetensors";
  two.rewrite_index(map);
  expect_names(error_of([&] { st::Checkpoint::open(two.index_path()); }),
               {"model-00002-of-00002.safetensors", "'head'", "model.safetensors.index.json"});
}

TEST(SafetensorsCheckpoint, TensorListedTwice) {
  const TwoShards two;
  // Twice in the index's weight_map.
  std::string text = slurp(two.index_path());
  const std::string line = R"("head": "model-00002-of-00002.safetensors")";
  ASSERT_NE(text.find(line), std::string::npos) << text;
  text.replace(text.find(line), line.size(), line + ",\n    " + R"("head": "model-00001-of-00002.safetensors")");
  two.dir.put("model.safetensors.index.json", text);
  expect_names(error_of([&] { st::Checkpoint::open(two.index_path()); }),
               {"model.safetensors.index.json", "'head'", "twice"});

  // In two shards.
  const TwoShards again;
  write_file(again.dir / "model-00002-of-00002.safetensors", {again.samples[0], again.samples[2], again.samples[3]});
  expect_names(error_of([&] { st::Checkpoint::open(again.index_path()); }),
               {"'embed'", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"});
}

TEST(SafetensorsCheckpoint, ShardNameWithAPath) {
  const TwoShards two;
  fs::create_directory(two.dir / "sub");
  write_file(two.dir / "sub" / "x.safetensors", {sample("x", "I8", {1}, 0)});
  two.rewrite_index({{"x", "sub/x.safetensors"}});
  expect_names(error_of([&] { st::Checkpoint::open(two.index_path()); }),
               {"model.safetensors.index.json", "'x'", "'sub/x.safetensors'"});
}

TEST(SafetensorsCheckpoint, CorruptShardNamesTheShard) {
  const TwoShards two;
  two.dir.put("model-00002-of-00002.safetensors", craft("{}", 3));
  expect_names(error_of([&] { st::Checkpoint::open(two.index_path()); }), {"model-00002-of-00002.safetensors"});
}

}  // namespace
