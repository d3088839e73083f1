// Turning a run of values stored in one ggml type into another, with what it lost: the step
// quantize_gguf, convert_model and analyze share.
#pragma once

#include <cstdint>
#include <span>

#include "zeropoint/ggml.hpp"
#include "zeropoint/metrics.hpp"
#include "zeropoint/tensor.hpp"

namespace zp::detail {

/// `elements` values stored as `type` at `data` (a whole number of blocks; any alignment).
struct GgmlValues {
  const std::uint8_t* data = nullptr;
  ggml::Type type = ggml::Type::f32;
  std::uint64_t elements = 0;
  /// Empty, or one weight per column for rows of importance.size() values (llama.cpp's
  /// importance matrix): the values are then whole rows, each quantized with these weights.
  std::span<const float> importance;
};

/// Converts `from` to type `to` (elements a multiple of both block sizes), writing the blocks
/// to `out` (exactly row_bytes(to, elements) bytes), or, with an empty `out`, only measuring.
/// The error of `to`'s values (dequantized) against `from`'s is added to `error`, the values
/// counted from `first_index` (so that a tensor converted in batches gets one set of sums). The work is split over
/// zp::thread_count() threads in pieces that stay in cache: each piece is widened to float32,
/// quantized with the fast kernel, dequantized and compared, so the input is read once.
/// `from` must be f32, f16, bf16 or a type with a dequantizer, `to` a type zeropoint writes.
void convert_values(const GgmlValues& from, ggml::Type to, std::span<std::uint8_t> out, ErrorAccumulator& error,
                    std::int64_t first_index = 0);

/// Measures `type` on a contiguous f32, f16 or bf16 tensor, row by row of its last dimension
/// (with the fallback a row that does not fill the type's blocks gets): the bytes the tensor
/// would take, and the error into `error`.
std::int64_t measure_ggml(const TensorView& x, ggml::Type type, ErrorMetrics& error);

}  // namespace zp::detail
