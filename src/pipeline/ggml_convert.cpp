#include "pipeline/ggml_convert.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/thread_pool.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/ggml_model.hpp"
#include "zeropoint/kernels.hpp"

namespace zp::detail {
namespace {

// Values per piece: a multiple of every block size (256 at most), and small enough that the
// piece's float32 copies stay in L2 while it is quantized, dequantized and compared.
constexpr std::uint64_t kPiece = 16384;

struct Scratch {
  std::vector<float> values, restored;
  std::vector<std::uint8_t> blocks;
};

// The piece's values as float32: the data itself when it already is (and is aligned), else a
// widened or dequantized copy in `buffer`.
std::span<const float> as_f32(const GgmlValues& from, std::uint64_t first, std::size_t n, std::vector<float>& buffer) {
  const ggml::TypeTraits& t = ggml::traits(from.type);
  const std::uint8_t* p = from.data + first / t.block_size * t.block_bytes;
  buffer.resize(n);
  switch (from.type) {
    case ggml::Type::f32:
      if (reinterpret_cast<std::uintptr_t>(p) % alignof(float) == 0) return {reinterpret_cast<const float*>(p), n};
      std::memcpy(buffer.data(), p, n * sizeof(float));
      return buffer;
    case ggml::Type::f16:
    case ggml::Type::bf16: {
      std::span<const std::uint16_t> bits;
      std::vector<std::uint16_t> aligned;
      if (reinterpret_cast<std::uintptr_t>(p) % alignof(std::uint16_t) == 0) {
        bits = {reinterpret_cast<const std::uint16_t*>(p), n};
      } else {
        aligned.resize(n);
        std::memcpy(aligned.data(), p, n * 2);
        bits = aligned;
      }
      if (from.type == ggml::Type::f16) {
        kernels::f16_f32_convert(bits, buffer);
      } else {
        kernels::bf16_f32_convert(bits, buffer);
      }
      return buffer;
    }
    default:
      t.dequantize({p, n / t.block_size * t.block_bytes}, buffer);
      return buffer;
  }
}

}  // namespace

void convert_values(const GgmlValues& from, ggml::Type to, std::span<std::uint8_t> out, ErrorAccumulator& error,
                    std::int64_t first_index) {
  const ggml::TypeTraits& src = ggml::traits(from.type);
  const ggml::TypeTraits& dst = ggml::traits(to);
  const bool widenable = from.type == ggml::Type::f32 || from.type == ggml::Type::f16 || from.type == ggml::Type::bf16;
  if (!widenable && src.dequantize == nullptr) {
    throw Error(fmt::format("zeropoint cannot read {} values back to floats", src.name));
  }
  if (dst.quantize == nullptr || dst.dequantize == nullptr) {
    throw Error(fmt::format("zeropoint cannot write ggml type {}", dst.name));
  }
  if (from.elements % src.block_size != 0 || from.elements % dst.block_size != 0) {
    throw Error(fmt::format("{} values do not fill whole blocks of {} and {}", from.elements, src.name, dst.name));
  }
  const auto out_bytes = ggml::row_bytes(to, from.elements);
  if (!out.empty() && (!out_bytes || out.size() != *out_bytes)) {
    throw Error(fmt::format("{} values of {} take {} bytes, not {}", from.elements, dst.name, out_bytes.value_or(0), out.size()));
  }

  // With importance weights a piece is whole rows, each quantized with the row's weights.
  const std::uint64_t row = from.importance.size();
  if (row > 0 && from.elements % row != 0) {
    throw Error(fmt::format("{} values are not whole rows of the importance weights' {}", from.elements, row));
  }
  const std::uint64_t piece = row > 0 ? std::max<std::uint64_t>(1, kPiece / row) * row : kPiece;
  const std::int64_t pieces = static_cast<std::int64_t>((from.elements + piece - 1) / piece);
  // One accumulator per piece, merged in piece order: the sums are then grouped the same way
  // whatever the number of threads.
  std::vector<ErrorAccumulator> by_piece(static_cast<std::size_t>(pieces));
  parallel_for(pieces, 4, [&](std::int64_t begin, std::int64_t end) {
    Scratch s;
    for (std::int64_t i = begin; i < end; ++i) {
      const std::uint64_t first = static_cast<std::uint64_t>(i) * piece;
      const std::size_t n = static_cast<std::size_t>(std::min(piece, from.elements - first));
      const std::span<const float> x = as_f32(from, first, n, s.values);
      const std::size_t bytes = n / dst.block_size * dst.block_bytes;
      std::span<std::uint8_t> blocks;
      if (out.empty()) {
        s.blocks.resize(bytes);
        blocks = s.blocks;
      } else {
        blocks = out.subspan(first / dst.block_size * dst.block_bytes, bytes);
      }
      if (row == 0) {
        dst.quantize(x, blocks, {});
      } else {
        const std::size_t row_bytes = row / dst.block_size * dst.block_bytes;
        for (std::size_t r = 0; r < n / row; ++r) {
          dst.quantize(x.subspan(r * row, row), blocks.subspan(r * row_bytes, row_bytes), from.importance);
        }
      }
      s.restored.resize(n);
      dst.dequantize(blocks, s.restored);
      by_piece[static_cast<std::size_t>(i)].add(x, s.restored, first_index + static_cast<std::int64_t>(first));
    }
  });
  for (const ErrorAccumulator& acc : by_piece) error.merge(acc);
}

std::int64_t measure_ggml(const TensorView& x, ggml::Type type, ErrorMetrics& error) {
  ggml::Type from;
  switch (x.dtype()) {
    case DType::f32: from = ggml::Type::f32; break;
    case DType::f16: from = ggml::Type::f16; break;
    case DType::bf16: from = ggml::Type::bf16; break;
    default: throw Error(fmt::format("{} values cannot be measured as {}", dtype_name(x.dtype()), ggml::traits(type).name));
  }
  if (!x.is_contiguous()) throw Error("measure_ggml needs a contiguous tensor");
  const std::uint64_t row = x.rank() == 0 ? 1 : static_cast<std::uint64_t>(x.shape().back());
  const ggml::Type fitting = fallback_chain(type, row).back();
  const auto n = static_cast<std::uint64_t>(x.numel());
  ErrorAccumulator acc;
  convert_values({static_cast<const std::uint8_t*>(x.data()), from, n, {}}, fitting, {}, acc);
  error = acc.result();
  return static_cast<std::int64_t>(*ggml::row_bytes(fitting, n));
}

}  // namespace zp::detail
