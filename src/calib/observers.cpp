// Calibration observers: the running summary of one activation tensor's batches.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>

#include <fmt/format.h>

#include "calib/histogram.hpp"
#include "zeropoint/calib.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"

namespace zp::calib {
namespace {

constexpr std::array<std::pair<Method, std::string_view>, 5> kMethods{{
    {Method::minmax, "minmax"},
    {Method::moving_average, "moving_average"},
    {Method::percentile, "percentile"},
    {Method::entropy, "entropy"},
    {Method::mse, "mse"},
}};

// Values per step of update(): small enough to stay in L2 between the min/max pass and the
// histogram pass, so a batch is read from memory once.
constexpr std::size_t kChunk = 16384;

constexpr int kMinBins = 16;
constexpr int kMaxBins = 1 << 24;

bool uses_histogram(Method m) { return m == Method::percentile || m == Method::entropy || m == Method::mse; }

void validate(const ObserverOptions& o) {
  if (!(o.momentum > 0.0 && o.momentum <= 1.0)) {
    throw Error(fmt::format("momentum must be in (0, 1], got {}", o.momentum));
  }
  if (!(o.percentile > 0.0 && o.percentile <= 100.0)) {
    throw Error(fmt::format("percentile must be in (0, 100], got {}", o.percentile));
  }
  if (o.bins < kMinBins || o.bins > kMaxBins) {
    throw Error(fmt::format("bins must be between {} and {}, got {}", kMinBins, kMaxBins, o.bins));
  }
  o.scheme.validate();
  if (o.scheme.granularity != Granularity::tensor) {
    throw Error(fmt::format("an observer calibrates one range per tensor; scheme {} is not per tensor", o.scheme.str()));
  }
}

bool same_options(const ObserverOptions& a, const ObserverOptions& b) {
  return a.method == b.method && a.momentum == b.momentum && a.percentile == b.percentile && a.bins == b.bins &&
         a.scheme == b.scheme;
}

// The bins of a chunk, bin index minus first: detail::lattice_index, in one of two exact ways.
// When 2^-e is a normal float and every |v| 2^-e of the chunk is below 2^31, |v| * 2^-e is exact
// in float (a power-of-two scaling that neither overflows nor loses a bit that matters: a result
// below 2^-126 truncates to 0 either way) and its truncation fits an int32, so the loop is float
// and int32 arithmetic that the compiler vectorizes; otherwise the same in double and int64.
void lattice_bins(std::span<const float> x, int exponent, std::int64_t first, float min, float max, std::int32_t* bins) {
  const float largest = std::max(std::fabs(min), std::fabs(max));
  if (exponent > -126 && exponent < 126 && std::ldexp(static_cast<double>(largest), -exponent) < 0x1p31) {
    const float inverse_width = std::ldexp(1.0f, -exponent);
    const auto first32 = static_cast<std::int32_t>(first);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const auto a = static_cast<std::int32_t>(std::fabs(x[i]) * inverse_width);
      bins[i] = (a ^ -static_cast<std::int32_t>(x[i] < 0.0f)) - first32;  // ~a = -a - 1 below 0
    }
    return;
  }
  const double inverse_width = std::ldexp(1.0, -exponent);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto a = static_cast<std::int64_t>(std::fabs(static_cast<double>(x[i])) * inverse_width);
    bins[i] = static_cast<std::int32_t>((a ^ -static_cast<std::int64_t>(x[i] < 0.0f)) - first);
  }
}

}  // namespace

Method parse_method(std::string_view name) {
  for (const auto& [method, text] : kMethods) {
    if (name == text) return method;
  }
  throw Error(fmt::format("unknown calibration method '{}': expected minmax, moving_average, percentile, entropy or mse", name));
}

std::string_view method_name(Method method) {
  for (const auto& [m, text] : kMethods) {
    if (m == method) return text;
  }
  return "unknown";
}

Observer::Observer(const ObserverOptions& options) : options_(options) {
  validate(options_);
  if (uses_histogram(options_.method)) counts_.assign(static_cast<std::size_t>(options_.bins), 0);
}

float Observer::observed_min() const noexcept { return count_ == 0 ? 0.0f : min_; }
float Observer::observed_max() const noexcept { return count_ == 0 ? 0.0f : max_; }

HistogramView Observer::histogram() const noexcept {
  if (counts_.empty()) return {};
  return {std::ldexp(static_cast<double>(first_), exponent_), std::ldexp(1.0, exponent_), counts_};
}

// Moves the counts to the lattice that fits [min, max], the extremes of everything seen so far
// (including the chunk about to be added).
void Observer::cover(float min, float max) {
  const int exponent = detail::lattice_exponent(min, max, options_.bins);
  const std::int64_t first = detail::lattice_index(min, exponent);
  if (count_ == 0) {  // nothing to move yet
    exponent_ = exponent;
    first_ = first;
    return;
  }
  if (exponent == exponent_ && first == first_) return;
  // The width never shrinks (the range only grows), so each old bin lands whole in one new bin.
  const int shift = exponent - exponent_;
  std::vector<std::int64_t> moved(counts_.size(), 0);
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    const std::int64_t bin = (first_ + static_cast<std::int64_t>(i)) >> shift;  // floor: arithmetic shift
    moved[static_cast<std::size_t>(bin - first)] += counts_[i];
  }
  counts_.swap(moved);
  exponent_ = exponent;
  first_ = first;
}

void Observer::update_histogram(std::span<const float> chunk, float chunk_min, float chunk_max) {
  cover(std::min(min_, chunk_min), std::max(max_, chunk_max));
  // Bins first, then counts: the increments of four interleaved copies of the counters (summed
  // into counts_ at the end) do not wait for each other when neighbouring values share a bin, as
  // the zeros after a ReLU all do.
  const std::size_t n = counts_.size();
  const std::size_t m = chunk.size();
  const auto bins = std::make_unique_for_overwrite<std::int32_t[]>(m);
  lattice_bins(chunk, exponent_, first_, chunk_min, chunk_max, bins.get());
  std::int64_t* counts = counts_.data();
  if (4 * n > m) {  // four copies would cost more to clear and sum than the counting saves
    for (std::size_t i = 0; i < m; ++i) ++counts[bins[i]];
  } else {
    std::vector<std::uint32_t> copies(4 * n, 0);  // a chunk is at most kChunk values: no overflow
    std::uint32_t *c0 = copies.data(), *c1 = c0 + n, *c2 = c1 + n, *c3 = c2 + n;
    std::size_t i = 0;
    for (; i + 4 <= m; i += 4) {
      ++c0[bins[i]];
      ++c1[bins[i + 1]];
      ++c2[bins[i + 2]];
      ++c3[bins[i + 3]];
    }
    for (; i < m; ++i) ++c0[bins[i]];
    for (std::size_t b = 0; b < n; ++b) counts[b] += std::int64_t{c0[b]} + c1[b] + c2[b] + c3[b];
  }
  // A loop of its own, which the compiler vectorizes; in the one above it would cost a third.
  std::int64_t zeros = 0;
  for (const float v : chunk) zeros += static_cast<std::int64_t>(v == 0.0f);
  zeros_ += zeros;
}

void Observer::update(std::span<const float> batch) {
  ++batches_;
  const bool histogram = uses_histogram(options_.method);
  float batch_min = std::numeric_limits<float>::infinity();
  float batch_max = -std::numeric_limits<float>::infinity();
  std::vector<float> finite;  // only for chunks that hold a NaN or infinity
  for (std::size_t begin = 0; begin < batch.size(); begin += kChunk) {
    std::span<const float> chunk = batch.subspan(begin, std::min(kChunk, batch.size() - begin));
    const kernels::MinMax m = kernels::f32_minmax(chunk, true);
    if (!m.finite) {
      finite.clear();
      for (const float v : chunk) {
        if (std::isnan(v)) ++nan_count_;
        else if (std::isinf(v)) ++inf_count_;
        else finite.push_back(v);
      }
      chunk = finite;
    }
    if (chunk.empty()) continue;
    if (histogram) update_histogram(chunk, m.min, m.max);
    count_ += static_cast<std::int64_t>(chunk.size());
    min_ = std::min(min_, m.min);
    max_ = std::max(max_, m.max);
    batch_min = std::min(batch_min, m.min);
    batch_max = std::max(batch_max, m.max);
  }
  if (options_.method == Method::moving_average && batch_min <= batch_max) average_batch(batch_min, batch_max);
}

void Observer::average_batch(float batch_min, float batch_max) {
  if (averaged_batches_ == 0) {
    average_min_ = batch_min;
    average_max_ = batch_max;
  } else {
    average_min_ += options_.momentum * (batch_min - average_min_);
    average_max_ += options_.momentum * (batch_max - average_max_);
  }
  ++averaged_batches_;
}

void Observer::update_extremes(float batch_min, float batch_max, std::int64_t finite_count) {
  if (uses_histogram(options_.method)) {
    throw Error(fmt::format("the {} observer needs the values, not only their extremes", method_name(options_.method)));
  }
  ++batches_;
  if (finite_count <= 0 || !(batch_min <= batch_max)) return;
  count_ += finite_count;
  min_ = std::min(min_, batch_min);
  max_ = std::max(max_, batch_max);
  if (options_.method == Method::moving_average) average_batch(batch_min, batch_max);
}

void Observer::merge(const Observer& other) {
  if (!same_options(options_, other.options_)) {
    throw Error(fmt::format("cannot merge observers with different options ({} {} and {} {})", method_name(options_.method),
                            options_.scheme.str(), method_name(other.options_.method), other.options_.scheme.str()));
  }
  if (other.averaged_batches_ > 0) {
    if (averaged_batches_ == 0) {
      average_min_ = other.average_min_;
      average_max_ = other.average_max_;
    } else {
      const double w = static_cast<double>(other.averaged_batches_) / static_cast<double>(averaged_batches_ + other.averaged_batches_);
      average_min_ += w * (other.average_min_ - average_min_);
      average_max_ += w * (other.average_max_ - average_max_);
    }
    averaged_batches_ += other.averaged_batches_;
  }
  if (other.count_ > 0 && !counts_.empty()) {
    cover(std::min(min_, other.min_), std::max(max_, other.max_));
    const int shift = exponent_ - other.exponent_;  // >= 0: this lattice fits other's values too
    for (std::size_t i = 0; i < other.counts_.size(); ++i) {
      if (other.counts_[i] == 0) continue;
      const std::int64_t bin = (other.first_ + static_cast<std::int64_t>(i)) >> shift;
      counts_[static_cast<std::size_t>(bin - first_)] += other.counts_[i];
    }
    zeros_ += other.zeros_;
  }
  if (other.count_ > 0) {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  nan_count_ += other.nan_count_;
  inf_count_ += other.inf_count_;
  batches_ += other.batches_;
}

Range Observer::range() const {
  if (count_ == 0) {
    throw Error(fmt::format("no finite value to calibrate from: {} batches gave {} NaN and {} infinities and nothing else",
                            batches_, nan_count_, inf_count_));
  }
  const detail::Lattice h{counts_, exponent_, first_, min_, max_, count_, zeros_};
  switch (options_.method) {
    case Method::minmax: return {min_, max_};
    case Method::moving_average:
      // Each batch's min <= max, so the averages keep that order.
      return {static_cast<float>(average_min_), static_cast<float>(average_max_)};
    case Method::percentile: return detail::percentile_range(h, options_.percentile, options_.scheme.symmetric);
    case Method::entropy: return detail::entropy_range(h, options_.scheme);
    case Method::mse: return detail::mse_range(h, options_.scheme);
  }
  return {min_, max_};
}

}  // namespace zp::calib
