// ggml's legacy block formats and row conversions (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, f16,
// bf16): each kernel next to the streaming yardstick of bench/stream.hpp with its memory shape,
// measured in the same run (rounds of yardstick passes between the kernel's iterations).
//
//   quantize          read n floats, write the blocks     yardstick f32_to_u8 (q8_*, f16, bf16)
//                                                         or f32_to_u4 (q4_*, q5_*)
//   dequantize        read the blocks, write n floats     yardstick u8_to_f32
//
// The yardsticks move about the same bytes (q8_0 writes 34 bytes per 32 floats where the
// yardstick writes 32; q5_* 22-24 where f32_to_u4 writes 16; f16 writes and reads 2 bytes per
// value where the yardsticks have 1), so pct_of_stream is "how close to what memory allows".
// Counters, as in bench_kernels.cpp:
//
//   GBps            float32 bytes handled per second (input of quantize, output of dequantize)
//                   in the kernel's fastest iteration (1 GB = 1e9 B)
//   stream_GBps     the yardstick's fastest pass over the same buffers (faster of streaming and
//                   normal stores), in the same bytes
//   pct_of_stream   100 * GBps / stream_GBps
//
// One thread: the kernels are single-threaded span functions (the per-core figure). Sizes 4 MiB
// (cache) and 256 MiB (DRAM) of float32 input, roughly N(0, 1).
//
//   build/bin/zeropoint_bench_ggml                                   # everything, ~1 min
//   build/bin/zeropoint_bench_ggml --benchmark_filter='MiB:256/'     # DRAM only
//   build/bin/zeropoint_bench_ggml --benchmark_filter='q8_0'         # one type
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "compare.hpp"
#include "stream.hpp"
#include "zeropoint/ggml.hpp"

namespace {

using zp::stream::AlignedBuffer;
using zp::stream::Shape;
using zp::stream::Team;
namespace gg = zp::ggml;

using zp::bench::kCacheMiB;
using zp::bench::kDramMiB;
using zp::bench::run_compared;

// One set of buffers per size, shared by every benchmark of that size.
struct Data {
  std::size_t n;
  AlignedBuffer<float> x;          // input
  AlignedBuffer<std::uint8_t> q;   // blocks: quantize output, dequantize input (2 bytes per value: f16)
  AlignedBuffer<float> y;          // dequantize output

  explicit Data(std::size_t count) : n(count), x(count), q(2 * count), y(count) {
    zp::stream::fill_random(x.data(), n);
    std::memset(q.data(), 0, q.size());
    std::memset(y.data(), 0, n * sizeof(float));
  }
};

Data& data_of(std::int64_t mib) {
  static std::map<std::int64_t, std::unique_ptr<Data>> all;
  auto& d = all[mib];
  if (!d) d = std::make_unique<Data>(static_cast<std::size_t>(mib << 20) / sizeof(float));
  return *d;
}



void BM_quantize(benchmark::State& state, gg::Type type, bool reference) {
  Data& d = data_of(state.range(0));
  const gg::TypeTraits& t = gg::traits(type);
  const Shape shape = t.block_bytes * 2 <= t.block_size ? Shape::f32_to_u4 : Shape::f32_to_u8;
  Team team(1);
  zp::stream::Yardstick yardstick(team, shape, d.x.data(), d.q.data(), d.n);
  const gg::QuantizeFn f = reference ? t.quantize_ref : t.quantize;
  const std::size_t bytes = *gg::row_bytes(type, d.n);
  const auto pass = [&] { f({d.x.data(), d.n}, {d.q.data(), bytes}, {}); };
  run_compared(state, yardstick, pass, static_cast<double>(d.n * sizeof(float)), d.n);
}

void BM_dequantize(benchmark::State& state, gg::Type type, bool reference) {
  Data& d = data_of(state.range(0));
  const gg::TypeTraits& t = gg::traits(type);
  const std::size_t bytes = *gg::row_bytes(type, d.n);
  t.quantize({d.x.data(), d.n}, {d.q.data(), bytes}, {});  // real blocks to read
  Team team(1);
  zp::stream::Yardstick yardstick(team, Shape::u8_to_f32, d.q.data(), d.y.data(), d.n);
  const gg::DequantizeFn f = reference ? t.dequantize_ref : t.dequantize;
  const auto pass = [&] { f({d.q.data(), bytes}, {d.y.data(), d.n}); };
  run_compared(state, yardstick, pass, static_cast<double>(d.n * sizeof(float)), d.n);
}

std::int64_t iterations(std::int64_t mib, bool reference) {
  if (mib <= kCacheMiB) return reference ? 30 : 1000;
  return reference ? 3 : 20;
}

void register_all() {
  const gg::Type types[] = {gg::Type::q8_0, gg::Type::q4_0, gg::Type::q4_1, gg::Type::q5_0, gg::Type::q5_1,
                            gg::Type::q8_1, gg::Type::f16,  gg::Type::bf16};
  for (std::int64_t mib : {kCacheMiB, kDramMiB}) {
    for (bool reference : {false, true}) {
      for (gg::Type type : types) {
        const gg::TypeTraits& t = gg::traits(type);
        const std::string suffix = reference ? "_ref" : "";
        benchmark::RegisterBenchmark(("f32_" + std::string(t.name) + "_quantize" + suffix).c_str(), BM_quantize, type, reference)
            ->Arg(mib)->ArgName("MiB")->Iterations(iterations(mib, reference))->UseRealTime()->Unit(benchmark::kMillisecond);
        if (t.dequantize == nullptr) continue;
        benchmark::RegisterBenchmark((std::string(t.name) + "_f32_dequantize" + suffix).c_str(), BM_dequantize, type, reference)
            ->Arg(mib)->ArgName("MiB")->Iterations(iterations(mib, reference))->UseRealTime()->Unit(benchmark::kMillisecond);
      }
    }
  }
}

const bool registered = (register_all(), true);

}  // namespace
