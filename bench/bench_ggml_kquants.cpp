// K-quants (q2_K ... q8_K): quantize and dequantize throughput, reference and SIMD, in bytes of
// float32 per second (input for quantize, output for dequantize). Rows of 4096 values (a typical
// hidden size) x 64 rows = 1 MiB of floats, resident in L2 on most cores, so the numbers measure
// the kernels rather than DRAM. Single thread. ZEROPOINT_TARGET picks the instruction set.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "zeropoint/ggml.hpp"

namespace {

using zp::ggml::Type;

constexpr std::size_t kValues = 64 * 4096;

std::vector<float> heavy_tailed() {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> x(kValues);
  for (float& v : x) v = normal(rng) * (pick(rng) == 0 ? 10.0f : 1.0f);
  return x;
}

// bytes_per_second counts binary gigabytes (G = 2^30); GB is 1e9 bytes of float32 per
// second (printed "GB=x/s"), the unit of the targets and of docs/benchmarks.md.
void report_rate(benchmark::State& state) {
  const double bytes = static_cast<double>(state.iterations()) * kValues * sizeof(float);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["GB"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsRate);
}

void Quantize(benchmark::State& state, Type type, bool reference, bool weighted) {
  const auto& t = zp::ggml::traits(type);
  const auto x = heavy_tailed();
  std::vector<float> w(weighted ? kValues : 0, 1.0f);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.5f + static_cast<float>(i % 7) * 0.25f;
  std::vector<std::uint8_t> out(*zp::ggml::row_bytes(type, kValues));
  const auto fn = reference ? t.quantize_ref : t.quantize;
  for (auto _ : state) {
    fn(x, out, w);
    benchmark::DoNotOptimize(out.data());
  }
  report_rate(state);
}

void Dequantize(benchmark::State& state, Type type, bool reference) {
  const auto& t = zp::ggml::traits(type);
  const auto x = heavy_tailed();
  std::vector<std::uint8_t> blocks(*zp::ggml::row_bytes(type, kValues));
  t.quantize(x, blocks, {});
  std::vector<float> y(kValues);
  const auto fn = reference ? t.dequantize_ref : t.dequantize;
  for (auto _ : state) {
    fn(blocks, y);
    benchmark::DoNotOptimize(y.data());
  }
  report_rate(state);
}

const int kRegistered = [] {
  for (Type type : {Type::q2_K, Type::q3_K, Type::q4_K, Type::q5_K, Type::q6_K, Type::q8_K}) {
    const std::string name(zp::ggml::traits(type).name);
    for (bool reference : {true, false}) {
      const std::string impl = reference ? "ref" : "simd";
      benchmark::RegisterBenchmark(("quantize/" + name + "/" + impl).c_str(), Quantize, type, reference, false);
      if (type != Type::q8_K) {
        benchmark::RegisterBenchmark(("quantize_imatrix/" + name + "/" + impl).c_str(), Quantize, type, reference, true);
      }
      benchmark::RegisterBenchmark(("dequantize/" + name + "/" + impl).c_str(), Dequantize, type, reference);
    }
  }
  return 0;
}();

}  // namespace
