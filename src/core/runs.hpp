// Walking a tensor as runs of contiguous elements that share parameters.
#pragma once

#include <algorithm>
#include <cstdint>

#include "zeropoint/params.hpp"

namespace zp::detail {

/// A stretch of `length` contiguous elements starting at C-order position `start`. Element
/// start + i uses parameter group `group + i * group_step`: group_step is 0 when the whole run
/// shares one group (per-tensor, per-channel, blocks along the last axis) and 1 when
/// neighbouring elements belong to neighbouring groups (channels or blocks along the innermost
/// axis of the run).
struct Run {
  std::int64_t start;
  std::int64_t length;
  std::int64_t group;
  std::int64_t group_step;
};

/// The whole run that contains element `pos` (0 <= pos < numel).
inline Run run_at(const ParamLayout& l, std::int64_t pos) noexcept {
  switch (l.granularity) {
    case Granularity::tensor:
      return {0, l.dim, 0, 0};
    case Granularity::channel: {
      if (l.inner == 1) return {pos - pos % l.dim, l.dim, 0, 1};  // a row; channel = column
      const std::int64_t index = pos / l.inner;                   // (o, m)
      return {index * l.inner, l.inner, index % l.dim, 0};
    }
    case Granularity::block: {
      if (l.inner == 1) {  // blocks along the contiguous axis
        const std::int64_t row = pos / l.dim;
        const std::int64_t b = (pos % l.dim) / l.block;
        const std::int64_t first = b * l.block;
        return {row * l.dim + first, std::min(l.block, l.dim - first), row * l.blocks + b, 0};
      }
      const std::int64_t index = pos / l.inner;  // (o, m); neighbouring k are neighbouring groups
      const std::int64_t o = index / l.dim, m = index % l.dim;
      return {index * l.inner, l.inner, (o * l.blocks + m / l.block) * l.inner, 1};
    }
  }
  return {0, 0, 0, 0};
}

/// Calls fn(Run) for the runs covering elements [begin, end), clipped to it, in order.
template <class Fn>
void for_each_run_in(const ParamLayout& layout, std::int64_t begin, std::int64_t end, Fn&& fn) {
  for (std::int64_t pos = begin; pos < end;) {
    const Run whole = run_at(layout, pos);
    const std::int64_t stop = std::min(whole.start + whole.length, end);
    fn(Run{pos, stop - pos, whole.group + (pos - whole.start) * whole.group_step, whole.group_step});
    pos = stop;
  }
}

/// Calls fn(Run) for every run of a tensor of `numel` elements, in C order; together the runs
/// cover every element exactly once.
template <class Fn>
void for_each_run(const ParamLayout& layout, std::int64_t numel, Fn&& fn) {
  for_each_run_in(layout, 0, numel, fn);
}

}  // namespace zp::detail
