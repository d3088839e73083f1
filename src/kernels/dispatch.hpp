// Run-time choice of instruction set for the SIMD kernels.
#pragma once

namespace zp::kernels::detail {

/// Applies ZEROPOINT_TARGET from the environment the first time any SIMD kernel runs. Cheap
/// after that (one initialized static).
void configure_dispatch_once();

}  // namespace zp::kernels::detail

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace zp::kernels::detail {

// The span kernels' documented preconditions, checked on every call: a violation is a bug in
// the caller that would otherwise write out of bounds or read half-written input, and the
// kernels are noexcept, so it aborts. Two comparisons per call; the kernels run over many values.
inline void expect(bool holds) noexcept {
  if (!holds) std::abort();
}
template <class A, class B>
bool disjoint(std::span<A> a, std::span<B> b) noexcept {
  const auto a0 = reinterpret_cast<std::uintptr_t>(a.data()), a1 = a0 + a.size_bytes();
  const auto b0 = reinterpret_cast<std::uintptr_t>(b.data()), b1 = b0 + b.size_bytes();
  return a.empty() || b.empty() || a1 <= b0 || b1 <= a0;
}
template <class T>
bool aligned(std::span<T> s) noexcept {
  return reinterpret_cast<std::uintptr_t>(s.data()) % alignof(T) == 0;
}
// Output `out` holds at least `needed` elements, does not overlap `in`, and both are aligned
// to their element type.
template <class In, class Out>
void expect_output(std::span<In> in, std::span<Out> out, std::size_t needed) noexcept {
  expect(out.size() >= needed && disjoint(in, out) && aligned(in) && aligned(out));
}

}  // namespace zp::kernels::detail
