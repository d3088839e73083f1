// Quantizing a tensor that arrives in parts (rows of a large checkpoint tensor read a slab at a
// time): the error of each part added to one accumulator, and a non-finite value reported with
// its index in the whole tensor.
#pragma once

#include <cstdint>

#include "zeropoint/metrics.hpp"
#include "zeropoint/observe.hpp"
#include "zeropoint/quantize.hpp"

namespace zp::detail {

/// quantize(x, scheme, options, out, error) adding x's error to `error` as the elements
/// index_base, index_base + 1, ... of a larger tensor; quantize(..., ErrorMetrics&) is this with
/// an empty accumulator and index_base 0 (so parts merged in order give its sums, up to the order
/// of the additions).
void quantize_measuring(const TensorView& x, const Scheme& scheme, const ObserveOptions& options, QuantizedTensor& out,
                        ErrorAccumulator& error, std::int64_t index_base);

/// The error compute_params reports for the non-finite `value` at C-order position `flat` of a
/// tensor of `shape` named by options.name.
NonFiniteError nonfinite_value_error(const ObserveOptions& options, float value, const Shape& shape, std::int64_t flat);

}  // namespace zp::detail
