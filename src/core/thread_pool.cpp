#include "core/thread_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "zeropoint/error.hpp"
#include "zeropoint/threads.hpp"

namespace zp {
namespace {

std::atomic<int>& configured_thread_count() {
  static std::atomic<int> count{detail::default_thread_count(std::getenv("ZEROPOINT_THREADS"),
                                                             std::thread::hardware_concurrency())};
  return count;
}

}  // namespace

int thread_count() noexcept { return configured_thread_count().load(std::memory_order_relaxed); }

void set_thread_count(int n) {
  if (n < 1) {
    throw Error(fmt::format("thread count must be at least 1, got {} (1 runs everything on the "
                            "calling thread)", n));
  }
  configured_thread_count().store(n, std::memory_order_relaxed);
}

namespace detail {

std::optional<int> parse_thread_count(const char* text) noexcept {
  // from_chars alone would accept a leading '-'; a count has digits only.
  if (text == nullptr || *text < '0' || *text > '9') return std::nullopt;
  const char* end = text + std::strlen(text);
  int value = 0;
  const auto [stop, error] = std::from_chars(text, end, value);
  if (error != std::errc() || stop != end || value < 1) return std::nullopt;
  return value;
}

int default_thread_count(const char* env_value, unsigned hardware_threads) noexcept {
  if (const std::optional<int> parsed = parse_thread_count(env_value)) return *parsed;
  return static_cast<int>(std::clamp<unsigned>(hardware_threads, 1, INT_MAX));
}

namespace {

using ChunkFn = std::function<void(std::int64_t, std::int64_t)>;

// True on pool workers, and on a caller while it runs chunks: a parallel_for from there runs
// inline, since the pool is already taken by the enclosing job.
thread_local bool t_inside_job = false;

class InsideJob {
 public:
  InsideJob() : was_(t_inside_job) { t_inside_job = true; }
  ~InsideJob() { t_inside_job = was_; }
  InsideJob(const InsideJob&) = delete;
  InsideJob& operator=(const InsideJob&) = delete;

 private:
  bool was_;
};

// One parallel_for call. It lives on the caller's stack; workers reach it only through
// Pool::job_, which the caller clears (under Pool::mu_) once no worker is inside it.
class Job {
 public:
  Job(const ChunkFn& fn, std::int64_t n, std::int64_t grain, std::int64_t chunks)
      : fn_(fn), n_(n), grain_(grain), blocks_((n - 1) / grain + 1), chunks_(chunks) {}

  // Claims chunks until none is left. Any thread may call it any number of times; chunks are
  // claimed rather than assigned, so the result does not depend on how many workers exist.
  void run_chunks() {
    while (!failed_.load(std::memory_order_relaxed)) {
      const std::int64_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed);
      if (chunk >= chunks_) return;
      try {
        fn_(boundary(chunk), boundary(chunk + 1));
      } catch (...) {
        const std::lock_guard lock(error_mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
  }

  // Read by the caller only after every worker has left the job.
  const std::exception_ptr& error() const { return error_; }

 private:
  // Chunk k starts at grain block floor(k * blocks / chunks), written so that nothing
  // overflows for any n: the remainder term is below chunks^2.
  std::int64_t boundary(std::int64_t chunk) const {
    const std::int64_t block = blocks_ / chunks_ * chunk + blocks_ % chunks_ * chunk / chunks_;
    return block >= blocks_ ? n_ : block * grain_;
  }

  const ChunkFn& fn_;
  const std::int64_t n_;
  const std::int64_t grain_;
  const std::int64_t blocks_;  // grain-sized pieces of [0, n), the last one possibly short
  const std::int64_t chunks_;
  std::atomic<std::int64_t> next_chunk_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
};

// Workers sleep on wake_ until generation_ moves past the last job they saw. The fields after
// mu_ are guarded by it; workers_ and built_for_ belong to whoever holds run_mu (or to exit).
class Pool {
 public:
  Pool() = default;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Held by the one caller whose job is on the pool; others try_lock it and run inline.
  std::mutex run_mu;

  // Whether parallel_for must leave the pool alone: after shut_down(), or in a fork()ed child,
  // whose copy of the pool has workers that do not exist there (and whose mutexes and
  // condition variables may be frozen mid-use by them).
  bool unusable() const { return shut_down_.load() || ::getpid() != owner_pid_; }

  // Runs the job on `threads` threads (the caller being one of them) and returns once every
  // claimed chunk has finished. The caller must hold run_mu.
  void run(Job& job, int threads) {
    if (threads != built_for_) rebuild(threads);
    {
      const std::lock_guard lock(mu_);
      job_ = &job;
      ++generation_;
    }
    wake_.notify_all();
    {
      const InsideJob inside;
      job.run_chunks();
    }
    // No chunk is left to claim, and a chunk a worker claimed is finished once that worker is
    // no longer active. Workers that wake after job_ is cleared find nothing to do.
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return active_ == 0; });
    job_ = nullptr;
  }

  // At exit: joins the workers. A forked child leaves everything as it is, since joining or
  // even notifying would wait forever on threads it never had.
  void shut_down() {
    if (::getpid() != owner_pid_) return;
    shut_down_.store(true);
    stop_workers();
  }

 private:
  void rebuild(int threads) {
    stop_workers();
    workers_.reserve(static_cast<std::size_t>(threads - 1));
    built_for_ = threads;
    std::uint64_t generation = 0;
    {
      const std::lock_guard lock(mu_);
      generation = generation_;
    }
    try {
      for (int k = 1; k < threads; ++k) {
        workers_.emplace_back([this, generation] { worker_loop(generation); });
      }
    } catch (const std::system_error&) {
      // The system refused more threads. Chunks are claimed, not assigned, so fewer workers
      // only means less speed-up.
    }
  }

  void stop_workers() {
    {
      const std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) {
      // A worker that calls exit() from inside a chunk ends up here and cannot join itself.
      if (worker.get_id() == std::this_thread::get_id()) {
        worker.detach();
      } else {
        worker.join();
      }
    }
    workers_.clear();
    const std::lock_guard lock(mu_);
    stop_ = false;
  }

  void worker_loop(std::uint64_t seen_generation) {
    t_inside_job = true;
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen_generation; });
      if (stop_) return;
      seen_generation = generation_;
      Job* job = job_;
      if (job == nullptr) continue;  // woke only after that job had finished
      ++active_;
      lock.unlock();
      job->run_chunks();
      lock.lock();
      if (--active_ == 0) idle_.notify_one();
    }
  }

  const pid_t owner_pid_ = ::getpid();
  std::atomic<bool> shut_down_{false};
  int built_for_ = 1;  // the thread count workers_ was made for (it may hold fewer)
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable wake_;  // a new job, or stop
  std::condition_variable idle_;  // active_ dropped to 0
  std::uint64_t generation_ = 0;
  Job* job_ = nullptr;
  int active_ = 0;  // workers inside job_
  bool stop_ = false;
};

class ShutDownAtExit {
 public:
  explicit ShutDownAtExit(Pool& pool) : pool_(pool) {}
  ShutDownAtExit(const ShutDownAtExit&) = delete;
  ShutDownAtExit& operator=(const ShutDownAtExit&) = delete;
  ~ShutDownAtExit() { pool_.shut_down(); }

 private:
  Pool& pool_;
};

Pool& pool() {
  // Never deleted, only shut down: a static destructor that runs later, or a forked child,
  // may still reach it, and must find valid mutexes there rather than a destroyed object.
  // (It stays reachable through this pointer, so leak checkers do not report it.)
  static Pool* const instance = new Pool;
  static const ShutDownAtExit shut_down_at_exit(*instance);
  return *instance;
}

}  // namespace

void parallel_for(std::int64_t n, std::int64_t grain, const ChunkFn& fn) {
  if (n < 0) throw Error(fmt::format("parallel_for needs n >= 0, got {}", n));
  if (grain < 1) throw Error(fmt::format("parallel_for needs a grain of at least 1, got {}", grain));
  if (n == 0) return;
  const int threads = thread_count();
  if (n <= grain || threads == 1 || t_inside_job) {
    fn(0, n);
    return;
  }
  Pool& shared = pool();
  std::unique_lock<std::mutex> run_lock;
  if (!shared.unusable()) run_lock = std::unique_lock(shared.run_mu, std::try_to_lock);
  if (!run_lock.owns_lock()) {
    fn(0, n);
    return;
  }
  const std::int64_t blocks = (n - 1) / grain + 1;
  Job job(fn, n, grain, std::min<std::int64_t>(threads, blocks));
  shared.run(job, threads);
  if (job.error()) std::rethrow_exception(job.error());
}

}  // namespace detail
}  // namespace zp
