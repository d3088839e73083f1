// zeropoint/scheme.hpp — how a tensor is quantized, as data.
//
// A Scheme says everything the math needs: the integer code type, symmetric or asymmetric,
// the code range, the granularity of the parameters, the rounding rule and how the zero point
// is held. It has one short text form used by the CLI, the docs and every report:
//
//   TYPE[:OPTION]...
//   TYPE     int2..int8, int16, uint2..uint8, uint16
//   OPTION   channel[=AXIS]   one scale per index along AXIS (default 0)
//            block=B          one scale per B consecutive values along the last axis
//            axis=AXIS        with block=B: block along AXIS instead (negative counts from the end)
//            sym | asym       symmetric (zero point fixed) or asymmetric (zero point fitted)
//            narrow | full    code range without or with the lowest code (int8: [-127,127] / [-128,127])
//            round=even|away|up   ties to even (default), away from zero, or towards +inf
//            zp=int|float     integer zero point (default), or a float offset x = q*scale + min
//            recip            divide by multiplying with the float32 reciprocal 1/scale, as
//                             PyTorch (fbgemm) and ggml do, instead of dividing (ONNX, TFLite)
//            mse              shrink each group's range to the clipping with the least squared
//                             error on the group's own values (compute_params, docs/math.md §12)
//
// Defaults: signed types are symmetric with the narrow range (ONNX Runtime, TFLite weights,
// ggml Q8_0); unsigned types are asymmetric with the full range; asymmetric means full range.
// Examples: "int8", "uint8:asym", "int8:channel=0", "int4:block=32", "uint4:block=128:asym",
// "int8:full" (PyTorch's symmetric qint8), "uint4:block=32:asym:zp=float" (ggml Q4_1-like),
// "int4:block=32:mse" (outliers clipped where that lowers the error).
// See docs/math.md for what each option does to the formulas.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zp {

enum class Rounding : std::uint8_t {
  half_even,  ///< ties to the even integer (IEEE default; ONNX, PyTorch, NumPy)
  half_away,  ///< ties away from zero (C's round(); TFLite's reference, ggml's Q8_0)
  half_up,    ///< ties towards +infinity (floor(v + 0.5))
};

enum class Granularity : std::uint8_t {
  tensor,   ///< one scale and zero point for the whole tensor
  channel,  ///< one per index along `axis`
  block,    ///< one per `block` consecutive values along `axis`; the last block may be partial
};

enum class ZeroPointKind : std::uint8_t {
  integer,       ///< x = (q - zero_point) * scale, zero_point an integer in the code range
  float_offset,  ///< x = q * scale + offset, offset a float (the range minimum)
};

struct Scheme {
  bool is_signed = true;
  int bits = 8;  ///< 2..8 or 16
  bool symmetric = true;
  bool narrow = true;  ///< drop the lowest code (int8: -128) so the range is symmetric
  Granularity granularity = Granularity::tensor;
  int axis = 0;            ///< channel or block axis; negative counts from the last axis
  std::int64_t block = 0;  ///< values per block (Granularity::block only), >= 2
  Rounding rounding = Rounding::half_even;
  ZeroPointKind zero_point = ZeroPointKind::integer;
  /// q is computed from x * (1/scale) rather than x / scale. The two differ in the last bit of
  /// the quotient for some x, which moves a code when the quotient lands next to a tie.
  bool reciprocal = false;
  /// compute_params(TensorView, ...) searches, per group, for the shrunk range [a*min, a*max]
  /// (a from 1 down to 0.2) whose quantize -> dequantize round trip has the least squared error
  /// on that group's values, instead of using the plain range. Outliers are clipped when the
  /// finer step for everything else is worth more than what the clipping costs them.
  bool mse = false;

  /// Parses the text form. Throws zp::Error saying what was expected.
  static Scheme parse(std::string_view text);

  /// The canonical text form: parse(s.str()) == s for every valid scheme.
  std::string str() const;

  /// Throws zp::Error if the fields do not describe a scheme the math can honour.
  void validate() const;

  /// Smallest and largest code, after `narrow` is applied.
  int qmin() const noexcept;
  int qmax() const noexcept;

  /// The zero point a symmetric scheme fixes: 0 for signed codes, 2^(bits-1) for unsigned ones
  /// (PyTorch's quint8 symmetric convention).
  int symmetric_zero_point() const noexcept { return is_signed ? 0 : 1 << (bits - 1); }

  /// "int8", "uint4": the code type alone.
  std::string type_name() const;

  /// The axis as an index into a tensor of `rank` dimensions; throws if out of range.
  int resolve_axis(int rank) const;

  friend bool operator==(const Scheme&, const Scheme&) = default;
};

}  // namespace zp
