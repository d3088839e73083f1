// Writing .safetensors files in a stream, and planning how a checkpoint is split into shards.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <set>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/file_io.hpp"
#include "formats/npy/npy_stream.hpp"
#include "formats/safetensors/strict_json.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace zp::safetensors {
namespace {

using detail::in_quotes;

// Same limit as the reader's (and the official library's): a longer header could not be read back.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// Large enough that a tensor's data reaches the kernel in few system calls, small enough that
// the writer never holds more than a sliver of the file.
constexpr std::size_t kBufferBytes = std::size_t{1} << 20;

// The header bytes of a file and the data size of each tensor.
struct Layout {
  std::string header;  // padded, without the 8-byte length
  std::vector<std::uint64_t> sizes;
  std::uint64_t data_size = 0;
};

// The data bytes of a planned tensor. `what` starts messages: the destination path, or
// "safetensors" when there is none yet.
std::uint64_t data_bytes(const PlannedTensor& t, std::string_view what) {
  const auto fail = [&](const std::string& why) {
    return Error(fmt::format("{}: tensor {}: {}", what, in_quotes(t.name), why));
  };
  const auto info = dtype_info(t.dtype);
  if (!info) throw fail(fmt::format("unknown dtype {}", in_quotes(t.dtype, 40)));
  try {
    return byte_size(*info, t.shape);
  } catch (const Error& e) {
    throw fail(e.what());
  }
}

Layout layout_of(const std::vector<PlannedTensor>& tensors, const std::map<std::string, std::string>& metadata,
                 std::string_view what) {
  Layout out;
  // Insertion order is file order: "__metadata__" first, then the tensors as planned, which is
  // also the order of their data.
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json& m = root["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) {
      if (!npy::detail::is_valid_utf8(key) || !npy::detail::is_valid_utf8(value)) {
        throw Error(
            fmt::format("{}: metadata entry {} is not valid UTF-8, which JSON cannot hold", what, in_quotes(key)));
      }
      m[key] = value;
    }
  }
  std::set<std::string_view> names;
  out.sizes.reserve(tensors.size());
  for (const PlannedTensor& t : tensors) {
    const auto fail = [&](const std::string& why) {
      return Error(fmt::format("{}: tensor {}: {}", what, in_quotes(t.name), why));
    };
    if (!npy::detail::is_valid_utf8(t.name)) throw fail("the name is not valid UTF-8, which JSON cannot hold");
    if (t.name == "__metadata__") throw fail("the name is reserved for the file's metadata");
    if (!names.insert(t.name).second) throw fail("the name is planned twice");
    const std::uint64_t size = data_bytes(t, what);
    std::uint64_t end = 0;
    if (__builtin_add_overflow(out.data_size, size, &end)) {
      throw fail("the file's data would be more bytes than fit in 64 bits");
    }
    root[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {out.data_size, end}}};
    out.sizes.push_back(size);
    out.data_size = end;
  }
  out.header = root.dump();
  // Data starting at a multiple of 8 keeps every element aligned when the tensors before it are.
  out.header.append((8 - out.header.size() % 8) % 8, ' ');
  if (out.header.size() > kMaxHeaderBytes) {
    throw Error(fmt::format("{}: the header would be {} bytes, over the format's limit of {}", what, out.header.size(),
                            kMaxHeaderBytes));
  }
  return out;
}

}  // namespace

struct Writer::Impl {
  std::string name;  // the destination, for messages
  std::vector<PlannedTensor> tensors;
  Layout layout;
  zp::detail::AtomicFile file;
  std::FILE* out = nullptr;
  std::size_t current = 0;         // the tensor being written
  std::uint64_t current_done = 0;  // bytes of it so far
  std::uint64_t written = 0;
  bool committed = false;
  bool broken = false;  // a write failed part-way: the file's content is unknown

  Impl(const std::filesystem::path& path, std::vector<PlannedTensor> planned, Layout l)
      : name(path.string()), tensors(std::move(planned)), layout(std::move(l)), file(path) {}
  ~Impl() {
    wait_for_flush();  // it uses the descriptor
    if (out) std::fclose(out);
  }

  void put(const void* data, std::size_t size) {
    // In steps, so that the disk starts on the first part of a large tensor while the rest is
    // still being copied into the page cache.
    const auto* bytes = static_cast<const unsigned char*>(data);
    while (size > 0) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, kStep));
      if (std::fwrite(bytes, 1, n, out) != n) {
        broken = true;
        throw Error(fmt::format("{}: write failed: {}", name, std::strerror(errno)));
      }
      written += n;
      bytes += n;
      size -= n;
      start_writeback();
    }
  }

  // commit() flushes the file to disk before renaming it (an atomic replace is only safe once the
  // data is there). Asking the kernel to start writing each step as soon as it is complete lets
  // the disk work while the next tensors are computed. That is not enough on a virtual disk
  // whose host caches writes: its flush at the end then writes everything to the real disk
  // (0.26 s for 600 MB here, however early the data left the guest). So a second thread also
  // flushes (fdatasync) whenever the previous flush is done and more has been written, and the
  // final flush has about one step left.
  static constexpr std::uint64_t kStep = std::uint64_t{16} << 20;
  void start_writeback() {
    if (written - flushed < kStep) return;
    if (std::fflush(out) != 0) return;  // a real failure shows again at the next write or commit
    const std::uint64_t upto = written / kStep * kStep;
#ifdef SYNC_FILE_RANGE_WRITE
    ::sync_file_range(::fileno(out), static_cast<off_t>(flushed), static_cast<off_t>(upto - flushed), SYNC_FILE_RANGE_WRITE);
#endif
    flushed = upto;
    if (!flushing.valid() || flushing.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      wait_for_flush();
      try {
        flushing = std::async(std::launch::async, [fd = ::fileno(out)] { return ::fdatasync(fd) == 0 ? 0 : errno; });
      } catch (const std::system_error&) {
        // no thread to spare: commit() flushes everything, as it always does
      }
    }
  }
  // Waits for the background flush, keeping its failure for commit(): once a flush has reported
  // a failed writeback, the kernel does not report it again to a later fsync.
  void wait_for_flush() noexcept {
    if (!flushing.valid()) return;
    const int err = flushing.get();
    // EINVAL and ENOTSUP: a file that cannot be flushed, not a failed write.
    if (flush_error == 0 && err != EINVAL && err != ENOTSUP) flush_error = err;
  }
  std::uint64_t flushed = 0;   // bytes handed to start_writeback
  std::future<int> flushing;   // the background fdatasync, if any: 0 or its errno
  int flush_error = 0;

  // Moves past finished tensors, including zero-size ones that never get a write().
  void skip_complete() {
    while (current < tensors.size() && current_done == layout.sizes[current]) {
      ++current;
      current_done = 0;
    }
  }

  void check_usable() const {
    if (committed) throw Error(fmt::format("{}: the writer was already committed", name));
    if (broken) throw Error(fmt::format("{}: an earlier write failed; the file cannot be finished", name));
  }
};

Writer::Writer(const std::filesystem::path& path, std::vector<PlannedTensor> tensors,
               const std::map<std::string, std::string>& metadata) {
  Layout layout = layout_of(tensors, metadata, path.string());
  impl_ = std::make_unique<Impl>(path, std::move(tensors), std::move(layout));
  Impl& w = *impl_;
  w.out = std::fopen(w.file.temp_path().c_str(), "wb");
  if (!w.out) throw Error(fmt::format("{}: cannot write: {}", w.name, std::strerror(errno)));
  std::setvbuf(w.out, nullptr, _IOFBF, kBufferBytes);

  std::array<unsigned char, 8> length{};
  const std::uint64_t n = w.layout.header.size();
  for (std::size_t k = 0; k < 8; ++k) length[k] = static_cast<unsigned char>(n >> (8 * k));
  w.put(length.data(), length.size());
  w.put(w.layout.header.data(), w.layout.header.size());
  w.skip_complete();
}

Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;
Writer::~Writer() = default;

void Writer::write(std::span<const std::byte> data) {
  Impl& w = *impl_;
  w.check_usable();
  if (data.empty()) return;
  if (w.current == w.tensors.size()) {
    throw Error(fmt::format("{}: {} bytes arrived after the last tensor was complete", w.name, data.size()));
  }
  const std::uint64_t needed = w.layout.sizes[w.current] - w.current_done;
  if (data.size() > needed) {
    const PlannedTensor& t = w.tensors[w.current];
    throw Error(fmt::format("{}: tensor {}: {} bytes arrived but {} x {} needs only {} more", w.name, in_quotes(t.name),
                            data.size(), t.dtype, shape_str(t.shape), needed));
  }
  w.put(data.data(), data.size());
  w.current_done += data.size();
  w.skip_complete();
}

void Writer::commit() {
  Impl& w = *impl_;
  w.check_usable();
  if (w.current < w.tensors.size()) {
    const PlannedTensor& t = w.tensors[w.current];
    throw Error(fmt::format("{}: tensor {} is incomplete: {} of the {} bytes of {} x {} were written", w.name,
                            in_quotes(t.name), w.current_done, w.layout.sizes[w.current], t.dtype, shape_str(t.shape)));
  }
  w.wait_for_flush();
  std::FILE* out = std::exchange(w.out, nullptr);
  const int err = std::fclose(out) != 0 ? errno : w.flush_error;
  if (err != 0) {
    w.broken = true;
    throw Error(fmt::format("{}: write failed: {}", w.name, std::strerror(err)));
  }
  w.file.commit();
  w.committed = true;
}

std::uint64_t Writer::bytes_written() const noexcept { return impl_->written; }

std::uint64_t file_size(const std::vector<PlannedTensor>& tensors, const std::map<std::string, std::string>& metadata) {
  const Layout layout = layout_of(tensors, metadata, "safetensors");
  return 8 + layout.header.size() + layout.data_size;
}

ShardPlan plan_shards(const std::vector<PlannedTensor>& tensors, std::uint64_t max_shard_bytes, std::string_view stem) {
  ShardPlan plan;
  plan.shard_of.reserve(tensors.size());
  std::size_t shards = 1;
  std::uint64_t filled = 0;  // data bytes in the last shard
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    const std::uint64_t size = data_bytes(tensors[k], "safetensors");
    // A tensor that does not fit starts the next shard, unless it is the first one (so a tensor
    // over the limit gets a shard to itself).
    if (k > 0 && size > max_shard_bytes - std::min(filled, max_shard_bytes)) {
      ++shards;
      filled = 0;
    }
    filled += size;
    plan.shard_of.push_back(shards - 1);
  }
  if (shards == 1) {
    plan.file_names.push_back(fmt::format("{}.safetensors", stem));
  } else {
    for (std::size_t k = 1; k <= shards; ++k) {
      plan.file_names.push_back(fmt::format("{}-{:05}-of-{:05}.safetensors", stem, k, shards));
    }
  }
  return plan;
}

}  // namespace zp::safetensors
