// zeropoint/explain.hpp — the quantization math for one range, step by step, as data.
//
// `zeropoint explain` renders this; the numbers come from the same functions that quantize
// real tensors (derive_params, round_to_integer, quantize_value, dequantize_value).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "zeropoint/params.hpp"
#include "zeropoint/scheme.hpp"

namespace zp {

struct ExplainedValue {
  float x = 0;
  float shifted = 0;     ///< x - offset (float-offset schemes), else x
  float quotient = 0;    ///< shifted / scale, in float32
  float rounded = 0;     ///< the quotient rounded by the scheme's rule
  float unclamped = 0;   ///< rounded + zero_point, before clamping
  std::int32_t code = 0;
  bool saturated = false;  ///< the clamp changed the value
  float dequantized = 0;
  float error = 0;       ///< dequantized - x
};

/// What the seed article's asymmetric recipe computes for the same input, to show where it
/// goes wrong: scale = (max - min) / qmax, zero_point = round(qmin - min / scale) and
/// Q(x) = round((x - zero_point) / scale), without widening the range or clamping.
struct ArticleAsymmetric {
  double scale = 0;
  double zero_point = 0;
  std::vector<double> codes;  ///< one per explained value, unclamped as the article leaves them
};

struct Explanation {
  Scheme scheme;
  float min = 0, max = 0;
  ParamDerivation params;
  std::vector<ExplainedValue> values;
  /// Present for asymmetric integer-zero-point schemes, where the article's formulas differ.
  std::optional<ArticleAsymmetric> article;
};

/// Throws zp::Error for a scheme that is not per-tensor (explain shows a single range) or a
/// range choose_params refuses.
Explanation explain(float min, float max, const Scheme& scheme, std::span<const float> values);

}  // namespace zp
