#include <cmath>

#include "zeropoint/kernels.hpp"

namespace zp::kernels {

float round_to_integer(float v, Rounding mode) noexcept {
  // From 2^23 on every float is an integer; this also lets NaN and infinities through.
  if (!(std::fabs(v) < 8388608.0f)) return v;
  const float t = std::trunc(v);
  const float frac = std::fabs(v - t);  // exact: v and t share their exponent range
  const float away = t + std::copysign(1.0f, v);
  if (frac > 0.5f) return away;
  if (frac < 0.5f) return t;
  switch (mode) {
    case Rounding::half_even: return std::fmod(t, 2.0f) == 0.0f ? t : away;
    case Rounding::half_away: return away;
    case Rounding::half_up: return v > 0.0f ? away : t;
  }
  return t;
}

}  // namespace zp::kernels
