// zeropoint/formats/quantized_npz.hpp — a quantized tensor as an .npz archive numpy can load.
//
// Entries (docs/formats.md):
//   format      text  "zeropoint.quantized.v1"
//   scheme      text  the scheme's canonical form, e.g. "int4:block=32"
//   shape       i64   [rank]   the tensor's logical shape
//   codes       i8/u8/i16/u16 shaped like the tensor for 5 to 16 bits; for 2 to 4 bits u8 [bytes],
//               the packed codes (element 0 in the lowest bits, as ONNX packs int4)
//   scale       f32   shaped by the granularity: [] per tensor, [channels] per channel, the
//               tensor's shape with the block axis divided (rounded up) per block
//   zero_point  the codes' dtype, same shape as scale (asymmetric schemes with an integer zero
//               point, as ONNX stores it); symmetric schemes store none: it is 0 for signed
//               codes and 2^(bits-1) for unsigned ones
//   offset      f32   same shape as scale (zp=float schemes; x = q * scale + offset)
#pragma once

#include <filesystem>

#include "zeropoint/quantize.hpp"

namespace zp::npz {

inline constexpr const char* kQuantizedFormat = "zeropoint.quantized.v1";

/// Writes `q` atomically (nothing at `path` until the whole archive is written).
void write_quantized(const std::filesystem::path& path, const QuantizedTensor& q);

/// Reads and validates a quantized archive: every entry present with the right dtype and shape,
/// every code and zero point inside the scheme's range, every scale finite and positive. Throws
/// zp::Error naming the file and the entry otherwise.
QuantizedTensor read_quantized(const std::filesystem::path& path);

}  // namespace zp::npz
