// A file mapped into memory for reading, shared by the format readers: the mapping, the
// descriptor kept for pread, and the page hints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace zp::detail {

/// A regular file mapped read-only (private) as a whole, so a part's bytes are a pointer into the
/// mapping and cost nothing until touched. A file truncated by someone else while mapped would
/// fault on access (SIGBUS), as with any mmap reader; model files are not rewritten in place.
class MappedFile {
 public:
  /// Throws zp::Error "NAME: cannot open: ...", "NAME: not a regular file", ... An empty file
  /// is mapped as no bytes.
  MappedFile(const std::string& path, std::string_view name);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::uint8_t> bytes() const noexcept { return {map_, size_}; }
  std::uint64_t size() const noexcept { return size_; }

  /// Copies out.size() bytes from `offset` through the kernel (pread): for data read several
  /// times, a copy into memory of the caller's choosing is cheaper than walking the mapping 4 KiB
  /// page by page. `what` names the part in the error ("NAME: WHAT: cannot read: ...").
  void read(std::uint64_t offset, std::span<std::uint8_t> out, std::string_view what) const;
  /// Asks the kernel to map [offset, offset + length) now, in one call (a hint).
  void prefetch(std::uint64_t offset, std::uint64_t length) const noexcept;
  /// Lets the kernel drop the pages wholly inside [offset, offset + length) (the neighbours' pages
  /// may still be in use), so resident memory follows the part being worked on.
  void release(std::uint64_t offset, std::uint64_t length) const noexcept;

 private:
  void close() noexcept;

  std::string name_;
  const std::uint8_t* map_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;
};

}  // namespace zp::detail
