// Kernel throughput, with an in-run memory stream as the yardstick.
//
// Every figure is reported as bytes of float32 input per second ("bytes_per_second") and, for
// comparison in the same run, the stream benchmarks read the same bytes and write the same
// output size with plain loads and stores. The machine is shared and noisy, so compare ratios
// within one run, not absolute figures across runs. docs/benchmarks.md records results.
//
//   build/bin/zeropoint_bench --benchmark_min_time=0.5
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "zeropoint/zeropoint.hpp"

namespace {

constexpr std::int64_t kCache = std::int64_t{4} << 20;    // 4 MiB of floats: stays in L2/L3
constexpr std::int64_t kDram = std::int64_t{256} << 20;   // 256 MiB of floats: streams from DRAM

std::vector<float> random_floats(std::size_t n) {
  std::vector<float> v(n);
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& x : v) x = dist(rng);
  return v;
}

// The yardstick: read n floats, write n bytes (what an int8 quantizer must move at least).
void BM_stream_f32_to_u8(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0) / 4);
  const std::vector<float> x = random_floats(n);
  std::vector<std::uint8_t> out(n);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(std::bit_cast<std::uint32_t>(x[i]) >> 24);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_memcpy(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<char> a(n, 1), b(n);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), n);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_f32_qs8_quantize_ref(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0) / 4);
  const std::vector<float> x = random_floats(n);
  std::vector<std::int8_t> q(n);
  const zp::AffineParams p{0.02f, 0, 0.0f};
  for (auto _ : state) {
    zp::kernels::f32_qs8_quantize_ref(x, p, {{-127, 127}}, q);
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_qs8_f32_dequantize_ref(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0) / 4);
  std::vector<std::int8_t> q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(i * 37);
  std::vector<float> x(n);
  const zp::AffineParams p{0.02f, 3, 0.0f};
  for (auto _ : state) {
    zp::kernels::qs8_f32_dequantize_ref(q, p, x);
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_f32_minmax_ref(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0) / 4);
  const std::vector<float> x = random_floats(n);
  for (auto _ : state) benchmark::DoNotOptimize(zp::kernels::f32_minmax_ref(x, false));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// The whole tensor-level path: observe, choose parameters, quantize, pack (what `zeropoint
// quantize` does per tensor, without the file I/O).
void BM_tensor_quantize(benchmark::State& state, const char* scheme_text) {
  const auto n = state.range(0) / 4;
  const std::vector<float> x = random_floats(static_cast<std::size_t>(n));
  const zp::TensorView view(x.data(), zp::DType::f32, {n / 4096, 4096});
  const zp::Scheme scheme = zp::Scheme::parse(scheme_text);
  for (auto _ : state) {
    const zp::QParams p = zp::compute_params(view, scheme);
    benchmark::DoNotOptimize(zp::quantize(view, p).data.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

}  // namespace

BENCHMARK(BM_memcpy)->Arg(kCache)->Arg(kDram)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_f32_to_u8)->Arg(kCache)->Arg(kDram)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_f32_qs8_quantize_ref)->Arg(kCache)->Arg(kDram)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_qs8_f32_dequantize_ref)->Arg(kCache)->Arg(kDram)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_f32_minmax_ref)->Arg(kCache)->Arg(kDram)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_tensor_quantize, int8, "int8")->Arg(kCache)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_tensor_quantize, int8_channel0, "int8:channel=0")->Arg(kCache)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_tensor_quantize, int4_block32, "int4:block=32")->Arg(kCache)->Unit(benchmark::kMillisecond);
