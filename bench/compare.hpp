// The measuring loop shared by the kernel benchmarks (bench_kernels.cpp, bench_ggml.cpp): each
// kernel pass timed, with rounds of its yardstick (stream.hpp) between the passes, so that both
// sample the same stretch of a noisy machine. The fastest pass of each is what counts.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <benchmark/benchmark.h>

#include "stream.hpp"

namespace zp::bench {

/// The two sizes every kernel runs at: resident in cache, and far beyond it (DRAM).
constexpr std::int64_t kCacheMiB = 4;
constexpr std::int64_t kDramMiB = 256;

/// Times the loop body of a benchmark (wall clock), keeping the fastest iteration.
class BestOf {
 public:
  void start() { t0_ = clock::now(); }
  void stop() { best_ = std::min(best_, std::chrono::duration<double>(clock::now() - t0_).count()); }
  double seconds() const { return best_; }

 private:
  using clock = std::chrono::steady_clock;
  clock::time_point t0_;
  double best_ = std::numeric_limits<double>::infinity();
};

/// The benchmark loop: one kernel pass per iteration, timed; before every `every` iterations a
/// round of yardstick passes (paused, so Google Benchmark's own time is the kernel's alone).
/// state.range(0) is the size in MiB. `bytes` and `items` are what one pass handles.
template <class Pass>
void run_compared(benchmark::State& state, zp::stream::Yardstick& yardstick, Pass&& pass, double bytes,
                  std::size_t items) {
  const bool cached = state.range(0) <= kCacheMiB;
  const int every = cached ? 50 : 1;
  const int yardstick_passes = cached ? 25 : 1;
  pass();  // warm-up
  BestOf best;
  std::int64_t i = 0;
  for (auto _ : state) {
    if (i++ % every == 0) {
      state.PauseTiming();
      yardstick.round(yardstick_passes);
      state.ResumeTiming();
    }
    best.start();
    pass();
    best.stop();
    benchmark::ClobberMemory();
  }
  const zp::stream::Limit& lim = yardstick.limit();
  const double gbps = bytes / best.seconds() / 1e9;
  const double limit = bytes / lim.best_s() / 1e9;
  state.counters["GBps"] = gbps;
  state.counters["stream_GBps"] = limit;
  state.counters["stream_nt_GBps"] = bytes / lim.nt_s / 1e9;
  state.counters["stream_st_GBps"] = bytes / lim.store_s / 1e9;
  state.counters["pct_of_stream"] = 100.0 * gbps / limit;
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations()) * bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(items));
}

}  // namespace zp::bench
