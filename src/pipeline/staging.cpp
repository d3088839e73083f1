#include "pipeline/staging.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>

#include <fmt/format.h>

#include "zeropoint/error.hpp"

namespace zp::detail {

Staging::~Staging() { std::free(data_); }

std::span<std::byte> Staging::reserve(std::size_t bytes) {
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  if (bytes > capacity_) {
    std::free(data_);
    capacity_ = (bytes + kHuge - 1) / kHuge * kHuge;
    data_ = static_cast<std::byte*>(std::aligned_alloc(kHuge, capacity_));
    if (!data_) {
      capacity_ = 0;
      throw Error(fmt::format("out of memory staging a tensor of {} bytes", bytes));
    }
#ifdef MADV_HUGEPAGE
    ::madvise(data_, capacity_, MADV_HUGEPAGE);
#endif
  }
  return {data_, bytes};
}

ReadAhead::ReadAhead(std::size_t count, std::function<std::size_t(std::size_t)> size,
                     std::function<void(std::size_t, std::span<std::byte>)> read)
    : ReadAhead(
          count, std::move(size),
          [read = std::move(read)](std::size_t k, std::size_t, std::span<std::byte> all) { read(k, all); },
          std::numeric_limits<std::size_t>::max()) {}

ReadAhead::ReadAhead(std::size_t count, std::function<std::size_t(std::size_t)> size,
                     std::function<void(std::size_t, std::size_t, std::span<std::byte>)> read, std::size_t part_bytes)
    : count_(count), size_(std::move(size)), read_(std::move(read)), part_bytes_(std::max<std::size_t>(part_bytes, 1)) {
  // Both buffers at the largest size from the start: reserving costs nothing until touched,
  // while growing one later frees memory already cleared and clears a fresh block (on this VM
  // at about 1 GB/s, memory the host has taken back).
  std::size_t largest = 0;
  for (std::size_t k = 0; k < count_; ++k) largest = std::max(largest, size_(k));
  for (Staging& b : buffers_) b.reserve(largest);
  if (count_ > 0) start(0);
}

ReadAhead::~ReadAhead() {
  if (pending_.valid()) pending_.wait();
}

std::span<const std::byte> ReadAhead::next() {
  std::exception_ptr failed;
  try {
    read_parts();
  } catch (...) {
    failed = std::current_exception();
    next_part_ = parts_;  // the other thread stops after its part
  }
  pending_.get();  // its failure, if any, first: it read the earlier parts
  if (failed) std::rethrow_exception(failed);
  const std::size_t k = next_++;
  if (next_ < count_) start(next_);
  return filled_[k % 2];
}

void ReadAhead::start(std::size_t k) {
  const std::size_t bytes = size_(k);
  filled_[k % 2] = buffers_[k % 2].reserve(bytes);
  item_ = k;
  parts_ = bytes == 0 ? 1 : (bytes - 1) / part_bytes_ + 1;  // an empty item is still read once (checks)
  next_part_ = 0;
  pending_ = std::async(std::launch::async, [this] { read_parts(); });
}

void ReadAhead::read_parts() {
  const std::span<std::byte> buffer = filled_[item_ % 2];
  for (std::size_t p; (p = next_part_.fetch_add(1)) < parts_;) {
    const std::size_t at = p * part_bytes_;
    read_(item_, at, buffer.subspan(at, std::min(part_bytes_, buffer.size() - at)));
  }
}

namespace {
// Asks for huge pages on the whole 2 MiB pages inside [data, data + bytes).
void advise_huge([[maybe_unused]] void* data, [[maybe_unused]] std::size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + kHuge - 1) / kHuge * kHuge;
  const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
  if (begin < end) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}
}  // namespace

void reserve_huge(std::vector<std::uint8_t>& v, std::size_t bytes) {
  v.reserve(bytes);
  advise_huge(v.data(), v.capacity());
}

void assign_huge(std::string& s, std::span<const std::uint8_t> bytes) {
  if (s.capacity() < bytes.size()) {
    std::string().swap(s);  // no copy of the old contents into the new buffer
    s.reserve(bytes.size());
    advise_huge(s.data(), s.capacity());
  }
  s.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace zp::detail
