// Splitting a large job over zp::thread_count() threads: one process-wide pool of workers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

namespace zp::detail {

/// Runs fn(begin, end) over [0, n) split into at most thread_count() contiguous chunks whose
/// boundaries are multiples of `grain` (except the last end == n); chunk sizes differ by at most
/// one grain. The chunks run on a process-wide pool of worker threads plus the calling thread,
/// in no particular order and concurrently, so fn must be safe to call from several threads on
/// disjoint ranges. fn is not called at all when n == 0.
///
/// Runs inline, as the single call fn(0, n) on the calling thread with no thread hand-off, when
///  - n <= grain or thread_count() == 1 (small tensors must not pay for threads);
///  - called from inside a chunk (nested calls: the pool is busy with the enclosing job);
///  - another thread is already running a job on the pool: extra concurrent callers are not
///    queued, they work alone on their own thread, so no caller ever waits for another's job
///    and a chunk that waits for a thread calling parallel_for cannot deadlock;
///  - in a child process after fork() (the parent's workers do not exist there), and at exit
///    once the workers have been joined (from a later static destructor).
///
/// When fn throws, chunks not yet started are skipped, and once every started chunk has
/// finished the first exception caught is rethrown in the caller.
/// Throws zp::Error when n < 0 or grain < 1.
void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);

/// The value of ZEROPOINT_THREADS as a thread count: a positive decimal integer that fits in
/// int, with nothing around it (no sign, spaces or suffix). nullopt for anything else,
/// including nullptr (the variable is unset).
std::optional<int> parse_thread_count(const char* text) noexcept;

/// The count thread_count() starts with, given the environment variable's value (or nullptr)
/// and std::thread::hardware_concurrency() (0 when unknown).
int default_thread_count(const char* env_value, unsigned hardware_threads) noexcept;

}  // namespace zp::detail
