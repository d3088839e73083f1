// Run-time choice of instruction set for the SIMD kernels.
#pragma once

namespace zp::kernels::detail {

/// Applies ZEROPOINT_TARGET from the environment the first time any SIMD kernel runs. Cheap
/// after that (one initialized static).
void configure_dispatch_once();

}  // namespace zp::kernels::detail
