#include "zeropoint/explain.hpp"

#include <cmath>

#include <fmt/format.h>

#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"

namespace zp {

Explanation explain(float min, float max, const Scheme& scheme, std::span<const float> values) {
  scheme.validate();
  if (scheme.granularity != Granularity::tensor) {
    throw Error(fmt::format("explain shows one range; '{}' has one per {}: use a per-tensor scheme such as '{}'",
                            scheme.str(), scheme.granularity == Granularity::channel ? "channel" : "block",
                            scheme.type_name()));
  }
  Explanation e;
  e.scheme = scheme;
  e.min = min;
  e.max = max;
  e.params = derive_params(min, max, scheme);
  const AffineParams& p = e.params.result;
  const kernels::QuantizeSpec spec = kernels::quantize_spec(scheme);
  for (float x : values) {
    ExplainedValue v;
    v.x = x;
    v.shifted = p.offset == 0.0f ? x : x - p.offset;
    v.quotient = scheme.reciprocal ? v.shifted * (1.0f / p.scale) : v.shifted / p.scale;
    v.rounded = kernels::round_to_integer(v.quotient, scheme.rounding);
    v.unclamped = v.rounded + static_cast<float>(p.zero_point);
    v.code = kernels::quantize_value(x, p, spec);
    v.saturated = static_cast<float>(v.code) != v.unclamped;
    v.dequantized = kernels::dequantize_value(v.code, p);
    v.error = v.dequantized - x;
    e.values.push_back(v);
  }
  if (!scheme.symmetric && scheme.zero_point == ZeroPointKind::integer) {
    ArticleAsymmetric a;
    a.scale = (static_cast<double>(max) - min) / scheme.qmax();
    if (a.scale > 0) {
      a.zero_point = std::round(scheme.qmin() - min / a.scale);
      for (float x : values) a.codes.push_back(std::round((x - a.zero_point) / a.scale));
      e.article = std::move(a);
    }
  }
  return e;
}

}  // namespace zp
