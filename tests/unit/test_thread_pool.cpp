// parallel_for: coverage, chunk boundaries, inline paths, exceptions, nesting, concurrent
// callers, fork; and the thread-count setting with its environment variable.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/thread_pool.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/threads.hpp"

namespace zp::detail {
namespace {

// The thread count is process-wide: every test puts it back so the others see the default.
class ThreadPool : public ::testing::Test {
 protected:
  void TearDown() override { set_thread_count(saved_); }

 private:
  int saved_ = thread_count();
};

struct Chunk {
  std::int64_t begin;
  std::int64_t end;
  std::thread::id thread;
};

// The chunks one parallel_for ran, sorted by begin; `hits` counts how often each index was
// passed to fn.
std::vector<Chunk> run_and_record(std::int64_t n, std::int64_t grain, std::vector<int>* hits = nullptr) {
  std::mutex mu;
  std::vector<Chunk> chunks;
  std::vector<std::atomic<int>> counts(static_cast<std::size_t>(n));
  parallel_for(n, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) counts[static_cast<std::size_t>(i)].fetch_add(1);
    const std::lock_guard lock(mu);
    chunks.push_back({begin, end, std::this_thread::get_id()});
  });
  std::sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) { return a.begin < b.begin; });
  if (hits != nullptr) {
    hits->clear();
    for (const auto& c : counts) hits->push_back(c.load());
  }
  return chunks;
}

// Spins until `count` threads have arrived; false after 20 s, so a missing thread fails the
// test instead of hanging it.
bool rendezvous(std::atomic<int>& arrived, int count) {
  arrived.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (arrived.load() < count) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST_F(ThreadPool, CoversEveryIndexOnceInGrainAlignedChunks) {
  const std::int64_t sizes[] = {0, 1, 2, 3, 5, 7, 8, 9, 16, 31, 63, 64, 65, 100, 127, 128, 129, 1000, 1023, 4097};
  const std::int64_t grains[] = {1, 2, 3, 4, 7, 8, 16, 64, 1000, 5000};
  for (int threads = 1; threads <= 8; ++threads) {
    set_thread_count(threads);
    for (std::int64_t n : sizes) {
      for (std::int64_t grain : grains) {
        SCOPED_TRACE("threads " + std::to_string(threads) + ", n " + std::to_string(n) + ", grain " +
                     std::to_string(grain));
        std::vector<int> hits;
        const std::vector<Chunk> chunks = run_and_record(n, grain, &hits);
        ASSERT_EQ(std::count(hits.begin(), hits.end(), 1), n);
        if (n == 0) {
          EXPECT_TRUE(chunks.empty());
          continue;
        }
        const std::int64_t blocks = (n + grain - 1) / grain;
        ASSERT_EQ(chunks.size(), static_cast<std::size_t>(std::min<std::int64_t>(threads, blocks)));
        EXPECT_EQ(chunks.front().begin, 0);
        EXPECT_EQ(chunks.back().end, n);
        std::int64_t smallest = n;
        std::int64_t largest = 0;
        for (std::size_t k = 0; k < chunks.size(); ++k) {
          EXPECT_LT(chunks[k].begin, chunks[k].end);
          EXPECT_EQ(chunks[k].begin % grain, 0);
          if (k + 1 < chunks.size()) {
            EXPECT_EQ(chunks[k].end, chunks[k + 1].begin);
            EXPECT_EQ(chunks[k].end % grain, 0);
            smallest = std::min(smallest, chunks[k].end - chunks[k].begin);
            largest = std::max(largest, chunks[k].end - chunks[k].begin);
          }
        }
        // Balanced: whole chunks differ by at most one grain.
        if (chunks.size() > 1) EXPECT_LE(largest - smallest, grain);
      }
    }
  }
}

TEST_F(ThreadPool, SmallJobsAndOneThreadRunInlineAsOneCall) {
  const auto caller = std::this_thread::get_id();
  set_thread_count(4);
  for (std::int64_t n : {1, 63, 64}) {
    const std::vector<Chunk> chunks = run_and_record(n, 64);
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].begin, 0);
    EXPECT_EQ(chunks[0].end, n);
    EXPECT_EQ(chunks[0].thread, caller);
  }
  set_thread_count(1);
  const std::vector<Chunk> chunks = run_and_record(1 << 20, 1);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].end, 1 << 20);
  EXPECT_EQ(chunks[0].thread, caller);
}

TEST_F(ThreadPool, ChunksRunConcurrentlyOnThreadCountThreads) {
  // Each chunk waits for all the others to start: this only finishes if `threads` threads run
  // at once. Going up and down also checks the pool is rebuilt for each new count.
  for (int threads : {2, 3, 8, 4, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    set_thread_count(threads);
    std::atomic<int> arrived{0};
    std::atomic<bool> all_met{true};
    std::mutex mu;
    std::vector<std::thread::id> ids;
    parallel_for(threads, 1, [&](std::int64_t, std::int64_t) {
      if (!rendezvous(arrived, threads)) all_met.store(false);
      const std::lock_guard lock(mu);
      ids.push_back(std::this_thread::get_id());
    });
    EXPECT_TRUE(all_met.load());
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()) - ids.begin(), threads);
  }
}

TEST_F(ThreadPool, RejectsNegativeSizeAndNonPositiveGrain) {
  const auto nothing = [](std::int64_t, std::int64_t) {};
  EXPECT_THROW(parallel_for(-1, 1, nothing), Error);
  EXPECT_THROW(parallel_for(10, 0, nothing), Error);
  EXPECT_THROW(parallel_for(10, -5, nothing), Error);
}

TEST_F(ThreadPool, AnExceptionReachesTheCallerAndThePoolStillWorks) {
  for (int threads : {1, 2, 4, 8}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    set_thread_count(threads);
    // Thrown from whichever chunk holds index 500.
    try {
      parallel_for(1000, 10, [](std::int64_t begin, std::int64_t end) {
        if (begin <= 500 && 500 < end) throw Error("bad value at index 500");
      });
      ADD_FAILURE() << "no exception";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "bad value at index 500");
    }
    // From every chunk at once: exactly one comes out, with its type kept.
    EXPECT_THROW(parallel_for(1000, 1, [](std::int64_t, std::int64_t) { throw std::out_of_range("x"); }),
                 std::out_of_range);
    EXPECT_THROW(parallel_for(1000, 1, [](std::int64_t, std::int64_t) { throw 42; }), int);

    std::vector<int> hits;
    run_and_record(1000, 7, &hits);
    EXPECT_EQ(std::count(hits.begin(), hits.end(), 1), 1000);
  }
}

TEST_F(ThreadPool, NestedCallsRunInlineOnTheChunksThread) {
  for (int threads : {1, 2, 4, 8}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    set_thread_count(threads);
    std::atomic<int> wrong_inner{0};
    std::atomic<std::int64_t> total{0};
    parallel_for(16, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t outer = begin; outer < end; ++outer) {
        const auto outer_thread = std::this_thread::get_id();
        int inner_calls = 0;
        parallel_for(1000, 1, [&](std::int64_t b, std::int64_t e) {
          ++inner_calls;
          if (std::this_thread::get_id() != outer_thread || b != 0 || e != 1000) wrong_inner.fetch_add(1);
          for (std::int64_t i = b; i < e; ++i) total.fetch_add(i);
        });
        if (inner_calls != 1) wrong_inner.fetch_add(1);
      }
    });
    EXPECT_EQ(wrong_inner.load(), 0);
    EXPECT_EQ(total.load(), 16 * (999 * 1000 / 2));
  }
}

TEST_F(ThreadPool, AChunkMayWaitForAnotherThreadCallingParallelFor) {
  // The other thread finds the pool taken and runs its job inline, instead of queueing behind
  // the job that is waiting for it.
  set_thread_count(4);
  std::atomic<std::int64_t> total{0};
  parallel_for(4, 1, [&](std::int64_t, std::int64_t) {
    std::thread helper([&] {
      parallel_for(100, 1, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) total.fetch_add(i);
      });
    });
    helper.join();
  });
  EXPECT_EQ(total.load(), 4 * (99 * 100 / 2));
}

TEST_F(ThreadPool, ConcurrentCallersEachGetCorrectResults) {
  for (int threads : {2, 3, 8}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    set_thread_count(threads);
    std::atomic<int> failures{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 4; ++c) {
      callers.emplace_back([&failures, c] {
        for (int iteration = 0; iteration < 200; ++iteration) {
          const std::int64_t n = 1 + (iteration * 37 + c * 101) % 3000;
          const std::int64_t grain = 1 + (iteration + c) % 50;
          std::vector<std::int64_t> out(static_cast<std::size_t>(n), -1);
          parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t i = b; i < e; ++i) out[static_cast<std::size_t>(i)] = i * (c + 1);
          });
          for (std::int64_t i = 0; i < n; ++i) {
            if (out[static_cast<std::size_t>(i)] != i * (c + 1)) {
              failures.fetch_add(1);
              break;
            }
          }
        }
      });
    }
    for (std::thread& t : callers) t.join();
    EXPECT_EQ(failures.load(), 0);
  }
}

TEST_F(ThreadPool, AForkedChildRunsInlineAndExitsCleanly) {
  set_thread_count(4);
  run_and_record(1000, 1);  // the pool has workers now
  std::cout.flush();
  std::fflush(nullptr);  // or the child would print the parent's buffered output again
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    ::alarm(20);  // a hang (joining threads the child never had) becomes a failure
    std::vector<int> hits;
    const std::vector<Chunk> chunks = run_and_record(1000, 1, &hits);
    const bool ok = chunks.size() == 1 && std::count(hits.begin(), hits.end(), 1) == 1000;
    std::exit(ok ? 0 : 1);  // std::exit, not _exit: static destructors must run and return
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The parent's pool is unaffected.
  std::vector<int> hits;
  EXPECT_EQ(run_and_record(1000, 1, &hits).size(), 4u);
  EXPECT_EQ(std::count(hits.begin(), hits.end(), 1), 1000);
}

// ---------------------------------------------------------------------------------------------
TEST_F(ThreadPool, SetThreadCountRejectsLessThanOne) {
  set_thread_count(3);
  EXPECT_EQ(thread_count(), 3);
  EXPECT_THROW(set_thread_count(0), Error);
  EXPECT_THROW(set_thread_count(-1), Error);
  EXPECT_THROW(set_thread_count(INT_MIN), Error);
  EXPECT_EQ(thread_count(), 3);
  set_thread_count(1);
  EXPECT_EQ(thread_count(), 1);
}

TEST(ThreadCount, EnvironmentValueMustBeAPositiveInteger) {
  EXPECT_EQ(parse_thread_count("2"), 2);
  EXPECT_EQ(parse_thread_count("1"), 1);
  EXPECT_EQ(parse_thread_count("64"), 64);
  EXPECT_EQ(parse_thread_count("2147483647"), INT_MAX);
  for (const char* bad : {"0", "00", "-1", "+2", "abc", "3x", "", " 2", "2 ", "1.5", "2147483648",
                          "99999999999999999999"}) {
    EXPECT_EQ(parse_thread_count(bad), std::nullopt) << '"' << bad << '"';
  }
  EXPECT_EQ(parse_thread_count(nullptr), std::nullopt);
}

TEST(ThreadCount, DefaultIsTheEnvironmentElseTheHardwareElseOne) {
  EXPECT_EQ(default_thread_count("3", 8), 3);
  EXPECT_EQ(default_thread_count("16", 2), 16);
  EXPECT_EQ(default_thread_count(nullptr, 8), 8);
  EXPECT_EQ(default_thread_count("abc", 8), 8);
  EXPECT_EQ(default_thread_count("0", 2), 2);
  EXPECT_EQ(default_thread_count(nullptr, 0), 1);  // hardware_concurrency() may not know
  EXPECT_EQ(default_thread_count("-4", 0), 1);
  EXPECT_EQ(default_thread_count(nullptr, 4000000000u), INT_MAX);
}

}  // namespace
}  // namespace zp::detail
