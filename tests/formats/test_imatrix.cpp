// Importance matrices (llama.cpp's imatrix files): GGUF files written with zeropoint's gguf::Writer
// and legacy .dat files written by hand, read into the weights llama-quantize computes from them
// (in_sum2 / counts per matrix, 1 for a matrix without tokens; legacy values / ncall), the size
// check llama-quantize applies per tensor, and one hostile file per rule: each refused with a
// one-line zp::Error naming the file, the entry and the byte offset.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "formats/file_test_util.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"
#include "zeropoint/formats/imatrix.hpp"

namespace {

namespace fs = std::filesystem;
using zp::testing::error_of;
using zp::testing::slurp;
using zp::testing::TempDir;
namespace gguf = zp::gguf;
using zp::ggml::Type;
using zp::imatrix::Entry;
using zp::imatrix::Format;
using zp::imatrix::ImportanceMatrix;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A refusal: one line, naming the file, and containing each of `parts`.
void expect_refused(const fs::path& path, std::initializer_list<std::string_view> parts) {
  const std::string msg = error_of([&] { ImportanceMatrix::read(path); });
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  for (std::string_view part : parts) EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' in: " << msg;
  // The same bytes from memory are refused the same way.
  const std::string again = error_of([&] { ImportanceMatrix::parse(bytes_of(slurp(path)), path.string()); });
  EXPECT_EQ(again, msg);
}

// ---------------------------------------------------------------------------------------------
// GGUF files

struct Tensor {
  std::string name;
  std::vector<std::uint64_t> dims;
  std::vector<float> values;
  Type type = Type::f32;
};

gguf::Metadata imatrix_metadata(std::vector<std::string> datasets = {"wiki.train.raw"}, std::uint32_t chunks = 100,
                                std::uint32_t chunk_size = 512) {
  gguf::Metadata md;
  md.set("general.type", gguf::Value("imatrix"));
  md.set("imatrix.datasets", gguf::Value(gguf::Array(std::move(datasets))));
  md.set("imatrix.chunk_count", gguf::Value(chunks));
  md.set("imatrix.chunk_size", gguf::Value(chunk_size));
  return md;
}

fs::path write_gguf(const fs::path& path, const gguf::Metadata& md, const std::vector<Tensor>& tensors) {
  std::vector<gguf::PlannedTensor> plan;
  for (const Tensor& t : tensors) plan.push_back({t.name, t.dims, t.type});
  gguf::Writer w(path, md, plan);
  for (const Tensor& t : tensors) {
    if (t.type == Type::f32) {
      w.write(t.name, {reinterpret_cast<const std::uint8_t*>(t.values.data()), t.values.size() * 4});
    } else {  // f16 zeros, as many as the values
      std::vector<std::uint8_t> zeros(t.values.size() * 2);
      w.write(t.name, zeros);
    }
  }
  w.commit();
  return path;
}

// NAME.in_sum2 [row, mats] and NAME.counts [1, mats], as llama-imatrix writes them.
void add_pair(std::vector<Tensor>& ts, const std::string& name, std::uint64_t row, std::vector<float> sums,
              std::vector<float> counts) {
  const std::uint64_t mats = counts.size();
  ts.push_back({name + ".in_sum2", {row, mats}, std::move(sums)});
  ts.push_back({name + ".counts", {1, mats}, std::move(counts)});
}

TEST(Imatrix, GgufWeightsAreSumsOverCounts) {
  TempDir dir;
  std::vector<Tensor> ts;
  add_pair(ts, "blk.0.attn_q.weight", 3, {2, 4, 6}, {2});
  add_pair(ts, "blk.0.ffn_down.weight", 2, {1, 3}, {4});
  const auto path = write_gguf(dir / "model.imatrix", imatrix_metadata({"a.txt", "b.txt"}, 7, 256), ts);

  const ImportanceMatrix m = ImportanceMatrix::read(path);
  EXPECT_EQ(m.format(), Format::gguf);
  EXPECT_EQ(zp::imatrix::format_name(m.format()), "gguf");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"blk.0.attn_q.weight", "blk.0.ffn_down.weight"}));
  EXPECT_EQ(m.datasets(), (std::vector<std::string>{"a.txt", "b.txt"}));
  EXPECT_EQ(m.chunk_count(), 7u);
  EXPECT_EQ(m.chunk_size(), 256u);

  const Entry* q = m.find("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->weights, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(q->row_length, 3u);
  EXPECT_EQ(q->matrices, 1u);
  EXPECT_EQ(m.find("blk.0.ffn_down.weight")->weights, (std::vector<float>{0.25f, 0.75f}));
  EXPECT_EQ(m.find("blk.0.attn_k.weight"), nullptr);
  EXPECT_EQ(m.find("blk.0.attn_q.weight.in_sum2"), nullptr);
}

TEST(Imatrix, GgufDividesPerMatrixAndGivesOneToMatricesWithoutTokens) {
  TempDir dir;
  std::vector<Tensor> ts;
  // Four experts of two columns: counts 4, 0 (never routed to), -2 and NaN (not > 0 either).
  add_pair(ts, "blk.0.ffn_up_exps.weight", 2, {4, 8, 5, 7, 9, 9, 3, 3}, {4, 0, -2, kNaN});
  const auto path = write_gguf(dir / "moe.imatrix", imatrix_metadata(), ts);
  const ImportanceMatrix m = ImportanceMatrix::read(path);
  const Entry* e = m.find("blk.0.ffn_up_exps.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->row_length, 2u);
  EXPECT_EQ(e->matrices, 4u);
  EXPECT_EQ(e->weights, (std::vector<float>{1, 2, 1, 1, 1, 1, 1, 1}));
}

TEST(Imatrix, GgufDivisionIsOneFloatDivision) {
  TempDir dir;
  std::vector<Tensor> ts;
  const std::vector<float> sums = {1.0f, 0.1f, 3.3333333f, 1e-30f, 7.0f};
  add_pair(ts, "w", 5, sums, {3.0f});
  const auto path = write_gguf(dir / "div.imatrix", imatrix_metadata(), ts);
  const ImportanceMatrix m = ImportanceMatrix::read(path);
  const Entry* e = m.find("w");
  ASSERT_NE(e, nullptr);
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const float expected = sums[i] / 3.0f;
    EXPECT_EQ(std::memcmp(&e->weights[i], &expected, 4), 0) << i;
  }
}

TEST(Imatrix, GgufIgnoresOtherTensorsAndKeepsFileOrder) {
  TempDir dir;
  std::vector<Tensor> ts;
  ts.push_back({"z.weight.in_sum", {2, 1}, {9, 9}});  // activation sums some versions add
  add_pair(ts, "z.weight", 2, {2, 2}, {2});
  ts.push_back({"stats", {4}, {1, 2, 3, 4}});
  // counts before in_sum2 is fine too
  ts.push_back({"a.weight.counts", {1, 1}, {1}});
  ts.push_back({"a.weight.in_sum2", {1, 1}, {5}});
  const auto path = write_gguf(dir / "extra.imatrix", imatrix_metadata(), ts);
  const ImportanceMatrix m = ImportanceMatrix::read(path);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"z.weight", "a.weight"}));
  EXPECT_EQ(m.find("z.weight")->weights, (std::vector<float>{1, 1}));
  EXPECT_EQ(m.find("a.weight")->weights, (std::vector<float>{5}));
}

TEST(Imatrix, GgufEmptyDatasetListIsAccepted) {
  TempDir dir;
  std::vector<Tensor> ts;
  add_pair(ts, "w", 1, {6}, {3});
  const ImportanceMatrix m = ImportanceMatrix::read(write_gguf(dir / "nods.imatrix", imatrix_metadata({}, 0, 0), ts));
  EXPECT_TRUE(m.datasets().empty());
  EXPECT_EQ(m.chunk_count(), 0u);
  EXPECT_EQ(m.find("w")->weights, (std::vector<float>{2}));
}

TEST(Imatrix, FormatComesFromContentNotExtension) {
  TempDir dir;
  std::vector<Tensor> ts;
  add_pair(ts, "w", 1, {3}, {3});
  const auto gguf_path = write_gguf(dir / "imatrix.dat", imatrix_metadata(), ts);
  EXPECT_EQ(ImportanceMatrix::read(gguf_path).format(), Format::gguf);
  std::string legacy;
  for (std::int32_t x : {1, 1}) legacy.append(reinterpret_cast<const char*>(&x), 4);
  legacy += "w";
  for (std::int32_t x : {1, 1}) legacy.append(reinterpret_cast<const char*>(&x), 4);
  const float v = 2;
  legacy.append(reinterpret_cast<const char*>(&v), 4);
  const auto legacy_path = dir.put("legacy.gguf", legacy);
  EXPECT_EQ(ImportanceMatrix::read(legacy_path).format(), Format::legacy);
}

TEST(Imatrix, ReadAndParseAgree) {
  TempDir dir;
  std::vector<Tensor> ts;
  add_pair(ts, "blk.3.attn_v.weight", 4, {1, 2, 3, 4, 8, 8, 8, 8}, {1, 8});
  const auto path = write_gguf(dir / "m.imatrix", imatrix_metadata(), ts);
  const ImportanceMatrix a = ImportanceMatrix::read(path);
  const std::string bytes = slurp(path);
  const ImportanceMatrix b = ImportanceMatrix::parse(bytes_of(bytes), "m.imatrix");
  ASSERT_EQ(a.names(), b.names());
  EXPECT_EQ(a.find("blk.3.attn_v.weight")->weights, b.find("blk.3.attn_v.weight")->weights);
  EXPECT_EQ(a.datasets(), b.datasets());
  EXPECT_EQ(a.chunk_count(), b.chunk_count());
}

TEST(Imatrix, GgufRefusals) {
  TempDir dir;
  const auto refuse = [&](const std::string& name, const gguf::Metadata& md, const std::vector<Tensor>& ts,
                          std::initializer_list<std::string_view> parts) {
    SCOPED_TRACE(name);
    expect_refused(write_gguf(dir / name, md, ts), parts);
  };
  const gguf::Metadata md = imatrix_metadata();
  {
    std::vector<Tensor> ts{{"w.in_sum2", {2, 1}, {1, 1}}};
    refuse("no_counts.imatrix", md, ts, {"'w.in_sum2'", "at byte", "no tensor 'w.counts'"});
  }
  {
    std::vector<Tensor> ts{{"w.counts", {1, 1}, {1}}};
    refuse("no_sums.imatrix", md, ts, {"'w.counts'", "at byte", "no tensor 'w.in_sum2'"});
  }
  {
    std::vector<Tensor> ts{{"w.in_sum2", {2, 2}, {1, 1, 1, 1}}, {"w.counts", {1, 3}, {1, 1, 1}}};
    refuse("counts_size.imatrix", md, ts, {"'w.counts'", "at byte", "3 elements", "2 matrices"});
  }
  {
    std::vector<Tensor> ts{{"w.in_sum2", {2, 1}, {1, 1}, Type::f16}, {"w.counts", {1, 1}, {1}}};
    refuse("sums_f16.imatrix", md, ts, {"'w.in_sum2'", "at byte", "f16, not f32"});
  }
  {
    std::vector<Tensor> ts{{"w.in_sum2", {2, 1}, {1, 1}}, {"w.counts", {1, 1}, {1}, Type::f16}};
    refuse("counts_f16.imatrix", md, ts, {"'w.counts'", "f16, not f32"});
  }
  {
    std::vector<Tensor> ts{{"w.in_sum2", {2, 1, 2}, {1, 1, 1, 1}}, {"w.counts", {1, 1}, {1}}};
    refuse("three_dims.imatrix", md, ts, {"'w.in_sum2'", "[2, 1, 2]"});
  }
  {
    std::vector<Tensor> ts{{"w.in_sum2", {0, 1}, {}}, {"w.counts", {1, 1}, {1}}};
    refuse("empty_sums.imatrix", md, ts, {"'w.in_sum2'", "no elements"});
  }
  {
    std::vector<Tensor> ts{{"w.in_sum2", {2, 1}, {1, kInf}}, {"w.counts", {1, 1}, {1}}};
    refuse("inf_sum.imatrix", md, ts, {"'w.in_sum2'", "matrix 0, column 1", "NaN or infinity"});
  }
  {
    std::vector<Tensor> ts{{"w.in_sum2", {2, 2}, {1, 1, 1, kNaN}}, {"w.counts", {1, 2}, {1, 1}}};
    refuse("nan_sum.imatrix", md, ts, {"matrix 1, column 1", "nan"});
  }
  {
    // Both finite, the quotient is not.
    std::vector<Tensor> ts{{"w.in_sum2", {1, 1}, {3e38f}}, {"w.counts", {1, 1}, {1e-3f}}};
    refuse("overflow.imatrix", md, ts, {"inf", "NaN or infinity"});
  }
  {
    // An infinite count makes 0 of a finite sum, but NaN of an infinite one.
    std::vector<Tensor> ts{{"w.in_sum2", {1, 1}, {kInf}}, {"w.counts", {1, 1}, {kInf}}};
    refuse("inf_over_inf.imatrix", md, ts, {"nan"});
  }
  refuse("no_tensors.imatrix", md, {}, {"no tensors"});
  refuse("not_imatrix.imatrix", md, {{"token_embd.weight", {2, 2}, {1, 2, 3, 4}}}, {"not an importance matrix"});

  std::vector<Tensor> ok;
  add_pair(ok, "w", 1, {1}, {1});
  for (const char* key : {"imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"}) {
    gguf::Metadata m = md;
    m.erase(key);
    refuse(std::string("missing_") + key, m, ok, {key, "missing"});
  }
  {
    gguf::Metadata m = md;
    m.set("imatrix.chunk_count", gguf::Value(std::uint64_t{5}));
    refuse("chunk_count_u64.imatrix", m, ok, {"imatrix.chunk_count", "u64, not a u32"});
  }
  {
    gguf::Metadata m = md;
    m.set("imatrix.datasets", gguf::Value(gguf::Array(std::vector<std::uint32_t>{1})));
    refuse("datasets_u32.imatrix", m, ok, {"imatrix.datasets", "array of u32", "not an array of strings"});
  }
  {
    gguf::Metadata m = md;
    m.set("imatrix.datasets", gguf::Value("wiki"));
    refuse("datasets_string.imatrix", m, ok, {"imatrix.datasets", "not an array of strings"});
  }
}

TEST(Imatrix, GgufDuplicateNamesAreRefused) {
  TempDir dir;
  std::vector<Tensor> ts;
  add_pair(ts, "a", 1, {1}, {1});
  add_pair(ts, "b", 1, {1}, {1});
  std::string bytes = slurp(write_gguf(dir / "tmp.imatrix", imatrix_metadata(), ts));
  const auto at = bytes.find("b.counts");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'a';  // now two tensors are named "a.counts"
  expect_refused(dir.put("duplicate.imatrix", bytes), {"'a.counts'", "at byte"});
}

TEST(Imatrix, GgufEveryTruncationIsRefused) {
  TempDir dir;
  std::vector<Tensor> ts;
  add_pair(ts, "blk.0.attn_q.weight", 3, {1, 2, 3}, {1});
  const std::string bytes = slurp(write_gguf(dir / "whole.imatrix", imatrix_metadata(), ts));
  // The last tensor's padding may go; anything before the end of its data may not.
  const gguf::Header h = gguf::parse_header(bytes_of(bytes), bytes.size(), "whole");
  std::uint64_t data_end = 0;
  for (const auto& t : h.tensors) data_end = std::max(data_end, h.data_offset + t.offset + t.bytes);
  ASSERT_LE(data_end, bytes.size());
  for (std::size_t n = 0; n < data_end; ++n) {
    const std::string msg =
        error_of([&] { ImportanceMatrix::parse(bytes_of(std::string_view(bytes).substr(0, n)), "cut.imatrix"); });
    EXPECT_NE(msg.find("cut.imatrix"), std::string::npos) << n << ": " << msg;
  }
  for (std::size_t n = data_end; n <= bytes.size(); ++n) {
    EXPECT_EQ(ImportanceMatrix::parse(bytes_of(std::string_view(bytes).substr(0, n)), "whole").size(), 1u) << n;
  }
}

// ---------------------------------------------------------------------------------------------
// Legacy files

class Legacy {
 public:
  Legacy& i32(std::int32_t x) { return raw(&x, 4); }
  Legacy& f32(float x) { return raw(&x, 4); }
  Legacy& text(std::string_view s) { return raw(s.data(), s.size()); }
  Legacy& name(std::string_view s) { return i32(static_cast<std::int32_t>(s.size())).text(s); }
  Legacy& entry(std::string_view n, std::int32_t ncall, const std::vector<float>& values) {
    name(n).i32(ncall).i32(static_cast<std::int32_t>(values.size()));
    for (float v : values) f32(v);
    return *this;
  }
  Legacy& trailer(std::int32_t chunks, std::string_view dataset) { return i32(chunks).name(dataset); }
  const std::string& bytes() const { return b_; }

 private:
  Legacy& raw(const void* p, std::size_t n) {
    b_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string b_;
};

TEST(Imatrix, LegacyWeightsAreValuesOverNcall) {
  TempDir dir;
  Legacy f;
  f.i32(2).entry("blk.0.attn_q.weight", 4, {4, 8, 2}).entry("output.weight", 3, {1, 0.3f}).trailer(10, "wiki.txt");
  const ImportanceMatrix m = ImportanceMatrix::read(dir.put("imatrix.dat", f.bytes()));
  EXPECT_EQ(m.format(), Format::legacy);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"blk.0.attn_q.weight", "output.weight"}));
  const Entry* q = m.find("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->weights, (std::vector<float>{1, 2, 0.5f}));
  EXPECT_EQ(q->row_length, 3u);
  EXPECT_EQ(q->matrices, 1u);
  EXPECT_EQ(m.find("output.weight")->weights, (std::vector<float>{1.0f / 3.0f, 0.3f / 3.0f}));
  EXPECT_EQ(m.datasets(), (std::vector<std::string>{"wiki.txt"}));
  EXPECT_EQ(m.chunk_count(), 10u);
  EXPECT_EQ(m.chunk_size(), 0u);
}

TEST(Imatrix, LegacyNcallNotPositiveLeavesValues) {
  TempDir dir;
  Legacy f;
  f.i32(2).entry("a", 0, {4, 8}).entry("b", -3, {0.5f});
  const ImportanceMatrix m = ImportanceMatrix::read(dir.put("n.dat", f.bytes()));
  EXPECT_EQ(m.find("a")->weights, (std::vector<float>{4, 8}));
  EXPECT_EQ(m.find("b")->weights, (std::vector<float>{0.5f}));
  // No trailer: no dataset, no chunk count.
  EXPECT_TRUE(m.datasets().empty());
  EXPECT_EQ(m.chunk_count(), 0u);
}

TEST(Imatrix, LegacyEmptyDatasetNameIsKept) {
  TempDir dir;
  Legacy f;
  f.i32(1).entry("a", 1, {1}).trailer(3, "");
  const ImportanceMatrix m = ImportanceMatrix::read(dir.put("e.dat", f.bytes()));
  EXPECT_EQ(m.datasets(), (std::vector<std::string>{""}));
  EXPECT_EQ(m.chunk_count(), 3u);
}

TEST(Imatrix, LegacyRefusals) {
  TempDir dir;
  const auto refuse = [&](const std::string& name, const Legacy& f, std::initializer_list<std::string_view> parts) {
    SCOPED_TRACE(name);
    expect_refused(dir.put(name, f.bytes()), parts);
  };
  refuse("empty.dat", Legacy(), {"header", "at byte 0", "entry count needs 4 bytes"});
  refuse("zero_entries.dat", Legacy().i32(0), {"entry count is 0"});
  refuse("negative_entries.dat", Legacy().i32(-5), {"entry count is -5"});
  refuse("huge_entries.dat", Legacy().i32(1'000'000'000).entry("a", 1, {1}),
         {"entry count is 1000000000", "at least 16 bytes each"});
  refuse("negative_name.dat", Legacy().i32(1).i32(-1).text("abcdefghijklmnop"), {"entry #0", "at byte 4", "name length is -1"});
  refuse("long_name.dat", Legacy().i32(1).i32(1000).text("abcdefghijklmnop"), {"entry #0", "1000 bytes long"});
  refuse("nul_name.dat", Legacy().i32(1).entry(std::string_view("a\0b", 3), 1, {1}), {"'a\\x00b'", "at byte 8", "zero byte"});
  refuse("duplicate.dat", Legacy().i32(2).entry("w", 1, {1}).entry("w", 1, {2}),
         {"entry 'w' (#1)", "at byte 25", "used by entry #0 (at byte 4)"});
  refuse("zero_values.dat", Legacy().i32(1).name("w").i32(1).i32(0).f32(1), {"entry 'w' (#0)", "at byte 13", "value count is 0"});
  refuse("negative_values.dat", Legacy().i32(1).name("w").i32(1).i32(-4).f32(1), {"value count is -4"});
  refuse("huge_values.dat", Legacy().i32(1).name("w").i32(1).i32(0x7fffffff).f32(1),
         {"value count is 2147483647", "8589934588 bytes", "truncated"});
  refuse("short_values.dat", Legacy().i32(1).name("w").i32(1).i32(3).f32(1).f32(1), {"value count is 3", "12 bytes"});
  refuse("two_entries_short.dat", Legacy().i32(2).entry("w", 1, {1}), {"header", "at byte 0", "entry count is 2"});
  refuse("missing_entry.dat", Legacy().i32(2).entry("w", 1, {1, 1, 1, 1, 1}),
         {"entry #1", "at byte 37", "name length needs 4 bytes"});
  refuse("nan.dat", Legacy().i32(1).entry("w", 2, {1, kNaN}), {"entry 'w'", "at byte 21", "value 1 is nan", "NaN or infinity"});
  refuse("inf.dat", Legacy().i32(1).entry("w", 0, {-kInf}), {"value 0 is -inf"});
  // The trailer: all of it or nothing.
  const Legacy one = Legacy().i32(1).entry("w", 1, {1});
  refuse("trailer_1.dat", Legacy(one).text("\x01"), {"trailer", "at byte 21", "chunk count needs 4 bytes"});
  refuse("trailer_5.dat", Legacy(one).i32(3).text("\x01"), {"trailer", "dataset-name length needs 4 bytes"});
  refuse("trailer_negative_chunks.dat", Legacy(one).trailer(-1, "x"), {"trailer", "chunk count is -1"});
  refuse("trailer_negative_name.dat", Legacy(one).i32(3).i32(-2), {"trailer", "at byte 25", "length is -2"});
  refuse("trailer_long_name.dat", Legacy(one).i32(3).i32(50).text("abc"), {"trailer", "50 bytes long"});
  refuse("trailer_extra.dat", Legacy(one).trailer(3, "wiki").text("junk"), {"at byte 33", "4 bytes follow"});
}

TEST(Imatrix, LegacyEveryTruncationIsRefused) {
  Legacy f;
  f.i32(2).entry("blk.0.attn_q.weight", 4, {4, 8, 2}).entry("output.weight", 3, {1, 3});
  const std::size_t without_trailer = f.bytes().size();
  f.trailer(10, "wiki.txt");
  const std::string& bytes = f.bytes();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const auto cut = bytes_of(std::string_view(bytes).substr(0, n));
    if (n == without_trailer) {
      EXPECT_EQ(ImportanceMatrix::parse(cut, "cut.dat").size(), 2u);
      continue;
    }
    const std::string msg = error_of([&] { ImportanceMatrix::parse(cut, "cut.dat"); });
    EXPECT_NE(msg.find("cut.dat"), std::string::npos) << n << ": " << msg;
    EXPECT_NE(msg.find("at byte"), std::string::npos) << n << ": " << msg;
  }
}

// ---------------------------------------------------------------------------------------------
// What llama-quantize takes for a tensor

TEST(Imatrix, WeightsForChecksNe0TimesNe2) {
  TempDir dir;
  std::vector<Tensor> ts;
  add_pair(ts, "blk.0.attn_q.weight", 3, {1, 2, 3}, {1});
  add_pair(ts, "blk.0.ffn_up_exps.weight", 2, {1, 2, 3, 4, 5, 6}, {1, 1, 1});
  add_pair(ts, "token_embd.weight", 2, {1, 1}, {1});
  const auto path = write_gguf(dir / "w.imatrix", imatrix_metadata(), ts);
  const ImportanceMatrix m = ImportanceMatrix::read(path);

  const std::vector<std::uint64_t> q_dims{3, 8};         // [ne0 = 3 columns, 8 rows]
  const std::vector<std::uint64_t> moe_dims{2, 5, 3};    // 3 experts of 5 rows of 2
  const std::vector<std::uint64_t> q_dims_1d{3};
  EXPECT_EQ(m.weights_for("blk.0.attn_q.weight", q_dims).size(), 3u);
  EXPECT_EQ(m.weights_for("blk.0.attn_q.weight", q_dims).data(), m.find("blk.0.attn_q.weight")->weights.data());
  EXPECT_EQ(m.weights_for("blk.0.attn_q.weight", q_dims_1d).size(), 3u);
  EXPECT_EQ(m.weights_for("blk.0.ffn_up_exps.weight", moe_dims).size(), 6u);
  EXPECT_TRUE(m.weights_for("blk.0.attn_k.weight", q_dims).empty());

  const std::vector<std::uint64_t> wrong{4, 8};
  const std::string msg = error_of([&] { m.weights_for("blk.0.attn_q.weight", wrong); });
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("'blk.0.attn_q.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at byte"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 weights"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 8]"), std::string::npos) << msg;
  const std::vector<std::uint64_t> wrong_experts{2, 5, 4};
  EXPECT_NE(error_of([&] { m.weights_for("blk.0.ffn_up_exps.weight", wrong_experts); }).find("= 8"),
            std::string::npos);
  const std::vector<std::uint64_t> huge{std::uint64_t{1} << 40, 1, std::uint64_t{1} << 40};
  EXPECT_NE(error_of([&] { m.weights_for("blk.0.attn_q.weight", huge); }).find("more than 2^64"), std::string::npos);
  // llama-quantize quantizes token_embd.weight without the importance matrix instead of aborting.
  const std::vector<std::uint64_t> embd{3, 100};
  EXPECT_TRUE(m.weights_for("token_embd.weight", embd).empty());
}

TEST(Imatrix, MissingFileIsAnError) {
  TempDir dir;
  const std::string msg = error_of([&] { ImportanceMatrix::read(dir / "absent.imatrix"); });
  EXPECT_NE(msg.find("absent.imatrix"), std::string::npos) << msg;
}

}  // namespace
