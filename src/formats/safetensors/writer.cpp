// Writing .safetensors files in a stream, and planning how a checkpoint is split into shards.
#include <algorithm>
#include <array>
#include <set>
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
  std::vector<PlannedTensor> tensors;
  Layout layout;
  zp::detail::StreamedFile file;
  const std::string& name = file.name();  // the destination, for messages
  std::size_t current = 0;         // the tensor being written
  std::uint64_t current_done = 0;  // bytes of it so far
  bool committed = false;

  Impl(const std::filesystem::path& path, std::vector<PlannedTensor> planned, Layout l)
      : tensors(std::move(planned)), layout(std::move(l)), file(path) {}

  // Moves past finished tensors, including zero-size ones that never get a write().
  void skip_complete() {
    while (current < tensors.size() && current_done == layout.sizes[current]) {
      ++current;
      current_done = 0;
    }
  }

  void check_usable() const {
    if (committed) throw Error(fmt::format("{}: the writer was already committed", name));
    if (file.broken()) throw Error(fmt::format("{}: an earlier write failed; the file cannot be finished", name));
  }
};

Writer::Writer(const std::filesystem::path& path, std::vector<PlannedTensor> tensors,
               const std::map<std::string, std::string>& metadata) {
  Layout layout = layout_of(tensors, metadata, path.string());
  impl_ = std::make_unique<Impl>(path, std::move(tensors), std::move(layout));
  Impl& w = *impl_;
  std::array<unsigned char, 8> length{};
  const std::uint64_t n = w.layout.header.size();
  for (std::size_t k = 0; k < 8; ++k) length[k] = static_cast<unsigned char>(n >> (8 * k));
  w.file.write(length.data(), length.size());
  w.file.write(w.layout.header.data(), w.layout.header.size());
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
  w.file.write(data.data(), data.size());
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
  w.file.commit();
  w.committed = true;
}

std::uint64_t Writer::bytes_written() const noexcept { return impl_->file.size(); }

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
