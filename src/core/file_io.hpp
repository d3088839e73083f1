// File helpers shared by every format: whole-file reads and atomic writes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
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

/// write `bytes` to `path` through an AtomicFile.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes);

}  // namespace zp::detail
