// The `mse` scheme option: per-group clipping searched on the group's own values.
#pragma once

#include <span>

#include "zeropoint/params.hpp"
#include "zeropoint/scheme.hpp"
#include "zeropoint/tensor.hpp"

namespace zp::detail {

/// Candidates of the shrink search: factors 1, ..., 0.2 evenly spaced (GPTQ's grid and
/// maxshrink).
inline constexpr int kShrinkSteps = 100;
inline constexpr double kMaxShrink = 0.8;

/// The parameters of choose_params(f * min, f * max, scheme) for the factor f among the
/// candidates whose quantize -> dequantize round trip of `values` (all finite) has the least
/// squared error; f = 1 unless a smaller factor is strictly better.
AffineParams mse_clipped_params(std::span<const float> values, float min, float max, const Scheme& scheme);

/// compute_params(ranges, scheme) with every group's parameters from mse_clipped_params on the
/// group's finite values in x (ranges observed from x).
QParams mse_clipped_params(const TensorView& x, const Ranges& ranges, const Scheme& scheme);

}  // namespace zp::detail
