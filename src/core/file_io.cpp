#include "core/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <fmt/std.h>

#include "zeropoint/error.hpp"

namespace zp::detail {
namespace {

std::string sys_error() { return std::strerror(errno); }

// A flush that failed with these says the file cannot be flushed (a special file system), not
// that a write was lost.
bool flush_unsupported(int error) { return error == EINVAL || error == ENOTSUP; }

// StreamedFile hands its bytes to the disk in steps of this size, so that the disk starts on
// the first part of a large tensor while the rest is still being copied into the page cache.
constexpr std::uint64_t kWritebackStep = std::uint64_t{16} << 20;

// Closes a descriptor on every path out of a function.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::vector<std::byte> read_file(const std::filesystem::path& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw Error(fmt::format("{}: cannot open: {}", path.string(), sys_error()));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw Error(fmt::format("{}: cannot stat: {}", path.string(), sys_error()));
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", path.string()));
  std::vector<std::byte> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(f.fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(fmt::format("{}: read failed: {}", path.string(), sys_error()));
    if (got == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  const std::filesystem::path dir = target_.has_parent_path() ? target_.parent_path() : ".";
  std::string pattern = (dir / fmt::format(".{}.zp-tmp-XXXXXX", target_.filename().string())).string();
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) {
    throw Error(fmt::format("{}: cannot create a file in {}: {}", target_.string(), dir.string(), sys_error()));
  }
  ::fchmod(fd, 0644);
  ::close(fd);
  temp_ = pattern;
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ignored;
    std::filesystem::remove(temp_, ignored);
  }
}

void AtomicFile::commit() {
  {
    Fd f{::open(temp_.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0 || (::fsync(f.fd) != 0 && !flush_unsupported(errno))) {
      throw Error(fmt::format("{}: cannot write: {}", target_.string(), sys_error()));
    }
  }
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    throw Error(fmt::format("{}: cannot write: {}", target_.string(), sys_error()));
  }
  committed_ = true;
}

StreamedFile::StreamedFile(std::filesystem::path target) : file_(std::move(target)), name_(file_.target().string()) {
  out_ = std::fopen(file_.temp_path().c_str(), "wb");
  if (!out_) throw Error(fmt::format("{}: cannot write: {}", name_, sys_error()));
  // Large buffered writes: one system call per MiB.
  std::setvbuf(out_, nullptr, _IOFBF, std::size_t{1} << 20);
}

StreamedFile::~StreamedFile() {
  wait_for_flush();  // it uses the descriptor
  if (out_) std::fclose(out_);
}

void StreamedFile::fail(int error) {
  broken_ = true;
  throw Error(fmt::format("{}: write failed: {}", name_, std::strerror(error)));
}

void StreamedFile::check_open() const {
  if (broken_) throw Error(fmt::format("{}: an earlier write failed; the file cannot be finished", name_));
  if (!out_) throw Error(fmt::format("{}: the file was already committed", name_));
}

void StreamedFile::write(const void* data, std::size_t size) {
  check_open();
  const auto* bytes = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, kWritebackStep));
    if (std::fwrite(bytes, 1, n, out_) != n) fail(errno);
    written_ += n;
    bytes += n;
    size -= n;
    start_writeback();
  }
}

void StreamedFile::write_zeros(std::uint64_t count) {
  static constexpr char kZeros[4096] = {};
  while (count > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(count, sizeof kZeros));
    write(kZeros, n);
    count -= n;
  }
}

// commit() flushes the file to disk before renaming it (an atomic replace is only safe once the
// data is there). Asking the kernel to start writing each step as soon as it is complete lets the
// disk work while the next tensors are computed. That is not enough on a virtual disk whose host
// caches writes: its flush at the end then writes everything to the real disk (0.26 s for 600 MB
// here, however early the data left the guest). So a second thread also flushes (fdatasync)
// whenever the previous flush is done and more has been written, and the final flush has about
// one step left.
void StreamedFile::start_writeback() {
  if (written_ - handed_to_disk_ < kWritebackStep) return;
  if (std::fflush(out_) != 0) return;  // a real failure shows again at the next write or commit
  const std::uint64_t upto = written_ / kWritebackStep * kWritebackStep;
#ifdef SYNC_FILE_RANGE_WRITE
  ::sync_file_range(::fileno(out_), static_cast<off_t>(handed_to_disk_), static_cast<off_t>(upto - handed_to_disk_),
                    SYNC_FILE_RANGE_WRITE);
#endif
  handed_to_disk_ = upto;
  if (!flushing_.valid() || flushing_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    wait_for_flush();
    try {
      flushing_ = std::async(std::launch::async, [fd = ::fileno(out_)] { return ::fdatasync(fd) == 0 ? 0 : errno; });
    } catch (const std::system_error&) {
      // no thread to spare: commit() flushes everything, as it always does
    }
  }
}

// Keeps a background flush's failure for commit(): once a flush has reported a failed writeback,
// the kernel does not report it again to a later fsync.
void StreamedFile::wait_for_flush() noexcept {
  if (!flushing_.valid()) return;
  const int error = flushing_.get();
  if (flush_error_ == 0 && error != 0 && !flush_unsupported(error)) flush_error_ = error;
}

void StreamedFile::commit() {
  check_open();
  wait_for_flush();
  std::FILE* out = std::exchange(out_, nullptr);
  const int error = std::fclose(out) != 0 ? errno : flush_error_;
  if (error != 0) fail(error);
  try {
    file_.commit();
  } catch (const Error&) {
    broken_ = true;
    throw;
  }
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  AtomicFile out(path);
  {
    Fd f{::open(out.temp_path().c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC)};
    if (f.fd < 0) throw Error(fmt::format("{}: cannot write: {}", path.string(), sys_error()));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t put = ::write(f.fd, bytes.data() + done, bytes.size() - done);
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) throw Error(fmt::format("{}: write failed: {}", path.string(), sys_error()));
      done += static_cast<std::size_t>(put);
    }
  }
  out.commit();
}

}  // namespace zp::detail
