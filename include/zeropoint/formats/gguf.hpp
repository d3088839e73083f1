// zeropoint/formats/gguf.hpp — GGUF, the file format of llama.cpp and ggml (versions 2 and 3).
//
// A GGUF file is, all little-endian: the magic "GGUF", a uint32 version, a uint64 tensor count, a
// uint64 metadata count; the metadata (key, value type, value) in file order; one tensor info per
// tensor (name, dimension count, dimensions in ggml order, ggml type id, offset); zero padding to
// the alignment (the uint32 "general.alignment", 32 when absent); then the data section, where each
// tensor starts at its offset (a multiple of the alignment, counted from the section's start).
// docs/formats.md describes what is checked and what is refused.
//
// Files are hostile input: the whole header is parsed and checked when a file is opened, before
// any tensor is touched; every count, length, offset and size is checked against the file before
// it is used; every problem is a zp::Error naming the file, the key or tensor, and the position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "zeropoint/ggml.hpp"

namespace zp::gguf {

namespace detail {
// Lets the name indexes below be searched with a string_view, without building a std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail
/// Name -> position, searchable by std::string_view.
using NameIndex = std::unordered_map<std::string, std::size_t, detail::StringHash, std::equal_to<>>;

// ---------------------------------------------------------------------------------------------
// Metadata values

/// gguf_metadata_value_type, with the format's numbers.
enum class ValueType : std::uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};
/// "u8", "string", "array", ... ; "unknown" for ids outside the enum.
std::string_view type_name(ValueType type) noexcept;

struct Array;

/// The elements of an array, one vector per element type; the alternative's index is the
/// element's ValueType (arrays of arrays: index 9).
using ArrayItems = std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::uint16_t>,
                                std::vector<std::int16_t>, std::vector<std::uint32_t>, std::vector<std::int32_t>,
                                std::vector<float>, std::vector<bool>, std::vector<std::string>, std::vector<Array>,
                                std::vector<std::uint64_t>, std::vector<std::int64_t>, std::vector<double>>;

/// A metadata array. Its element type is kept even when it is empty.
struct Array {
  ArrayItems items;

  Array() = default;
  template <class T>
  explicit Array(std::vector<T> values) : items(std::move(values)) {}

  ValueType element_type() const noexcept { return static_cast<ValueType>(items.index()); }
  std::size_t size() const noexcept;
  /// The elements as std::vector<T>; nullptr when they are of another type.
  template <class T>
  const std::vector<T>* get_if() const noexcept {
    return std::get_if<std::vector<T>>(&items);
  }
  bool operator==(const Array&) const = default;
};

/// One metadata value. The variant's index is the value's ValueType.
class Value {
 public:
  using Storage = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t,
                               float, bool, std::string, Array, std::uint64_t, std::int64_t, double>;

  Value() = default;
  /// From exactly one of the Storage types (Value(std::uint32_t{2}), Value(1.5f), Value(Array(...))):
  /// the C++ type chooses the GGUF type, so no conversion may pick it silently.
  template <class T>
    requires(!std::is_same_v<std::remove_cvref_t<T>, Value> &&
             std::is_constructible_v<Storage, std::in_place_type_t<std::remove_cvref_t<T>>, T>)
  Value(T&& x) : v_(std::in_place_type<std::remove_cvref_t<T>>, std::forward<T>(x)) {}
  Value(const char* s) : v_(std::in_place_type<std::string>, s) {}
  Value(std::string_view s) : v_(std::in_place_type<std::string>, s) {}

  ValueType type() const noexcept { return static_cast<ValueType>(v_.index()); }
  const Storage& storage() const noexcept { return v_; }

  /// The value as T (one of the Storage types); nullptr when it is of another type.
  template <class T>
  const T* get_if() const noexcept {
    return std::get_if<T>(&v_);
  }
  /// The value of any integer type as uint64_t; nothing for other types and negative values
  /// (counts such as context lengths are written as u32 by some tools and u64 by others).
  std::optional<std::uint64_t> to_u64() const noexcept;
  /// A string value; nullptr when the value is not a string.
  const std::string* string() const noexcept { return get_if<std::string>(); }
  /// An array value; nullptr when the value is not an array.
  const Array* array() const noexcept { return get_if<Array>(); }

  bool operator==(const Value&) const = default;  // floats compare as floats (NaN != NaN)

 private:
  Storage v_;
};

/// The metadata of a file: (key, value) pairs in file order, keys unique.
class Metadata {
 public:
  using Entry = std::pair<std::string, Value>;

  const std::vector<Entry>& entries() const noexcept { return entries_; }
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  auto begin() const noexcept { return entries_.begin(); }
  auto end() const noexcept { return entries_.end(); }

  const Value* find(std::string_view key) const noexcept;
  /// The value of `key` as T; nullptr when the key is absent or holds another type.
  template <class T>
  const T* get_if(std::string_view key) const noexcept {
    const Value* v = find(key);
    return v ? v->get_if<T>() : nullptr;
  }
  /// Replaces the value of an existing key where it stands, or appends a new key at the end.
  void set(std::string key, Value value);
  /// Appends a key; false (and nothing changes) when it is already there.
  bool insert(std::string key, Value value);
  /// Removes a key; false when it was not there.
  bool erase(std::string_view key);

  bool operator==(const Metadata& other) const { return entries_ == other.entries_; }

 private:
  std::vector<Entry> entries_;
  NameIndex index_;  // key -> position in entries_
};

// ---------------------------------------------------------------------------------------------
// Well-known keys and llama.cpp's numbering of file types

inline constexpr std::string_view kAlignmentKey = "general.alignment";  ///< uint32
inline constexpr std::string_view kQuantizationVersionKey = "general.quantization_version";  ///< uint32
inline constexpr std::string_view kFileTypeKey = "general.file_type";  ///< uint32, llama_ftype
inline constexpr std::uint32_t kDefaultAlignment = 32;
/// What llama.cpp writes (GGML_QNT_VERSION) for every block format it currently defines.
inline constexpr std::uint32_t kQuantizationVersion = 2;

/// The llama_ftype of a file whose (large) tensors are all of `type`, as llama.cpp numbers them:
/// f32 0, f16 1, q4_0 2, q4_1 3, q8_0 7, q5_0 8, q5_1 9, q2_K 10, q3_K 12 (Q3_K_M), q4_K 15 (Q4_K_M),
/// q5_K 17 (Q5_K_M), q6_K 18, bf16 32, ... For the K types llama_ftype has only mixes (_S, _M,
/// _L); a uniform file gets the _M number, as llama.cpp's loader guesses when the key is absent
/// and as llama-quantize's aliases "Q3_K"/"Q4_K"/"Q5_K" mean. Nothing for types no llama_ftype names.
std::optional<std::uint32_t> file_type_of(ggml::Type type) noexcept;
/// Sets general.quantization_version (uint32), in place when the key is there.
void set_quantization_version(Metadata& metadata, std::uint32_t version = kQuantizationVersion);
/// Sets general.file_type (uint32), in place when the key is there.
void set_file_type(Metadata& metadata, std::uint32_t file_type);

// ---------------------------------------------------------------------------------------------
// Tensors and the header

/// At most this many dimensions (ggml's GGML_MAX_DIMS).
inline constexpr std::size_t kMaxDims = 4;
/// Tensor names are at most this many bytes (ggml's GGML_MAX_NAME less its terminating zero; the
/// specification says 64, but ggml refuses a 64-byte name).
inline constexpr std::size_t kMaxNameBytes = 63;
/// Arrays of arrays nest at most this deep (1: an array of scalars or strings).
inline constexpr int kMaxArrayDepth = 16;

struct TensorInfo {
  std::string name;
  /// ggml order: dims[0] is the contiguous row (the last dimension of a row-major shape). As many
  /// entries as the file gives (0 to kMaxDims; none means one element).
  std::vector<std::uint64_t> dims;
  ggml::Type type = ggml::Type::f32;
  std::uint64_t offset = 0;  ///< from the start of the data section; a multiple of the alignment
  std::uint64_t bytes = 0;   ///< rows x row_bytes(type, dims[0])

  std::uint64_t elements() const noexcept;  ///< product of dims
  std::uint64_t rows() const noexcept;      ///< product of dims[1..]
};

/// Bytes of a tensor of `dims` (ggml order) in `type`. Throws zp::Error (without file or tensor:
/// callers add them) when dims[0] is not a whole number of blocks, there are more than kMaxDims
/// dimensions, or the element or byte count overflows 63 bits.
std::uint64_t tensor_bytes(ggml::Type type, std::span<const std::uint64_t> dims);

/// A parsed and validated header.
struct Header {
  std::uint32_t version = 3;
  std::uint32_t alignment = kDefaultAlignment;
  Metadata metadata;
  std::vector<TensorInfo> tensors;  ///< in file order (the order of the tensor infos)
  std::uint64_t data_offset = 0;    ///< where the data section starts, from the start of the file
  std::uint64_t data_size = 0;      ///< file size - data_offset (0 for a file without tensors)

  const TensorInfo* find_tensor(std::string_view name) const noexcept;

  NameIndex tensor_index;  ///< name -> position in tensors; filled by parse_header
};

/// Parses and checks the header of a file of `file_size` bytes whose first bytes are `prefix`
/// (all of the file, or at least all of its header: a header running past the prefix is an
/// error). Checks: magic; version 2 or 3 (1, big-endian files and newer versions are refused);
/// every count, string and array fits in the file; value types known; bool values 0 or 1; arrays
/// nest at most kMaxArrayDepth deep; keys non-empty and unique; general.alignment a uint32 power of
/// two; tensor names unique and at most kMaxNameBytes; at most kMaxDims dimensions; ggml types
/// known; rows whole blocks; no overflow in element or byte counts; offsets multiples of the
/// alignment, tensors inside the data section and not overlapping. `file` names it in messages.
Header parse_header(std::span<const std::uint8_t> prefix, std::uint64_t file_size, std::string_view file);

/// A GGUF file opened for reading, memory-mapped (read-only; the file is never modified; its
/// descriptor stays open for read()).
class File {
 public:
  static File open(const std::filesystem::path& path);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  const std::filesystem::path& path() const noexcept;
  const Header& header() const noexcept;
  std::uint32_t version() const noexcept { return header().version; }
  std::uint32_t alignment() const noexcept { return header().alignment; }
  const Metadata& metadata() const noexcept { return header().metadata; }
  const Value* find(std::string_view key) const noexcept { return header().metadata.find(key); }
  const std::vector<TensorInfo>& tensors() const noexcept { return header().tensors; }
  const TensorInfo* find_tensor(std::string_view name) const noexcept { return header().find_tensor(name); }

  /// The bytes of a tensor of this file (a pointer into the mapping, touched only when read).
  std::span<const std::uint8_t> data(const TensorInfo& t) const;
  /// Copies a tensor's bytes into `out` (exactly t.bytes) through the kernel (pread).
  void read(const TensorInfo& t, std::span<std::uint8_t> out) const;
  /// Copies the tensor's bytes [offset, offset + out.size()) into `out`; a range beyond the
  /// tensor is an error.
  void read(const TensorInfo& t, std::uint64_t offset, std::span<std::uint8_t> out) const;
  /// Asks the kernel to map a tensor's pages now (a hint).
  void prefetch(const TensorInfo& t) const noexcept;
  /// Lets the kernel drop the pages of a tensor already processed.
  void release(const TensorInfo& t) const noexcept;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Writing

/// What a writer will write: every tensor info precedes the data, so all are fixed up front.
struct PlannedTensor {
  std::string name;
  std::vector<std::uint64_t> dims;  ///< ggml order, dims[0] contiguous
  ggml::Type type = ggml::Type::f32;
};

/// Writes one GGUF (version 3) file in a stream: header, metadata and tensor infos first (offsets
/// follow from the sizes: each tensor starts at the next multiple of the alignment, as ggml lays
/// them out), then each tensor's data in the planned order, each followed by zero padding to the
/// alignment. The alignment is the metadata's general.alignment (a uint32 power of two) or 32.
/// Metadata is written exactly as given, in its order. The file is written under a temporary name
/// in the destination folder and renamed into place by commit(); a writer destroyed before
/// commit() removes it, so no partial file ever remains.
class Writer {
 public:
  Writer(const std::filesystem::path& path, Metadata metadata, std::vector<PlannedTensor> tensors);
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  ~Writer();

  /// Data of the tensor being written (the first planned one not yet complete), in one or several
  /// pieces; too many bytes is an error naming the tensor.
  void write(std::span<const std::uint8_t> data);
  /// The same, and `name` must be the tensor being written (catches data sent out of order).
  void write(std::string_view name, std::span<const std::uint8_t> data);
  /// Index of the tensor the next bytes go to; the number of tensors once all are complete.
  std::size_t current() const noexcept;
  /// The tensor infos as written (offsets and sizes filled in).
  const std::vector<TensorInfo>& tensors() const noexcept;
  /// Finishes: every tensor complete, data flushed, then the rename.
  void commit();
  std::uint64_t bytes_written() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Bytes the file written with this metadata and these tensors will have.
std::uint64_t file_size(const Metadata& metadata, const std::vector<PlannedTensor>& tensors);

}  // namespace zp::gguf
