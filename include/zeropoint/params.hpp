// zeropoint/params.hpp — scales and zero points: how they are laid out and how they are chosen.
#pragma once

#include <cstdint>
#include <vector>

#include "zeropoint/scheme.hpp"
#include "zeropoint/tensor.hpp"

namespace zp {

/// One parameter set: the affine map between codes and values,
///   quantize:   q = clamp(round((x - offset) / scale) + zero_point, qmin, qmax)
///   dequantize: x = (q - zero_point) * scale + offset
/// With an integer zero point the offset is 0; with a float offset the zero point is 0.
/// docs/math.md §1.
struct AffineParams {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  float offset = 0.0f;

  friend bool operator==(const AffineParams&, const AffineParams&) = default;
};

/// The single source of truth for scale and zero point (docs/math.md §3): turns the observed
/// range [min, max] of one parameter group into parameters for `scheme`.
///  - integer zero point: the range is first widened to include 0;
///  - symmetric signed, narrow: scale = amax / qmax; full: scale = amax / ((qmax - qmin) / 2);
///    symmetric unsigned: the same with zero point 2^(bits-1);
///  - asymmetric: scale = (max - min) / (qmax - qmin), zero_point = qmin - round(min / scale),
///    clamped into [qmin, qmax]; with a float offset, offset = min - qmin * scale instead;
///  - scale is computed in double and stored as float; when that float is below FLT_MIN (an
///    all-zero or constant group) the result is scale 1, zero point 0 (ONNX Runtime's rule;
///    symmetric unsigned schemes keep their fixed zero point 2^(bits-1)).
/// Throws zp::Error if min or max is not finite or min > max.
AffineParams choose_params(float min, float max, const Scheme& scheme);

/// What choose_params divides the mapped range by: qmax for symmetric narrow schemes,
/// (qmax - qmin) / 2 for symmetric full-range ones, qmax - qmin otherwise.
double scale_divisor(const Scheme& scheme) noexcept;

/// Every intermediate quantity of choose_params, for `zeropoint explain` and for tests. The
/// fields that a scheme does not use are left at 0.
struct ParamDerivation {
  int qmin = 0, qmax = 0;
  double lo = 0, hi = 0;     ///< the range actually mapped (widened to include 0 when the zero point is an integer)
  double amax = 0;           ///< symmetric: max(|lo|, |hi|)
  double divisor = 0;        ///< what the range is divided by: qmax, (qmax - qmin) / 2, or qmax - qmin
  double exact_scale = 0;    ///< the scale in double, before it is stored as float
  double zero_point_real = 0;  ///< asymmetric: qmin - lo / scale before rounding
  bool degenerate = false;   ///< the float scale fell below FLT_MIN, so scale 1 / zero point 0 was used
  AffineParams result;
};

/// choose_params, showing its work. choose_params(min, max, s) == derive_params(min, max, s).result.
ParamDerivation derive_params(float min, float max, const Scheme& scheme);

/// How a tensor's elements map to parameter groups under a scheme. The tensor is seen as
/// [outer, dim, inner] around the scheme's axis.
struct ParamLayout {
  Granularity granularity = Granularity::tensor;
  std::int64_t outer = 1;   ///< product of the dimensions before the axis
  std::int64_t dim = 1;     ///< the axis' length
  std::int64_t inner = 1;   ///< product of the dimensions after the axis
  std::int64_t block = 1;   ///< values per block along the axis (block granularity)
  std::int64_t blocks = 1;  ///< ceil(dim / block)
  /// Shape of each parameter array: [] per tensor; [dim] per channel; the tensor's shape with
  /// the axis' length replaced by ceil(dim / block) per block (as ONNX's blocked quantization).
  Shape param_shape;

  /// Throws zp::Error if the scheme's axis does not exist in `shape`.
  static ParamLayout of(const Shape& shape, const Scheme& scheme);

  std::int64_t groups = 1;  ///< number of parameter groups: the product of param_shape

  /// Which parameter group the element at C-order position `flat` belongs to.
  std::int64_t group_of(std::int64_t flat) const noexcept {
    switch (granularity) {
      case Granularity::tensor: return 0;
      case Granularity::channel: return (flat / inner) % dim;
      case Granularity::block: {
        const std::int64_t o = flat / (dim * inner);
        const std::int64_t m = (flat / inner) % dim;
        const std::int64_t k = flat % inner;
        return (o * blocks + m / block) * inner + k;
      }
    }
    return 0;
  }

};

/// The parameters of a whole tensor: one AffineParams per group, stored as parallel arrays
/// shaped ParamLayout::param_shape (C order).
struct QParams {
  Scheme scheme;
  Shape param_shape;
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;  ///< all 0 when scheme.zero_point is float_offset
  std::vector<float> offset;             ///< all 0 when scheme.zero_point is integer

  std::size_t size() const noexcept { return scale.size(); }
  AffineParams at(std::size_t group) const noexcept { return {scale[group], zero_point[group], offset[group]}; }

  /// Throws zp::Error unless these parameters fit a tensor of `shape`: array lengths match the
  /// layout, scales are finite and positive, zero points lie in the code range.
  void check_fits(const Shape& shape) const;
};

/// Observed value ranges, one [min, max] per parameter group (see observe.hpp).
struct Ranges {
  Shape param_shape;
  std::vector<float> min;
  std::vector<float> max;
};

/// choose_params applied to every group.
QParams compute_params(const Ranges& ranges, const Scheme& scheme);

}  // namespace zp
