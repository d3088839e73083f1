// Calibration observers (zeropoint/calib.hpp) and the `mse` scheme option, each checked
// against an independent computation: sorted data for extremes and percentiles, the
// recurrence for the moving average, a histogram built here from the observer's own lattice,
// and the squared error of real quantize -> dequantize round trips.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.hpp"
#include "zeropoint/calib.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"
#include "zeropoint/observe.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/quantize.hpp"

namespace zp {
namespace {

using calib::Method;
using calib::Observer;
using calib::ObserverOptions;
using calib::Range;
using testing::Rng;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

ObserverOptions options(Method m, const char* scheme = "uint8:asym") {
  ObserverOptions o;
  o.method = m;
  o.scheme = Scheme::parse(scheme);
  return o;
}

std::vector<float> normal(Rng& rng, std::size_t n, float sigma = 1.0f) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal(sigma);
  return v;
}

std::vector<float> uniform(Rng& rng, std::size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform(lo, hi);
  return v;
}

// Student-t with 3 degrees of freedom: finite variance, heavy tails (as LLM weights have).
std::vector<float> student_t3(std::uint32_t seed, std::size_t n, float scale = 1.0f) {
  std::mt19937 engine(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = scale * t(engine);
  return v;
}

// NumPy's default percentile: linear interpolation between the sorted values around rank
// p / 100 * (n - 1).
double numpy_percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(rank));
  const std::size_t above = std::min(below + 1, v.size() - 1);
  return v[below] + (rank - static_cast<double>(below)) * (v[above] - v[below]);
}

// Sum over `data` of (x - dequantize(quantize(x)))^2 with the parameters `scheme` gives `r`.
double quantization_sse(const std::vector<float>& data, Range r, const Scheme& scheme) {
  const AffineParams p = choose_params(r.min, r.max, scheme);
  const kernels::QuantizeSpec spec = kernels::quantize_spec(scheme);
  double sum = 0;
  for (const float x : data) {
    const double e = static_cast<double>(x) - kernels::dequantize_value(kernels::quantize_value(x, p, spec), p);
    sum += e * e;
  }
  return sum;
}

Observer fed(const ObserverOptions& o, const std::vector<std::vector<float>>& batches) {
  Observer obs(o);
  for (const auto& b : batches) obs.update(b);
  return obs;
}

std::vector<std::int64_t> counts_of(const Observer& obs) {
  const auto h = obs.histogram();
  return {h.counts.begin(), h.counts.end()};
}

// Every value in its bin, recomputed here: bin k covers [k w, (k + 1) w) at and above 0 and
// (k w, (k + 1) w] below it; the counters start at lo.
std::vector<std::int64_t> counts_recomputed(const std::vector<float>& values, const calib::HistogramView& h) {
  std::vector<std::int64_t> expected(h.counts.size(), 0);
  for (float v : values) {
    const double q = static_cast<double>(v) / h.width;
    const double k = v >= 0 ? std::floor(q) : std::ceil(q) - 1;
    const double bin = k - h.lo / h.width;
    EXPECT_GE(bin, 0) << v;
    EXPECT_LT(bin, static_cast<double>(h.counts.size())) << v;
    if (bin >= 0 && bin < static_cast<double>(h.counts.size())) ++expected[static_cast<std::size_t>(bin)];
  }
  return expected;
}

TEST(CalibMethod, NamesRoundTripAndBadNamesListTheValidOnes) {
  for (Method m : {Method::minmax, Method::moving_average, Method::percentile, Method::entropy, Method::mse}) {
    EXPECT_EQ(calib::parse_method(calib::method_name(m)), m);
  }
  try {
    calib::parse_method("kl");
    ADD_FAILURE() << "'kl' parsed";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* name : {"'kl'", "minmax", "moving_average", "percentile", "entropy", "mse"}) {
      EXPECT_NE(msg.find(name), std::string::npos) << msg;
    }
  }
}

TEST(CalibObserver, OptionsOutOfRangeAreRefused) {
  auto refused = [](ObserverOptions o, const char* fragment) {
    try {
      Observer obs(o);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  ObserverOptions o;
  o.momentum = 0;
  refused(o, "momentum");
  o = {};
  o.percentile = 100.5;
  refused(o, "percentile");
  o = {};
  o.bins = 8;
  refused(o, "bins");
  o = {};
  o.scheme = Scheme::parse("int8:channel=0");
  refused(o, "not per tensor");
}

TEST(CalibObserver, MinmaxIsTheExtremesOfTheFiniteValues) {
  Rng rng(11);
  // Batch lengths around the internal chunk (16384) and below any vector width, with NaN and
  // infinities sprinkled in, including at the ends.
  std::vector<std::vector<float>> batches;
  std::vector<float> finite;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{16383}, std::size_t{16385},
                        std::size_t{40000}}) {
    std::vector<float> b = normal(rng, n, 3.0f);
    if (n > 10) {
      b[0] = kNaN;
      b[n - 1] = -kInf;
      b[n / 2] = kInf;
    }
    for (float v : b) {
      if (std::isfinite(v)) finite.push_back(v);
    }
    batches.push_back(b);
  }
  const Observer obs = fed(options(Method::minmax), batches);
  const auto [lo, hi] = std::minmax_element(finite.begin(), finite.end());
  EXPECT_EQ(obs.range().min, *lo);
  EXPECT_EQ(obs.range().max, *hi);
  EXPECT_EQ(obs.observed_min(), *lo);
  EXPECT_EQ(obs.observed_max(), *hi);
  EXPECT_EQ(obs.count(), static_cast<std::int64_t>(finite.size()));
  EXPECT_EQ(obs.nan_count(), 3);
  EXPECT_EQ(obs.inf_count(), 6);
  EXPECT_EQ(obs.batches(), 6);
}

TEST(CalibObserver, MovingAverageFollowsItsRecurrence) {
  Rng rng(12);
  ObserverOptions o = options(Method::moving_average);
  o.momentum = 0.1;
  Observer obs(o);
  double lo = 0, hi = 0;
  for (int k = 0; k < 30; ++k) {
    std::vector<float> b = normal(rng, 1000, 1.0f + 0.1f * static_cast<float>(k));
    if (k == 3) b[5] = kNaN;  // skipped: the batch's range is that of its finite values
    obs.update(b);
    float bmin = kInf, bmax = -kInf;
    for (float v : b) {
      if (!std::isfinite(v)) continue;
      bmin = std::min(bmin, v);
      bmax = std::max(bmax, v);
    }
    if (k == 0) {
      lo = bmin;
      hi = bmax;
    } else {
      lo += 0.1 * (bmin - lo);
      hi += 0.1 * (bmax - hi);
    }
  }
  obs.update(std::vector<float>{kNaN, kInf});  // a batch with nothing finite changes nothing
  EXPECT_FLOAT_EQ(obs.range().min, static_cast<float>(lo));
  EXPECT_FLOAT_EQ(obs.range().max, static_cast<float>(hi));
  EXPECT_EQ(obs.batches(), 31);
}

// ONNX calibration feeds minmax and moving_average the extremes ONNX Runtime computed: the
// result must be what update() on the values gives.
TEST(CalibObserver, ExtremesOfABatchActAsItsValues) {
  for (const Method m : {Method::minmax, Method::moving_average}) {
    Rng rng(21);
    Observer by_values(options(m)), by_extremes(options(m));
    for (int k = 0; k < 12; ++k) {
      const std::vector<float> b = normal(rng, 500, 1.0f + 0.25f * static_cast<float>(k));
      by_values.update(b);
      const auto [lo, hi] = std::minmax_element(b.begin(), b.end());
      by_extremes.update_extremes(*lo, *hi, static_cast<std::int64_t>(b.size()));
    }
    by_extremes.update_extremes(0, 0, 0);  // an empty batch counts as a batch, nothing more
    by_values.update(std::vector<float>{});
    EXPECT_EQ(by_extremes.range().min, by_values.range().min) << method_name(m);
    EXPECT_EQ(by_extremes.range().max, by_values.range().max) << method_name(m);
    EXPECT_EQ(by_extremes.count(), by_values.count());
    EXPECT_EQ(by_extremes.batches(), by_values.batches());
    EXPECT_FALSE(Observer::needs_values(m));
  }
  for (const Method m : {Method::percentile, Method::entropy, Method::mse}) {
    Observer o(options(m));
    EXPECT_TRUE(Observer::needs_values(m));
    EXPECT_THROW(o.update_extremes(-1, 1, 10), zp::Error) << method_name(m);
  }
}

TEST(CalibObserver, MovingAverageMergeWeighsByBatches) {
  Rng rng(13);
  ObserverOptions o = options(Method::moving_average);
  Observer a(o), b(o);
  for (int k = 0; k < 3; ++k) a.update(normal(rng, 500, 1.0f));
  b.update(normal(rng, 500, 5.0f));
  const Range ra = a.range(), rb = b.range();
  a.merge(b);
  EXPECT_NEAR(a.range().min, (3.0 * ra.min + rb.min) / 4.0, 1e-5);
  EXPECT_NEAR(a.range().max, (3.0 * ra.max + rb.max) / 4.0, 1e-5);
}

TEST(CalibObserver, PercentileIsWithinOneBinOfNumpy) {
  Rng rng(14);
  for (double p : {99.0, 99.9, 99.99}) {
    SCOPED_TRACE(p);
    // Skewed data, so that the two tails differ: a normal plus an exponential.
    std::vector<std::vector<float>> batches;
    std::vector<double> all, magnitudes;
    for (int k = 0; k < 4; ++k) {
      std::vector<float> b(50000);
      for (float& x : b) {
        x = rng.normal(1.0f) + 0.5f * std::exponential_distribution<float>(1.0f)(rng.engine());
        all.push_back(x);
        magnitudes.push_back(std::fabs(x));
      }
      batches.push_back(b);
    }
    const Observer asym = fed([&] {
      ObserverOptions o = options(Method::percentile, "uint8:asym");
      o.percentile = p;
      return o;
    }(), batches);
    const double w = asym.histogram().width;
    EXPECT_NEAR(asym.range().min, numpy_percentile(all, 100.0 - p), w);
    EXPECT_NEAR(asym.range().max, numpy_percentile(all, p), w);

    const Observer sym = fed([&] {
      ObserverOptions o = options(Method::percentile, "int8");
      o.percentile = p;
      return o;
    }(), batches);
    const double t = numpy_percentile(magnitudes, p);
    EXPECT_NEAR(sym.range().max, t, sym.histogram().width);
    EXPECT_NEAR(sym.range().min, std::max(-t, *std::min_element(all.begin(), all.end())), sym.histogram().width);
  }
}

TEST(CalibObserver, MergingHalvesEqualsOneObserverFedBoth) {
  Rng rng(15);
  std::vector<std::vector<float>> first, second;
  for (int k = 0; k < 3; ++k) first.push_back(normal(rng, 20000, 1.0f));
  for (int k = 0; k < 3; ++k) second.push_back(normal(rng, 20000, 4.0f));  // wider: the merge must re-bin
  second[1][17] = kNaN;
  for (Method m : {Method::minmax, Method::percentile, Method::entropy, Method::mse}) {
    for (const char* scheme : {"uint8:asym", "int8"}) {
      SCOPED_TRACE(std::string(calib::method_name(m)) + " " + scheme);
      std::vector<std::vector<float>> both = first;
      both.insert(both.end(), second.begin(), second.end());
      const Observer whole = fed(options(m, scheme), both);
      for (bool wide_first : {false, true}) {
        Observer a = fed(options(m, scheme), wide_first ? second : first);
        a.merge(fed(options(m, scheme), wide_first ? first : second));
        EXPECT_EQ(a.range().min, whole.range().min);
        EXPECT_EQ(a.range().max, whole.range().max);
        EXPECT_EQ(a.count(), whole.count());
        EXPECT_EQ(a.nan_count(), 1);
        EXPECT_EQ(a.batches(), 6);
        EXPECT_EQ(counts_of(a), counts_of(whole));
      }
    }
  }
}

TEST(CalibObserver, MergeRefusesOtherOptions) {
  Observer a(options(Method::entropy, "uint8:asym"));
  EXPECT_THROW(a.merge(Observer(options(Method::entropy, "int8"))), Error);
  EXPECT_THROW(a.merge(Observer(options(Method::mse, "uint8:asym"))), Error);
}

TEST(CalibHistogram, WideningRebinsAndKeepsEveryCount) {
  Rng rng(16);
  ObserverOptions o = options(Method::percentile);
  o.bins = 256;
  // The last batch puts values on bin edges (multiples of the final width, 8) of both signs.
  std::vector<std::vector<float>> batches{normal(rng, 5000, 0.01f), uniform(rng, 5000, 0.0f, 3.0f),
                                          normal(rng, 5000, 40.0f), {-1000.0f, 999.0f, -16.0f, -8.0f, 0.0f, -0.0f, 8.0f}};
  Observer obs(o);
  std::vector<float> seen;
  for (const auto& b : batches) {
    const double width_before = obs.count() ? obs.histogram().width : 0.0;
    obs.update(b);
    seen.insert(seen.end(), b.begin(), b.end());
    const auto h = obs.histogram();
    ASSERT_EQ(h.counts.size(), 256u);
    EXPECT_EQ(std::accumulate(h.counts.begin(), h.counts.end(), std::int64_t{0}), obs.count());
    EXPECT_GE(h.width, width_before);
    EXPECT_EQ(counts_of(obs), counts_recomputed(seen, h));
    // The values fill more than half of the counters: the width is the finest that fits.
    EXPECT_GT((obs.observed_max() - obs.observed_min()) / h.width, 127.0);
  }
}

// The observer finds bins in float and int32 when that is exact (|x| / w below 2^31, w a normal
// float), in double otherwise, and counts into four interleaved copies when there are fewer
// counters than a quarter of a chunk: each way against the recomputation above.
TEST(CalibHistogram, EveryValueInItsBinOnEveryPath) {
  Rng rng(17);
  struct Case {
    const char* what;
    int bins;
    std::vector<float> values;
  };
  std::vector<float> relu = normal(rng, 40000, 1.0f);  // several chunks, half of them zeros
  for (float& v : relu) v = std::max(v, 0.0f);
  std::vector<float> far;  // a range of 1 at 1e7: w = 2^-10, |x| / w near 2^33, the double path
  for (int i = 0; i < 3000; ++i) far.push_back(1.0e7f + static_cast<float>(rng.integer(0, 1)));
  std::vector<float> tiny = normal(rng, 3000, 1e-38f);  // w = 2^-140 or so: not a normal float
  std::vector<float> edges = uniform(rng, 3000, -8.0f, 8.0f);
  for (int k = -64; k <= 64; ++k) edges.push_back(static_cast<float>(k) / 8.0f);  // bin edges of both signs
  edges.push_back(-0.0f);
  const std::vector<Case> cases{{"normal, copies", 2048, normal(rng, 40000, 3.0f)},
                                {"relu, copies", 2048, relu},
                                {"normal, one counter set", 65536, normal(rng, 40000, 3.0f)},
                                {"far from 0", 2048, far},
                                {"tiny", 2048, tiny},
                                {"edges", 256, edges}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ObserverOptions o = options(Method::percentile);
    o.bins = c.bins;
    Observer obs(o);
    obs.update(c.values);
    EXPECT_EQ(counts_of(obs), counts_recomputed(c.values, obs.histogram()));
  }
}

TEST(CalibHistogram, MemoryDoesNotGrowWithBatches) {
  Rng rng(17);
  for (Method m : {Method::percentile, Method::entropy, Method::mse}) {
    Observer obs(options(m));
    for (int k = 0; k < 200; ++k) {
      obs.update(normal(rng, 1000, 1.0f + static_cast<float>(k)));
      ASSERT_EQ(obs.histogram().counts.size(), 2048u);
    }
    EXPECT_EQ(obs.count(), 200000);
  }
  EXPECT_TRUE(Observer(options(Method::minmax)).histogram().counts.empty());
  EXPECT_TRUE(Observer(options(Method::moving_average)).histogram().counts.empty());
}

TEST(CalibObserver, EntropyClipsRareOutliersOfAGaussian) {
  // A window needs at least as many bins as the codes it spans, so how far entropy can clip
  // depends on bins per code: 2048 bins reach outliers at 12-15 sigma with 8-bit codes and at
  // 30-40 sigma with 4-bit ones; 8192 bins reach 30-40 sigma with 8-bit codes too.
  struct Case {
    const char* scheme;
    float outlier;
    int bins;
  };
  for (const Case c : {Case{"uint8:asym", 12, 2048}, Case{"int8", 12, 2048}, Case{"int4", 12, 2048},
                       Case{"uint4:asym", 30, 2048}, Case{"int4", 30, 2048}, Case{"uint8:asym", 30, 8192},
                       Case{"int8", 30, 8192}}) {
    SCOPED_TRACE(::testing::Message() << c.scheme << ", outliers at " << c.outlier << ", " << c.bins << " bins");
    Rng rng(18);
    ObserverOptions o = options(Method::entropy, c.scheme);
    o.bins = c.bins;
    Observer obs(o);
    for (int k = 0; k < 10; ++k) {
      std::vector<float> b = normal(rng, 50000, 1.0f);
      b[k] = (k % 2 ? 1.0f : -1.0f) * (c.outlier + 0.3f * static_cast<float>(k));  // 10 outliers in 500k values
      obs.update(b);
    }
    const Range r = obs.range();
    EXPECT_LT(r.max, 0.5f * obs.observed_max());
    EXPECT_GT(r.min, 0.5f * obs.observed_min());
    EXPECT_GT(r.max, 2.5f);  // the bulk of the distribution is kept
    EXPECT_LT(r.min, -2.5f);
  }
}

TEST(CalibObserver, EntropyKeepsAUniformDistributionsRange) {
  Rng rng(19);
  for (const char* scheme : {"uint8:asym", "int8"}) {
    SCOPED_TRACE(scheme);
    Observer obs(options(Method::entropy, scheme));
    for (int k = 0; k < 20; ++k) obs.update(uniform(rng, 100000, -2.0f, 6.0f));
    const Range r = obs.range();
    const float span = obs.observed_max() - obs.observed_min();
    EXPECT_GT(r.max, obs.observed_max() - 0.01f * span);
    if (!Scheme::parse(scheme).symmetric) {
      EXPECT_LT(r.min, obs.observed_min() + 0.01f * span);
    }
  }
}

TEST(CalibObserver, MseClippingBeatsMinmaxOnHeavyTails) {
  for (const char* scheme : {"uint8:asym", "int8", "uint4:asym", "int4"}) {
    SCOPED_TRACE(scheme);
    const std::vector<float> data = student_t3(20, 400000);
    std::vector<std::vector<float>> batches;
    for (std::size_t i = 0; i < data.size(); i += 100000) batches.emplace_back(data.begin() + i, data.begin() + i + 100000);
    const Observer mse = fed(options(Method::mse, scheme), batches);
    const Observer minmax = fed(options(Method::minmax, scheme), batches);
    const Scheme s = Scheme::parse(scheme);
    const double clipped = quantization_sse(data, mse.range(), s);
    const double plain = quantization_sse(data, minmax.range(), s);
    EXPECT_LT(clipped, 0.9 * plain);
    EXPECT_GE(mse.range().min, minmax.range().min);
    EXPECT_LE(mse.range().max, minmax.range().max);
  }
}

TEST(CalibObserver, MseIsNearTheBestClippingFoundByBruteForce) {
  // The histogram's error model (values spread evenly in each bin) against real round trips of
  // the data: the observer's range must be within 1% of the best of 300 thresholds tried here.
  const std::vector<float> data = student_t3(25, 100000);
  std::vector<float> shifted = data;  // a skewed copy, for the asymmetric refinement
  for (float& x : shifted) x = x > 0 ? 2.0f * x + 1.0f : x + 1.0f;
  for (const std::vector<float>* values : std::vector<const std::vector<float>*>{&data, &shifted}) {
    for (const char* scheme : {"uint8:asym", "int8", "int4", "uint4:asym", "uint4:asym:zp=float"}) {
      SCOPED_TRACE(std::string(scheme) + (values == &data ? "" : ", skewed"));
      const Scheme s = Scheme::parse(scheme);
      const Observer obs = fed(options(Method::mse, scheme), std::vector<std::vector<float>>{*values});
      const float lo = obs.observed_min(), hi = obs.observed_max();
      double brute = std::numeric_limits<double>::infinity();
      for (int i = 1; i <= 300; ++i) {
        const float t = std::max(-lo, hi) * static_cast<float>(i) / 300.0f;
        if (std::max(-t, lo) <= std::min(t, hi)) brute = std::min(brute, quantization_sse(*values, {std::max(-t, lo), std::min(t, hi)}, s));
      }
      EXPECT_LE(quantization_sse(*values, obs.range(), s), 1.01 * brute);
    }
  }
}

TEST(CalibObserver, NanAndInfinityAreCountedAndSkipped) {
  Rng rng(21);
  const std::vector<float> clean = normal(rng, 30000, 2.0f);
  std::vector<float> dirty = clean;
  dirty.insert(dirty.begin() + 100, {kNaN, kInf, -kInf, kNaN});
  dirty.push_back(kNaN);
  for (Method m : {Method::minmax, Method::moving_average, Method::percentile, Method::entropy, Method::mse}) {
    SCOPED_TRACE(calib::method_name(m));
    Observer a(options(m)), b(options(m));
    a.update(clean);
    b.update(dirty);
    EXPECT_EQ(b.nan_count(), 3);
    EXPECT_EQ(b.inf_count(), 2);
    EXPECT_EQ(b.count(), a.count());
    EXPECT_EQ(b.range().min, a.range().min);
    EXPECT_EQ(b.range().max, a.range().max);
  }
}

TEST(CalibObserver, NothingFiniteIsAClearError) {
  for (Method m : {Method::minmax, Method::moving_average, Method::percentile, Method::entropy, Method::mse}) {
    Observer obs(options(m));
    EXPECT_THROW(obs.range(), Error);
    obs.update(std::vector<float>{kNaN, kNaN, kInf});
    obs.update(std::vector<float>{});
    try {
      obs.range();
      ADD_FAILURE() << "range() of NaN";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("no finite value"), std::string::npos) << msg;
      EXPECT_NE(msg.find("2 NaN"), std::string::npos) << msg;
    }
    EXPECT_EQ(obs.count(), 0);
    EXPECT_EQ(obs.observed_min(), 0.0f);
  }
}

TEST(CalibObserver, ConstantAndSingleValues) {
  for (Method m : {Method::minmax, Method::percentile, Method::entropy, Method::mse}) {
    SCOPED_TRACE(calib::method_name(m));
    Observer obs(options(m));
    obs.update(std::vector<float>(1000, 2.5f));
    EXPECT_EQ(obs.range().min, 2.5f);
    EXPECT_EQ(obs.range().max, 2.5f);
    Observer zero(options(m));
    zero.update(std::vector<float>(10, 0.0f));
    EXPECT_EQ(zero.range().min, 0.0f);
    EXPECT_EQ(zero.range().max, 0.0f);
  }
}

// --- The `mse` scheme option: compute_params shrinks each group's range -----------------------

// Squared error of each parameter group after quantize -> dequantize with `p`.
std::vector<double> group_errors(const Tensor& x, const QParams& p) {
  const Tensor y = dequantize(quantize(x, p));
  const ParamLayout layout = ParamLayout::of(x.shape(), p.scheme);
  std::vector<double> err(static_cast<std::size_t>(layout.groups), 0.0);
  const auto xs = x.span<float>();
  const auto ys = y.span<float>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i])) continue;
    const double e = static_cast<double>(xs[i]) - ys[i];
    err[static_cast<std::size_t>(layout.group_of(static_cast<std::int64_t>(i)))] += e * e;
  }
  return err;
}

TEST(CalibMseScheme, LowersTheErrorOfEveryGroupOnHeavyTails) {
  const Shape shape{48, 320};
  const std::vector<float> values = student_t3(22, 48 * 320, 0.02f);
  Tensor x(DType::f32, shape);
  std::copy(values.begin(), values.end(), x.span<float>().begin());
  for (const char* text : {"int4:block=32", "int8:channel=0", "uint4:block=32:asym", "int4:block=16:axis=0",
                           "uint4:block=64:asym:zp=float", "int8:channel=1"}) {
    SCOPED_TRACE(text);
    const Scheme plain = Scheme::parse(text);
    const Scheme mse = Scheme::parse(std::string(text) + ":mse");
    const std::vector<double> before = group_errors(x, compute_params(x, plain));
    const QParams clipped = compute_params(x, mse);
    EXPECT_EQ(clipped.scheme, mse);
    const std::vector<double> after = group_errors(x, clipped);
    ASSERT_EQ(before.size(), after.size());
    int improved = 0;
    for (std::size_t g = 0; g < before.size(); ++g) {
      // The search sums in another order than this loop: allow that rounding, nothing more.
      EXPECT_LE(after[g], before[g] * (1 + 1e-12)) << "group " << g;
      improved += after[g] < before[g];
    }
    const double total_before = std::accumulate(before.begin(), before.end(), 0.0);
    const double total_after = std::accumulate(after.begin(), after.end(), 0.0);
    EXPECT_LT(total_after, total_before);
    EXPECT_GT(improved, 0);
  }
}

TEST(CalibMseScheme, ShrinksOnlyToFactorsOnTheGrid) {
  // One group with one far outlier: the chosen range is f * [min, max] for a grid factor f < 1.
  Rng rng(23);
  std::vector<float> v = normal(rng, 4096, 1.0f);
  v[100] = 60.0f;
  Tensor x(DType::f32, {4096});
  std::copy(v.begin(), v.end(), x.span<float>().begin());
  const Scheme s = Scheme::parse("int4:mse");
  const QParams p = compute_params(x, s);
  const float amax = *std::max_element(v.begin(), v.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); });
  bool on_grid = false;
  for (int i = 1; i < 100 && !on_grid; ++i) {
    const double f = 1.0 - 0.8 * i / 99;
    on_grid = choose_params(static_cast<float>(-amax * f), static_cast<float>(amax * f), s) == p.at(0);
  }
  EXPECT_TRUE(on_grid) << "scale " << p.scale[0];
  EXPECT_LT(p.scale[0], std::fabs(amax) / 7.0f);
}

TEST(CalibMseScheme, NonFiniteValuesAreLeftOutWhenAskedTo) {
  Rng rng(24);
  Tensor x = rng.heavy_tailed({8, 64});
  x.span<float>()[70] = kNaN;
  x.span<float>()[300] = kInf;
  const Scheme s = Scheme::parse("int4:block=32:mse");
  EXPECT_THROW(compute_params(x, s), NonFiniteError);
  ObserveOptions o;
  o.ignore_nonfinite = true;
  const QParams p = compute_params(x, s, o);
  p.check_fits(x.shape());
  const std::vector<double> after = group_errors(x, p);
  const std::vector<double> before = group_errors(x, compute_params(x, Scheme::parse("int4:block=32"), o));
  for (std::size_t g = 0; g < before.size(); ++g) EXPECT_LE(after[g], before[g] * (1 + 1e-12)) << "group " << g;
}

}  // namespace
}  // namespace zp
