// zeropoint/observe.hpp — range observation (min/max per tensor, channel or block).
#pragma once

#include <cstdint>
#include <string>

#include "zeropoint/error.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/scheme.hpp"
#include "zeropoint/tensor.hpp"

namespace zp {

struct ObserveOptions {
  /// By default a NaN or infinity is an error (it would silently poison the scale). When set,
  /// non-finite values are left out of the range; quantize() then maps NaN to the zero point's
  /// code and +-infinity to qmax / qmin.
  bool ignore_nonfinite = false;
  /// Names the tensor in error messages.
  std::string name;
};

/// Thrown when a tensor holds a NaN or infinity and ObserveOptions::ignore_nonfinite is off.
class NonFiniteError : public Error {
 public:
  NonFiniteError(const std::string& message, std::int64_t flat_index)
      : Error(message), flat_index_(flat_index) {}
  std::int64_t flat_index() const noexcept { return flat_index_; }

 private:
  std::int64_t flat_index_;
};

/// Min and max of every parameter group of `x` under `scheme`'s granularity. A group with no
/// finite value (possible only with ignore_nonfinite) gets [0, 0].
/// Throws zp::Error on an empty tensor, a bad axis, or (NonFiniteError) a non-finite value.
Ranges observe_minmax(const TensorView& x, const Scheme& scheme, const ObserveOptions& options = {});

/// observe_minmax followed by compute_params: the usual way to get parameters for a tensor.
/// With Scheme::mse each group's range [min, max] is then shrunk to the [f * min, f * max],
/// f one of 100 factors from 1 down to 0.2, whose quantize -> dequantize round trip of the
/// group's finite values has the least squared error (f = 1 unless another is strictly better;
/// docs/math.md §12). That costs up to 100 round trips of every value.
QParams compute_params(const TensorView& x, const Scheme& scheme, const ObserveOptions& options = {});

}  // namespace zp
