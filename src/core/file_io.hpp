// File helpers shared by every format: whole-file reads and atomic writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <future>
#include <span>
#include <string>
#include <vector>

namespace zp::detail {

/// The whole file, or zp::Error naming the file and the system's reason.
std::vector<std::byte> read_file(const std::filesystem::path& path);

/// A file written so that nobody ever sees half of it: the bytes go to a temporary file in the
/// target's folder (same file system, so the final rename is atomic), and commit() renames it
/// over the target. Destroying an uncommitted AtomicFile removes the temporary file, so a
/// failure part-way leaves the target (and any old file there) untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Where to write the content before commit(). The file exists (empty) once constructed.
  const std::filesystem::path& temp_path() const noexcept { return temp_; }
  const std::filesystem::path& target() const noexcept { return target_; }

  /// Flushes the temporary file to disk and renames it over the target.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

/// An AtomicFile written front to back, for outputs of any size (model files, their shards and
/// data files). The disk is kept busy while the caller computes what comes next, so that the
/// flush before the rename has little left. A failed write or flush throws zp::Error naming the
/// file, and the file is then broken(): it can be neither written nor committed. A committed file
/// takes no more writes.
class StreamedFile {
 public:
  explicit StreamedFile(std::filesystem::path target);
  ~StreamedFile();
  StreamedFile(const StreamedFile&) = delete;
  StreamedFile& operator=(const StreamedFile&) = delete;

  void write(const void* data, std::size_t size);
  void write_zeros(std::uint64_t count);
  /// Bytes written so far.
  std::uint64_t size() const noexcept { return written_; }
  bool broken() const noexcept { return broken_; }
  const std::filesystem::path& target() const noexcept { return file_.target(); }
  /// The target's path as text, for messages.
  const std::string& name() const noexcept { return name_; }

  /// Flushes everything to disk (reporting any failure, including one of an earlier background
  /// flush) and renames the file over the target.
  void commit();

 private:
  void check_open() const;
  void start_writeback();
  void wait_for_flush() noexcept;
  [[noreturn]] void fail(int error);

  AtomicFile file_;
  std::string name_;
  std::FILE* out_ = nullptr;
  std::uint64_t written_ = 0;
  std::uint64_t handed_to_disk_ = 0;  // bytes start_writeback has asked the kernel to write
  std::future<int> flushing_;         // the background fdatasync, if any: 0 or its errno
  int flush_error_ = 0;
  bool broken_ = false;
};

/// write `bytes` to `path` through an AtomicFile.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes);

}  // namespace zp::detail
