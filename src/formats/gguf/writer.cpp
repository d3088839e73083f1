// Writing GGUF files in a stream. Every tensor info precedes the data, so the writer fixes the
// layout from the planned sizes, writes the header in one piece, then takes each tensor's data in
// order and pads it to the alignment. It refuses what the reader would refuse, so a file it
// writes always reads back.
#include <utility>

#include "core/file_io.hpp"
#include "formats/gguf/gguf_detail.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace zp::gguf {
namespace {

using detail::in_quotes;
using detail::store;

void put_string(std::string& out, std::string_view s) {
  store<std::uint64_t>(out, s.size());
  out.append(s);
}

void put_array(std::string& out, const Array& a, int depth, std::string_view what);

void put_value(std::string& out, const Value& v, std::string_view what) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          put_string(out, x);
        } else if constexpr (std::is_same_v<T, Array>) {
          put_array(out, x, 1, what);
        } else if constexpr (std::is_same_v<T, bool>) {
          out.push_back(x ? '\1' : '\0');
        } else {
          store<T>(out, x);
        }
      },
      v.storage());
}

void put_array(std::string& out, const Array& a, int depth, std::string_view what) {
  if (depth > kMaxArrayDepth) {
    throw Error(fmt::format("{}: arrays nest more than {} deep, which the reader refuses", what, kMaxArrayDepth));
  }
  store<std::uint32_t>(out, static_cast<std::uint32_t>(a.element_type()));
  store<std::uint64_t>(out, a.size());
  std::visit(
      [&](const auto& items) {
        using T = typename std::decay_t<decltype(items)>::value_type;
        if constexpr (std::is_same_v<T, std::string>) {
          for (const std::string& s : items) put_string(out, s);
        } else if constexpr (std::is_same_v<T, Array>) {
          for (const Array& inner : items) put_array(out, inner, depth + 1, what);
        } else if constexpr (std::is_same_v<T, bool>) {
          for (const bool b : items) out.push_back(b ? '\1' : '\0');
        } else if constexpr (std::endian::native == std::endian::little) {
          out.append(reinterpret_cast<const char*>(items.data()), items.size() * sizeof(T));
        } else {
          for (const T x : items) store<T>(out, x);
        }
      },
      a.items);
}

// The header bytes, the zeros that pad them to the alignment, and where each tensor goes. The
// padding is only counted: an alignment of up to 2^31 is the reader's to accept, and its zeros
// are streamed to the file rather than held in memory.
struct Layout {
  std::string header;
  std::uint64_t header_padding = 0;
  std::vector<TensorInfo> tensors;
  std::uint32_t alignment = kDefaultAlignment;
  std::uint64_t data_size = 0;  // with every tensor's padding
  NameIndex names;              // name -> position in tensors
};

Layout layout_of(const Metadata& metadata, const std::vector<PlannedTensor>& planned, std::string_view what) {
  Layout out;
  if (const Value* v = metadata.find(kAlignmentKey)) {
    const auto* a = v->get_if<std::uint32_t>();
    if (!a) {
      throw Error(fmt::format("{}: metadata key '{}' is a {}, not a u32", what, kAlignmentKey, type_name(v->type())));
    }
    if (!detail::is_power_of_two(*a)) {
      throw Error(fmt::format("{}: metadata key '{}' is {}, not a power of two", what, kAlignmentKey, *a));
    }
    out.alignment = *a;
  }

  std::string& h = out.header;
  h.append(reinterpret_cast<const char*>(detail::kMagic), 4);
  store<std::uint32_t>(h, detail::kVersion);
  store<std::uint64_t>(h, planned.size());
  store<std::uint64_t>(h, metadata.size());
  std::size_t index = 0;
  for (const auto& [key, value] : metadata) {
    const std::string where = fmt::format("{}: metadata key {} (#{})", what, in_quotes(key), index++);
    if (key.empty()) throw Error(fmt::format("{}: the key is empty, which the format does not allow", where));
    put_string(h, key);
    store<std::uint32_t>(h, static_cast<std::uint32_t>(value.type()));
    put_value(h, value, where);
  }

  NameIndex& names = out.names;
  out.tensors.reserve(planned.size());
  for (std::size_t k = 0; k < planned.size(); ++k) {
    const PlannedTensor& p = planned[k];
    const auto fail = [&](const std::string& why) {
      return Error(fmt::format("{}: tensor {} (#{}): {}", what, in_quotes(p.name), k, why));
    };
    if (p.name.size() > kMaxNameBytes) {
      throw fail(fmt::format("the name is {} bytes, over ggml's limit of {}", p.name.size(), kMaxNameBytes));
    }
    if (!names.emplace(p.name, k).second) throw fail("the name is planned twice");
    if (!ggml::find_traits(static_cast<std::uint32_t>(p.type))) {
      throw fail(fmt::format("unknown ggml type id {}", static_cast<std::uint32_t>(p.type)));
    }
    TensorInfo t;
    t.name = p.name;
    t.dims = p.dims;
    t.type = p.type;
    try {
      t.bytes = tensor_bytes(p.type, p.dims);
    } catch (const Error& e) {
      throw fail(e.what());
    }
    t.offset = out.data_size;
    const std::uint64_t padded = detail::align_up(t.bytes, out.alignment);
    if (padded < t.bytes || __builtin_add_overflow(out.data_size, padded, &out.data_size) ||
        out.data_size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw fail("the file's data would be more than 2^63 - 1 bytes");
    }
    put_string(h, t.name);
    store<std::uint32_t>(h, static_cast<std::uint32_t>(t.dims.size()));
    for (const std::uint64_t d : t.dims) store<std::uint64_t>(h, d);
    store<std::uint32_t>(h, static_cast<std::uint32_t>(t.type));
    store<std::uint64_t>(h, t.offset);
    out.tensors.push_back(std::move(t));
  }
  // ggml pads here even when there are no tensors; so do we, so that both write the same bytes.
  out.header_padding = detail::align_up(h.size(), out.alignment) - h.size();
  return out;
}

}  // namespace

struct Writer::Impl {
  Layout layout;
  zp::detail::StreamedFile file;
  const std::string& name = file.name();  // the destination, for messages
  std::size_t current = 0;         // the tensor being written
  std::uint64_t current_done = 0;  // bytes of it so far
  bool committed = false;

  Impl(const std::filesystem::path& path, Layout l) : layout(std::move(l)), file(path) {}

  // Pads and moves past finished tensors, including zero-size ones that never get a write().
  void finish_complete() {
    while (current < layout.tensors.size() && current_done == layout.tensors[current].bytes) {
      const TensorInfo& t = layout.tensors[current];
      file.write_zeros(detail::align_up(t.bytes, layout.alignment) - t.bytes);
      ++current;
      current_done = 0;
    }
  }

  void check_usable() const {
    if (committed) throw Error(fmt::format("{}: the writer was already committed", name));
    if (file.broken()) throw Error(fmt::format("{}: an earlier write failed; the file cannot be finished", name));
  }
};

Writer::Writer(const std::filesystem::path& path, Metadata metadata, std::vector<PlannedTensor> tensors) {
  Layout layout = layout_of(metadata, tensors, path.string());
  impl_ = std::make_unique<Impl>(path, std::move(layout));
  Impl& w = *impl_;
  w.file.write(w.layout.header.data(), w.layout.header.size());
  w.file.write_zeros(w.layout.header_padding);
  w.layout.header = std::string();  // written; a large vocabulary need not stay in memory
  w.finish_complete();
}

Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;
Writer::~Writer() = default;

void Writer::write(std::span<const std::uint8_t> data) {
  Impl& w = *impl_;
  w.check_usable();
  if (data.empty()) return;
  if (w.current == w.layout.tensors.size()) {
    throw Error(fmt::format("{}: {} bytes arrived after the last tensor was complete", w.name, data.size()));
  }
  const TensorInfo& t = w.layout.tensors[w.current];
  const std::uint64_t needed = t.bytes - w.current_done;
  if (data.size() > needed) {
    throw Error(fmt::format("{}: tensor {} (#{}): {} bytes arrived but its {} bytes need only {} more", w.name,
                            in_quotes(t.name), w.current, data.size(), t.bytes, needed));
  }
  w.file.write(data.data(), data.size());
  w.current_done += data.size();
  w.finish_complete();
}

void Writer::write(std::string_view name, std::span<const std::uint8_t> data) {
  const Impl& w = *impl_;
  w.check_usable();
  // A zero-size tensor is complete before anything is sent; empty data for it (or for any tensor
  // already written) is nothing to do, so a caller can send every tensor alike.
  if (const auto it = w.layout.names.find(name); data.empty() && it != w.layout.names.end() && it->second <= w.current) {
    return;
  }
  if (w.current == w.layout.tensors.size()) {
    throw Error(fmt::format("{}: data for tensor {} arrived after the last tensor was complete", w.name,
                            in_quotes(name)));
  }
  const TensorInfo& t = w.layout.tensors[w.current];
  if (name != t.name) {
    throw Error(fmt::format("{}: data for tensor {} arrived while tensor {} (#{}) is being written; tensors must "
                            "come in the planned order",
                            w.name, in_quotes(name), in_quotes(t.name), w.current));
  }
  write(data);
}

std::size_t Writer::current() const noexcept { return impl_->current; }
const std::vector<TensorInfo>& Writer::tensors() const noexcept { return impl_->layout.tensors; }

void Writer::commit() {
  Impl& w = *impl_;
  w.check_usable();
  if (w.current < w.layout.tensors.size()) {
    const TensorInfo& t = w.layout.tensors[w.current];
    throw Error(fmt::format("{}: tensor {} (#{}) is incomplete: {} of its {} bytes were written", w.name,
                            in_quotes(t.name), w.current, w.current_done, t.bytes));
  }
  w.file.commit();
  w.committed = true;
}

std::uint64_t Writer::bytes_written() const noexcept { return impl_->file.size(); }

std::uint64_t file_size(const Metadata& metadata, const std::vector<PlannedTensor>& tensors) {
  const Layout layout = layout_of(metadata, tensors, "gguf");
  return layout.header.size() + layout.header_padding + layout.data_size;
}

}  // namespace zp::gguf
