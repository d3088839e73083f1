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

/// Calls fn(Run) for every run of the layout, in C order; together the runs cover every
/// element exactly once.
template <class Fn>
void for_each_run(const ParamLayout& layout, Fn&& fn) {
  switch (layout.granularity) {
    case Granularity::tensor:
      fn(Run{0, layout.dim, 0, 0});
      return;
    case Granularity::channel:
      for (std::int64_t o = 0; o < layout.outer; ++o) {
        if (layout.inner == 1) {
          fn(Run{o * layout.dim, layout.dim, 0, 1});
          continue;
        }
        for (std::int64_t m = 0; m < layout.dim; ++m) fn(Run{(o * layout.dim + m) * layout.inner, layout.inner, m, 0});
      }
      return;
    case Granularity::block:
      for (std::int64_t o = 0; o < layout.outer; ++o) {
        if (layout.inner == 1) {
          for (std::int64_t b = 0; b < layout.blocks; ++b) {
            const std::int64_t first = b * layout.block;
            fn(Run{o * layout.dim + first, std::min(layout.block, layout.dim - first), o * layout.blocks + b, 0});
          }
          continue;
        }
        for (std::int64_t m = 0; m < layout.dim; ++m) {
          fn(Run{(o * layout.dim + m) * layout.inner, layout.inner, (o * layout.blocks + m / layout.block) * layout.inner,
                 1});
        }
      }
      return;
  }
}

}  // namespace zp::detail
