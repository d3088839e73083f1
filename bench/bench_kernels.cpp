// Kernel throughput, each figure next to a streaming yardstick measured in the same benchmark.
//
// For every kernel and tensor-level path, at 4 MiB (cache) and 256 MiB (DRAM) of float32 and on
// 1 and 2 threads, a benchmark times the kernel and, in rounds between the kernel's iterations,
// the yardstick of bench/stream.hpp that has the kernel's memory shape (same input and output
// buffers, same thread count; streaming stores and normal stores, the faster being "the limit").
// Interleaving makes both sample the same stretch of a machine whose load keeps changing.
// Counters:
//
//   GBps            bytes handled per second in the kernel's fastest iteration (1 GB = 1e9 B)
//   stream_GBps     the same for the yardstick's fastest pass: the limit in this run
//   stream_nt_GBps, stream_st_GBps   the yardstick with streaming / with normal stores
//   pct_of_stream   100 * GBps / stream_GBps
//
// plus Google Benchmark's own bytes_per_second / items_per_second (means over the iterations,
// so lower and noisier). "Bytes handled" are the float32 bytes a kernel reads (quantize,
// min/max) or writes (dequantize); for the bf16 quantizer, the bf16 bytes it reads. Fastest-of
// and not means, because this machine is shared: the fastest iteration is the least disturbed
// one, for the kernel and the yardstick alike.
//
// Threads: the raw span kernels are single-threaded functions, so for 2 threads the benchmark
// splits the span in two halves inside the loop, one for the benchmark thread and one for a
// helper std::thread (zp::stream::Team: started once per benchmark and handed its half every
// iteration, because starting a thread costs as much as a cached pass; the yardsticks are split
// the same way). The tensor-level functions use the library's own threads
// (zp::set_thread_count). All times are wall-clock (UseRealTime).
//
// Iteration counts are fixed per benchmark (Google Benchmark would otherwise call the function
// several times while it calibrates, each call redoing the yardstick), which keeps a full run
// at about two minutes:
//
//   build-bench/bin/zeropoint_bench                                  # everything
//   build-bench/bin/zeropoint_bench --benchmark_filter='MiB:4/'      # cache size only, ~25 s
//   build-bench/bin/zeropoint_bench --benchmark_filter='^span/f32_qs8_quantize/'   # one kernel
//   build-bench/bin/zeropoint_bench --benchmark_filter='^tensor/'    # tensor-level paths only
//   build-bench/bin/zeropoint_bench --benchmark_out=run.json --benchmark_out_format=json
//
// docs/benchmarks.md records results and explains them; `zeropoint bench` is the short version
// of this for users.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "compare.hpp"
#include "stream.hpp"
#include "zeropoint/threads.hpp"
#include "zeropoint/zeropoint.hpp"

namespace {

namespace ks = zp::kernels;
using zp::stream::AlignedBuffer;
using zp::stream::Shape;
using zp::stream::Team;

using zp::bench::BestOf;
using zp::bench::kCacheMiB;
using zp::bench::kDramMiB;
using zp::bench::run_compared;

constexpr std::int64_t kRowLength = 4096;  // [rows, 4096] matrices for the tensor-level paths

// ---- Data ------------------------------------------------------------------------------------
// One set of buffers per size, made on first use and shared by every benchmark of that size, so
// a 256 MiB array is generated (and its pages faulted in) once per run, not once per benchmark.
struct Data {
  std::size_t n;                 // elements
  AlignedBuffer<float> x;        // input, roughly N(0, 1)
  AlignedBuffer<std::uint16_t> xb;  // x as bf16 bit patterns
  AlignedBuffer<std::int8_t> q;  // codes: quantize output, dequantize input
  AlignedBuffer<std::uint8_t> q4;   // n / 2 bytes: the int4 yardstick's output
  AlignedBuffer<float> y;        // dequantize output
  zp::AffineParams p;            // symmetric int8 parameters for x
  ks::QuantizeSpec spec;         // the default "int8" scheme's

  explicit Data(std::size_t count)
      : n(count), x(count), xb(count), q(count), q4(count / 2 + 1), y(count) {
    zp::stream::fill_random(x.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, &x.data()[i], 4);
      xb.data()[i] = static_cast<std::uint16_t>(bits >> 16);
    }
    std::memset(q.data(), 0, n);
    std::memset(q4.data(), 0, q4.size());
    std::memset(y.data(), 0, n * sizeof(float));
    const zp::Scheme scheme = zp::Scheme::parse("int8");
    const float amax = ks::f32_absmax({x.data(), n}, false);
    p = zp::AffineParams{amax / 127.0f, 0, 0.0f};
    spec = ks::quantize_spec(scheme);
    ks::f32_qs8_quantize({x.data(), n}, p, spec, {q.data(), n});  // dequantize's input
  }
};

Data& data_of(std::int64_t mib) {
  static std::map<std::int64_t, std::unique_ptr<Data>> all;
  auto& d = all[mib];
  if (!d) d = std::make_unique<Data>(static_cast<std::size_t>(mib << 20) / sizeof(float));
  return *d;
}

// The yardstick's buffers: the kernel's own, so both see the same cache state.
struct StreamArgs {
  const void* in;
  void* out;
};
StreamArgs stream_args(Shape s, Data& d) {
  switch (s) {
    case Shape::u8_to_f32: return {d.q.data(), d.y.data()};
    case Shape::u16_to_u8: return {d.xb.data(), d.q.data()};
    case Shape::u8_to_u16: return {d.q.data(), d.y.data()};
    case Shape::f32_to_u4:
    case Shape::read2_f32_to_u4: return {d.x.data(), d.q4.data()};
    default: return {d.x.data(), d.q.data()};
  }
}

// ---- Span kernels --------------------------------------------------------------------------------
// One line per kernel: its name, its yardstick, whether it is a slow scalar reference (fewer
// iterations), and how to run it on elements [b, e). Registration below loops over this table.
struct SpanKernel {
  const char* name;
  Shape shape;
  bool reference;
  std::size_t bytes_per_element;  // bytes handled per element (see the header comment)
  void (*run)(Data& d, std::size_t b, std::size_t e);
};

template <class T>
std::span<T> part(AlignedBuffer<T>& buf, std::size_t b, std::size_t e) {
  return {buf.data() + b, e - b};
}
template <class T>
std::span<const T> cpart(AlignedBuffer<T>& buf, std::size_t b, std::size_t e) {
  return {buf.data() + b, e - b};
}
std::span<std::uint8_t> upart(AlignedBuffer<std::int8_t>& buf, std::size_t b, std::size_t e) {
  return {reinterpret_cast<std::uint8_t*>(buf.data()) + b, e - b};
}
ks::QuantizeSpec reciprocal(ks::QuantizeSpec s) {
  s.quotient = ks::Quotient::reciprocal;
  return s;
}
void keep(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  zp::stream::keep(bits);
}
constexpr std::int32_t kU8ZeroPoint = 128;  // uint8 codes centred like a symmetric "uint8" scheme
constexpr ks::QuantizeSpec kU8Spec{{0, 255}};

const SpanKernel kSpanKernels[] = {
    {"f32_qs8_quantize", Shape::f32_to_u8, false, 4,
     [](Data& d, std::size_t b, std::size_t e) { ks::f32_qs8_quantize(cpart(d.x, b, e), d.p, d.spec, part(d.q, b, e)); }},
    {"f32_qs8_quantize(reciprocal)", Shape::f32_to_u8, false, 4,
     [](Data& d, std::size_t b, std::size_t e) {
       ks::f32_qs8_quantize(cpart(d.x, b, e), d.p, reciprocal(d.spec), part(d.q, b, e));
     }},
    {"f32_qu8_quantize", Shape::f32_to_u8, false, 4,
     [](Data& d, std::size_t b, std::size_t e) {
       ks::f32_qu8_quantize(cpart(d.x, b, e), {d.p.scale, kU8ZeroPoint, 0.0f}, kU8Spec, upart(d.q, b, e));
     }},
    {"bf16_qs8_quantize", Shape::u16_to_u8, false, 2,
     [](Data& d, std::size_t b, std::size_t e) { ks::bf16_qs8_quantize(cpart(d.xb, b, e), d.p, d.spec, part(d.q, b, e)); }},
    {"qs8_f32_dequantize", Shape::u8_to_f32, false, 4,
     [](Data& d, std::size_t b, std::size_t e) { ks::qs8_f32_dequantize(cpart(d.q, b, e), d.p, part(d.y, b, e)); }},
    {"f32_minmax", Shape::read_f32, false, 4,
     [](Data& d, std::size_t b, std::size_t e) {
       const ks::MinMax m = ks::f32_minmax(cpart(d.x, b, e), false);
       keep(m.min + m.max);
     }},
    {"f32_absmax", Shape::read_f32, false, 4,
     [](Data& d, std::size_t b, std::size_t e) { keep(ks::f32_absmax(cpart(d.x, b, e), false)); }},
    {"f32_qs8_quantize_ref", Shape::f32_to_u8, true, 4,
     [](Data& d, std::size_t b, std::size_t e) { ks::f32_qs8_quantize_ref(cpart(d.x, b, e), d.p, d.spec, part(d.q, b, e)); }},
    {"f32_qu8_quantize_ref", Shape::f32_to_u8, true, 4,
     [](Data& d, std::size_t b, std::size_t e) {
       ks::f32_qu8_quantize_ref(cpart(d.x, b, e), {d.p.scale, kU8ZeroPoint, 0.0f}, kU8Spec, upart(d.q, b, e));
     }},
    {"qs8_f32_dequantize_ref", Shape::u8_to_f32, true, 4,
     [](Data& d, std::size_t b, std::size_t e) { ks::qs8_f32_dequantize_ref(cpart(d.q, b, e), d.p, part(d.y, b, e)); }},
    {"f32_minmax_ref", Shape::read_f32, true, 4,
     [](Data& d, std::size_t b, std::size_t e) {
       const ks::MinMax m = ks::f32_minmax_ref(cpart(d.x, b, e), false);
       keep(m.min + m.max);
     }},
    {"f32_absmax_ref", Shape::read_f32, true, 4,
     [](Data& d, std::size_t b, std::size_t e) { keep(ks::f32_absmax_ref(cpart(d.x, b, e), false)); }},
};

void BM_span(benchmark::State& state, const SpanKernel* k) {
  const std::int64_t mib = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  Data& d = data_of(mib);
  Team team(threads);
  const StreamArgs a = stream_args(k->shape, d);
  zp::stream::Yardstick yardstick(team, k->shape, a.in, a.out, d.n);
  const auto pass = [&] { team.split(d.n, [&](std::size_t b, std::size_t e) { k->run(d, b, e); }); };
  run_compared(state, yardstick, pass, static_cast<double>(d.n * k->bytes_per_element), d.n);
}

// Per-tensor int8 from the span kernels alone: the range pass (f32_absmax of each thread's half,
// merged), the scale, then the quantize pass. The least a per-tensor quantizer has to
// do, without the tensor-level path's allocation, NaN check and bookkeeping.
void BM_per_tensor_kernels(benchmark::State& state) {
  const std::int64_t mib = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  Data& d = data_of(mib);
  Team team(threads);
  zp::stream::Yardstick yardstick(team, Shape::read2_f32_to_u8, d.x.data(), d.q.data(), d.n);
  const auto pass = [&] {
    std::atomic<float> amax{0.0f};
    team.split(d.n, [&](std::size_t b, std::size_t e) {
      const float m = ks::f32_absmax(cpart(d.x, b, e), false);
      for (float seen = amax.load(); m > seen && !amax.compare_exchange_weak(seen, m);) {
      }
    });
    const zp::AffineParams p{amax.load() / 127.0f, 0, 0.0f};
    team.split(d.n, [&](std::size_t b, std::size_t e) { ks::f32_qs8_quantize(cpart(d.x, b, e), p, d.spec, part(d.q, b, e)); });
  };
  run_compared(state, yardstick, pass, static_cast<double>(d.n * sizeof(float)), d.n);
}

// What a fresh output costs before anything is computed: allocate `MiB` bytes, write them once,
// free them. The tensor-level functions return new tensors, so they pay this on every call.
void BM_first_touch(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0)) << 20;
  BestOf best;
  for (auto _ : state) {
    best.start();
    AlignedBuffer<unsigned char> fresh(bytes);
    std::memset(fresh.data(), 1, bytes);
    benchmark::DoNotOptimize(fresh.data());
    benchmark::ClobberMemory();
    best.stop();
  }
  state.counters["GBps"] = static_cast<double>(bytes) / best.seconds() / 1e9;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

// ---- Yardsticks on their own (both kinds of store as separate rows) -------------------------------
void BM_stream(benchmark::State& state, Shape s, bool nt) {
  const std::int64_t mib = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  Data& d = data_of(mib);
  Team team(threads);
  const StreamArgs a = stream_args(s, d);
  zp::stream::Yardstick yardstick(team, s, a.in, a.out, d.n);
  const auto pass = [&] {
    team.split(d.n, [&](std::size_t b, std::size_t e) { zp::stream::keep(zp::stream::run(s, a.in, a.out, b, e, nt)); });
  };
  const double bytes_per_element = s == Shape::u16_to_u8 ? 2.0 : 4.0;
  run_compared(state, yardstick, pass, bytes_per_element * static_cast<double>(d.n), d.n);
}

void BM_memcpy(benchmark::State& state) {
  Data& d = data_of(state.range(0));
  const std::size_t bytes = d.n * sizeof(float);
  for (auto _ : state) {
    std::memcpy(d.y.data(), d.x.data(), bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

// ---- Tensor-level paths ----------------------------------------------------------------------------
// What `zeropoint quantize` does per tensor without the file I/O, on a [rows, 4096] float32
// matrix, through the public API:
//
//   params+quantize  compute_params(x, scheme), then quantize(x, params, out): two calls, so two
//                    reads of x whatever the granularity
//   one_call         quantize(x, scheme, {}, out): observes and quantizes in one call; where
//                    every parameter group is contiguous (per channel along axis 0, per block
//                    along the last axis) each group is quantized while still in cache
//   params           compute_params alone (the range pass)
//   quantize         quantize(x, params, out) alone (the code pass)
//   dequantize       dequantize(q, out) into a reused float buffer
//   dequantize_bf16  dequantize(q, DType::bf16, out): bfloat16 out, narrowed in the same pass
//   *_fresh          the forms that return a new tensor each call (quantize(x, scheme),
//                    dequantize(q)): they pay for touching fresh memory, see first_touch
//
// `out` is one QuantizedTensor kept across iterations, as the API's comment recommends.
enum class Part { two_calls, one_call, one_call_fresh, params, quantize, dequantize, dequantize_bf16, dequantize_fresh };

struct TensorCase {
  const char* name;
  const char* scheme;
  Part part;
  Shape shape;  // the yardstick: the least memory traffic this path could get away with
  std::int64_t rows = 0;  // 0: rows of kRowLength; else this many rows (a control, see below)
};

const TensorCase kTensorCases[] = {
    // per-tensor: the scale needs the whole range before the first code, so x is read twice
    {"int8/params+quantize", "int8", Part::two_calls, Shape::read2_f32_to_u8},
    {"int8/one_call", "int8", Part::one_call, Shape::read2_f32_to_u8},
    {"int8/one_call_fresh", "int8", Part::one_call_fresh, Shape::read2_f32_to_u8},
    {"int8/params", "int8", Part::params, Shape::read_f32},
    {"int8/quantize", "int8", Part::quantize, Shape::f32_to_u8},
    {"int8/dequantize", "int8", Part::dequantize, Shape::u8_to_f32},
    {"int8/dequantize_bf16", "int8", Part::dequantize_bf16, Shape::u8_to_u16},
    {"int8/dequantize_fresh", "int8", Part::dequantize_fresh, Shape::u8_to_f32},
    // one scale per row of 4096 (16 KiB): a row's range can be found while it is in cache
    {"int8:channel=0/params+quantize", "int8:channel=0", Part::two_calls, Shape::read2_f32_to_u8},
    {"int8:channel=0/one_call", "int8:channel=0", Part::one_call, Shape::f32_to_u8},
    {"int8:channel=0/params", "int8:channel=0", Part::params, Shape::read_f32},
    {"int8:channel=0/quantize", "int8:channel=0", Part::quantize, Shape::f32_to_u8},
    // The control for counting passes: the same call on 4 rows of a quarter of the array each
    // (64 MiB rows at the DRAM size), too long to stay in cache between a row's range and its
    // codes, so x is necessarily read from memory twice. Slower than one_call by a read pass
    // means one_call reads x once.
    {"int8:channel=0/one_call_4rows", "int8:channel=0", Part::one_call, Shape::read2_f32_to_u8, 4},
    // one scale per column (channels along the innermost axis, as a MatMul weight stored
    // [in, out] has them): parameters change at every element, and the range of a column is
    // known only after the last row, so x is read twice, as per tensor
    {"int8:channel=1/one_call", "int8:channel=1", Part::one_call, Shape::read2_f32_to_u8},
    {"int8:channel=1/params", "int8:channel=1", Part::params, Shape::read_f32},
    {"int8:channel=1/quantize", "int8:channel=1", Part::quantize, Shape::f32_to_u8},
    {"int8:channel=1/dequantize", "int8:channel=1", Part::dequantize, Shape::u8_to_f32},
    // one scale per 32 consecutive values, two codes per byte
    {"int4:block=32/params+quantize", "int4:block=32", Part::two_calls, Shape::read2_f32_to_u4},
    {"int4:block=32/one_call", "int4:block=32", Part::one_call, Shape::f32_to_u4},
    {"int4:block=32/params", "int4:block=32", Part::params, Shape::read_f32},
    {"int4:block=32/quantize", "int4:block=32", Part::quantize, Shape::f32_to_u4},
};

void BM_tensor(benchmark::State& state, const TensorCase* c) {
  const std::int64_t mib = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  Data& d = data_of(mib);
  const std::int64_t rows = c->rows != 0 ? c->rows : static_cast<std::int64_t>(d.n) / kRowLength;
  const zp::TensorView view(d.x.data(), zp::DType::f32, {rows, static_cast<std::int64_t>(d.n) / rows});
  const zp::Scheme scheme = zp::Scheme::parse(c->scheme);
  Team team(threads);  // for the yardstick; the library runs its own threads
  const StreamArgs a = stream_args(c->shape, d);
  zp::stream::Yardstick yardstick(team, c->shape, a.in, a.out, d.n);
  zp::set_thread_count(threads);
  const zp::QParams params = zp::compute_params(view, scheme);
  const zp::QuantizedTensor codes = zp::quantize(view, params);
  zp::QuantizedTensor out;
  const std::span<float> floats(d.y.data(), d.n);
  const std::span<std::uint16_t> halves(reinterpret_cast<std::uint16_t*>(d.y.data()), d.n);
  const auto pass = [&] {
    switch (c->part) {
      case Part::two_calls: zp::quantize(view, zp::compute_params(view, scheme), out); break;
      case Part::one_call: zp::quantize(view, scheme, {}, out); break;
      case Part::one_call_fresh: benchmark::DoNotOptimize(zp::quantize(view, scheme).data.data()); break;
      case Part::params: benchmark::DoNotOptimize(zp::compute_params(view, scheme).scale.data()); break;
      case Part::quantize: zp::quantize(view, params, out); break;
      case Part::dequantize: zp::dequantize(codes, floats); break;
      case Part::dequantize_bf16: zp::dequantize(codes, zp::DType::bf16, halves); break;
      case Part::dequantize_fresh: benchmark::DoNotOptimize(zp::dequantize(codes).data()); break;
    }
    benchmark::DoNotOptimize(out.data.data());
  };
  run_compared(state, yardstick, pass, static_cast<double>(d.n * sizeof(float)), d.n);
}

// ---- Registration ------------------------------------------------------------------------------------
// Fixed iteration counts, about 0.1 to 1 s per benchmark on the machine of docs/benchmarks.md.
std::int64_t iterations(std::int64_t mib, bool slow) {
  if (mib <= kCacheMiB) return slow ? 40 : 1500;
  return slow ? 3 : 16;
}
std::int64_t tensor_iterations(std::int64_t mib, Part part) {
  const bool fresh = part == Part::one_call_fresh || part == Part::dequantize_fresh;  // ~1 s per call
  if (mib <= kCacheMiB) return 300;
  return fresh ? 3 : 8;
}

template <class... Extra>
void add(const std::string& name, std::int64_t mib, int threads, std::int64_t iters, Extra&&... extra) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<Extra>(extra)...)
      ->Args({mib, threads})
      ->ArgNames({"MiB", "threads"})
      ->Iterations(iters)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

const bool registered = [] {
  const std::int64_t sizes[] = {kCacheMiB, kDramMiB};
  const int thread_counts[] = {1, 2};
  for (const std::int64_t mib : sizes) add("memcpy", mib, 1, iterations(mib, false), BM_memcpy);
  for (const std::int64_t mib : sizes) {
    for (const int t : thread_counts) {
      for (const Shape s : {Shape::f32_to_u8, Shape::u8_to_f32, Shape::read_f32, Shape::read2_f32_to_u8,
                            Shape::f32_to_u4, Shape::read2_f32_to_u4, Shape::u16_to_u8}) {
        const std::string name = std::string("stream/") + zp::stream::info(s).name;
        add(name + "/store", mib, t, iterations(mib, false), BM_stream, s, false);
        if (zp::stream::has_stores(s)) add(name + "/nt", mib, t, iterations(mib, false), BM_stream, s, true);
      }
    }
  }
  for (const SpanKernel& k : kSpanKernels) {
    for (const std::int64_t mib : sizes) {
      for (const int t : thread_counts) add(std::string("span/") + k.name, mib, t, iterations(mib, k.reference), BM_span, &k);
    }
  }
  for (const std::int64_t mib : sizes) {
    for (const int t : thread_counts) {
      add("span/f32_absmax+f32_qs8_quantize", mib, t, iterations(mib, false), BM_per_tensor_kernels);
    }
  }
  for (const std::int64_t mib : {std::int64_t{64}, kDramMiB}) add("first_touch", mib, 1, 3, BM_first_touch);
  for (const TensorCase& c : kTensorCases) {
    for (const std::int64_t mib : sizes) {
      for (const int t : thread_counts) {
        add(std::string("tensor/") + c.name, mib, t, tensor_iterations(mib, c.part), BM_tensor, &c);
      }
    }
  }
  return true;
}();

}  // namespace
