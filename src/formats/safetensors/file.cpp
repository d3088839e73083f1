// A safetensors file mapped into memory. The whole file is mapped (read-only, private), so a
// tensor's bytes are a pointer into the mapping and cost nothing until touched; release() hands
// pages back once a tensor is done. A file truncated by someone else while mapped would fault on
// access (SIGBUS), as with any mmap reader; model files are not rewritten in place.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "formats/safetensors/strict_json.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace zp::safetensors {

struct File::Impl {
  std::filesystem::path path;
  std::string name;  // path as text, for messages
  const std::byte* map = nullptr;
  std::size_t map_size = 0;
  int fd = -1;  // kept for read(): copying through the kernel avoids faulting the mapping in
  Header header;

  ~Impl() {
    if (map) ::munmap(const_cast<std::byte*>(map), map_size);
    if (fd >= 0) ::close(fd);
  }

  // The tensor's place in the mapping, after checking that it is one this file's header allows:
  // a TensorInfo from another file must not turn into a read past the end of this one.
  std::size_t start_of(const TensorInfo& t) const {
    if (t.offset > header.data_size || t.size > header.data_size - t.offset) {
      throw Error(fmt::format("{}: tensor {} (data_offsets [{}, {}]) is not inside this file's data section", name,
                              detail::in_quotes(t.name), t.offset, t.offset + t.size));
    }
    return static_cast<std::size_t>(header.data_start() + t.offset);
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
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const int stat_errno = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd);
    if (!stat_ok) throw Error(fmt::format("{}: cannot stat: {}", name, std::strerror(stat_errno)));
    throw Error(fmt::format("{}: not a regular file", name));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > 0) {
    // A file shorter than 8 bytes is refused by parse_header below; mmap of 0 bytes is an error.
    void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(fmt::format("{}: cannot map into memory: {}", name, std::strerror(map_errno)));
    }
    impl->fd = fd;
    impl->map = static_cast<const std::byte*>(p);
    impl->map_size = static_cast<std::size_t>(size);
  } else {
    ::close(fd);
  }
  impl->header = parse_header({impl->map, impl->map_size}, size, name);
  return File(std::move(impl));
}

const std::filesystem::path& File::path() const noexcept { return impl_->path; }
const Header& File::header() const noexcept { return impl_->header; }

std::span<const std::byte> File::bytes(const TensorInfo& t) const {
  return {impl_->map + impl_->start_of(t), static_cast<std::size_t>(t.size)};
}

TensorView File::view(const TensorInfo& t, Tensor& scratch) const {
  if (!t.type) {
    throw Error(fmt::format("{}: tensor {} has dtype {}, which zeropoint cannot compute with", impl_->name,
                            detail::in_quotes(t.name), t.dtype));
  }
  const std::span<const std::byte> data = bytes(t);
  if (data.size() != static_cast<std::uint64_t>(checked_numel(t.shape)) * dtype_size(*t.type)) {
    throw Error(fmt::format("{}: tensor {}: {} bytes do not make {} x {}", impl_->name, detail::in_quotes(t.name),
                            data.size(), t.dtype, shape_str(t.shape)));
  }
  // The header fixes where each tensor starts, and nothing in the format aligns it: a U8 tensor of
  // odd length puts every tensor after it off its element boundary.
  if (reinterpret_cast<std::uintptr_t>(data.data()) % dtype_size(*t.type) == 0) {
    return TensorView(data.data(), *t.type, t.shape);
  }
  scratch = Tensor(*t.type, t.shape);
  std::memcpy(scratch.data(), data.data(), data.size());
  return scratch.view();
}

void File::read(const TensorInfo& t, std::span<std::byte> out) const {
  const std::size_t start = impl_->start_of(t);
  if (out.size() != t.size) {
    throw Error(fmt::format("{}: tensor '{}' has {} bytes, not {}", impl_->name, t.name, t.size, out.size()));
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(impl_->fd, out.data() + done, out.size() - done, static_cast<off_t>(start + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw Error(fmt::format("{}: tensor '{}': cannot read: {}", impl_->name, t.name,
                              n < 0 ? std::strerror(errno) : "the file is shorter than when it was opened"));
    }
    done += static_cast<std::size_t>(n);
  }
}

void File::prefetch(const TensorInfo& t) const noexcept {
#ifdef MADV_POPULATE_READ  // Linux 5.14
  if (!impl_->map || t.size == 0 || t.offset > impl_->header.data_size || t.size > impl_->header.data_size - t.offset) {
    return;
  }
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = static_cast<std::size_t>(impl_->header.data_start() + t.offset) / page * page;
  const std::size_t end = static_cast<std::size_t>(impl_->header.data_start() + t.offset + t.size);
  ::madvise(const_cast<std::byte*>(impl_->map) + begin, end - begin, MADV_POPULATE_READ);
#else
  (void)t;
#endif
}

void File::release(const TensorInfo& t) const noexcept {
  if (!impl_->map || t.size == 0 || t.offset > impl_->header.data_size || t.size > impl_->header.data_size - t.offset) {
    return;
  }
  // Only pages wholly inside the tensor: the neighbours' pages may still be in use.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = static_cast<std::size_t>(impl_->header.data_start() + t.offset);
  const std::size_t end = begin + static_cast<std::size_t>(t.size);
  const std::size_t first = (begin + page - 1) / page * page;
  const std::size_t last = end / page * page;
  if (first < last) {
    ::madvise(const_cast<std::byte*>(impl_->map) + first, last - first, MADV_DONTNEED);
  }
}

}  // namespace zp::safetensors
