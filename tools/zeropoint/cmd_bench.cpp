// zeropoint bench: how fast the SIMD kernels run on this machine, next to how fast this machine
// moves the same bytes. A short measurement with std::chrono (the full suite with Google
// Benchmark is bench/bench_kernels.cpp; docs/benchmarks.md explains both).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "stream.hpp"  // bench/stream.hpp: the yardsticks, shared with the benchmark suite
#include "zeropoint/kernels.hpp"
#include "zeropoint/scheme.hpp"

namespace zp::cli {
namespace {

namespace ks = zp::kernels;
using zp::stream::AlignedBuffer;
using MemoryShape = zp::stream::Shape;  // not zp::Shape (a tensor shape)
using zp::stream::Team;

struct BenchOptions {
  std::vector<int> sizes_mib{4, 64};
  std::vector<int> threads;
  int rounds = 5;
  bool json = false;
};

struct Arrays {
  std::size_t n;
  AlignedBuffer<float> x;
  AlignedBuffer<std::int8_t> q;
  AlignedBuffer<float> y;
  AffineParams p{};
  ks::QuantizeSpec spec{};

  explicit Arrays(std::size_t count) : n(count), x(count), q(count), y(count) {
    zp::stream::fill_random(x.data(), n);
    p = AffineParams{ks::f32_absmax({x.data(), n}, false) / 127.0f, 0, 0.0f};
    spec = ks::quantize_spec(Scheme::parse("int8"));
    ks::f32_qs8_quantize({x.data(), n}, p, spec, {q.data(), n});  // codes for dequantize, pages touched
    ks::qs8_f32_dequantize({q.data(), n}, p, {y.data(), n});
  }
};

// One line per kernel: what it is called, the yardstick of its shape, how to run it on [b, e).
struct Kernel {
  const char* name;
  MemoryShape shape;
  void (*run)(Arrays& a, std::size_t b, std::size_t e);
};

const Kernel kKernels[] = {
    {"f32_qs8_quantize", MemoryShape::f32_to_u8,
     [](Arrays& a, std::size_t b, std::size_t e) {
       ks::f32_qs8_quantize({a.x.data() + b, e - b}, a.p, a.spec, {a.q.data() + b, e - b});
     }},
    {"qs8_f32_dequantize", MemoryShape::u8_to_f32,
     [](Arrays& a, std::size_t b, std::size_t e) {
       ks::qs8_f32_dequantize({a.q.data() + b, e - b}, a.p, {a.y.data() + b, e - b});
     }},
    {"f32_minmax", MemoryShape::read_f32,
     [](Arrays& a, std::size_t b, std::size_t e) {
       const ks::MinMax m = ks::f32_minmax({a.x.data() + b, e - b}, false);
       zp::stream::keep(m.min > m.max ? 1u : 0u);
     }},
};

struct Row {
  const Kernel* kernel;
  int mib;
  int threads;
  double gbps;        // float32 bytes per second / 1e9, fastest pass
  double limit_gbps;  // the yardstick's, fastest pass with the faster kind of store
  bool limit_nt;      // streaming stores were the faster
  double pct() const { return 100.0 * gbps / limit_gbps; }
};

std::vector<Row> measure(const BenchOptions& o) {
  std::vector<Row> rows;
  for (const int mib : o.sizes_mib) {
    Arrays a(static_cast<std::size_t>(mib) * (std::size_t{1} << 20) / sizeof(float));
    const double bytes = static_cast<double>(a.n * sizeof(float));
    // Several passes per round at any size, so that the fastest has a few dozen to choose from.
    const int passes = std::max(1, 256 / mib);
    for (const int threads : o.threads) {
      Team team(threads);
      for (const Kernel& k : kKernels) {
        const void* in = k.shape == MemoryShape::u8_to_f32 ? static_cast<const void*>(a.q.data()) : a.x.data();
        void* out = k.shape == MemoryShape::u8_to_f32 ? static_cast<void*>(a.y.data()) : a.q.data();
        zp::stream::Yardstick yardstick(team, k.shape, in, out, a.n);
        const auto pass = [&] { team.split(a.n, [&](std::size_t b, std::size_t e) { k.run(a, b, e); }); };
        const zp::stream::Comparison c = zp::stream::compare(yardstick, pass, o.rounds, passes);
        rows.push_back({&k, mib, threads, bytes / c.kernel_s / 1e9, bytes / c.limit.best_s() / 1e9, c.limit.nt_wins()});
      }
    }
  }
  return rows;
}

void print_text(const BenchOptions& o, const std::vector<Row>& rows) {
  fmt::print("SIMD target {} (available here: {}); {} hardware threads\n", ks::current_target(),
             fmt::join(ks::available_targets(), ", "), std::thread::hardware_concurrency());
  fmt::print(
      "GB/s: 1e9 bytes of float32 read (quantize, min/max) or written (dequantize) per second, fastest of {} rounds.\n"
      "limit: a streaming loop with the same memory traffic, measured between the kernel's rounds; the\n"
      "kernel's figure as a percentage of it is what to compare across machines and runs.\n\n",
      o.rounds);
  fmt::print("{:>8} {:>8}  {:<20} {:>8} {:>12} {:>11}\n", "size", "threads", "kernel", "GB/s", "limit GB/s", "% of limit");
  for (const Row& r : rows) {
    fmt::print("{:>4} MiB {:>8}  {:<20} {:>8.1f} {:>8.1f} {:<3} {:>10.0f}%\n", r.mib, r.threads, r.kernel->name, r.gbps,
               r.limit_gbps, r.limit_nt ? "nt" : "", r.pct());
  }
  fmt::print(
      "\nlimit shapes: quantize = read floats, write bytes; dequantize = read bytes, write floats; min/max = read\n"
      "floats. \"nt\": the limit used streaming (non-temporal) stores, which bypass the cache.\n");
}

nlohmann::json bench_json(const BenchOptions& o, const std::vector<Row>& rows) {
  nlohmann::json results = nlohmann::json::array();
  for (const Row& r : rows) {
    results.push_back({{"kernel", r.kernel->name},
                       {"limit_shape", zp::stream::info(r.kernel->shape).name},
                       {"size_mib", r.mib},
                       {"threads", r.threads},
                       {"gb_per_s", r.gbps},
                       {"limit_gb_per_s", r.limit_gbps},
                       {"limit_stores", r.limit_nt ? "non-temporal" : "normal"},
                       {"pct_of_limit", r.pct()}});
  }
  return {{"target", ks::current_target()},
          {"available_targets", ks::available_targets()},
          {"hardware_threads", std::thread::hardware_concurrency()},
          {"rounds", o.rounds},
          {"results", results}};
}

}  // namespace

void add_bench(CLI::App& app) {
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure the SIMD kernels on this machine, each as a percentage of a memory stream of the same shape");
  cmd->add_option("--sizes", opts->sizes_mib, "Array sizes in MiB of float32 (one in cache, one beyond it)")
      ->check(CLI::Range(1, 16384))
      ->capture_default_str();
  cmd->add_option("--threads", opts->threads, "Thread counts to try (default: 1 and all hardware threads)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--rounds", opts->rounds, "Rounds per measurement; the fastest is reported")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print one JSON object instead of a table");
  cmd->footer(
      "Examples:\n"
      "  zeropoint bench\n"
      "  zeropoint bench --sizes 4 256 --threads 1 --rounds 10\n"
      "  ZEROPOINT_TARGET=AVX2 zeropoint bench --json\n"
      "The full suite (every kernel, tensor-level paths, 256 MiB) is bench/bench_kernels.cpp; see docs/benchmarks.md.");
  cmd->callback([opts] {
    BenchOptions o = *opts;
    if (o.threads.empty()) {
      o.threads = {1};
      const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      if (all > 1) o.threads.push_back(all);
    }
    const std::vector<Row> rows = measure(o);
    if (o.json) {
      fmt::print("{}\n", bench_json(o, rows).dump(2));
    } else {
      print_text(o, rows);
    }
  });
}

}  // namespace zp::cli
