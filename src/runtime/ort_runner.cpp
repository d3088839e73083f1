#include "zeropoint/ort_runner.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string_view>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "zeropoint/error.hpp"

#ifndef ZEROPOINT_ORT_RUNNER_DEFAULT
#define ZEROPOINT_ORT_RUNNER_DEFAULT ""
#endif
#ifndef ZEROPOINT_ORT_MODULES_DEFAULT
#define ZEROPOINT_ORT_MODULES_DEFAULT ""
#endif

namespace zp {
namespace {

using json = nlohmann::json;

// A header larger than this is not one the runner wrote: the stream is out of step.
constexpr std::uint32_t kMaxHeaderBytes = 16u << 20;
// Bigger pipes mean fewer trips through the scheduler per megabyte; 1 MiB is the most an
// unprivileged process may ask for by default (/proc/sys/fs/pipe-max-size).
constexpr int kPipeBytes = 1 << 20;
// Each run, onnxruntime-node hands every output over in a new ArrayBuffer, and glibc gives
// large blocks straight back to the kernel when they are freed, so each run faults in all its
// output memory anew. On the virtual machines this project runs on that costs about 4 ms per MB
// (0.4 s for 100 MB, ten times the copying itself). Keeping freed memory in the child's heap
// (no mmap'd blocks, no trimming) makes later runs reuse pages already there; the child's memory
// stays at its peak, which one run reaches anyway.
constexpr std::string_view kChildMallocTunables =
    "GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=18446744073709551615";
// The shared output file is mapped once, this large (address space only: pages exist as the
// child writes them), so that views handed out never move. Smaller windows are tried when the
// address space is limited; answers that do not fit come through the pipe.
constexpr std::size_t kSharedWindowBytes = std::size_t{64} << 30;
constexpr std::size_t kSmallestSharedWindowBytes = std::size_t{256} << 20;
// The descriptor the child finds the shared file at.
constexpr int kChildSharedFd = 3;
// How long the destructor waits for the child to leave after its input closed.
constexpr auto kExitGrace = std::chrono::seconds(10);
// The end of the child's stderr that goes into an error message.
constexpr std::size_t kStderrTail = 4000;
constexpr std::string_view kSetupHint = "run scripts/setup-onnxruntime";

struct OrtType {
  std::string_view name;
  DType dtype;
};
// ONNX Runtime's element type names and the DType each travels as. bool is one byte, 0 or 1.
constexpr OrtType kOrtTypes[] = {
    {"float32", DType::f32}, {"float64", DType::f64}, {"float16", DType::f16}, {"int8", DType::i8},
    {"uint8", DType::u8},    {"int16", DType::i16},   {"uint16", DType::u16},  {"int32", DType::i32},
    {"uint32", DType::u32},  {"int64", DType::i64},   {"bool", DType::u8},
};

std::optional<DType> dtype_of_ort_type(std::string_view name) {
  for (const OrtType& t : kOrtTypes) {
    if (t.name == name) return t.dtype;
  }
  return std::nullopt;
}

std::optional<std::string_view> ort_type_of(DType dtype) {
  for (const OrtType& t : kOrtTypes) {
    if (t.dtype == dtype) return t.name;  // u8 finds "uint8" first; the runner turns it to bool
  }
  return std::nullopt;
}

std::string env_or(const char* name, const std::string& given, const char* fallback) {
  if (!given.empty()) return given;
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string(fallback);
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The file `name` runs as: itself when it holds a slash, else its first match on PATH (as
// execvp looks it up, so the child started is the one checked).
std::optional<std::string> find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (is_executable_file(name)) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const std::size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

struct Resolved {
  std::string node;  // as given, for messages
  std::optional<std::string> node_path;
  std::string script;
  std::string modules;
};

Resolved resolve(const OrtOptions& options) {
  Resolved r;
  r.node = env_or("ZEROPOINT_NODE", options.node, "node");
  r.node_path = find_executable(r.node);
  r.script = env_or("ZEROPOINT_ORT_RUNNER", options.runner_script, ZEROPOINT_ORT_RUNNER_DEFAULT);
  r.modules = env_or("ZEROPOINT_ORT_MODULES", options.node_modules, ZEROPOINT_ORT_MODULES_DEFAULT);
  return r;
}

// What keeps a session from starting, in one line, or "" when nothing does.
std::string what_is_missing(const Resolved& r) {
  std::error_code ec;
  if (!r.node_path) {
    return r.node.find('/') == std::string::npos
               ? fmt::format("Node.js ('{}') is not on PATH; {}", r.node, kSetupHint)
               : fmt::format("Node.js ('{}') is not there; {}", r.node, kSetupHint);
  }
  if (r.modules.empty() ||
      !std::filesystem::is_regular_file(std::filesystem::path(r.modules) / "onnxruntime-node" / "package.json", ec)) {
    return fmt::format("onnxruntime-node is not installed in '{}'; {}", r.modules, kSetupHint);
  }
  if (r.script.empty() || !std::filesystem::is_regular_file(r.script, ec)) {
    return fmt::format("the runner script '{}' is not there (ZEROPOINT_ORT_RUNNER names it)", r.script);
  }
  return {};
}

std::string exit_status_text(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
  return "stopped";
}

// Moves `fd` above 2 so that dup2 onto 0, 1 or 2 in the child never meets itself (dup2 of a
// descriptor onto itself keeps its close-on-exec flag, and the child would lose it at exec).
int above_stdio(int fd) {
  if (fd > 2) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Writes to a pipe whose reader died raise SIGPIPE, which would end the caller's process. The
// guard blocks it in this thread for the write, then takes away the one a failed write raised
// (unless one was already pending: that one is someone else's to see).
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

  void consume_raised() noexcept {
    if (was_pending_) return;
    const timespec zero{};
    while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool was_pending_ = false;
};

struct AlignedDelete {
  void operator()(std::byte* p) const noexcept { ::operator delete[](p, std::align_val_t{64}); }
};

struct TensorHeader {
  std::string name;
  DType dtype;
  Shape shape;
  std::size_t nbytes;
  std::optional<std::size_t> offset;  // in the shared file; none when the bytes follow in the pipe
};

}  // namespace

struct OrtSession::Impl {
  std::string model;  // as given, for messages
  pid_t pid = -1;
  int to_child = -1;    // the child's stdin
  int from_child = -1;  // the child's stdout
  int child_stderr = -1;  // an in-memory file: it never fills up and blocks the child
  std::vector<OrtTensorInfo> inputs;
  std::vector<OrtTensorInfo> outputs;
  std::vector<std::string> output_names;
  double last_ort_seconds = 0;
  // Set once the stream cannot be trusted (the child died, or sent what it should not).
  std::string broken;
  // run()'s buffer for the output being handed over; grows to the largest output.
  std::unique_ptr<std::byte[], AlignedDelete> scratch;
  std::size_t scratch_size = 0;
  // The shared output file (-1 without), its mapping, and how much of it is known to exist.
  int shared_fd = -1;
  const std::byte* shared_base = nullptr;
  std::size_t shared_window = 0;
  std::size_t shared_size = 0;
  bool last_shared = false;
  // receive()'s tensors for answers that came through the pipe: the last two answers' (the
  // caller may still read the one before), alternating.
  std::vector<Tensor> pipe_answers[2];
  int pipe_parity = 0;

  ~Impl() {
    stop();
    if (shared_base) ::munmap(const_cast<std::byte*>(shared_base), shared_window);
    close_fd(shared_fd);
  }

  void stop() noexcept {
    close_fd(to_child);
    close_fd(from_child);
    if (pid > 0) reap(kExitGrace);
    close_fd(child_stderr);
  }

  // Makes the shared output file and maps it; leaves shared_fd at -1 when the system will not
  // (then everything goes through the pipe).
  void open_shared(std::size_t window_wanted) noexcept {
    const int fd = ::memfd_create("zeropoint-ort-outputs", MFD_CLOEXEC);
    if (fd < 0) return;
    // Above the descriptors the child gets (0-3), so that none of its dup2s overwrites another's
    // source.
    shared_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, kChildSharedFd + 1);
    ::close(fd);
    if (shared_fd < 0) return;
    const std::size_t first = window_wanted > 0 ? window_wanted : kSharedWindowBytes;
    for (std::size_t window = first; window >= std::min(first, kSmallestSharedWindowBytes); window /= 4) {
      void* p = ::mmap(nullptr, window, PROT_READ, MAP_SHARED | MAP_NORESERVE, shared_fd, 0);
      if (p != MAP_FAILED) {
        shared_base = static_cast<const std::byte*>(p);
        shared_window = window;
        return;
      }
    }
    close_fd(shared_fd);
  }

  // The bytes of a tensor the child put in the shared file, checked against what exists.
  const std::byte* shared_bytes(const TensorHeader& t) {
    const std::size_t offset = *t.offset;
    if (!shared_base) fail_protocol(fmt::format("output '{}' in a shared file this session does not have", t.name));
    if (offset > shared_window || t.nbytes > shared_window - offset) {
      fail_protocol(fmt::format("output '{}' at offset {} of a shared window of {} bytes", t.name, offset, shared_window));
    }
    if (offset + t.nbytes > shared_size) {
      struct stat st {};
      if (::fstat(shared_fd, &st) == 0 && st.st_size > 0) shared_size = static_cast<std::size_t>(st.st_size);
      // Reading a mapped page beyond the file's end would be a SIGBUS.
      if (offset + t.nbytes > shared_size) {
        fail_protocol(fmt::format("output '{}' at bytes {}..{} of a shared file of {}", t.name, offset,
                                  offset + t.nbytes, shared_size));
      }
    }
    return shared_base + offset;
  }

  // Waits up to `grace` for the child, then kills it. Returns its wait status.
  int reap(std::chrono::milliseconds grace) noexcept {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + grace;
    auto nap = std::chrono::microseconds(200);
    while (true) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) break;
      if (r == 0 && std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(nap);
      nap = std::min(nap * 2, std::chrono::microseconds(20000));
    }
    pid = -1;
    return status;
  }

  std::string stderr_tail() const {
    struct stat st {};
    if (child_stderr < 0 || ::fstat(child_stderr, &st) != 0 || st.st_size <= 0) return {};
    const auto size = static_cast<std::size_t>(st.st_size);
    const std::size_t start = size > kStderrTail ? size - kStderrTail : 0;
    std::string raw(size - start, '\0');
    const ssize_t n = ::pread(child_stderr, raw.data(), raw.size(), static_cast<off_t>(start));
    raw.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    // Messages are one line: line breaks become " | ", and ORT's colour codes go.
    std::string text;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\x1b' && i + 1 < raw.size() && raw[i + 1] == '[') {
        i = std::min(raw.find('m', i), raw.size() - 1);
      } else if (raw[i] == '\n') {
        text += " | ";
      } else if (raw[i] != '\r') {
        text += raw[i];
      }
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '|')) text.pop_back();
    return text;
  }

  // The child stopped talking: collects why and makes the session unusable.
  [[noreturn]] void fail_child(std::string_view what) {
    close_fd(to_child);
    close_fd(from_child);
    std::string status = "is gone";
    if (pid > 0) status = exit_status_text(reap(std::chrono::seconds(2)));
    const std::string tail = stderr_tail();
    broken = fmt::format("{}: the ONNX Runtime runner {} ({}){}{}", model, what, status,
                         tail.empty() ? "" : "; its stderr: ", tail);
    throw Error(broken);
  }

  // The child said something that is not the protocol: nothing it says next can be trusted.
  [[noreturn]] void fail_protocol(std::string_view what) {
    close_fd(to_child);
    close_fd(from_child);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      reap(std::chrono::seconds(2));
    }
    broken = fmt::format("{}: the ONNX Runtime runner is out of step: {}", model, what);
    throw Error(broken);
  }

  void read_exact(void* data, std::size_t size) {
    auto* p = static_cast<std::byte*>(data);
    while (size > 0) {
      const ssize_t n = ::read(from_child, p, std::min<std::size_t>(size, SSIZE_MAX));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_child(fmt::format("cannot be read from: {}", std::strerror(errno)));
      if (n == 0) fail_child("stopped before answering");
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  void skip(std::size_t size) {
    std::byte sink[1 << 16];
    while (size > 0) {
      const std::size_t n = std::min(size, sizeof sink);
      read_exact(sink, n);
      size -= n;
    }
  }

  json read_header() {
    std::uint8_t prefix[4];
    read_exact(prefix, sizeof prefix);
    const std::uint32_t n = std::uint32_t{prefix[0]} | std::uint32_t{prefix[1]} << 8 |
                            std::uint32_t{prefix[2]} << 16 | std::uint32_t{prefix[3]} << 24;
    if (n > kMaxHeaderBytes) fail_protocol(fmt::format("a frame header of {} bytes", n));
    std::string text(n, '\0');
    read_exact(text.data(), n);
    json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!header.is_object() || !header.contains("kind") || !header["kind"].is_string()) {
      fail_protocol(fmt::format("a frame header that is not a JSON object with a kind: {:.200}", text));
    }
    return header;
  }

  // Writes all of `iov`; a child that is gone is reported with its stderr.
  void write_all(std::vector<iovec> iov) {
    SigpipeBlocked guard;
    std::size_t first = 0;
    while (first < iov.size()) {
      const int count = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
      const ssize_t n = ::writev(to_child, iov.data() + first, count);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        if (err == EPIPE) {
          guard.consume_raised();
          fail_child("stopped reading its input");
        }
        fail_child(fmt::format("cannot be written to: {}", std::strerror(err)));
      }
      auto left = static_cast<std::size_t>(n);
      while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (left > 0) {
        iov[first].iov_base = static_cast<std::byte*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
  }

  OrtTensorInfo parse_info(const json& m, std::string_view role) {
    OrtTensorInfo info;
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string()) {
      fail_protocol(fmt::format("a session description with a bad {}", role));
    }
    info.name = m["name"].get<std::string>();
    if (!m.contains("dtype") || !m["dtype"].is_string()) {
      throw Error(fmt::format("{}: {} '{}' is not a tensor (a sequence or a map); zeropoint runs models "
                              "on tensors only",
                              model, role, info.name));
    }
    info.ort_type = m["dtype"].get<std::string>();
    const std::optional<DType> dtype = dtype_of_ort_type(info.ort_type);
    if (!dtype) {
      throw Error(fmt::format("{}: {} '{}' is {}, which zeropoint has no type for{}", model, role, info.name,
                              info.ort_type, role == "output" ? "; select the other outputs" : ""));
    }
    info.dtype = *dtype;
    for (const json& d : m.value("shape", json::array())) {
      if (d.is_number_integer() && d.get<std::int64_t>() >= 0) {
        info.shape.push_back(d.get<std::int64_t>());
        info.dim_names.emplace_back();
      } else {
        info.shape.push_back(-1);
        info.dim_names.push_back(d.is_string() ? d.get<std::string>() : std::string());
      }
    }
    return info;
  }

  TensorHeader parse_tensor_header(const json& h, std::size_t index) {
    TensorHeader t;
    try {
      t.name = h.at("name").get<std::string>();
      const auto type = h.at("dtype").get<std::string>();
      const std::optional<DType> dtype = dtype_of_ort_type(type);
      if (!dtype) fail_protocol(fmt::format("output '{}' of type {}", t.name, type));
      t.dtype = *dtype;
      t.shape = h.at("shape").get<Shape>();
      t.nbytes = h.at("nbytes").get<std::size_t>();
      if (h.contains("offset")) t.offset = h["offset"].get<std::size_t>();
    } catch (const json::exception& e) {
      fail_protocol(fmt::format("a tensor header without what it needs: {}", e.what()));
    }
    if (index >= output_names.size() || t.name != output_names[index]) {
      fail_protocol(fmt::format("output '{}' where output {} was due", t.name, index));
    }
    std::int64_t numel = 0;
    try {
      numel = checked_numel(t.shape);
    } catch (const Error&) {
      fail_protocol(fmt::format("output '{}' of shape {}", t.name, shape_str(t.shape)));
    }
    if (static_cast<std::uint64_t>(numel) * dtype_size(t.dtype) != t.nbytes) {
      fail_protocol(fmt::format("output '{}': {} bytes for shape {}", t.name, t.nbytes, shape_str(t.shape)));
    }
    return t;
  }

  void send_request(std::span<const NamedView> feeds) {
    json header = {{"kind", "run"}, {"inputs", json::array()}};
    std::vector<Tensor> copies;  // C-order copies of strided views, alive until written
    std::vector<std::pair<const void*, std::size_t>> payloads;
    for (const NamedView& f : feeds) {
      const TensorView& v = f.value;
      const std::optional<std::string_view> type = ort_type_of(v.dtype());
      if (!type) {
        throw Error(fmt::format("{}: input '{}' is {}, which onnxruntime-node cannot take; convert it first",
                                model, f.name, dtype_name(v.dtype())));
      }
      const void* data = v.data();
      if (!v.is_contiguous()) {
        copies.push_back(Tensor::copy_of(v));
        data = copies.back().data();
      }
      const std::size_t nbytes = static_cast<std::size_t>(v.numel()) * dtype_size(v.dtype());
      header["inputs"].push_back({{"name", f.name}, {"dtype", *type}, {"shape", v.shape()}, {"nbytes", nbytes}});
      payloads.emplace_back(data, nbytes);
    }
    const std::string text = header.dump();
    const auto n = static_cast<std::uint32_t>(text.size());
    const std::uint8_t prefix[4] = {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8),
                                    static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 24)};
    std::vector<iovec> iov;
    iov.push_back({const_cast<std::uint8_t*>(prefix), sizeof prefix});
    iov.push_back({const_cast<char*>(text.data()), text.size()});
    for (const auto& [data, nbytes] : payloads) {
      if (nbytes > 0) iov.push_back({const_cast<void*>(data), nbytes});
    }
    write_all(std::move(iov));
  }

  // Reads one answer. For each output, `take(t, index, bytes)` gets its bytes: in the shared
  // file, or read from the pipe into `place(t, index)`. An exception from `take` is rethrown
  // after the answer was read past.
  template <class Place, class Take>
  void receive_answer(Place&& place, Take&& take) {
    std::exception_ptr failure;
    for (std::size_t index = 0;; ++index) {
      const json h = read_header();
      const std::string kind = h["kind"].get<std::string>();
      if (kind == "tensor") {
        const TensorHeader t = parse_tensor_header(h, index);
        last_shared = t.offset.has_value();
        if (failure) {
          if (!t.offset) skip(t.nbytes);
          continue;
        }
        const std::byte* bytes = nullptr;
        if (t.offset) {
          bytes = shared_bytes(t);
        } else {
          std::byte* dest = place(t, index);
          read_exact(dest, t.nbytes);
          bytes = dest;
        }
        try {
          take(t, index, bytes);
        } catch (...) {
          failure = std::current_exception();
        }
      } else if (kind == "end") {
        if (index != output_names.size()) fail_protocol(fmt::format("{} outputs of {}", index, output_names.size()));
        last_ort_seconds = h.value("run_ms", 0.0) / 1000.0;
        break;
      } else if (kind == "error") {
        if (failure) break;
        throw Error(fmt::format("{}: {}", model, h.value("message", std::string("(no message)"))));
      } else {
        fail_protocol(fmt::format("a frame of kind '{}' in an answer", kind));
      }
    }
    if (failure) std::rethrow_exception(failure);
  }

  std::byte* scratch_for(std::size_t nbytes) {
    if (nbytes > scratch_size || !scratch) {
      scratch.reset();
      scratch.reset(static_cast<std::byte*>(::operator new[](std::max<std::size_t>(nbytes, 64), std::align_val_t{64})));
      scratch_size = std::max<std::size_t>(nbytes, 64);
    }
    return scratch.get();
  }

  void check_usable() const {
    if (!broken.empty()) throw Error(fmt::format("{} (this session cannot run any more)", broken));
  }
};

OrtSession::OrtSession(const std::filesystem::path& model, std::vector<std::string> outputs,
                       const OrtOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.model = model.string();
  const Resolved r = resolve(options);
  if (std::string missing = what_is_missing(r); !missing.empty()) {
    throw Error(fmt::format("cannot run ONNX models: {}", missing));
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model, ec)) throw Error(fmt::format("{}: no such file", s.model));
  if (options.threads < 0) throw Error(fmt::format("OrtOptions::threads is {}; it must be 0 or more", options.threads));

  int to_child[2] = {-1, -1};
  int from_child[2] = {-1, -1};
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
    const int err = errno;
    for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) {
      if (fd >= 0) ::close(fd);
    }
    throw Error(fmt::format("{}: cannot make pipes for the ONNX Runtime runner: {}", s.model, std::strerror(err)));
  }
  s.to_child = to_child[1];
  s.from_child = from_child[0];
  int child_in = above_stdio(to_child[0]);
  int child_out = above_stdio(from_child[1]);
  s.child_stderr = above_stdio(::memfd_create("zeropoint-ort-runner-stderr", MFD_CLOEXEC));
  auto close_child_ends = [&] {
    close_fd(child_in);
    close_fd(child_out);
  };
  if (child_in < 0 || child_out < 0 || s.child_stderr < 0) {
    const int err = errno;
    close_child_ends();
    throw Error(fmt::format("{}: cannot set up the ONNX Runtime runner's descriptors: {}", s.model, std::strerror(err)));
  }
  // Best effort: the pipe works at any size, only slower.
  ::fcntl(s.to_child, F_SETPIPE_SZ, kPipeBytes);
  ::fcntl(s.from_child, F_SETPIPE_SZ, kPipeBytes);

  std::vector<std::string> args = {r.node, r.script, s.model, "--modules", r.modules};
  if (!outputs.empty()) {
    // JSON, not the comma-separated form: a name may hold a comma.
    args.insert(args.end(), {"--outputs", json(outputs).dump()});
  }
  if (options.threads > 0) args.insert(args.end(), {"--threads", std::to_string(options.threads)});
  if (options.shared_memory) s.open_shared(options.shared_window_bytes);
  if (s.shared_fd >= 0) {
    args.insert(args.end(), {"--shared-fd", std::to_string(kChildSharedFd), "--shared-bytes", std::to_string(s.shared_window)});
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string tunables(kChildMallocTunables);
  std::vector<char*> envp;
  bool tuned = false;
  for (char** e = environ; *e; ++e) {
    envp.push_back(*e);
    tuned = tuned || std::string_view(*e).starts_with("GLIBC_TUNABLES=");
  }
  if (!tuned) envp.push_back(tunables.data());  // a caller's own tunables win
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, child_in, 0);
  posix_spawn_file_actions_adddup2(&actions, child_out, 1);
  posix_spawn_file_actions_adddup2(&actions, s.child_stderr, 2);
  if (s.shared_fd >= 0) posix_spawn_file_actions_adddup2(&actions, s.shared_fd, kChildSharedFd);
  // The child starts with no signal blocked and SIGPIPE at its default, whatever the caller set.
  sigset_t none, pipe_only;
  sigemptyset(&none);
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &pipe_only);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const int spawned = ::posix_spawn(&s.pid, r.node_path->c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close_child_ends();
  if (spawned != 0) {
    s.pid = -1;
    throw Error(fmt::format("cannot run ONNX models: cannot start Node.js ('{}'): {}; {}", *r.node_path,
                            std::strerror(spawned), kSetupHint));
  }

  const json h = s.read_header();
  const std::string kind = h["kind"].get<std::string>();
  if (kind == "error") {
    const std::string message = h.value("message", std::string("(no message)"));
    s.stop();
    throw Error(fmt::format("{}: {}", s.model, message));
  }
  if (kind != "session" || !h.contains("inputs") || !h["inputs"].is_array() || !h.contains("outputs") ||
      !h["outputs"].is_array()) {
    s.fail_protocol("a first frame that does not describe the session");
  }
  for (const json& m : h["inputs"]) s.inputs.push_back(s.parse_info(m, "input"));
  for (const json& m : h["outputs"]) {
    s.outputs.push_back(s.parse_info(m, "output"));
    s.output_names.push_back(s.outputs.back().name);
  }
}

OrtSession::~OrtSession() = default;
OrtSession::OrtSession(OrtSession&&) noexcept = default;
OrtSession& OrtSession::operator=(OrtSession&&) noexcept = default;

const std::vector<OrtTensorInfo>& OrtSession::inputs() const { return impl_->inputs; }
const std::vector<OrtTensorInfo>& OrtSession::outputs() const { return impl_->outputs; }
const std::vector<std::string>& OrtSession::output_names() const { return impl_->output_names; }
double OrtSession::last_ort_seconds() const noexcept { return impl_->last_ort_seconds; }

bool OrtSession::last_answer_shared() const noexcept { return impl_->last_shared; }

void OrtSession::run(std::span<const NamedView> inputs,
                     const std::function<void(const std::string& name, const TensorView& value)>& on_output) {
  Impl& s = *impl_;
  s.check_usable();
  s.send_request(inputs);
  s.receive_answer([&](const TensorHeader& t, std::size_t) { return s.scratch_for(t.nbytes); },
                   [&](const TensorHeader& t, std::size_t, const std::byte* bytes) {
                     on_output(t.name, TensorView(bytes, t.dtype, t.shape));
                   });
}

std::vector<std::pair<std::string, Tensor>> OrtSession::run(std::span<const NamedView> inputs) {
  Impl& s = *impl_;
  s.check_usable();
  s.send_request(inputs);
  std::vector<std::pair<std::string, Tensor>> results;
  results.reserve(s.output_names.size());
  // Through the pipe, straight into the tensors returned; from the shared file, one copy.
  s.receive_answer(
      [&](const TensorHeader& t, std::size_t) {
        results.emplace_back(t.name, Tensor(t.dtype, t.shape));
        return static_cast<std::byte*>(results.back().second.data());
      },
      [&](const TensorHeader& t, std::size_t index, const std::byte* bytes) {
        if (index < results.size()) return;
        results.emplace_back(t.name, Tensor(t.dtype, t.shape));
        if (t.nbytes > 0) std::memcpy(results.back().second.data(), bytes, t.nbytes);
      });
  return results;
}

void OrtSession::submit(std::span<const NamedView> inputs) {
  Impl& s = *impl_;
  s.check_usable();
  s.send_request(inputs);
}

void OrtSession::receive(std::vector<std::pair<std::string, TensorView>>& outputs) {
  Impl& s = *impl_;
  s.check_usable();
  outputs.clear();
  outputs.reserve(s.output_names.size());
  // The previous answer's buffers stay as they are: the caller may still be reading them.
  s.pipe_parity ^= 1;
  std::vector<Tensor>& buffers = s.pipe_answers[s.pipe_parity];
  if (buffers.size() < s.output_names.size()) buffers.resize(s.output_names.size());
  s.receive_answer(
      [&](const TensorHeader& t, std::size_t index) {
        Tensor& tensor = buffers[index];
        // Reused from run to run when the size has not changed: fresh pages cost more to fault
        // in than the pipe costs to read (hundreds of MB per run).
        if (tensor.dtype() != t.dtype || tensor.nbytes() != t.nbytes || tensor.shape() != t.shape) {
          tensor = Tensor(t.dtype, t.shape);
        }
        return static_cast<std::byte*>(tensor.data());
      },
      [&](const TensorHeader& t, std::size_t, const std::byte* bytes) {
        outputs.emplace_back(t.name, TensorView(bytes, t.dtype, t.shape));
      });
}

bool ort_available(const OrtOptions& options) { return what_is_missing(resolve(options)).empty(); }

}  // namespace zp
