#include "core/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "zeropoint/error.hpp"

namespace zp::detail {

MappedFile::MappedFile(const std::string& path, std::string_view name) : name_(name) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(fmt::format("{}: cannot open: {}", name_, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    close();
    throw Error(fmt::format("{}: cannot stat: {}", name_, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    close();
    throw Error(fmt::format("{}: not a regular file", name_));
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {  // mmap of 0 bytes is an error
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      size_ = 0;
      close();
      throw Error(fmt::format("{}: cannot map into memory: {}", name_, std::strerror(err)));
    }
    map_ = static_cast<const std::uint8_t*>(p);
  }
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : name_(std::move(other.name_)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::move(other.name_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

MappedFile::~MappedFile() { close(); }

void MappedFile::close() noexcept {
  if (map_) ::munmap(const_cast<std::uint8_t*>(map_), size_);
  if (fd_ >= 0) ::close(fd_);
  map_ = nullptr;
  fd_ = -1;
}

void MappedFile::read(std::uint64_t offset, std::span<std::uint8_t> out, std::string_view what) const {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw Error(fmt::format("{}: {}: cannot read: {}", name_, what,
                              n < 0 ? std::strerror(errno) : "the file is shorter than when it was opened"));
    }
    done += static_cast<std::size_t>(n);
  }
}

void MappedFile::prefetch(std::uint64_t offset, std::uint64_t length) const noexcept {
#ifdef MADV_POPULATE_READ  // Linux 5.14
  if (!map_ || length == 0 || offset > size_ || length > size_ - offset) return;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t begin = static_cast<std::size_t>(offset) / page * page;
  const auto end = static_cast<std::size_t>(offset + length);
  ::madvise(const_cast<std::uint8_t*>(map_) + begin, end - begin, MADV_POPULATE_READ);
#else
  (void)offset;
  (void)length;
#endif
}

void MappedFile::release(std::uint64_t offset, std::uint64_t length) const noexcept {
  if (!map_ || length == 0 || offset > size_ || length > size_ - offset) return;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = static_cast<std::size_t>(offset);
  const std::size_t end = begin + static_cast<std::size_t>(length);
  const std::size_t first = (begin + page - 1) / page * page;
  const std::size_t last = end / page * page;
  if (first < last) ::madvise(const_cast<std::uint8_t*>(map_) + first, last - first, MADV_DONTNEED);
}

}  // namespace zp::detail
