// Reading tensors into memory of our own, one ahead of the one being worked on.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <future>
#include <span>
#include <string>
#include <vector>

namespace zp::detail {

// Tensors to quantize are copied (pread) into memory of our own before they are read: the data
// is read two or three times (range, codes, error), and walking a file's mapping 4 KiB page by
// page costs more than the copy, on virtual machines most (nested page walks). The buffer asks
// for huge pages, grows to the largest tensor and is reused.
class Staging {
 public:
  Staging() = default;
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging();

  /// Room for `bytes`, keeping nothing of what was there.
  std::span<std::byte> reserve(std::size_t bytes);

 private:
  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
};

/// Tensors across threads: while one tensor is worked on (by the kernels' threads), a second
/// thread reads the next one into the other of two staging buffers, so reading overlaps
/// computing. Memory: two staging buffers, each the size of the largest tensor read.
class ReadAhead {
 public:
  /// Item k has size(k) bytes, which read(k, buffer) fills (reporting failures by throwing).
  ReadAhead(std::size_t count, std::function<std::size_t(std::size_t)> size,
            std::function<void(std::size_t, std::span<std::byte>)> read);
  /// The same, item k read in parts of part_bytes: read(k, offset, part) fills `part` with the
  /// item's bytes from `offset` on. A thread that calls next() before the item is complete reads
  /// parts too, instead of waiting (the first item, above all, has nothing to overlap with).
  ReadAhead(std::size_t count, std::function<std::size_t(std::size_t)> size,
            std::function<void(std::size_t, std::size_t, std::span<std::byte>)> read, std::size_t part_bytes);
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;
  ~ReadAhead();

  /// The next item's bytes; the previous span is invalid from now on. Rethrows a read error.
  std::span<const std::byte> next();

 private:
  void start(std::size_t k);
  // Reads parts of the item in flight until none is left to take.
  void read_parts();

  std::size_t count_;
  std::function<std::size_t(std::size_t)> size_;
  std::function<void(std::size_t, std::size_t, std::span<std::byte>)> read_;
  std::size_t part_bytes_;
  Staging buffers_[2];
  std::span<std::byte> filled_[2];
  std::future<void> pending_;
  std::size_t next_ = 0;
  // The item being read, its number of parts and the next part to take.
  std::size_t item_ = 0, parts_ = 0;
  std::atomic<std::size_t> next_part_{0};
};

/// Room for `bytes` in `v` without touching it, in huge pages where the kernel gives them (the
/// first touch of fresh memory is a page fault per 4 KiB otherwise).
void reserve_huge(std::vector<std::uint8_t>& v, std::size_t bytes);

/// s = bytes, into memory reserved as reserve_huge does (for payloads that protobuf messages
/// hold as strings).
void assign_huge(std::string& s, std::span<const std::uint8_t> bytes);

}  // namespace zp::detail
