#include "zeropoint/params.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include <fmt/format.h>

#include "zeropoint/error.hpp"

namespace zp {
namespace {

// Ties to even, in double, whatever the floating-point environment says.
double round_half_even(double v) {
  const double t = std::trunc(v);
  const double frac = std::fabs(v - t);
  if (frac > 0.5) return t + std::copysign(1.0, v);
  if (frac < 0.5) return t;
  return std::fmod(t, 2.0) == 0.0 ? t : t + std::copysign(1.0, v);
}

}  // namespace

double scale_divisor(const Scheme& scheme) noexcept {
  const double code_span = static_cast<double>(scheme.qmax()) - scheme.qmin();
  if (scheme.symmetric) return scheme.narrow ? static_cast<double>(scheme.qmax()) : code_span / 2.0;
  return code_span;
}

ParamDerivation derive_params(float min, float max, const Scheme& scheme) {
  if (!std::isfinite(min) || !std::isfinite(max)) {
    throw Error(fmt::format("cannot choose parameters for the range [{}, {}]: it must be finite", min, max));
  }
  if (min > max) throw Error(fmt::format("cannot choose parameters for the range [{}, {}]: min > max", min, max));

  ParamDerivation d;
  d.qmin = scheme.qmin();
  d.qmax = scheme.qmax();
  d.divisor = scale_divisor(scheme);
  auto finish = [&d](float scale, std::int32_t zero_point, float offset) {
    d.result = {scale, zero_point, offset};
    return d;
  };

  if (scheme.zero_point == ZeroPointKind::float_offset) {
    // The offset absorbs the minimum, so the range need not contain 0.
    d.lo = min;
    d.hi = max;
    d.exact_scale = (d.hi - d.lo) / d.divisor;
    const auto scale = static_cast<float>(d.exact_scale);
    d.degenerate = !(scale >= FLT_MIN);
    if (d.degenerate) return finish(1.0f, 0, static_cast<float>(d.lo - d.qmin));
    return finish(scale, 0, static_cast<float>(d.lo - d.qmin * static_cast<double>(scale)));
  }

  // An integer zero point must be a code, and 0.0 must map to it exactly (zero padding, ReLU
  // outputs), so the range always contains 0.
  d.lo = std::min(static_cast<double>(min), 0.0);
  d.hi = std::max(static_cast<double>(max), 0.0);

  if (scheme.symmetric) {
    d.amax = std::max(-d.lo, d.hi);
    // Narrow signed range: amax maps to qmax and -amax to -qmax. Otherwise amax maps to half
    // the code span (PyTorch's convention), and unsigned codes centre on 2^(bits-1).
    d.exact_scale = d.amax / d.divisor;
    const auto scale = static_cast<float>(d.exact_scale);
    d.degenerate = !(scale >= FLT_MIN);
    // The zero point is part of a symmetric scheme, degenerate or not.
    return finish(d.degenerate ? 1.0f : scale, scheme.symmetric_zero_point(), 0.0f);
  }
  d.exact_scale = (d.hi - d.lo) / d.divisor;
  const auto scale = static_cast<float>(d.exact_scale);
  d.degenerate = !(scale >= FLT_MIN);
  if (d.degenerate) return finish(1.0f, 0, 0.0f);
  // Computed with the float scale that quantization will actually use.
  d.zero_point_real = d.qmin - d.lo / static_cast<double>(scale);
  const double zp = d.qmin - round_half_even(d.lo / static_cast<double>(scale));
  return finish(scale, static_cast<std::int32_t>(std::clamp(zp, static_cast<double>(d.qmin), static_cast<double>(d.qmax))),
                0.0f);
}

AffineParams choose_params(float min, float max, const Scheme& scheme) { return derive_params(min, max, scheme).result; }

ParamLayout ParamLayout::of(const Shape& shape, const Scheme& scheme) {
  ParamLayout layout;
  layout.granularity = scheme.granularity;
  if (scheme.granularity == Granularity::tensor) {
    layout.dim = checked_numel(shape);
    return layout;
  }
  const int axis = scheme.resolve_axis(static_cast<int>(shape.size()));
  for (int k = 0; k < axis; ++k) layout.outer *= shape[k];
  layout.dim = shape[axis];
  for (std::size_t k = static_cast<std::size_t>(axis) + 1; k < shape.size(); ++k) layout.inner *= shape[k];
  if (scheme.granularity == Granularity::channel) {
    layout.param_shape = {layout.dim};
    layout.groups = layout.dim;
  } else {
    layout.block = scheme.block;
    layout.blocks = (layout.dim + scheme.block - 1) / scheme.block;
    layout.param_shape = shape;
    layout.param_shape[axis] = layout.blocks;
    layout.groups = checked_numel(layout.param_shape);
  }
  return layout;
}

void QParams::check_fits(const Shape& shape) const {
  scheme.validate();
  const ParamLayout layout = ParamLayout::of(shape, scheme);
  if (param_shape != layout.param_shape) {
    throw Error(fmt::format("parameters of shape {} do not fit a tensor of shape {} under {}: expected {}",
                            shape_str(param_shape), shape_str(shape), scheme.str(), shape_str(layout.param_shape)));
  }
  const auto n = static_cast<std::size_t>(layout.groups);
  if (scale.size() != n || zero_point.size() != n || offset.size() != n) {
    throw Error(fmt::format("expected {} scales, zero points and offsets, got {}, {} and {}", n, scale.size(),
                            zero_point.size(), offset.size()));
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!(scale[i] > 0.0f) || !std::isfinite(scale[i])) {
      throw Error(fmt::format("scale {} at index {} must be finite and positive", scale[i],
                              index_str(param_shape, static_cast<std::int64_t>(i))));
    }
    if (zero_point[i] < scheme.qmin() || zero_point[i] > scheme.qmax()) {
      throw Error(fmt::format("zero point {} at index {} is outside the code range [{}, {}] of {}", zero_point[i],
                              index_str(param_shape, static_cast<std::int64_t>(i)), scheme.qmin(), scheme.qmax(),
                              scheme.str()));
    }
    if (!std::isfinite(offset[i])) {
      throw Error(fmt::format("offset {} at index {} must be finite", offset[i],
                              index_str(param_shape, static_cast<std::int64_t>(i))));
    }
  }
}

QParams compute_params(const Ranges& ranges, const Scheme& scheme) {
  scheme.validate();
  if (ranges.min.size() != ranges.max.size()) throw Error("ranges have different numbers of minima and maxima");
  QParams out;
  out.scheme = scheme;
  out.param_shape = ranges.param_shape;
  const std::size_t n = ranges.min.size();
  out.scale.resize(n);
  out.zero_point.resize(n);
  out.offset.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const AffineParams p = choose_params(ranges.min[i], ranges.max[i], scheme);
    out.scale[i] = p.scale;
    out.zero_point[i] = p.zero_point;
    out.offset[i] = p.offset;
  }
  return out;
}

}  // namespace zp
