// The min/max observer: the range of every parameter group, in one pass.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/runs.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"
#include "zeropoint/observe.hpp"

namespace zp {
namespace {

std::string describe(float v) { return std::isnan(v) ? "NaN" : (v > 0 ? "+inf" : "-inf"); }

}  // namespace

Ranges observe_minmax(const TensorView& x, const Scheme& scheme, const ObserveOptions& options) {
  scheme.validate();
  const std::string who = options.name.empty() ? std::string("tensor") : fmt::format("tensor '{}'", options.name);
  if (x.numel() == 0) throw Error(fmt::format("{} of shape {} is empty: nothing to quantize", who, shape_str(x.shape())));
  if (!is_float(x.dtype())) {
    throw Error(fmt::format("{} has dtype {}: only float tensors (f32, f64, f16, bf16) can be quantized", who,
                            dtype_name(x.dtype())));
  }
  const ParamLayout layout = ParamLayout::of(x.shape(), scheme);
  const Tensor values = to_f32(x);
  const std::span<const float> v = values.span<float>();

  if (!options.ignore_nonfinite) {
    const std::size_t bad = kernels::f32_find_nonfinite_ref(v);
    if (bad != v.size()) {
      throw NonFiniteError(fmt::format("{} has {} at index {}: a non-finite value has no code", who,
                                       describe(v[bad]), index_str(x.shape(), static_cast<std::int64_t>(bad))),
                           static_cast<std::int64_t>(bad));
    }
  }

  Ranges r;
  r.param_shape = layout.param_shape;
  const auto groups = static_cast<std::size_t>(layout.groups);
  r.min.assign(groups, std::numeric_limits<float>::infinity());
  r.max.assign(groups, -std::numeric_limits<float>::infinity());
  detail::for_each_run(layout, [&](const detail::Run& run) {
    const auto values_of_run = v.subspan(static_cast<std::size_t>(run.start), static_cast<std::size_t>(run.length));
    if (run.group_step == 0) {
      const kernels::MinMax m = kernels::f32_minmax_ref(values_of_run, options.ignore_nonfinite);
      const auto g = static_cast<std::size_t>(run.group);
      r.min[g] = std::min(r.min[g], m.min);
      r.max[g] = std::max(r.max[g], m.max);
      return;
    }
    for (std::size_t i = 0; i < values_of_run.size(); ++i) {
      const float value = values_of_run[i];
      if (!std::isfinite(value)) continue;  // only reachable with ignore_nonfinite
      const auto g = static_cast<std::size_t>(run.group) + i;
      r.min[g] = std::min(r.min[g], value);
      r.max[g] = std::max(r.max[g], value);
    }
  });
  for (std::size_t g = 0; g < groups; ++g) {
    if (r.min[g] > r.max[g]) r.min[g] = r.max[g] = 0.0f;  // the group held no finite value
  }
  return r;
}

QParams compute_params(const TensorView& x, const Scheme& scheme, const ObserveOptions& options) {
  return compute_params(observe_minmax(x, scheme, options), scheme);
}

}  // namespace zp
