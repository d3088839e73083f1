// zeropoint/calib.hpp — calibration observers: the range of an activation tensor, seen one batch
// at a time.
//
// Weights are all there at once (observe.hpp); activations exist only while a model runs on
// calibration data, a batch at a time, and hundreds of megabytes of them go by. An Observer
// watches one tensor's batches and keeps a summary whose size does not depend on how many
// values it saw: the extremes, or a fixed number of histogram counters. range() turns the
// summary into the [min, max] to hand to zp::choose_params. docs/math.md §12 has the formulas.
//
//   zp::calib::ObserverOptions o;
//   o.method = zp::calib::Method::entropy;
//   zp::calib::Observer obs(o);
//   for (auto& batch : batches) obs.update(batch);
//   const zp::calib::Range r = obs.range();
//   const zp::AffineParams p = zp::choose_params(r.min, r.max, o.scheme);
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zeropoint/scheme.hpp"

namespace zp::calib {

/// How the range is chosen from what was observed.
enum class Method {
  minmax,          ///< the smallest and largest finite value
  moving_average,  ///< an exponential moving average of each batch's min and max (ORT, PyTorch)
  percentile,      ///< the value below which `percentile` % of the values lie (ORT, TensorRT)
  entropy,         ///< the clipping whose quantized distribution is closest to the real one in KL divergence (TensorRT, ORT)
  mse,             ///< the clipping with the least expected squared quantization error
};

/// "minmax", "moving_average", "percentile", "entropy" or "mse". Throws zp::Error listing the
/// valid names for anything else.
Method parse_method(std::string_view name);
std::string_view method_name(Method method);

struct ObserverOptions {
  Method method = Method::minmax;
  /// moving_average: range += momentum * (batch_range - range) per batch; the first batch sets
  /// it. In (0, 1].
  double momentum = 0.01;
  /// percentile: in (0, 100]. Symmetric schemes clip |x| at this percentile; asymmetric ones
  /// take the (100 - percentile)-th and the percentile-th percentiles of x.
  double percentile = 99.999;
  /// percentile, entropy, mse: histogram counters kept, 16 to 2^24. The bin width is the
  /// smallest power of two for which the values seen fit, so they span about half of them or
  /// more. Entropy can clip no closer than where a window still has as many bins as codes.
  int bins = 2048;
  /// The code type the range is for: entropy and mse judge a clipping by this scheme's own
  /// quantizer (choose_params, then its rounding). Must be per tensor; its mse option plays
  /// no part here (that is Method::mse).
  Scheme scheme = Scheme::parse("uint8:asym");
};

struct Range {
  float min = 0, max = 0;
};

/// The histogram a histogram method keeps: counts[i] values lay between lo + i * width and
/// lo + (i + 1) * width, a value on an edge in the bin farther from 0 (the bins mirror around 0:
/// bin a >= 0 holds [a w, (a + 1) w), bin -a - 1 holds (-(a + 1) w, -a w]). The values seen
/// occupy a prefix of the counters; the rest are 0. docs/math.md §12.4.
struct HistogramView {
  double lo = 0;
  double width = 0;
  std::span<const std::int64_t> counts;  ///< ObserverOptions::bins counters; empty for minmax / moving_average
};

/// One per tensor. Not thread-safe: give each thread its own and merge() them.
class Observer {
 public:
  /// Throws zp::Error for options out of range or a scheme that is not per tensor.
  explicit Observer(const ObserverOptions& options);

  /// Observes one batch. NaN and +-inf are counted and left out, never an error. An empty
  /// batch (or one with no finite value) counts as a batch and changes no range.
  void update(std::span<const float> batch);

  /// One batch known only by the extremes and count of its finite values (computed elsewhere,
  /// e.g. by ReduceMin/ReduceMax inside ONNX Runtime): the same as update() on that batch for
  /// minmax and moving_average. Throws zp::Error for the histogram methods, which need values.
  void update_extremes(float min, float max, std::int64_t finite_count);

  /// True for the methods that only need each batch's extremes (minmax, moving_average).
  static bool needs_values(Method method) noexcept { return method != Method::minmax && method != Method::moving_average; }

  /// Adds what `other` observed, as if its batches had come to this observer too. Exact for
  /// every method but moving_average, whose two averages are combined weighted by the number of
  /// batches that set them (the order of batches across the two is unknown). Throws zp::Error
  /// when the options differ.
  void merge(const Observer& other);

  /// The calibrated range, inside [observed_min(), observed_max()]. Histogram methods compute
  /// it on each call (entropy and mse search over up to `bins` thresholds). Throws zp::Error if
  /// no finite value was ever seen.
  Range range() const;

  std::int64_t count() const noexcept { return count_; }          ///< finite values observed
  std::int64_t nan_count() const noexcept { return nan_count_; }  ///< NaN skipped
  std::int64_t inf_count() const noexcept { return inf_count_; }  ///< +-inf skipped
  std::int64_t batches() const noexcept { return batches_; }      ///< update() calls
  /// The extremes of the finite values (0 when there were none).
  float observed_min() const noexcept;
  float observed_max() const noexcept;

  const ObserverOptions& options() const noexcept { return options_; }
  HistogramView histogram() const noexcept;

 private:
  void update_histogram(std::span<const float> finite_chunk, float chunk_min, float chunk_max);
  void cover(float min, float max);
  /// moving_average: one batch's finite extremes into the running average.
  void average_batch(float batch_min, float batch_max);

  ObserverOptions options_;
  std::int64_t count_ = 0, nan_count_ = 0, inf_count_ = 0, batches_ = 0;
  // Of the finite values; +inf / -inf before the first.
  float min_ = std::numeric_limits<float>::infinity();
  float max_ = -std::numeric_limits<float>::infinity();
  // moving_average: the running range, and how many batches have set it.
  double average_min_ = 0, average_max_ = 0;
  std::int64_t averaged_batches_ = 0;
  // Histogram methods: counts_[i] counts lattice bin first_ + i at width 2^exponent_
  // (src/calib/histogram.hpp). Power-of-two widths on a lattice anchored at 0 make growing and
  // merging exact: each old bin falls inside one new bin.
  std::vector<std::int64_t> counts_;
  int exponent_ = 0;
  std::int64_t first_ = 0;
  // Exact zeros (in bin 0): ReLU outputs are half zeros, which every integer zero point
  // represents exactly; entropy leaves them out and mse counts them as the point they are.
  std::int64_t zeros_ = 0;
};

}  // namespace zp::calib
