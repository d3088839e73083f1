// zeropoint/quantize.hpp — tensors to codes and back.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "zeropoint/observe.hpp"
#include "zeropoint/metrics.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/tensor.hpp"

namespace zp {

/// Codes, their parameters and the logical shape. Codes are stored in containers of 2, 4, 8
/// or 16 bits (the smallest power of two >= bits): 2-bit codes four to a byte, 3- and 4-bit
/// codes two to a byte, element 0 in the lowest bits (ONNX's order); 5- to 8-bit codes one
/// byte each; 16-bit codes two bytes, little-endian. Signed codes are two's complement within
/// their container. The last byte is zero-padded when the count does not fill it.
struct QuantizedTensor {
  Shape shape;
  QParams params;
  std::vector<std::uint8_t> data;

  std::int64_t numel() const { return checked_numel(shape); }
};

/// The DType that holds one unpacked code of `scheme`: i8/u8 up to 8 bits, i16/u16 for 16.
DType code_dtype(const Scheme& scheme) noexcept;

/// Bits each code occupies in storage: 2, 4, 8 or 16.
int container_bits(int bits) noexcept;

/// Bytes needed to store `count` codes of `bits` bits.
std::int64_t packed_size(std::int64_t count, int bits);

/// q = clamp(round((x - offset) / scale) + zero_point, qmin, qmax) for every element, with
/// the group's parameters. x may be any float dtype and any strides.
/// NaN becomes the zero point's code (clamped); +-inf saturate to qmax / qmin. To refuse
/// non-finite input instead, observe with ObserveOptions (the default does).
QuantizedTensor quantize(const TensorView& x, const QParams& params);

/// Observes, chooses parameters and quantizes in one call: the same result as
/// quantize(x, compute_params(x, scheme, options)), but where every parameter group is one
/// contiguous stretch of memory (per channel along axis 0, per block along the last axis) each
/// group is quantized while it is still in cache, so the tensor is read from memory once
/// instead of twice. Throws what compute_params throws.
QuantizedTensor quantize(const TensorView& x, const Scheme& scheme, const ObserveOptions& options = {});

/// The same, into `out`, reusing its buffers when they are large enough. Fresh memory is costly
/// to touch the first time (page faults); code that quantizes tensor after tensor should keep
/// one QuantizedTensor and pass it here each time.
void quantize(const TensorView& x, const QParams& params, QuantizedTensor& out);
void quantize(const TensorView& x, const Scheme& scheme, const ObserveOptions& options, QuantizedTensor& out);
/// The same, and the error of the codes against x: the bits of quantization_error(x, out), but
/// measured in the same pass, while each batch is still in cache.
void quantize(const TensorView& x, const Scheme& scheme, const ObserveOptions& options, QuantizedTensor& out,
              ErrorMetrics& error);

/// x = (q - zero_point) * scale + offset, as float32.
Tensor dequantize(const QuantizedTensor& q);

/// The same into caller-owned memory of exactly q.numel() floats.
void dequantize(const QuantizedTensor& q, std::span<float> out);

/// The same as float32, float16 or bfloat16 (rounded to nearest even, as from_f32): the values
/// are narrowed chunk by chunk while they are in cache, so memory is walked once, as for float32.
Tensor dequantize(const QuantizedTensor& q, DType dtype);
/// The same (f16 / bf16) into caller-owned memory of exactly q.numel() 16-bit values.
void dequantize(const QuantizedTensor& q, DType dtype, std::span<std::uint16_t> out);

// --- Parameters as files store them (quantized .npz and safetensors alike) ---------------------

/// Whether a scheme's zero points are stored: symmetric schemes fix them, float offsets are
/// stored instead.
bool stores_zero_point(const Scheme& scheme) noexcept;
/// Bytes of the stored parameters: float32 scales, integer zero points in the codes' dtype
/// (when stored), float32 offsets (zp=float).
std::int64_t stored_param_bytes(const QParams& params);
std::int64_t stored_param_bytes(const Shape& shape, const Scheme& scheme);
/// The zero points in the codes' own dtype, shaped like the parameters.
Tensor zero_points_as_codes(const QParams& params);
/// The inverse: integer zero points from a tensor of the codes' dtype.
std::vector<std::int32_t> zero_points_from_codes(const TensorView& codes);

/// The error of dequantize(q) against x (q quantized from x), measured a chunk at a time: no
/// float32 copy of either tensor is made, so memory stays at the size of the codes. Equal to
/// measure_error(x, dequantize(q)) up to the rounding of its double sums, and the same bits
/// whatever the number of threads.
ErrorMetrics quantization_error(const TensorView& x, const QuantizedTensor& q);

/// dequantize(quantize(x, params)), bit for bit, in one pass and without storing the codes.
Tensor fake_quantize(const TensorView& x, const QParams& params);

/// The codes one per element, as i8/u8 (up to 8 bits) or i16/u16 (16 bits), shaped like the
/// tensor. Checks that the data holds exactly the codes the shape needs.
Tensor unpack_codes(const QuantizedTensor& q);

/// The inverse of unpack_codes: packs `codes` (i8/u8/i16/u16 matching the scheme's type) into
/// a QuantizedTensor. Throws if a code lies outside the scheme's range or the parameters do not
/// fit the shape — this is how a file's codes are validated.
QuantizedTensor pack_codes(const TensorView& codes, QParams params);

}  // namespace zp
