// The min/max observer: the range of every parameter group, in one pass over the tensor,
// on all threads where the groups allow it.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "calib/mse.hpp"
#include "core/chunk_input.hpp"
#include "core/quantize_parts.hpp"
#include "core/runs.hpp"
#include "core/thread_pool.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"
#include "zeropoint/observe.hpp"

namespace zp {
namespace {

std::string describe(float v) { return std::isnan(v) ? "NaN" : (v > 0 ? "+inf" : "-inf"); }

// Elements per unit of work: a multiple of every vector width, and small enough that a 16-bit
// input's widened copy stays in L2.
constexpr std::int64_t kObserveChunk = 16384;

kernels::MinMax magnitude_range(std::span<const float> part, bool skip_nonfinite) {
  const float amax = kernels::f32_absmax(part, skip_nonfinite);
  return {-amax, amax, amax <= std::numeric_limits<float>::max()};
}

// observe_minmax; with magnitude_only each contiguous run reports [-max |x|, max |x|] instead,
// which gives a symmetric scheme the same parameters for half the work.
Ranges observe(const TensorView& x, const Scheme& scheme, const ObserveOptions& options, bool magnitude_only) {
  scheme.validate();
  const std::string who = options.name.empty() ? std::string("tensor") : fmt::format("tensor '{}'", options.name);
  if (x.numel() == 0) throw Error(fmt::format("{} of shape {} is empty: nothing to quantize", who, shape_str(x.shape())));
  if (!is_float(x.dtype())) {
    throw Error(fmt::format("{} has dtype {}: only float tensors (f32, f64, f16, bf16) can be quantized", who,
                            dtype_name(x.dtype())));
  }
  const ParamLayout layout = ParamLayout::of(x.shape(), scheme);
  const std::int64_t n = x.numel();
  // f32 is read where it lies; 16-bit floats are widened chunk by chunk into a small buffer
  // (in cache); f64 and strided views are converted first.
  const bool direct = x.is_contiguous() && x.dtype() != DType::f64;
  const Tensor converted = direct ? Tensor() : to_f32(x);
  const void* src = direct ? x.data() : converted.data();
  const DType in = direct ? x.dtype() : DType::f32;

  Ranges r;
  r.param_shape = layout.param_shape;
  const auto groups = static_cast<std::size_t>(layout.groups);
  r.min.assign(groups, std::numeric_limits<float>::infinity());
  r.max.assign(groups, -std::numeric_limits<float>::infinity());

  // When every group is one contiguous run, threads can each own the runs that lie wholly in
  // their range; the (at most two) runs cut by a range boundary are merged afterwards. Otherwise
  // (channels or blocks recurring along an outer axis) one thread walks the tensor.
  const bool groups_contiguous = layout.granularity == Granularity::tensor ||
                                 (layout.granularity == Granularity::channel && layout.outer == 1 && layout.inner > 1) ||
                                 (layout.granularity == Granularity::block && layout.inner == 1);
  struct Partial {
    std::int64_t group;
    kernels::MinMax range;
  };
  std::mutex merge_mutex;
  std::vector<Partial> cut_runs;
  detail::FirstNonFinite first_bad(n);

  // Observes [begin, end) into lo/hi (r.min/r.max, or a thread's own copies when groups recur).
  auto observe_chunk = [&](std::int64_t begin, std::int64_t end, std::int64_t owned_begin, std::int64_t owned_end,
                           std::vector<Partial>& cuts, std::vector<float>& buffer, std::span<float> lo,
                           std::span<float> hi) {
    const std::span<const float> values = detail::float_values(src, in, begin, end, buffer);
    if (layout.granularity == Granularity::channel && layout.inner == 1) {
      // Channels along the innermost axis: the part of a row the chunk starts in, its whole
      // rows in one call, and the part of a row it ends in.
      const std::int64_t dim = layout.dim;
      auto accumulate = [&](std::int64_t from, std::int64_t to) {
        if (from >= to) return;
        const auto part = values.subspan(static_cast<std::size_t>(from - begin), static_cast<std::size_t>(to - from));
        const auto column = static_cast<std::size_t>(from % dim);
        const auto width = std::min(part.size(), static_cast<std::size_t>(dim) - column);
        const bool finite = kernels::f32_minmax_accumulate(part, lo.subspan(column, width), hi.subspan(column, width));
        if (!finite && !options.ignore_nonfinite) first_bad.found_in(part, from);
      };
      const std::int64_t head = std::min(end, (begin + dim - 1) / dim * dim);
      const std::int64_t tail = std::max(head, end / dim * dim);
      accumulate(begin, head);
      accumulate(head, tail);
      accumulate(tail, end);
      return;
    }
    detail::for_each_run_in(layout, begin, end, [&](const detail::Run& run) {
      const auto part = values.subspan(static_cast<std::size_t>(run.start - begin), static_cast<std::size_t>(run.length));
      if (run.group_step != 0) {  // one group per element
        const auto g = static_cast<std::size_t>(run.group);
        const bool finite = kernels::f32_minmax_accumulate(part, lo.subspan(g, part.size()), hi.subspan(g, part.size()));
        if (!finite && !options.ignore_nonfinite) first_bad.found_in(part, run.start);
        return;
      }
      const kernels::MinMax m = magnitude_only ? magnitude_range(part, options.ignore_nonfinite)
                                               : kernels::f32_minmax(part, options.ignore_nonfinite);
      if (!m.finite && !options.ignore_nonfinite) {
        first_bad.found_in(part, run.start);
        return;
      }
      const detail::Run whole = detail::run_at(layout, run.start);
      const bool cut = whole.start < owned_begin || whole.start + whole.length > owned_end;
      if (cut) {
        cuts.push_back({run.group, m});
        return;
      }
      const auto g = static_cast<std::size_t>(run.group);
      lo[g] = std::min(lo[g], m.min);
      hi[g] = std::max(hi[g], m.max);
    });
  };

  auto observe_range = [&](std::int64_t first, std::int64_t last, std::span<float> lo, std::span<float> hi) {
    std::vector<Partial> cuts;
    std::vector<float> buffer;
    for (std::int64_t begin = first; begin < last; begin += kObserveChunk) {
      observe_chunk(begin, std::min(begin + kObserveChunk, last), first, last, cuts, buffer, lo, hi);
    }
    const std::lock_guard<std::mutex> lock(merge_mutex);
    cut_runs.insert(cut_runs.end(), cuts.begin(), cuts.end());
  };
  if (groups_contiguous) {
    detail::parallel_for(n, kObserveChunk, [&](std::int64_t first, std::int64_t last) { observe_range(first, last, r.min, r.max); });
  } else if (layout.granularity == Granularity::channel) {
    // Channels recur every row: each thread gathers the ranges of its rows in its own arrays
    // (as many entries as channels, few next to the tensor), merged in the order of the rows, so
    // that, as in one pass, of equal extremes (-0.0, +0.0) the first seen stays whatever the
    // thread count.
    struct Part {
      std::int64_t first;
      std::vector<float> lo, hi;
    };
    std::vector<Part> parts;
    detail::parallel_for(n, kObserveChunk, [&](std::int64_t first, std::int64_t last) {
      Part part{first, std::vector<float>(groups, std::numeric_limits<float>::infinity()),
                std::vector<float>(groups, -std::numeric_limits<float>::infinity())};
      observe_range(first, last, part.lo, part.hi);
      const std::lock_guard<std::mutex> lock(merge_mutex);
      parts.push_back(std::move(part));
    });
    std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.first < b.first; });
    for (const Part& part : parts) {
      for (std::size_t g = 0; g < groups; ++g) {
        r.min[g] = std::min(r.min[g], part.lo[g]);
        r.max[g] = std::max(r.max[g], part.hi[g]);
      }
    }
  } else {
    observe_range(0, n, r.min, r.max);  // blocks along an outer axis: as many groups as blocks
  }

  if (const std::int64_t bad = first_bad.index(); bad < n) {
    const float value = [&] {
      const Tensor one = to_f32(TensorView(static_cast<const std::byte*>(src) + bad * static_cast<std::int64_t>(dtype_size(in)), in, {1}));
      return one.span<float>()[0];
    }();
    throw detail::nonfinite_value_error(options, value, x.shape(), bad);
  }
  for (const Partial& p : cut_runs) {
    const auto g = static_cast<std::size_t>(p.group);
    r.min[g] = std::min(r.min[g], p.range.min);
    r.max[g] = std::max(r.max[g], p.range.max);
  }
  for (std::size_t g = 0; g < groups; ++g) {
    if (r.min[g] > r.max[g]) r.min[g] = r.max[g] = 0.0f;  // the group held no finite value
  }
  return r;
}

}  // namespace

Ranges observe_minmax(const TensorView& x, const Scheme& scheme, const ObserveOptions& options) {
  return observe(x, scheme, options, false);
}

namespace detail {

NonFiniteError nonfinite_value_error(const ObserveOptions& options, float value, const Shape& shape, std::int64_t flat) {
  const std::string who = options.name.empty() ? std::string("tensor") : fmt::format("tensor '{}'", options.name);
  return NonFiniteError(fmt::format("{} has {} at index {}: a non-finite value has no code", who, describe(value),
                                    index_str(shape, flat)),
                        flat);
}

}  // namespace detail

QParams compute_params(const TensorView& x, const Scheme& scheme, const ObserveOptions& options) {
  const bool symmetric_range = scheme.symmetric && scheme.zero_point != ZeroPointKind::float_offset;
  const Ranges ranges = observe(x, scheme, options, symmetric_range);
  if (scheme.mse) return detail::mse_clipped_params(x, ranges, scheme);
  return compute_params(ranges, scheme);
}

}  // namespace zp
