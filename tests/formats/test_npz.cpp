// .npz archives: round trips, the writer's atomicity, numpy's own archives (tests/data/npy) and
// crafted corrupt archives, each of which must be refused with the archive and entry named.
#include <gtest/gtest.h>

#include "formats/file_test_util.hpp"
#include "formats/tensor_test_util.hpp"
#include <zip.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
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
using Bytes = std::vector<std::byte>;

const fs::path kGolden = fs::path(ZP_TEST_DATA_DIR) / "npy";
constexpr std::string_view kText = "h\u00e9llo w\u00f6rld \u2713 \U0001d11e";

Bytes bytes_of(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

using zp::testing::TempDir;

// A zip built with libzip directly, so entries can hold anything (the Writer only writes valid
// .npy files). `entries` must not be empty: libzip writes nothing for an empty archive.
Bytes make_zip(const std::vector<std::pair<std::string, Bytes>>& entries, zip_int32_t method = ZIP_CM_STORE) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  EXPECT_NE(archive, nullptr);
  zip_source_keep(buffer);
  for (const auto& [name, bytes] : entries) {
    zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
    const zip_int64_t index = zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_UTF_8);
    EXPECT_GE(index, 0);
    EXPECT_EQ(zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), method, 9), 0);
  }
  EXPECT_EQ(zip_close(archive), 0);
  zip_error_fini(&error);
  EXPECT_EQ(zip_source_open(buffer), 0);
  zip_source_seek(buffer, 0, SEEK_END);
  Bytes out(static_cast<std::size_t>(zip_source_tell(buffer)));
  zip_source_seek(buffer, 0, SEEK_SET);
  EXPECT_EQ(zip_source_read(buffer, out.data(), out.size()), static_cast<zip_int64_t>(out.size()));
  zip_source_close(buffer);
  zip_source_free(buffer);
  return out;
}

Bytes npy_of(const Tensor& t) { return zp::npy::serialize(t); }

// Offsets of every local (PK\3\4) and central (PK\1\2) header in a zip without zip64 records.
std::vector<std::size_t> find_signature(const Bytes& zip, char kind) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i + 4 <= zip.size(); ++i) {
    if (zip[i] == std::byte{'P'} && zip[i + 1] == std::byte{'K'} && zip[i + 2] == std::byte(kind) &&
        zip[i + 3] == std::byte(kind + 1)) {
      out.push_back(i);
    }
  }
  return out;
}

void put_u32(Bytes& zip, std::size_t at, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) zip[at + k] = static_cast<std::byte>((v >> (8 * k)) & 0xFF);
}

// Rewrites the sizes every header of the archive states for its (only) entry, so the archive
// stays self-consistent and the lie reaches the reader's own checks.
void set_sizes(Bytes& zip, std::uint32_t compressed, std::uint32_t uncompressed) {
  for (std::size_t at : find_signature(zip, 3)) {
    put_u32(zip, at + 18, compressed);
    put_u32(zip, at + 22, uncompressed);
  }
  for (std::size_t at : find_signature(zip, 1)) {
    put_u32(zip, at + 20, compressed);
    put_u32(zip, at + 24, uncompressed);
  }
}

// Expects `fn` to throw one line containing every fragment.
template <class Fn>
void expect_refused(Fn&& fn, const std::vector<std::string_view>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const zp::Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (auto fragment : fragments) EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

// ---------------------------------------------------------------------------------------------
TEST(NpzRoundTrip, ArraysAndTextKeepTheirOrderAndContent) {
  TempDir dir;
  const fs::path path = dir.path() / "model.npz";
  std::vector<std::pair<std::string, Tensor>> arrays;
  int seed = 0;
  for (int d = 0; d <= static_cast<int>(DType::i64); ++d) {
    const auto dtype = static_cast<DType>(d);
    if (dtype == DType::bf16) continue;
    arrays.emplace_back(fmt::format("w_{}", zp::dtype_name(dtype)), patterned(dtype, {2, 3}, seed++));
  }
  arrays.emplace_back("scalar", patterned(DType::f32, {}));
  arrays.emplace_back("empty", patterned(DType::i8, {0, 4}));
  arrays.emplace_back("layers/0/bias", patterned(DType::f16, {7}));
  const Tensor wide = patterned(DType::u16, {4, 6});
  const TensorView strided(wide.data(), DType::u16, {4, 3}, {6, 2});
  {
    zp::npz::Writer writer(path);
    for (const auto& [name, t] : arrays) writer.add(name, t);
    writer.add("strided", strided);
    writer.add_text("note", kText);
    writer.commit();
  }
  EXPECT_EQ(dir.files(), std::vector<std::string>{"model.npz"});

  const zp::npz::Reader reader(path);
  std::vector<std::string> expected_names;
  for (const auto& [name, t] : arrays) expected_names.push_back(name);
  expected_names.push_back("strided");
  expected_names.push_back("note");
  EXPECT_EQ(reader.names(), expected_names);
  for (const auto& [name, t] : arrays) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(reader.contains(name));
    expect_same(reader.tensor(name), t);
    EXPECT_EQ(reader.info(name).shape, t.shape());
  }
  expect_same(reader.tensor("strided"), Tensor::copy_of(strided));
  EXPECT_EQ(reader.text("note"), kText);
  EXPECT_TRUE(reader.info("note").is_text);
  EXPECT_FALSE(reader.contains("note.npy"));
  EXPECT_FALSE(reader.contains("absent"));

  // The same archive read from memory.
  const zp::npz::Reader in_memory(zp::detail::read_file(path), "memory.npz");
  EXPECT_EQ(in_memory.names(), expected_names);
  for (const auto& [name, t] : arrays) expect_same(in_memory.tensor(name), t);
  EXPECT_EQ(in_memory.text("note"), kText);
}

TEST(NpzWriter, EntriesAreStoredNpyFilesAsNumpySavezWrites) {
  TempDir dir;
  const fs::path path = dir.path() / "a.npz";
  const Tensor t = patterned(DType::f32, {3, 2});
  {
    zp::npz::Writer writer(path);
    writer.add("x", t);
    writer.commit();
  }
  int code = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  ASSERT_NE(archive, nullptr);
  ASSERT_EQ(zip_get_num_entries(archive, 0), 1);
  EXPECT_STREQ(zip_get_name(archive, 0, 0), "x.npy");
  zip_stat_t st;
  ASSERT_EQ(zip_stat_index(archive, 0, 0, &st), 0);
  EXPECT_EQ(st.comp_method, ZIP_CM_STORE);
  const Bytes expected = npy_of(t);
  Bytes content(static_cast<std::size_t>(st.size));
  zip_file_t* file = zip_fopen_index(archive, 0, 0);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(zip_fread(file, content.data(), content.size()), static_cast<zip_int64_t>(content.size()));
  zip_fclose(file);
  zip_discard(archive);
  EXPECT_EQ(content, expected);
}

TEST(NpzWriter, SameArraysGiveTheSameBytes) {
  TempDir dir;
  // Also in another time zone: nothing of the local clock may reach the archive.
  const char* old_tz = std::getenv("TZ");
  const std::string saved = old_tz != nullptr ? old_tz : "";
  for (const char* name : {"1.npz", "2.npz"}) {
    if (name[0] == '2') {
      ::setenv("TZ", "XYZ-14", 1);
      ::tzset();
    }
    zp::npz::Writer writer(dir.path() / name);
    writer.add("a", patterned(DType::i32, {5}));
    writer.add_text("t", "x");
    writer.commit();
  }
  if (old_tz != nullptr) {
    ::setenv("TZ", saved.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
  EXPECT_EQ(zp::detail::read_file(dir.path() / "1.npz"), zp::detail::read_file(dir.path() / "2.npz"));
}

TEST(NpzWriter, WithoutCommitThereIsNoFile) {
  TempDir dir;
  {
    zp::npz::Writer writer(dir.path() / "never.npz");
    writer.add("a", patterned(DType::f32, {4}));
  }
  EXPECT_TRUE(dir.files().empty());
}

TEST(NpzWriter, WithoutCommitTheOldFileIsUntouched) {
  TempDir dir;
  const fs::path path = dir.path() / "keep.npz";
  {
    zp::npz::Writer writer(path);
    writer.add("old", patterned(DType::u8, {3}));
    writer.commit();
  }
  const Bytes before = zp::detail::read_file(path);
  {
    zp::npz::Writer writer(path);
    writer.add("new", patterned(DType::f32, {4}));
    // A failed add (bf16 has no numpy type) names the archive and the array...
    expect_refused([&] { writer.add("bad", Tensor(DType::bf16, {2})); }, {"keep.npz", "'bad'", "bf16"});
    // ...and the writer is dropped without commit, as an exception unwinding would.
  }
  EXPECT_EQ(zp::detail::read_file(path), before);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"keep.npz"});
}

TEST(NpzWriter, CommitReplacesTheOldFile) {
  TempDir dir;
  const fs::path path = dir.path() / "r.npz";
  for (const char* name : {"first", "second"}) {
    zp::npz::Writer writer(path);
    writer.add(name, patterned(DType::f32, {1}));
    writer.commit();
  }
  EXPECT_EQ(zp::npz::Reader(path).names(), std::vector<std::string>{"second"});
  EXPECT_EQ(dir.files(), std::vector<std::string>{"r.npz"});
}

TEST(NpzWriter, RefusesBadNames) {
  TempDir dir;
  zp::npz::Writer writer(dir.path() / "n.npz");
  const Tensor t = patterned(DType::f32, {1});
  writer.add("a", t);
  expect_refused([&] { writer.add("a", t); }, {"n.npz", "two arrays named 'a'"});
  expect_refused([&] { writer.add_text("a", "x"); }, {"two arrays named 'a'"});
  expect_refused([&] { writer.add("", t); }, {"must not be empty"});
  expect_refused([&] { writer.add(std::string("a\0b", 3), t); }, {"not NUL-free UTF-8"});
  expect_refused([&] { writer.add("\xff", t); }, {"not NUL-free UTF-8"});
  expect_refused([&] { writer.add_text("t", "\xff"); }, {"'t'", "not valid UTF-8"});
}

TEST(NpzWriter, NothingAfterCommit) {
  TempDir dir;
  zp::npz::Writer writer(dir.path() / "c.npz");
  writer.add("a", patterned(DType::f32, {1}));
  writer.commit();
  expect_refused([&] { writer.add("b", patterned(DType::f32, {1})); }, {"already committed"});
  expect_refused([&] { writer.commit(); }, {"already committed"});
}

TEST(NpzWriter, EmptyArchiveIsWhatNumpyWrites) {
  TempDir dir;
  const fs::path path = dir.path() / "empty.npz";
  {
    zp::npz::Writer writer(path);
    writer.commit();
  }
  EXPECT_EQ(zp::detail::read_file(path), zp::detail::read_file(kGolden / "empty.npz"));
  EXPECT_TRUE(zp::npz::Reader(path).names().empty());
  EXPECT_EQ(dir.files(), std::vector<std::string>{"empty.npz"});
}

TEST(NpzWriter, UnwritableFolderFailsAtOnce) {
  TempDir dir;
  expect_refused([&] { zp::npz::Writer writer(dir.path() / "no" / "such.npz"); }, {"such.npz"});
}

// ---------------------------------------------------------------------------------------------
TEST(NpzGolden, ReadsSavezAndSavezCompressed) {
  const Tensor a = zp::npy::read(kGolden / "f32_2x3.npy");
  for (const char* name : {"savez.npz", "savez_compressed.npz"}) {
    SCOPED_TRACE(name);
    const zp::npz::Reader reader(kGolden / name);
    EXPECT_EQ(reader.names(), (std::vector<std::string>{"a", "b", "note"}));
    expect_same(reader.tensor("a"), a);
    const Tensor b = reader.tensor("b");
    EXPECT_EQ(b.dtype(), DType::i64);
    EXPECT_EQ(b.shape(), (Shape{5}));
    EXPECT_EQ(b.span<const std::int64_t>()[2], 14 - 11);
    EXPECT_EQ(reader.text("note"), kText);
    // Read again into the last one's memory: the same values, in place.
    Tensor again = Tensor::copy_of(a);
    std::fill(again.bytes().begin(), again.bytes().end(), std::byte{0x7f});
    const void* memory = again.data();
    again = reader.tensor("a", std::move(again));
    EXPECT_EQ(again.data(), memory);
    expect_same(again, a);
  }
  EXPECT_TRUE(zp::npz::Reader(kGolden / "empty.npz").names().empty());
}

TEST(NpzReader, TextAndArraysAreNotMixedUp) {
  const zp::npz::Reader reader(kGolden / "savez.npz");
  expect_refused([&] { (void)reader.tensor("note"); }, {"savez.npz, array 'note': holds text"});
  expect_refused([&] { (void)reader.text("a"); },
                 {"savez.npz, array 'a': holds a f32 array of shape [2, 3], not text"});
}

TEST(NpzReader, EntriesThatAreNotNpyFilesAreIgnored) {
  const Bytes zip = make_zip({{"readme.txt", bytes_of("hi")},
                              {"w.npy", npy_of(patterned(DType::f32, {2}))},
                              {".npy", bytes_of("x")},
                              {"dir/", {}}});
  const zp::npz::Reader reader(zip, "mixed.npz");
  EXPECT_EQ(reader.names(), std::vector<std::string>{"w"});
}

// ---------------------------------------------------------------------------------------------
TEST(NpzHostile, NotAZip) {
  expect_refused([] { zp::npz::Reader(bytes_of("definitely not a zip archive at all"), "x.npz"); },
                 {"x.npz: not a valid .npz archive (not a zip archive)"});
  expect_refused([] { zp::npz::Reader(zp::detail::read_file(kGolden / "f32_2x3.npy"), "x.npz"); },
                 {"x.npz: not a valid .npz archive"});
}

TEST(NpzHostile, EmptyFile) {
  expect_refused([] { zp::npz::Reader(Bytes{}, "x.npz"); }, {"x.npz: empty file"});
  TempDir dir;
  std::fclose(std::fopen((dir.path() / "e.npz").c_str(), "w"));
  expect_refused([&] { zp::npz::Reader(dir.path() / "e.npz"); }, {"e.npz: empty file"});
}

TEST(NpzHostile, MissingFile) {
  expect_refused([] { zp::npz::Reader("/nonexistent/x.npz"); }, {"/nonexistent/x.npz: cannot open"});
}

TEST(NpzHostile, TruncatedArchive) {
  Bytes zip = zp::detail::read_file(kGolden / "savez.npz");
  for (std::size_t keep : {zip.size() - 1, zip.size() / 2, std::size_t{30}, std::size_t{4}}) {
    SCOPED_TRACE(keep);
    expect_refused(
        [&] {
          zp::npz::Reader(Bytes(zip.begin(), zip.begin() + static_cast<std::ptrdiff_t>(keep)), "t.npz");
        },
        {"t.npz: not a valid .npz archive"});
  }
}

TEST(NpzHostile, MissingEntryListsTheEntriesPresent) {
  const zp::npz::Reader reader(kGolden / "savez.npz");
  const std::string archive = (kGolden / "savez.npz").string();
  expect_refused([&] { (void)reader.tensor("w"); },
                 {archive + ": no array named 'w'; it holds 'a', 'b', 'note'"});
  expect_refused([&] { (void)reader.text("a.npy"); }, {"no array named 'a.npy'"});
  expect_refused([&] { (void)zp::npz::Reader(kGolden / "empty.npz").tensor("w"); },
                 {"no array named 'w'; the archive holds no arrays"});
}

TEST(NpzHostile, CorruptStoredData) {
  Bytes npy = npy_of(patterned(DType::f32, {16}));
  Bytes zip = make_zip({{"w.npy", npy}});
  // Flip one byte of the array data (after the 128-byte .npy header): only the CRC can tell.
  const std::size_t local_header = 30 + 5;
  zip[local_header + 128 + 3] ^= std::byte{0xFF};
  const zp::npz::Reader reader(zip, "c.npz");
  expect_refused([&] { (void)reader.tensor("w"); }, {"c.npz, array 'w': corrupt entry", "CRC"});
}

TEST(NpzHostile, CorruptDeflateStream) {
  Bytes zip = make_zip({{"w.npy", npy_of(patterned(DType::f32, {64}))}}, ZIP_CM_DEFLATE);
  const std::size_t local_header = 30 + 5;
  const std::size_t central = find_signature(zip, 1).at(0);
  for (std::size_t i = local_header + 2; i < central - 2; i += 3) zip[i] ^= std::byte{0x5A};
  const zp::npz::Reader reader(zip, "c.npz");
  expect_refused([&] { (void)reader.tensor("w"); }, {"c.npz, array 'w': "});
}

TEST(NpzHostile, EntryIsACorruptNpy) {
  Bytes truncated = npy_of(patterned(DType::f32, {8}));
  truncated.resize(truncated.size() - 4);
  Bytes longer = npy_of(patterned(DType::f32, {8}));
  longer.push_back(std::byte{0});
  const zp::npz::Reader reader(
      make_zip({{"magic.npy", bytes_of("not numpy")},
                {"short.npy", truncated},
                {"long.npy", longer},
                {"empty.npy", {}},
                {"fortran.npy", zp::detail::read_file(kGolden / "refused_fortran.npy")}}),
      "m.npz");
  expect_refused([&] { (void)reader.tensor("magic"); }, {"m.npz, array 'magic': not a .npy file"});
  expect_refused([&] { (void)reader.tensor("short"); },
                 {"m.npz, array 'short': truncated", "needs 32 bytes of data, the file has 28"});
  expect_refused([&] { (void)reader.tensor("long"); }, {"m.npz, array 'long': 1 bytes of unexpected data"});
  expect_refused([&] { (void)reader.info("empty"); }, {"m.npz, array 'empty': empty file"});
  expect_refused([&] { (void)reader.tensor("fortran"); }, {"m.npz, array 'fortran': Fortran-order"});
}

TEST(NpzHostile, StoredEntryLyingAboutItsSize) {
  const Bytes npy = npy_of(patterned(DType::f32, {4}));
  const auto n = static_cast<std::uint32_t>(npy.size());
  {
    Bytes zip = make_zip({{"w.npy", npy}});
    set_sizes(zip, n, n + 1000);
    expect_refused([&] { (void)zp::npz::Reader(zip, "s.npz").tensor("w"); }, {"s.npz"});
  }
  {
    // 2 GiB claimed by an archive of a few hundred bytes: refused before any allocation.
    Bytes zip = make_zip({{"w.npy", npy}});
    set_sizes(zip, 0x7FFFFFFF, 0x7FFFFFFF);
    expect_refused([&] { (void)zp::npz::Reader(zip, "s.npz").tensor("w"); }, {"s.npz"});
  }
}

TEST(NpzHostile, DeflateEntryClaimingAnImpossibleSize) {
  Bytes zip = make_zip({{"w.npy", npy_of(Tensor(DType::f32, {1000}))}}, ZIP_CM_DEFLATE);
  {
    const zp::npz::Reader fine(zip, "d.npz");
    EXPECT_EQ(fine.tensor("w").numel(), 1000);
  }
  const std::size_t local = find_signature(zip, 3).at(0);
  std::uint32_t compressed = 0;
  for (int k = 0; k < 4; ++k) compressed |= std::to_integer<std::uint32_t>(zip[local + 18 + k]) << (8 * k);
  set_sizes(zip, compressed, 0x7FFFFFFF);
  expect_refused([&] { (void)zp::npz::Reader(zip, "d.npz").tensor("w"); },
                 {"d.npz, array 'w'", "more than deflate can"});
}

TEST(NpzHostile, UnsupportedCompressionMethod) {
  if (!zip_compression_method_supported(ZIP_CM_BZIP2, 1)) GTEST_SKIP() << "libzip without bzip2";
  const Bytes zip = make_zip({{"w.npy", npy_of(patterned(DType::f32, {4}))}}, ZIP_CM_BZIP2);
  expect_refused([&] { (void)zp::npz::Reader(zip, "b.npz").tensor("w"); },
                 {"b.npz, array 'w'", "compression method 12"});
}

TEST(NpzHostile, TwoEntriesWithTheSameName) {
  Bytes zip = make_zip(
      {{"a.npy", npy_of(patterned(DType::f32, {1}))}, {"b.npy", npy_of(patterned(DType::f32, {2}))}});
  // Rename b.npy to a.npy in every header.
  for (std::size_t i = 0; i + 5 <= zip.size(); ++i) {
    if (std::memcmp(zip.data() + i, "b.npy", 5) == 0) zip[i] = std::byte{'a'};
  }
  expect_refused([&] { zp::npz::Reader(zip, "d.npz"); },
                 {"d.npz: not a valid .npz archive (two entries have the same name)"});
}

TEST(NpzHostile, NamesFromTheFileAreEscapedInMessages) {
  // The non-ASCII name makes libzip flag it as UTF-8, so the control character patched in below
  // reaches the reader as it is rather than as a CP437 picture.
  Bytes zip = make_zip({{"b\u00e4d_name.npy", bytes_of("junk")}});
  for (std::size_t i = 0; i + 5 <= zip.size(); ++i) {
    if (std::memcmp(zip.data() + i, "_name", 5) == 0) zip[i] = std::byte{'\n'};
  }
  const zp::npz::Reader reader(zip, "e.npz");
  ASSERT_EQ(reader.names().size(), 1u);
  expect_refused([&] { (void)reader.tensor(reader.names()[0]); }, {"e.npz, array 'b\u00e4d\\x0aname'"});
}

}  // namespace
