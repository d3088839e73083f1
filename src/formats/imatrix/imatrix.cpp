// llama.cpp importance matrices: the GGUF format (through zeropoint's GGUF header parser and
// gguf::File) and the legacy binary format, each turned into the weights llama-quantize computes
// from it (tools/quantize/quantize.cpp: load_imatrix, load_legacy_imatrix; the size and
// non-finite checks of src/llama-quant.cpp, llama_model_quantize_impl). docs/formats.md says
// what is read, what is computed and what is refused.
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/file_io.hpp"
#include "core/quoted.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"
#include "zeropoint/formats/imatrix.hpp"
#include "zeropoint/ggml.hpp"

namespace zp::imatrix {

std::string_view format_name(Format format) noexcept {
  switch (format) {
    case Format::gguf:
      return "gguf";
    case Format::legacy:
      return "legacy";
  }
  return "unknown";
}

namespace {
// What a file holds; ImportanceMatrix::Impl is this (the readers below need to name it).
struct Contents {
  std::string file;  // for messages
  Format format = Format::gguf;
  std::vector<std::string> names;
  std::vector<Entry> entries;            // parallel to names
  std::vector<std::uint64_t> entry_at;   // where each entry starts in the file, for messages
  gguf::NameIndex index;                 // name -> position
  std::vector<std::string> datasets;
  std::uint64_t chunk_count = 0;
  std::uint64_t chunk_size = 0;
};
}  // namespace

struct ImportanceMatrix::Impl : Contents {};

namespace {

constexpr std::uint8_t kGgufMagic[4] = {'G', 'G', 'U', 'F'};
constexpr std::string_view kSumsSuffix = ".in_sum2";
constexpr std::string_view kCountsSuffix = ".counts";
constexpr std::string_view kDatasetsKey = "imatrix.datasets";
constexpr std::string_view kChunkCountKey = "imatrix.chunk_count";
constexpr std::string_view kChunkSizeKey = "imatrix.chunk_size";
// llama-quantize quantizes this tensor without the importance matrix when the sizes disagree.
constexpr std::string_view kTokenEmbd = "token_embd.weight";

using zp::detail::in_quotes;

// A little-endian 32-bit value at p, whatever the host's byte order.
template <class T>
T load32(const std::uint8_t* p) noexcept {
  static_assert(sizeof(T) == 4 && std::is_trivially_copyable_v<T>);
  const std::uint32_t u = std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
                          (std::uint32_t{p[3]} << 24);
  return std::bit_cast<T>(u);
}

bool starts_with_gguf_magic(std::span<const std::uint8_t> head) {
  return head.size() >= 4 && std::memcmp(head.data(), kGgufMagic, 4) == 0;
}

void add_entry(Contents& m, std::string name, Entry entry, std::uint64_t at) {
  m.index.emplace(name, m.names.size());
  m.names.push_back(std::move(name));
  m.entries.push_back(std::move(entry));
  m.entry_at.push_back(at);
}

std::string dims_text(std::span<const std::uint64_t> dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

// ---------------------------------------------------------------------------------------------
// GGUF

using TensorBytes = std::function<std::span<const std::uint8_t>(const gguf::TensorInfo&)>;

void read_gguf_metadata(const gguf::Metadata& md, Contents& m) {
  const auto missing = [&](std::string_view key, std::string_view what) {
    return Error(fmt::format("{}: metadata key '{}' is missing; llama-quantize refuses an imatrix GGUF file without "
                             "it ({}; files of llama-imatrix have it)",
                             m.file, key, what));
  };
  const gguf::Value* datasets = md.find(kDatasetsKey);
  if (!datasets) throw missing(kDatasetsKey, "an array of strings");
  const gguf::Array* array = datasets->array();
  const std::vector<std::string>* names = array ? array->get_if<std::string>() : nullptr;
  if (!names) {
    throw Error(fmt::format("{}: metadata key '{}' is {} {}, not an array of strings", m.file, kDatasetsKey,
                            array ? "an array of" : "a",
                            gguf::type_name(array ? array->element_type() : datasets->type())));
  }
  m.datasets = *names;
  const auto u32 = [&](std::string_view key) -> std::uint64_t {
    const gguf::Value* v = md.find(key);
    if (!v) throw missing(key, "a u32");
    const std::uint32_t* x = v->get_if<std::uint32_t>();
    if (!x) throw Error(fmt::format("{}: metadata key '{}' is a {}, not a u32", m.file, key, gguf::type_name(v->type())));
    return *x;
  };
  m.chunk_count = u32(kChunkCountKey);
  m.chunk_size = u32(kChunkSizeKey);
}

std::optional<std::string_view> strip_suffix(std::string_view name, std::string_view suffix) {
  if (name.size() < suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return std::nullopt;
  return name.substr(0, name.size() - suffix.size());
}

void read_gguf(const gguf::Header& h, const TensorBytes& bytes_of, Contents& m) {
  m.format = Format::gguf;
  if (h.tensors.empty()) {
    throw Error(fmt::format("{}: the GGUF file has no tensors, so no importance matrix data (an imatrix file has "
                            "NAME.in_sum2 and NAME.counts tensors)",
                            m.file));
  }
  read_gguf_metadata(h.metadata, m);

  // Pair NAME.in_sum2 with NAME.counts, in the order the names first appear. The header parser has
  // refused duplicate tensor names, so each side is found at most once.
  struct Pair {
    std::string name;
    const gguf::TensorInfo* sums = nullptr;
    const gguf::TensorInfo* counts = nullptr;
  };
  std::vector<Pair> pairs;
  gguf::NameIndex pair_index;
  for (const gguf::TensorInfo& t : h.tensors) {
    std::optional<std::string_view> base = strip_suffix(t.name, kSumsSuffix);
    const bool is_sums = base.has_value();
    if (!base) base = strip_suffix(t.name, kCountsSuffix);
    if (!base) continue;  // other statistics (NAME.in_sum, ...): llama-quantize ignores them
    auto [it, added] = pair_index.try_emplace(std::string(*base), pairs.size());
    if (added) pairs.push_back({std::string(*base)});
    (is_sums ? pairs[it->second].sums : pairs[it->second].counts) = &t;
  }
  if (pairs.empty()) {
    throw Error(fmt::format("{}: none of the {} tensors is named NAME{} or NAME{}: not an importance matrix file",
                            m.file, h.tensors.size(), kSumsSuffix, kCountsSuffix));
  }

  for (const Pair& p : pairs) {
    const auto at = [&](const gguf::TensorInfo& t) { return h.data_offset + t.offset; };
    const auto fail = [&](const gguf::TensorInfo& t, std::uint64_t where, std::string_view problem) {
      return Error(fmt::format("{}: tensor {}, at byte {}: {}", m.file, in_quotes(t.name), where, problem));
    };
    if (!p.sums || !p.counts) {
      const gguf::TensorInfo& t = p.sums ? *p.sums : *p.counts;
      throw fail(t, at(t),
                 fmt::format("there is no tensor {}: each weight tensor needs both NAME{} and NAME{}",
                             in_quotes(p.name + std::string(p.sums ? kCountsSuffix : kSumsSuffix)), kSumsSuffix,
                             kCountsSuffix));
    }
    const gguf::TensorInfo& sums = *p.sums;
    const gguf::TensorInfo& counts = *p.counts;
    for (const gguf::TensorInfo* t : {&sums, &counts}) {
      if (t->type != ggml::Type::f32) {
        throw fail(*t, at(*t), fmt::format("its type is {}, not f32", ggml::traits(t->type).name));
      }
    }
    // llama-imatrix writes in_sum2 as [n_per_row, n_mat] and llama-quantize reads only those two
    // dimensions, so more (other than 1) would be silently dropped: refuse them.
    const std::uint64_t row = sums.dims.empty() ? 1 : sums.dims[0];
    const std::uint64_t mats = sums.dims.size() < 2 ? 1 : sums.dims[1];
    for (std::size_t d = 2; d < sums.dims.size(); ++d) {
      if (sums.dims[d] != 1) {
        throw fail(sums, at(sums),
                   fmt::format("its dims are {}; an importance matrix has two, [columns, matrices]",
                               dims_text(sums.dims)));
      }
    }
    if (row == 0 || mats == 0) throw fail(sums, at(sums), fmt::format("it has no elements (dims {})", dims_text(sums.dims)));
    if (counts.elements() != mats) {
      throw fail(counts, at(counts),
                 fmt::format("it has {} elements (dims {}) but {} (dims {}) has {} matrices, and each needs its "
                             "count",
                             counts.elements(), dims_text(counts.dims), in_quotes(sums.name), dims_text(sums.dims),
                             mats));
    }

    const std::span<const std::uint8_t> s = bytes_of(sums);
    const std::span<const std::uint8_t> c = bytes_of(counts);
    Entry e;
    e.row_length = row;
    e.matrices = mats;
    e.weights.resize(static_cast<std::size_t>(row * mats));  // within the file: the header parser checked it
    for (std::uint64_t j = 0; j < mats; ++j) {
      const float count = load32<float>(c.data() + 4 * j);
      // As llama-quantize: a matrix that saw no tokens (count 0, or anything not > 0) weighs 1.
      for (std::uint64_t i = 0; i < row; ++i) {
        const std::uint64_t k = j * row + i;
        const float sum = load32<float>(s.data() + 4 * k);
        const float w = count > 0.0f ? sum / count : 1.0f;
        if (!std::isfinite(w)) {
          throw fail(sums, at(sums) + 4 * k,
                     fmt::format("matrix {}, column {}: in_sum2 {} / counts {} is {}; llama-quantize refuses an "
                                 "importance matrix with NaN or infinity",
                                 j, i, sum, count, w));
        }
        e.weights[static_cast<std::size_t>(k)] = w;
      }
    }
    add_entry(m, p.name, std::move(e), at(sums));
  }
}

// ---------------------------------------------------------------------------------------------
// Legacy

class LegacyReader {
 public:
  LegacyReader(std::span<const std::uint8_t> bytes, Contents& m) : bytes_(bytes), m_(m) {}

  void read() {
    m_.format = Format::legacy;
    const std::int32_t n = i32("the entry count");
    // The least an entry takes: name length, an empty name, ncall, value count, one value.
    constexpr std::uint64_t kMinEntryBytes = 4 + 4 + 4 + 4;
    if (n < 1) fail(0, fmt::format("the entry count is {}; a legacy imatrix file has at least one entry", n));
    if (static_cast<std::uint64_t>(n) > remaining() / kMinEntryBytes) {
      fail(0, fmt::format("the entry count is {}, which needs at least {} bytes each but the file has {} left "
                          "(truncated, or not an imatrix file)",
                          n, kMinEntryBytes, remaining()));
    }
    m_.names.reserve(static_cast<std::size_t>(n));
    m_.entries.reserve(static_cast<std::size_t>(n));
    for (std::int32_t k = 0; k < n; ++k) read_entry(static_cast<std::uint64_t>(k));
    read_trailer();
  }

 private:
  std::span<const std::uint8_t> bytes_;
  Contents& m_;
  std::uint64_t pos_ = 0;
  // The entry being read, for messages.
  std::optional<std::uint64_t> entry_;
  std::string_view name_;
  bool named_ = false;
  bool trailer_ = false;

  std::string where() const {
    if (trailer_) return "trailer (chunk count and dataset name)";
    if (!entry_) return "header";
    return named_ ? fmt::format("entry {} (#{})", in_quotes(name_), *entry_) : fmt::format("entry #{}", *entry_);
  }

  [[noreturn]] void fail(std::uint64_t at, std::string_view problem) const {
    throw Error(fmt::format("{}: {}, at byte {}: {}", m_.file, where(), at, problem));
  }

  std::uint64_t remaining() const noexcept { return bytes_.size() - pos_; }

  const std::uint8_t* take(std::uint64_t n, std::string_view what) {
    if (n > remaining()) {
      fail(pos_, fmt::format("{} needs {} bytes but the file ends {} bytes later (truncated or corrupt)", what, n,
                             remaining()));
    }
    const std::uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }

  std::int32_t i32(std::string_view what) { return load32<std::int32_t>(take(4, what)); }

  void read_entry(std::uint64_t k) {
    entry_ = k;
    named_ = false;
    const std::uint64_t start = pos_;

    const std::uint64_t len_at = pos_;
    const std::int32_t len = i32("the name length");
    if (len < 0) fail(len_at, fmt::format("the name length is {}", len));
    if (static_cast<std::uint64_t>(len) > remaining()) {
      fail(len_at, fmt::format("the name is {} bytes long but the file ends {} bytes later", len, remaining()));
    }
    const std::uint64_t name_at = pos_;
    const auto* p = take(static_cast<std::uint64_t>(len), "the name");
    const std::string_view name(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
    name_ = name;
    named_ = true;
    // llama-quantize would cut the name at the first zero byte, which can make two names one.
    if (name.find('\0') != std::string_view::npos) fail(name_at, "the name contains a zero byte");
    if (auto it = m_.index.find(name); it != m_.index.end()) {
      fail(name_at, fmt::format("the name is used by entry #{} (at byte {}) already", it->second,
                                m_.entry_at[it->second]));
    }

    const std::int32_t ncall = i32("ncall");
    const std::uint64_t count_at = pos_;
    const std::int32_t nval = i32("the value count");
    if (nval < 1) fail(count_at, fmt::format("the value count is {}; an entry has at least one value", nval));
    if (static_cast<std::uint64_t>(nval) > remaining() / 4) {
      fail(count_at, fmt::format("the value count is {}, which needs {} bytes but the file ends {} bytes later "
                                 "(truncated or corrupt)",
                                 nval, 4 * static_cast<std::uint64_t>(nval), remaining()));
    }
    const std::uint64_t values_at = pos_;
    const std::uint8_t* values = take(4 * static_cast<std::uint64_t>(nval), "the values");

    Entry e;
    e.row_length = static_cast<std::uint64_t>(nval);
    e.matrices = 1;
    e.weights.resize(static_cast<std::size_t>(nval));
    // As llama-quantize: the stored values are divided by ncall (a float division, ncall converted
    // to float) when it is positive, and used as they are otherwise.
    const float divisor = static_cast<float>(ncall);
    for (std::int32_t i = 0; i < nval; ++i) {
      const float v = load32<float>(values + 4 * static_cast<std::uint64_t>(i));
      const float w = ncall > 0 ? v / divisor : v;
      if (!std::isfinite(w)) {
        fail(values_at + 4 * static_cast<std::uint64_t>(i),
             fmt::format("value {} is {} (ncall {}), which makes the weight {}; llama-quantize refuses an importance "
                         "matrix with NaN or infinity",
                         i, v, ncall, w));
      }
      e.weights[static_cast<std::size_t>(i)] = w;
    }
    add_entry(m_, std::string(name), std::move(e), start);
  }

  // Optional: int32 chunk count, int32 dataset-name length, the name. Either all of it or nothing.
  void read_trailer() {
    entry_.reset();
    if (remaining() == 0) return;
    trailer_ = true;
    const std::uint64_t chunks_at = pos_;
    const std::int32_t chunks = i32("the chunk count");
    if (chunks < 0) fail(chunks_at, fmt::format("the chunk count is {}", chunks));
    const std::uint64_t len_at = pos_;
    const std::int32_t len = i32("the dataset-name length");
    if (len < 0) fail(len_at, fmt::format("the dataset-name length is {}", len));
    if (static_cast<std::uint64_t>(len) > remaining()) {
      fail(len_at, fmt::format("the dataset name is {} bytes long but the file ends {} bytes later", len, remaining()));
    }
    const auto* p = take(static_cast<std::uint64_t>(len), "the dataset name");
    if (remaining() != 0) {
      fail(pos_, fmt::format("{} bytes follow the end of the importance matrix data (corrupt, or not an imatrix file)",
                             remaining()));
    }
    m_.chunk_count = static_cast<std::uint64_t>(chunks);
    // llama-quantize keeps the name even when it is empty.
    m_.datasets.emplace_back(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------

ImportanceMatrix::ImportanceMatrix() : impl_(std::make_unique<Impl>()) {}
ImportanceMatrix::ImportanceMatrix(ImportanceMatrix&&) noexcept = default;
ImportanceMatrix& ImportanceMatrix::operator=(ImportanceMatrix&&) noexcept = default;
ImportanceMatrix::~ImportanceMatrix() = default;

ImportanceMatrix ImportanceMatrix::parse(std::span<const std::uint8_t> bytes, std::string_view file) {
  ImportanceMatrix out;
  Impl& m = *out.impl_;
  m.file = std::string(file);
  if (starts_with_gguf_magic(bytes)) {
    const gguf::Header h = gguf::parse_header(bytes, bytes.size(), file);
    read_gguf(
        h,
        [&](const gguf::TensorInfo& t) {
          return bytes.subspan(static_cast<std::size_t>(h.data_offset + t.offset), static_cast<std::size_t>(t.bytes));
        },
        m);
  } else {
    LegacyReader(bytes, m).read();
  }
  return out;
}

ImportanceMatrix ImportanceMatrix::read(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::array<std::uint8_t, 4> head{};
  std::size_t got = 0;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: cannot open: {}", name, std::strerror(errno)));
    in.read(reinterpret_cast<char*>(head.data()), head.size());
    got = static_cast<std::size_t>(in.gcount());
  }
  if (starts_with_gguf_magic(std::span(head.data(), got))) {
    const gguf::File f = gguf::File::open(path);
    ImportanceMatrix out;
    out.impl_->file = name;
    read_gguf(f.header(), [&](const gguf::TensorInfo& t) { return f.data(t); }, *out.impl_);
    return out;
  }
  const std::vector<std::byte> bytes = zp::detail::read_file(path);
  return parse(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), name);
}

Format ImportanceMatrix::format() const noexcept { return impl_->format; }
std::size_t ImportanceMatrix::size() const noexcept { return impl_->entries.size(); }
const std::vector<std::string>& ImportanceMatrix::names() const noexcept { return impl_->names; }
const std::vector<std::string>& ImportanceMatrix::datasets() const noexcept { return impl_->datasets; }
std::uint64_t ImportanceMatrix::chunk_count() const noexcept { return impl_->chunk_count; }
std::uint64_t ImportanceMatrix::chunk_size() const noexcept { return impl_->chunk_size; }

const Entry* ImportanceMatrix::find(std::string_view tensor) const noexcept {
  const auto it = impl_->index.find(tensor);
  return it == impl_->index.end() ? nullptr : &impl_->entries[it->second];
}

std::span<const float> ImportanceMatrix::weights_for(std::string_view tensor,
                                                     std::span<const std::uint64_t> dims) const {
  const auto it = impl_->index.find(tensor);
  if (it == impl_->index.end()) return {};
  const Entry& e = impl_->entries[it->second];
  const std::uint64_t ne0 = dims.empty() ? 1 : dims[0];
  const std::uint64_t ne2 = dims.size() < 3 ? 1 : dims[2];
  const bool fits = ne2 == 0 || ne0 <= std::numeric_limits<std::uint64_t>::max() / ne2;
  if (fits && e.weights.size() == ne0 * ne2) return e.weights;
  if (tensor == kTokenEmbd) return {};
  const std::string need = fits ? fmt::format("{}", ne0 * ne2) : std::string("more than 2^64");
  throw Error(fmt::format("{}: entry {}, at byte {}: it has {} weights but a tensor of dims {} needs ne[0]*ne[2] = {} "
                          "(llama-quantize refuses this: the importance matrix was made for another model)",
                          impl_->file, in_quotes(tensor), impl_->entry_at[it->second], e.weights.size(),
                          dims_text(dims), need));
}

}  // namespace zp::imatrix
