// The GGUF header parser. It reads the header once, front to back, and checks every count and
// length against the bytes the file has left before it reserves or reads anything, so a hostile
// file costs at most a few times its own size in memory. Nothing past the header is read: tensor
// data is only located and bounds-checked.
#include <algorithm>
#include <limits>
#include <numeric>

#include "formats/gguf/gguf_detail.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace zp::gguf {
namespace {

using detail::in_quotes;
using detail::load;

constexpr std::uint64_t kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
// Header fields before the metadata: magic, version, tensor count, metadata count.
constexpr std::uint64_t kFixedHeaderBytes = 4 + 4 + 8 + 8;
// The least a metadata entry takes (a one-byte key with its length, a type, a one-byte value)
// and a tensor info (an empty name with its length, a dimension count, a type, an offset).
constexpr std::uint64_t kMinEntryBytes = 8 + 1 + 4 + 1;
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;

class Parser {
 public:
  Parser(std::span<const std::uint8_t> prefix, std::uint64_t file_size, std::string_view file)
      : bytes_(prefix), size_(file_size), file_(file) {}

  Header parse() {
    Header h;
    read_start(h);
    read_metadata(h);
    read_alignment(h);
    read_tensor_infos(h);
    place_data(h);
    return h;
  }

 private:
  enum class Part { header, entry, tensor };

  std::span<const std::uint8_t> bytes_;
  std::uint64_t size_;
  std::string_view file_;
  std::uint64_t pos_ = 0;
  // What is being read, for messages (formatted only when something fails).
  Part part_ = Part::header;
  std::uint64_t index_ = 0;
  std::string_view name_;
  bool named_ = false;

  std::string where() const {
    switch (part_) {
      case Part::entry:
        return named_ ? fmt::format("metadata key {} (#{})", in_quotes(name_), index_)
                      : fmt::format("metadata entry #{}", index_);
      case Part::tensor:
        return named_ ? fmt::format("tensor {} (#{})", in_quotes(name_), index_) : fmt::format("tensor info #{}", index_);
      case Part::header:
        break;
    }
    return "header";
  }

  [[noreturn]] void fail(std::uint64_t at, std::string_view problem) const {
    throw Error(fmt::format("{}: {}, at byte {}: {}", file_, where(), at, problem));
  }

  std::uint64_t remaining() const noexcept { return size_ - pos_; }

  // The next n bytes, after checking the file (and the bytes given) has them.
  const std::uint8_t* take(std::uint64_t n, std::string_view what) {
    if (n > remaining()) {
      fail(pos_, fmt::format("{} needs {} bytes but the file ends {} bytes later (truncated or corrupt)", what, n,
                             remaining()));
    }
    if (n > bytes_.size() - std::min<std::uint64_t>(pos_, bytes_.size())) {
      fail(pos_, fmt::format("{} runs past the {} bytes of the header given to the parser", what, bytes_.size()));
    }
    const std::uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }

  template <class T>
  T read(std::string_view what) {
    return load<T>(take(sizeof(T), what));
  }

  // `element`: the string's index in an array, for messages (none: -1); formatted only on failure,
  // since a vocabulary has hundreds of thousands of strings.
  std::string_view read_string(std::string_view what, std::uint64_t max_bytes = kInt64Max, std::int64_t element = -1) {
    const std::uint64_t at = pos_;
    const auto describe = [&] { return element < 0 ? std::string(what) : fmt::format("string #{}", element); };
    if (sizeof(std::uint64_t) > remaining()) take(sizeof(std::uint64_t), describe());  // fails with the reason
    const auto n = read<std::uint64_t>(what);
    if (n > max_bytes) fail(at, fmt::format("{} is {} bytes long, over the limit of {}", describe(), n, max_bytes));
    if (n > remaining()) {
      fail(at, fmt::format("{} is {} bytes long but the file ends {} bytes later", describe(), n, remaining()));
    }
    const auto* p = take(n, what);
    return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
  }

  // A count of items taking at least `each` bytes, checked against what the file has left.
  std::uint64_t read_count(std::string_view what, std::uint64_t each) {
    const std::uint64_t at = pos_;
    const auto n = read<std::uint64_t>(what);
    if (n > remaining() / each) {
      fail(at, fmt::format("{} is {}, which needs at least {} bytes each but the file has {} left", what, n, each,
                           remaining()));
    }
    return n;
  }

  void read_start(Header& h) {
    if (size_ < kFixedHeaderBytes) {
      fail(0, fmt::format("the file is {} bytes, shorter than a GGUF header ({} bytes)", size_, kFixedHeaderBytes));
    }
    const std::uint8_t* magic = take(4, "the magic");
    if (!std::equal(magic, magic + 4, detail::kMagic)) {
      fail(0, fmt::format("not a GGUF file: it starts with {} instead of 'GGUF'",
                          in_quotes({reinterpret_cast<const char*>(magic), 4})));
    }
    const std::uint64_t at = pos_;
    h.version = read<std::uint32_t>("the version");
    if (h.version == 2 || h.version == 3) {
      // Same layout: version 3 only announced that big-endian files may exist.
    } else if (h.version == 1) {
      fail(at, "GGUF version 1 (32-bit counts) is not supported; convert the model again with a current llama.cpp");
    } else if (h.version > 3 && __builtin_bswap32(h.version) >= 1 && __builtin_bswap32(h.version) <= 3) {
      fail(at, fmt::format("the version reads {} little-endian, {} big-endian: this is a big-endian GGUF file, which "
                           "is not supported (only little-endian files are)",
                           h.version, __builtin_bswap32(h.version)));
    } else {
      fail(at, fmt::format("GGUF version {} is not supported (versions 2 and 3 are)", h.version));
    }
    const std::uint64_t tensors = read_count("the tensor count", kMinTensorInfoBytes);
    const std::uint64_t entries = read_count("the metadata count", kMinEntryBytes);
    if (tensors * kMinTensorInfoBytes + entries * kMinEntryBytes > remaining()) {
      fail(kFixedHeaderBytes - 16,
           fmt::format("{} tensor infos and {} metadata entries need at least {} bytes but the file has {} left",
                       tensors, entries, tensors * kMinTensorInfoBytes + entries * kMinEntryBytes, remaining()));
    }
    h.tensors.reserve(static_cast<std::size_t>(tensors));
    tensor_count_ = tensors;
    entry_count_ = entries;
  }
  std::uint64_t tensor_count_ = 0;
  std::uint64_t entry_count_ = 0;

  void read_metadata(Header& h) {
    part_ = Part::entry;
    for (index_ = 0; index_ < entry_count_; ++index_) {
      named_ = false;
      const std::uint64_t at = pos_;
      const std::string_view key = read_string("the key");
      if (key.empty()) fail(at, "the key is empty");
      name_ = key;
      named_ = true;
      const std::uint64_t type_at = pos_;
      const auto type = read<std::uint32_t>("the value type");
      Value value = read_value(type, type_at, 0);
      if (const Value* first = h.metadata.find(key); first != nullptr) {
        fail(at, "the key appears twice");
      }
      h.metadata.insert(std::string(key), std::move(value));
    }
    named_ = false;
    part_ = Part::header;
  }

  Value read_value(std::uint32_t type, std::uint64_t type_at, int depth) {
    if (!detail::is_known(type)) {
      fail(type_at, fmt::format("unknown value type id {} (GGUF defines 0 to 12)", type));
    }
    switch (static_cast<ValueType>(type)) {
      case ValueType::u8: return Value(read<std::uint8_t>("the value"));
      case ValueType::i8: return Value(read<std::int8_t>("the value"));
      case ValueType::u16: return Value(read<std::uint16_t>("the value"));
      case ValueType::i16: return Value(read<std::int16_t>("the value"));
      case ValueType::u32: return Value(read<std::uint32_t>("the value"));
      case ValueType::i32: return Value(read<std::int32_t>("the value"));
      case ValueType::f32: return Value(read<float>("the value"));
      case ValueType::u64: return Value(read<std::uint64_t>("the value"));
      case ValueType::i64: return Value(read<std::int64_t>("the value"));
      case ValueType::f64: return Value(read<double>("the value"));
      case ValueType::boolean: return Value(read_bool(0, false));
      case ValueType::string: return Value(std::string(read_string("the string")));
      case ValueType::array: return Value(read_array(depth + 1));
    }
    return {};  // not reached: the type was checked above
  }

  bool read_bool(std::uint64_t element, bool in_array) {
    const std::uint64_t at = pos_;
    const auto b = read<std::uint8_t>("the bool");
    if (b > 1) {
      fail(at, in_array ? fmt::format("element #{} of the bool array is {}, not 0 or 1", element, b)
                        : fmt::format("the bool value is {}, not 0 or 1", b));
    }
    return b == 1;
  }

  template <class T>
  std::vector<T> read_numbers(std::uint64_t n) {
    // The count was checked against the bytes left, so the vector is at most the file's size.
    const std::uint8_t* p = take(n * sizeof(T), "the array");
    std::vector<T> out(static_cast<std::size_t>(n));
    if constexpr (std::endian::native == std::endian::little) {
      if (n > 0) std::memcpy(out.data(), p, static_cast<std::size_t>(n) * sizeof(T));
    } else {
      for (std::size_t k = 0; k < out.size(); ++k) out[k] = load<T>(p + k * sizeof(T));
    }
    return out;
  }

  // An array value (after the ARRAY type id): element type, count, elements. depth 1 is an array
  // in a metadata entry, 2 an array in that array, ...
  Array read_array(int depth) {
    const std::uint64_t at = pos_;
    if (depth > kMaxArrayDepth) {
      fail(at, fmt::format("arrays nest more than {} deep", kMaxArrayDepth));
    }
    const auto type = read<std::uint32_t>("the array's element type");
    if (!detail::is_known(type)) {
      fail(at, fmt::format("array of unknown value type id {} (GGUF defines 0 to 12)", type));
    }
    const auto element = static_cast<ValueType>(type);
    const std::uint64_t n = read_count(fmt::format("the length of the {} array", type_name(element)),
                                       detail::min_encoded_bytes(element));
    switch (element) {
      case ValueType::u8: return Array(read_numbers<std::uint8_t>(n));
      case ValueType::i8: return Array(read_numbers<std::int8_t>(n));
      case ValueType::u16: return Array(read_numbers<std::uint16_t>(n));
      case ValueType::i16: return Array(read_numbers<std::int16_t>(n));
      case ValueType::u32: return Array(read_numbers<std::uint32_t>(n));
      case ValueType::i32: return Array(read_numbers<std::int32_t>(n));
      case ValueType::f32: return Array(read_numbers<float>(n));
      case ValueType::u64: return Array(read_numbers<std::uint64_t>(n));
      case ValueType::i64: return Array(read_numbers<std::int64_t>(n));
      case ValueType::f64: return Array(read_numbers<double>(n));
      case ValueType::boolean: {
        std::vector<bool> out(static_cast<std::size_t>(n));
        for (std::uint64_t k = 0; k < n; ++k) out[static_cast<std::size_t>(k)] = read_bool(k, true);
        return Array(std::move(out));
      }
      case ValueType::string: {
        std::vector<std::string> out;
        out.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t k = 0; k < n; ++k) {
          out.emplace_back(read_string("a string", kInt64Max, static_cast<std::int64_t>(k)));
        }
        return Array(std::move(out));
      }
      case ValueType::array: {
        std::vector<Array> out;
        out.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t k = 0; k < n; ++k) out.push_back(read_array(depth + 1));
        return Array(std::move(out));
      }
    }
    return {};  // not reached: the type was checked above
  }

  void read_alignment(Header& h) {
    const Value* v = h.metadata.find(kAlignmentKey);
    if (!v) return;
    const auto& entries = h.metadata.entries();
    const auto index = std::find_if(entries.begin(), entries.end(), [](const auto& e) { return e.first == kAlignmentKey; }) -
                       entries.begin();
    const auto* a = v->get_if<std::uint32_t>();
    if (!a) {
      throw Error(fmt::format("{}: metadata key '{}' (#{}) is a {}, not a u32", file_, kAlignmentKey, index,
                              type_name(v->type())));
    }
    if (!detail::is_power_of_two(*a)) {
      throw Error(fmt::format("{}: metadata key '{}' (#{}) is {}, not a power of two", file_, kAlignmentKey, index, *a));
    }
    h.alignment = *a;
  }

  void read_tensor_infos(Header& h) {
    part_ = Part::tensor;
    info_at_.reserve(static_cast<std::size_t>(tensor_count_));
    for (index_ = 0; index_ < tensor_count_; ++index_) {
      named_ = false;
      const std::uint64_t at = pos_;
      info_at_.push_back(at);
      TensorInfo t;
      const std::string_view name = read_string("the name", kMaxNameBytes);
      name_ = name;
      named_ = true;
      if (const auto it = h.tensor_index.find(name); it != h.tensor_index.end()) {
        fail(at, fmt::format("the name is used by tensor #{} already", it->second));
      }
      t.name = name;

      const std::uint64_t dims_at = pos_;
      const auto n_dims = read<std::uint32_t>("the dimension count");
      if (n_dims > kMaxDims) fail(dims_at, fmt::format("{} dimensions, more than ggml's {}", n_dims, kMaxDims));
      t.dims.resize(n_dims);
      for (std::uint32_t d = 0; d < n_dims; ++d) t.dims[d] = read<std::uint64_t>("the dimensions");

      const std::uint64_t type_at = pos_;
      const auto type = read<std::uint32_t>("the ggml type");
      const ggml::TypeTraits* traits = ggml::find_traits(type);
      if (!traits) fail(type_at, fmt::format("unknown ggml type id {}", type));
      t.type = traits->type;
      try {
        t.bytes = tensor_bytes(t.type, t.dims);
      } catch (const Error& e) {
        fail(dims_at, e.what());
      }

      const std::uint64_t offset_at = pos_;
      t.offset = read<std::uint64_t>("the offset");
      if (t.offset % h.alignment != 0) {
        fail(offset_at, fmt::format("offset {} is not a multiple of the alignment {}", t.offset, h.alignment));
      }
      h.tensor_index.emplace(t.name, h.tensors.size());
      h.tensors.push_back(std::move(t));
    }
    named_ = false;
    part_ = Part::header;
  }
  std::vector<std::uint64_t> info_at_;  // where each tensor info starts, for messages

  void place_data(Header& h) {
    const std::uint64_t data_at = detail::align_up(pos_, h.alignment);
    h.data_offset = data_at;
    if (h.tensors.empty()) {
      // ggml pads here even when no tensor follows, but a file that ends without it loses nothing.
      h.data_size = data_at <= size_ ? size_ - data_at : 0;
      return;
    }
    if (data_at > size_) {
      throw Error(fmt::format("{}: the data section starts at byte {} (the header padded to the alignment {}) but the "
                              "file has only {} bytes (truncated)",
                              file_, data_at, h.alignment, size_));
    }
    h.data_size = size_ - data_at;

    part_ = Part::tensor;
    named_ = true;
    for (std::size_t k = 0; k < h.tensors.size(); ++k) {
      const TensorInfo& t = h.tensors[k];
      index_ = k;
      name_ = t.name;
      if (t.offset > h.data_size || t.bytes > h.data_size - t.offset) {
        fail(info_at_[k], fmt::format("its {} bytes at offset {} run past the end of the data section ({} bytes "
                                      "from byte {}): the file is truncated or the offset is wrong",
                                      t.bytes, t.offset, h.data_size, h.data_offset));
      }
    }
    // In offset order, each tensor with data must start at or after the end of the one before.
    std::vector<std::size_t> order(h.tensors.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return h.tensors[a].offset != h.tensors[b].offset ? h.tensors[a].offset < h.tensors[b].offset : a < b;
    });
    const TensorInfo* previous = nullptr;
    for (const std::size_t k : order) {
      const TensorInfo& t = h.tensors[k];
      if (t.bytes == 0) continue;
      if (previous && t.offset < previous->offset + previous->bytes) {
        index_ = k;
        name_ = t.name;
        fail(info_at_[k], fmt::format("its data [{}, {}) overlaps that of tensor {} [{}, {})", t.offset,
                                      t.offset + t.bytes, in_quotes(previous->name), previous->offset,
                                      previous->offset + previous->bytes));
      }
      previous = &t;
    }
    part_ = Part::header;
    named_ = false;
  }
};

}  // namespace

std::uint64_t TensorInfo::elements() const noexcept {
  std::uint64_t n = 1;
  for (const std::uint64_t d : dims) n *= d;
  return n;
}

std::uint64_t TensorInfo::rows() const noexcept {
  std::uint64_t n = 1;
  for (std::size_t k = 1; k < dims.size(); ++k) n *= dims[k];
  return n;
}

std::uint64_t tensor_bytes(ggml::Type type, std::span<const std::uint64_t> dims) {
  if (dims.size() > kMaxDims) throw Error(fmt::format("{} dimensions, more than ggml's {}", dims.size(), kMaxDims));
  // ggml keeps dimensions and element counts in int64_t, so every product must fit in 63 bits;
  // checking the rows separately also catches [0, 2^40, 2^40], which has no elements but whose
  // rows would overflow.
  std::uint64_t elements = 1;
  std::uint64_t rows = 1;
  for (std::size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] > kInt64Max) throw Error(fmt::format("dimension {} is {}, more than 2^63 - 1", k, dims[k]));
    if (__builtin_mul_overflow(elements, dims[k], &elements) || elements > kInt64Max ||
        (k > 0 && (__builtin_mul_overflow(rows, dims[k], &rows) || rows > kInt64Max))) {
      std::string list;
      for (const std::uint64_t d : dims) list += fmt::format("{}{}", list.empty() ? "" : ", ", d);
      throw Error(fmt::format("dimensions [{}] make more than 2^63 - 1 elements", list));
    }
  }
  const ggml::TypeTraits& traits = ggml::traits(type);
  const std::uint64_t row = dims.empty() ? 1 : dims[0];
  if (row % traits.block_size != 0) {
    throw Error(fmt::format("a row of {} values is not a whole number of {} blocks of {}", row, traits.name,
                            traits.block_size));
  }
  const std::optional<std::uint64_t> row_size = ggml::row_bytes(type, row);
  std::uint64_t bytes = 0;
  if (!row_size || __builtin_mul_overflow(*row_size, rows, &bytes) || bytes > kInt64Max) {
    throw Error(fmt::format("{} rows of {} {} values make more than 2^63 - 1 bytes", rows, row, traits.name));
  }
  return bytes;
}

const TensorInfo* Header::find_tensor(std::string_view name) const noexcept {
  const auto it = tensor_index.find(name);
  return it == tensor_index.end() ? nullptr : &tensors[it->second];
}

Header parse_header(std::span<const std::uint8_t> prefix, std::uint64_t file_size, std::string_view file) {
  if (prefix.size() > file_size) prefix = prefix.first(static_cast<std::size_t>(file_size));
  return Parser(prefix, file_size, file).parse();
}

}  // namespace zp::gguf
