// Calibration observers on activation-like data, next to the range pass every update makes
// (kernels::f32_minmax) measured in the same run: what building the histogram costs on top.
//
//   build/bin/zeropoint_bench_calib
//
// Counters: ns_per_value and GBps (float32 read) of the observer's update, fastest iteration;
// minmax_GBps the same for f32_minmax alone over the same values; pct_of_minmax their ratio.
// Data: 16 Mi values (64 MiB, as one 640 x 640 activation with 40 channels) of
//   normal   N(0, 1)
//   relu     max(N(0, 1), 0): half of the values are exactly 0, all in one bin
//   spiky    N(0, 1) with one value in 1000 at 100x: most values in a few bins near 0
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "zeropoint/calib.hpp"
#include "zeropoint/kernels.hpp"

namespace {

constexpr std::size_t kValues = std::size_t{16} << 20;

std::vector<float> make_values(const std::string& kind) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> one_in(0, 999);
  std::vector<float> out(kValues);
  for (float& v : out) {
    v = normal(rng);
    if (kind == "relu") v = std::max(v, 0.0f);
    if (kind == "spiky" && one_in(rng) == 0) v *= 100.0f;
  }
  return out;
}

double seconds(auto&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_observer(benchmark::State& state, zp::calib::Method method, const std::string& kind) {
  const std::vector<float> values = make_values(kind);
  zp::calib::ObserverOptions options;
  options.method = method;
  double best = 1e30, best_minmax = 1e30;
  for (auto _ : state) {
    zp::calib::Observer observer(options);
    const double t = seconds([&] { observer.update(values); });
    best = std::min(best, t);
    state.SetIterationTime(t);
    benchmark::DoNotOptimize(observer.count());
    const double m = seconds([&] { benchmark::DoNotOptimize(zp::kernels::f32_minmax(values, true)); });
    best_minmax = std::min(best_minmax, m);
  }
  const double bytes = static_cast<double>(values.size() * sizeof(float));
  state.counters["ns_per_value"] = best * 1e9 / static_cast<double>(values.size());
  state.counters["GBps"] = bytes / best / 1e9;
  state.counters["minmax_GBps"] = bytes / best_minmax / 1e9;
  state.counters["pct_of_minmax"] = 100.0 * best_minmax / best;
}

}  // namespace

BENCHMARK_CAPTURE(BM_observer, percentile/normal, zp::calib::Method::percentile, std::string("normal"))
    ->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_observer, percentile/relu, zp::calib::Method::percentile, std::string("relu"))
    ->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_observer, percentile/spiky, zp::calib::Method::percentile, std::string("spiky"))
    ->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_observer, minmax/normal, zp::calib::Method::minmax, std::string("normal"))
    ->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
