// bench/stream.hpp — streaming yardsticks: how fast this machine moves data of a given shape.
//
// A kernel's throughput means little alone on a shared machine; next to a loop that moves the
// same bytes in the same pattern, measured in the same run, it reads as "x% of what memory
// allows". Each loop here has exactly the memory shape of a kernel family and does the least
// arithmetic that still makes every output byte depend on its input:
//
//   f32_to_u8        read n floats, write n bytes         (f32 -> int8 quantize)
//   u8_to_f32        read n bytes, write n floats         (int8 -> f32 dequantize)
//   read_f32         read n floats                        (a range pass: min/max, absmax)
//   read2_f32_to_u8  read n floats twice, write n bytes   (per-tensor quantize with its range pass)
//   f32_to_u4        read n floats, write n/2 bytes       (f32 -> packed int4)
//   read2_f32_to_u4  read n floats twice, write n/2 bytes (int4 with a separate range pass)
//   u16_to_u8        read n 16-bit values, write n bytes  (bf16 / f16 -> int8 quantize)
//   u8_to_u16        read n bytes, write n 16-bit values  (int8 -> bf16 / f16 dequantize)
//
// Every store loop comes with normal stores and with non-temporal (streaming) stores; from DRAM
// the latter usually win (no read-for-ownership of the destination), in cache the former. The
// caller takes the faster as the limit. Destinations must be 64-byte aligned (AlignedBuffer).
//
// Header-only and free of Google Benchmark, so that both bench/bench_kernels.cpp and the CLI's
// `zeropoint bench` use the same loops. Highway compiles the loops once per instruction set
// (this file re-includes itself through hwy/foreach_target.h, hence no #pragma once) and picks
// the one for this CPU at run time — the same choice, and the same ZEROPOINT_TARGET override,
// as the library's kernels. Include it from one source file per program; the including target
// needs this directory on its include path and links hwy::hwy.

// ---- Once per translation unit: the target-independent part ---------------------------------
#ifndef ZEROPOINT_BENCH_STREAM_HPP_
#define ZEROPOINT_BENCH_STREAM_HPP_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace zp::stream {

/// A 64-byte aligned array of T, left uninitialized (fill it before timing anything).
template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) : size_(n) {
    const std::size_t bytes = (std::max<std::size_t>(n * sizeof(T), 1) + 63) / 64 * 64;
    data_.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
    if (!data_) throw std::bad_alloc();
  }
  T* data() noexcept { return data_.get(); }
  const T* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }

 private:
  struct Free {
    void operator()(T* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  std::size_t size_ = 0;
};

/// Roughly N(0, 1) floats (sum of four uniforms), fast enough to fill 256 MiB in a blink and
/// the same on every machine for a given seed.
inline void fill_random(float* x, std::size_t n, std::uint64_t seed = 42) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < n; ++i) {
    float sum = 0.0f;
    for (int k = 0; k < 4; ++k) {
      s ^= s >> 12;
      s ^= s << 25;
      s ^= s >> 27;
      sum += static_cast<float>((s * 0x2545F4914F6CDD1Dull) >> 40) * (1.0f / 16777216.0f);
    }
    x[i] = (sum - 2.0f) * 1.7320508f;  // variance of the sum is 1/3
  }
}

/// A fixed group of threads: run(fn) calls fn(0) on the calling thread and fn(1..size-1) on
/// helpers started once in the constructor, and returns when all calls are done. Starting
/// threads costs tens of microseconds, as much as a whole pass over a cached 4 MiB array, so
/// benchmarks keep a Team for the whole measurement and hand it work per iteration. Helpers spin
/// briefly for the next job, then sleep (std::atomic::wait), so an idle Team costs no CPU.
class Team {
 public:
  explicit Team(int threads) : size_(std::max(1, threads)) {
    for (int t = 1; t < size_; ++t) helpers_.emplace_back([this, t] { serve(t); });
  }
  ~Team() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (std::thread& h : helpers_) h.join();
  }
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;

  int size() const noexcept { return size_; }

  template <class Fn>
  void run(Fn&& fn) {
    if (size_ == 1) {
      fn(0);
      return;
    }
    call_ = [](void* ctx, int t) { (*static_cast<std::remove_reference_t<Fn>*>(ctx))(t); };
    ctx_ = static_cast<void*>(&fn);
    pending_.store(size_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    fn(0);
    for (int spins = 0;; ++spins) {
      const int left = pending_.load(std::memory_order_acquire);
      if (left == 0) break;
      if (spins > kSpins) pending_.wait(left, std::memory_order_acquire);
    }
  }

  /// Splits [0, n) into size() contiguous parts, one per member of the team, and calls
  /// part(begin, end) on each. Part boundaries are multiples of 256 elements, so every part of a
  /// 64-byte aligned array of 1-, 2- or 4-byte elements starts 64-byte aligned, even the
  /// half-byte outputs of f32_to_u4. (Contiguous halves, not chunks handed out one at a time:
  /// measured here, 16K-element chunks made two-thread streams 20% slower in cache and 30%
  /// slower from DRAM, as every chunk restarts the prefetchers and bounces a shared counter.)
  template <class Part>
  void split(std::size_t n, Part&& part) {
    run([&](int t) {
      const auto [begin, end] = range(n, t);
      part(begin, end);
    });
  }

  std::pair<std::size_t, std::size_t> range(std::size_t n, int t) const noexcept {
    const std::size_t units = (n + 255) / 256;
    const auto parts = static_cast<std::size_t>(size_);
    const auto at = [&](std::size_t k) { return std::min(n, units * k / parts * 256); };
    return {at(static_cast<std::size_t>(t)), at(static_cast<std::size_t>(t) + 1)};
  }

 private:
  static constexpr int kSpins = 1 << 14;  // a few microseconds

  void serve(int t) {
    std::uint32_t seen = 0;
    for (;;) {
      std::uint32_t now = generation_.load(std::memory_order_acquire);
      for (int spins = 0; now == seen; ++spins) {
        if (spins > kSpins) generation_.wait(seen, std::memory_order_acquire);
        now = generation_.load(std::memory_order_acquire);
      }
      seen = now;
      if (stop_.load(std::memory_order_relaxed)) return;
      call_(ctx_, t);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
  }

  int size_;
  std::vector<std::thread> helpers_;
  std::atomic<std::uint32_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  void (*call_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
};

/// Runs fn() at least min_runs times and for at least min_seconds in total (at most max_runs
/// times) and returns the fastest run in seconds. The fastest run is the one least disturbed by
/// whatever else the machine is doing.
template <class Fn>
double best_seconds(Fn&& fn, int min_runs, double min_seconds, int max_runs = 1 << 20) {
  using clock = std::chrono::steady_clock;
  double best = std::numeric_limits<double>::infinity();
  double total = 0.0;
  for (int run = 0; run < max_runs && (run < min_runs || total < min_seconds); ++run) {
    const auto t0 = clock::now();
    fn();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::min(best, s);
    total += s;
  }
  return best;
}

enum class Shape { f32_to_u8, u8_to_f32, read_f32, read2_f32_to_u8, f32_to_u4, read2_f32_to_u4, u16_to_u8, u8_to_u16 };

struct ShapeInfo {
  const char* name;
  const char* what;
  int in_bytes;   // per element read
  int out_num;    // bytes written per out_den elements
  int out_den;
};

inline const ShapeInfo& info(Shape s) noexcept {
  static constexpr ShapeInfo kInfo[] = {
      {"f32_to_u8", "read n floats, write n bytes", 4, 1, 1},
      {"u8_to_f32", "read n bytes, write n floats", 1, 4, 1},
      {"read_f32", "read n floats", 4, 0, 1},
      {"read2_f32_to_u8", "read n floats twice, write n bytes", 4, 1, 1},
      {"f32_to_u4", "read n floats, write n/2 bytes", 4, 1, 2},
      {"read2_f32_to_u4", "read n floats twice, write n/2 bytes", 4, 1, 2},
      {"u16_to_u8", "read n 16-bit values, write n bytes", 2, 1, 1},
      {"u8_to_u16", "read n bytes, write n 16-bit values", 1, 2, 1},
  };
  return kInfo[static_cast<int>(s)];
}

inline bool has_stores(Shape s) noexcept { return info(s).out_num != 0; }

/// Somewhere to put a result so that the work producing it is not optimized away (an atomic:
/// the compiler keeps every store to it, and team members may store at the same time).
inline std::atomic<std::uint32_t> sink{0};
inline void keep(std::uint32_t v) noexcept { sink.fetch_xor(v, std::memory_order_relaxed); }

}  // namespace zp::stream

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "stream.hpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#endif  // ZEROPOINT_BENCH_STREAM_HPP_

// ---- Once per instruction set: the loops -----------------------------------------------------
#include <hwy/highway.h>

#if defined(ZEROPOINT_BENCH_STREAM_TOGGLE_) == defined(HWY_TARGET_TOGGLE)
#ifdef ZEROPOINT_BENCH_STREAM_TOGGLE_
#undef ZEROPOINT_BENCH_STREAM_TOGGLE_
#else
#define ZEROPOINT_BENCH_STREAM_TOGGLE_
#endif

HWY_BEFORE_NAMESPACE();
namespace zp::stream::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The kind of store is a template parameter, so that no loop tests it per vector.
template <bool kNT, class D, class V>
HWY_INLINE void Put(D d, V v, hn::TFromD<D>* HWY_RESTRICT aligned) {
  if constexpr (kNT) {
    hn::Stream(v, d, aligned);
  } else {
    hn::Store(v, d, aligned);
  }
}

#if HWY_TARGET == HWY_SCALAR
// One lane per vector (CPUs without SSSE3): no whole-vector part for the narrowing loops; their
// scalar tails below do all the work.
template <bool kNT>
size_t F32ToU8Vectors(const std::uint32_t*, size_t, std::uint8_t*) { return 0; }
template <bool kNT>
size_t F32ToU4Vectors(const std::uint32_t*, size_t, std::uint8_t*) { return 0; }
template <bool kNT>
size_t U16ToU8Vectors(const std::uint16_t*, size_t, std::uint8_t*) { return 0; }
#else
// One full vector of bytes from four vectors of 32-bit lanes (truncated), as a quantizer turns
// four vectors of floats into one vector of codes.
template <class D8>
HWY_INLINE hn::Vec<D8> BytesOf4(D8 d8, const std::uint32_t* HWY_RESTRICT p) {
  const hn::Repartition<std::uint32_t, D8> d32;
  const hn::Rebind<std::uint8_t, decltype(d32)> dq;
  const hn::Half<D8> dh;
  const size_t N = hn::Lanes(d32);
  const auto q0 = hn::TruncateTo(dq, hn::LoadU(d32, p));
  const auto q1 = hn::TruncateTo(dq, hn::LoadU(d32, p + N));
  const auto q2 = hn::TruncateTo(dq, hn::LoadU(d32, p + 2 * N));
  const auto q3 = hn::TruncateTo(dq, hn::LoadU(d32, p + 3 * N));
  return hn::Combine(d8, hn::Combine(dh, q3, q2), hn::Combine(dh, q1, q0));
}

// Each returns how many elements it did (whole vectors); the caller finishes the rest.
template <bool kNT>
size_t F32ToU8Vectors(const std::uint32_t* HWY_RESTRICT u, size_t n, std::uint8_t* HWY_RESTRICT out) {
  const hn::ScalableTag<std::uint8_t> d8;
  const size_t N = hn::Lanes(d8);
  size_t i = 0;
  for (; i + N <= n; i += N) Put<kNT>(d8, BytesOf4(d8, u + i), out + i);
  return i;
}

template <bool kNT>
size_t F32ToU4Vectors(const std::uint32_t* HWY_RESTRICT u, size_t n, std::uint8_t* HWY_RESTRICT out) {
  const hn::ScalableTag<std::uint8_t> d8;
  const size_t N = hn::Lanes(d8);
  const auto low = hn::Set(d8, std::uint8_t{0x0F});
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = BytesOf4(d8, u + i);
    const auto b = BytesOf4(d8, u + i + N);
    Put<kNT>(d8, hn::Or(hn::And(a, low), hn::ShiftLeft<4>(b)), out + i / 2);
  }
  return i;
}

template <bool kNT>
size_t U16ToU8Vectors(const std::uint16_t* HWY_RESTRICT x, size_t n, std::uint8_t* HWY_RESTRICT out) {
  const hn::ScalableTag<std::uint8_t> d8;
  const hn::Repartition<std::uint16_t, decltype(d8)> d16;
  const hn::Half<decltype(d8)> dh;
  const size_t N = hn::Lanes(d8);
  const size_t N16 = hn::Lanes(d16);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto lo = hn::TruncateTo(dh, hn::LoadU(d16, x + i));
    const auto hi = hn::TruncateTo(dh, hn::LoadU(d16, x + i + N16));
    Put<kNT>(d8, hn::Combine(d8, hi, lo), out + i);
  }
  return i;
}
#endif

inline void F32ToU8(const float* HWY_RESTRICT x, size_t n, std::uint8_t* HWY_RESTRICT out, bool nt) {
  const auto* u = reinterpret_cast<const std::uint32_t*>(x);
  for (size_t i = nt ? F32ToU8Vectors<true>(u, n, out) : F32ToU8Vectors<false>(u, n, out); i < n; ++i) out[i] = static_cast<std::uint8_t>(u[i]);
}

inline void F32ToU4(const float* HWY_RESTRICT x, size_t n, std::uint8_t* HWY_RESTRICT out, bool nt) {
  const auto* u = reinterpret_cast<const std::uint32_t*>(x);
  size_t i = nt ? F32ToU4Vectors<true>(u, n, out) : F32ToU4Vectors<false>(u, n, out);
  for (; i + 1 < n; i += 2) out[i / 2] = static_cast<std::uint8_t>((u[i] & 0x0F) | (u[i + 1] << 4));
  if (i < n) out[i / 2] = static_cast<std::uint8_t>(u[i] & 0x0F);
}

inline void U16ToU8(const std::uint16_t* HWY_RESTRICT x, size_t n, std::uint8_t* HWY_RESTRICT out, bool nt) {
  for (size_t i = nt ? U16ToU8Vectors<true>(x, n, out) : U16ToU8Vectors<false>(x, n, out); i < n; ++i) out[i] = static_cast<std::uint8_t>(x[i]);
}

template <bool kNT>
size_t U8ToF32Vectors(const std::uint8_t* HWY_RESTRICT q, size_t n, float* HWY_RESTRICT out) {
  const hn::ScalableTag<std::uint32_t> d32;
  const hn::Repartition<float, decltype(d32)> df;
  const hn::Rebind<std::uint8_t, decltype(d32)> dq;
  const size_t N = hn::Lanes(d32);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    for (size_t k = 0; k < 4; ++k) {
      const auto v = hn::PromoteTo(d32, hn::LoadU(dq, q + i + k * N));
      Put<kNT>(df, hn::BitCast(df, v), out + i + k * N);
    }
  }
  return i;
}

inline void U8ToF32(const std::uint8_t* HWY_RESTRICT q, size_t n, float* HWY_RESTRICT out, bool nt) {
  for (size_t i = nt ? U8ToF32Vectors<true>(q, n, out) : U8ToF32Vectors<false>(q, n, out); i < n; ++i) {
    const std::uint32_t bits = q[i];
    std::memcpy(out + i, &bits, sizeof(bits));
  }
}

// Returns a checksum so that the loads cannot be optimized away.
inline std::uint32_t ReadF32(const float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<std::uint32_t> d;
  const size_t N = hn::Lanes(d);
  const auto* u = reinterpret_cast<const std::uint32_t*>(x);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Xor(a0, hn::LoadU(d, u + i));
    a1 = hn::Xor(a1, hn::LoadU(d, u + i + N));
    a2 = hn::Xor(a2, hn::LoadU(d, u + i + 2 * N));
    a3 = hn::Xor(a3, hn::LoadU(d, u + i + 3 * N));
  }
  std::uint32_t sum = hn::GetLane(hn::SumOfLanes(d, hn::Xor(hn::Xor(a0, a1), hn::Xor(a2, a3))));
  for (; i < n; ++i) sum ^= u[i];
  return sum;
}

template <bool kNT>
size_t U8ToU16Vectors(const std::uint8_t* HWY_RESTRICT q, size_t n, std::uint16_t* HWY_RESTRICT out) {
  const hn::ScalableTag<std::uint16_t> d16;
  const hn::Rebind<std::uint8_t, decltype(d16)> dq;
  const size_t N = hn::Lanes(d16);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    Put<kNT>(d16, hn::PromoteTo(d16, hn::LoadU(dq, q + i)), out + i);
    Put<kNT>(d16, hn::PromoteTo(d16, hn::LoadU(dq, q + i + N)), out + i + N);
  }
  return i;
}

inline void U8ToU16(const std::uint8_t* HWY_RESTRICT q, size_t n, std::uint16_t* HWY_RESTRICT out, bool nt) {
  for (size_t i = nt ? U8ToU16Vectors<true>(q, n, out) : U8ToU16Vectors<false>(q, n, out); i < n; ++i) out[i] = q[i];
}

}  // namespace zp::stream::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target toggle

// ---- Once per translation unit: dispatch and the entry points --------------------------------
#if HWY_ONCE && !defined(ZEROPOINT_BENCH_STREAM_EXPORTED_)
#define ZEROPOINT_BENCH_STREAM_EXPORTED_

namespace zp::stream {

HWY_EXPORT(F32ToU8);
HWY_EXPORT(F32ToU4);
HWY_EXPORT(U16ToU8);
HWY_EXPORT(U8ToF32);
HWY_EXPORT(U8ToU16);
HWY_EXPORT(ReadF32);

/// Runs the loop of `shape` over elements [begin, end) of `in` / `out` (whole arrays; the
/// offsets are applied here). begin must be a multiple of 256 when nt is set (Team::split
/// guarantees it) and the arrays 64-byte aligned. Returns the checksum of read-only loops.
inline std::uint32_t run(Shape shape, const void* in, void* out, std::size_t begin, std::size_t end, bool nt) {
  const ShapeInfo& s = info(shape);
  const auto* src = static_cast<const unsigned char*>(in) + begin * static_cast<std::size_t>(s.in_bytes);
  auto* dst = static_cast<unsigned char*>(out) + begin * static_cast<std::size_t>(s.out_num) / static_cast<std::size_t>(s.out_den);
  const std::size_t n = end - begin;
  switch (shape) {
    case Shape::f32_to_u8:
      HWY_DYNAMIC_DISPATCH(F32ToU8)(reinterpret_cast<const float*>(src), n, dst, nt);
      return 0;
    case Shape::u8_to_f32:
      HWY_DYNAMIC_DISPATCH(U8ToF32)(src, n, reinterpret_cast<float*>(dst), nt);
      return 0;
    case Shape::read_f32:
      return HWY_DYNAMIC_DISPATCH(ReadF32)(reinterpret_cast<const float*>(src), n);
    case Shape::read2_f32_to_u8: {
      const std::uint32_t sum = HWY_DYNAMIC_DISPATCH(ReadF32)(reinterpret_cast<const float*>(src), n);
      HWY_DYNAMIC_DISPATCH(F32ToU8)(reinterpret_cast<const float*>(src), n, dst, nt);
      return sum;
    }
    case Shape::f32_to_u4:
      HWY_DYNAMIC_DISPATCH(F32ToU4)(reinterpret_cast<const float*>(src), n, dst, nt);
      return 0;
    case Shape::read2_f32_to_u4: {
      const std::uint32_t sum = HWY_DYNAMIC_DISPATCH(ReadF32)(reinterpret_cast<const float*>(src), n);
      HWY_DYNAMIC_DISPATCH(F32ToU4)(reinterpret_cast<const float*>(src), n, dst, nt);
      return sum;
    }
    case Shape::u16_to_u8:
      HWY_DYNAMIC_DISPATCH(U16ToU8)(reinterpret_cast<const std::uint16_t*>(src), n, dst, nt);
      return 0;
    case Shape::u8_to_u16:
      HWY_DYNAMIC_DISPATCH(U8ToU16)(src, n, reinterpret_cast<std::uint16_t*>(dst), nt);
      return 0;
  }
  return 0;
}

/// The yardstick's fastest pass with each kind of store, in seconds (equal for read_f32).
struct Limit {
  double store_s = std::numeric_limits<double>::infinity();
  double nt_s = std::numeric_limits<double>::infinity();
  double best_s() const noexcept { return std::min(store_s, nt_s); }
  bool nt_wins() const noexcept { return nt_s < store_s; }
};

/// A yardstick over n elements of `in` / `out`, run on every member of a team, keeping its
/// fastest pass. Meant to be run in rounds between rounds of the kernel it bounds, so that both
/// are sampled over the same stretch of time on a machine whose load changes.
class Yardstick {
 public:
  Yardstick(Team& team, Shape shape, const void* in, void* out, std::size_t n)
      : team_(team), shape_(shape), in_(in), out_(out), n_(n) {}

  /// `passes` passes with streaming stores, then `passes` with normal stores (so a cache-sized
  /// destination is back in cache for whatever runs next); read-only shapes run `passes` once.
  void round(int passes) {
    if (has_stores(shape_)) limit_.nt_s = std::min(limit_.nt_s, best_seconds([&] { pass(true); }, passes, 0.0, passes));
    limit_.store_s = std::min(limit_.store_s, best_seconds([&] { pass(false); }, passes, 0.0, passes));
    if (!has_stores(shape_)) limit_.nt_s = limit_.store_s;
  }

  const Limit& limit() const noexcept { return limit_; }

 private:
  void pass(bool nt) {
    team_.split(n_, [&](std::size_t b, std::size_t e) { keep(run(shape_, in_, out_, b, e, nt)); });
  }

  Team& team_;
  Shape shape_;
  const void* in_;
  void* out_;
  std::size_t n_;
  Limit limit_;
};

/// A kernel's fastest pass next to its yardstick's, measured in alternating rounds.
struct Comparison {
  Limit limit;
  double kernel_s = std::numeric_limits<double>::infinity();
};

/// Runs `rounds` rounds of (yardstick: `passes` passes per kind of store; kernel: `passes`
/// passes). kernel() must do one whole pass (on as many threads as the team has, if it wants
/// them).
template <class Kernel>
Comparison compare(Yardstick& yardstick, Kernel&& kernel, int rounds, int passes) {
  Comparison c;
  kernel();  // warm-up: first-touch page faults, lazy initialization
  for (int r = 0; r < rounds; ++r) {
    yardstick.round(passes);
    c.kernel_s = std::min(c.kernel_s, best_seconds(kernel, passes, 0.0, passes));
  }
  c.limit = yardstick.limit();
  return c;
}

}  // namespace zp::stream
#endif  // HWY_ONCE
