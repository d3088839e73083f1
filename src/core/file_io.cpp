#include "core/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <fmt/std.h>

#include "zeropoint/error.hpp"

namespace zp::detail {
namespace {

std::string sys_error() { return std::strerror(errno); }

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
  Fd f{::open(temp_.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd >= 0) ::fsync(f.fd);
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    throw Error(fmt::format("{}: cannot write: {}", target_.string(), sys_error()));
  }
  committed_ = true;
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
