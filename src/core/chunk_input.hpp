// Helpers shared by the chunked tensor walks (observation and one-pass quantization).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "zeropoint/dtype.hpp"
#include "zeropoint/kernels.hpp"

namespace zp::detail {

/// Elements [begin, end) of a contiguous f32, f16 or bf16 array as float32: f32 in place,
/// 16-bit floats widened into `buffer` (which a chunk loop reuses, so it stays in cache).
inline std::span<const float> float_values(const void* data, DType dtype, std::int64_t begin, std::int64_t end,
                                           std::vector<float>& buffer) {
  const auto count = static_cast<std::size_t>(end - begin);
  if (dtype == DType::f32) return {static_cast<const float*>(data) + begin, count};
  buffer.resize(count);
  const std::span<const std::uint16_t> halves{static_cast<const std::uint16_t*>(data) + begin, count};
  if (dtype == DType::f16) kernels::f16_f32_convert(halves, buffer);
  else kernels::bf16_f32_convert(halves, buffer);
  return buffer;
}

/// The first non-finite value's index, found by any thread: each offers the first one in the
/// part it saw, and the smallest wins.
class FirstNonFinite {
 public:
  explicit FirstNonFinite(std::int64_t none) : index_(none) {}

  /// `part` (starting at element `start`) holds a NaN or infinity.
  void found_in(std::span<const float> part, std::int64_t start) {
    const std::int64_t here = start + static_cast<std::int64_t>(kernels::f32_find_nonfinite(part));
    std::int64_t seen = index_.load();
    while (here < seen && !index_.compare_exchange_weak(seen, here)) {
    }
  }

  std::int64_t index() const { return index_.load(); }

 private:
  std::atomic<std::int64_t> index_;
};

}  // namespace zp::detail
