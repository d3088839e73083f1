// The output files every writer stands on (core/file_io.hpp): nobody sees half of one, and a
// failed write or flush is an error naming the file, never a silently short file.
#include <signal.h>
#include <sys/resource.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/file_io.hpp"
#include "formats/file_test_util.hpp"

namespace {

using zp::detail::StreamedFile;
using zp::testing::error_of;
using zp::testing::expect_names;
using zp::testing::slurp;
using zp::testing::TempDir;

// Bytes that differ from one position to the next, so a misplaced or lost piece shows.
std::string pattern_bytes(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  std::uint32_t state = seed * 2654435761u + 1;
  for (char& c : out) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  return out;
}

TEST(StreamedFile, CommitPutsEveryByteInPlaceAndNothingBefore) {
  TempDir dir;
  const auto target = dir / "out.bin";
  // Past several writeback steps (16 MiB), in pieces of odd sizes, with runs of zeros between.
  const std::string a = pattern_bytes((std::size_t{32} << 20) + 12345, 1), b = pattern_bytes(777, 2);
  {
    StreamedFile file(target);
    file.write(a.data(), a.size());
    file.write_zeros(5000);
    file.write(b.data(), b.size());
    file.write_zeros(0);
    EXPECT_EQ(file.size(), a.size() + 5000 + b.size());
    EXPECT_FALSE(std::filesystem::exists(target)) << "the target appeared before commit()";
    file.commit();
    expect_names(error_of([&] { file.write(b.data(), 1); }), {target.string(), "already committed"});
    expect_names(error_of([&] { file.commit(); }), {target.string(), "already committed"});
  }
  EXPECT_EQ(slurp(target), a + std::string(5000, '\0') + b);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"out.bin"}) << "a temporary file was left behind";
}

TEST(StreamedFile, AnUncommittedFileLeavesTheOldTargetAlone) {
  TempDir dir;
  const auto target = dir.put("out.bin", "old content");
  {
    StreamedFile file(target);
    const std::string bytes = pattern_bytes(std::size_t{20} << 20, 3);
    file.write(bytes.data(), bytes.size());
  }
  EXPECT_EQ(slurp(target), "old content");
  EXPECT_EQ(dir.files(), std::vector<std::string>{"out.bin"});
}

TEST(StreamedFile, AnUnwritableFolderIsAnErrorNamingTheTarget) {
  const std::string message = error_of([] { StreamedFile file("/nonexistent-zp-folder/out.bin"); });
  expect_names(message, {"/nonexistent-zp-folder/out.bin"});
}

// The file size limit makes the write fail (EFBIG) as a full disk would.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    previous_signal_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &previous_);
    rlimit limit = previous_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &previous_);
    ::signal(SIGXFSZ, previous_signal_);
  }

 private:
  rlimit previous_{};
  sighandler_t previous_signal_;
};

TEST(StreamedFile, AFailedWriteBreaksTheFileAndNeverReachesTheTarget) {
  TempDir dir;
  const auto target = dir / "out.bin";
  const std::string bytes = pattern_bytes(std::size_t{4} << 20, 4);
  StreamedFile file(target);
  {
    const FileSizeLimit limit(std::size_t{1} << 20);
    // The buffered part may only fail when it is flushed, at commit.
    const std::string message = error_of([&] {
      file.write(bytes.data(), bytes.size());
      file.commit();
    });
    expect_names(message, {target.string(), "write failed"});
  }
  EXPECT_TRUE(file.broken());
  expect_names(error_of([&] { file.write(bytes.data(), 1); }), {target.string(), "earlier write failed"});
  expect_names(error_of([&] { file.commit(); }), {target.string(), "earlier write failed"});
  EXPECT_FALSE(std::filesystem::exists(target));
}

}  // namespace
