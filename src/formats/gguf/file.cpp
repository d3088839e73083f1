// A GGUF file mapped into memory. The whole file is mapped (read-only, private) and the header is
// parsed from the mapping at open; a tensor's bytes are then a pointer into the mapping and cost
// nothing until touched. A file truncated by someone else while mapped would fault on access
// (SIGBUS), as with any mmap reader; model files are not rewritten in place.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "formats/gguf/gguf_detail.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace zp::gguf {

struct File::Impl {
  std::filesystem::path path;
  std::string name;  // path as text, for messages
  const std::uint8_t* map = nullptr;
  std::size_t map_size = 0;
  int fd = -1;  // kept for read(): copying through the kernel avoids faulting the mapping in
  Header header;

  ~Impl() {
    if (map) ::munmap(const_cast<std::uint8_t*>(map), map_size);
    if (fd >= 0) ::close(fd);
  }

  // The tensor's place in the mapping, after checking that it is one this file's header allows:
  // a TensorInfo from another file must not turn into a read past the end of this one.
  std::size_t start_of(const TensorInfo& t) const {
    if (t.offset > header.data_size || t.bytes > header.data_size - t.offset) {
      throw Error(fmt::format("{}: tensor {} ({} bytes at offset {}) is not inside this file's data section", name,
                              detail::in_quotes(t.name), t.bytes, t.offset));
    }
    return static_cast<std::size_t>(header.data_offset + t.offset);
  }

  bool inside(const TensorInfo& t) const noexcept {
    return map && t.bytes > 0 && t.offset <= header.data_size && t.bytes <= header.data_size - t.offset;
  }
};

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->name = path.string();
  const std::string& name = impl->name;

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", name, std::strerror(errno)));
  impl->fd = fd;  // closed by ~Impl on every way out
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(fmt::format("{}: cannot stat: {}", name, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", name));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > 0) {
    // mmap of 0 bytes is an error; an empty file is refused by parse_header below.
    void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throw Error(fmt::format("{}: cannot map into memory: {}", name, std::strerror(errno)));
    impl->map = static_cast<const std::uint8_t*>(p);
    impl->map_size = static_cast<std::size_t>(size);
  }
  impl->header = parse_header({impl->map, impl->map_size}, size, name);
  return File(std::move(impl));
}

const std::filesystem::path& File::path() const noexcept { return impl_->path; }
const Header& File::header() const noexcept { return impl_->header; }

std::span<const std::uint8_t> File::data(const TensorInfo& t) const {
  const std::size_t start = impl_->start_of(t);
  if (t.bytes == 0) return {};
  return {impl_->map + start, static_cast<std::size_t>(t.bytes)};
}

void File::read(const TensorInfo& t, std::span<std::uint8_t> out) const {
  const std::size_t start = impl_->start_of(t);
  if (out.size() != t.bytes) {
    throw Error(fmt::format("{}: tensor {} has {} bytes, not {}", impl_->name, detail::in_quotes(t.name), t.bytes,
                            out.size()));
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(impl_->fd, out.data() + done, out.size() - done, static_cast<off_t>(start + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw Error(fmt::format("{}: tensor {}: cannot read: {}", impl_->name, detail::in_quotes(t.name),
                              n < 0 ? std::strerror(errno) : "the file is shorter than when it was opened"));
    }
    done += static_cast<std::size_t>(n);
  }
}

void File::prefetch(const TensorInfo& t) const noexcept {
#ifdef MADV_POPULATE_READ  // Linux 5.14
  if (!impl_->inside(t)) return;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = static_cast<std::size_t>(impl_->header.data_offset + t.offset) / page * page;
  const auto end = static_cast<std::size_t>(impl_->header.data_offset + t.offset + t.bytes);
  ::madvise(const_cast<std::uint8_t*>(impl_->map) + begin, end - begin, MADV_POPULATE_READ);
#else
  (void)t;
#endif
}

void File::release(const TensorInfo& t) const noexcept {
  if (!impl_->inside(t)) return;
  // Only pages wholly inside the tensor: the neighbours' pages may still be in use.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = static_cast<std::size_t>(impl_->header.data_offset + t.offset);
  const std::size_t end = begin + static_cast<std::size_t>(t.bytes);
  const std::size_t first = (begin + page - 1) / page * page;
  const std::size_t last = end / page * page;
  if (first < last) ::madvise(const_cast<std::uint8_t*>(impl_->map) + first, last - first, MADV_DONTNEED);
}

}  // namespace zp::gguf
