// zeropoint/threads.hpp — how many threads the tensor-level functions may use.
#pragma once

namespace zp {

/// Threads zeropoint's tensor-level functions may use, counting the calling thread. Default:
/// std::thread::hardware_concurrency() (at least 1), or the ZEROPOINT_THREADS environment
/// variable when, at first use, it holds a positive decimal integer (anything else in it is
/// ignored: the library never prints, so a front end that wants to complain checks it itself).
int thread_count() noexcept;

/// Sets it (n >= 1; throws zp::Error otherwise). 1 runs everything on the calling thread. Not
/// meant to be called while kernels run: the worker threads are rebuilt on the next parallel
/// job, not at once.
void set_thread_count(int n);

}  // namespace zp
