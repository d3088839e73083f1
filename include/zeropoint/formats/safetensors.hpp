// zeropoint/formats/safetensors.hpp — Hugging Face safetensors files and sharded checkpoints.
//
// A .safetensors file is: an 8-byte little-endian header length N, N bytes of JSON (an object
// mapping tensor names to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
// "__metadata__" object of strings), then the data section; offsets count from the start of the
// data section. A sharded checkpoint is several such files and a model.safetensors.index.json
// whose "weight_map" names the file of every tensor.
//
// Files are hostile input: every length, offset and size is checked against the file before it
// is used, and every problem is a zp::Error whose message names the file (and the tensor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zeropoint/dtype.hpp"
#include "zeropoint/tensor.hpp"

namespace zp::safetensors {

/// An element type as safetensors names it ("F32", "BF16", "I8", "BOOL", "F8_E4M3", ...).
struct DtypeInfo {
  std::string_view name;
  std::size_t size = 0;          ///< bytes per element
  std::optional<DType> dtype;    ///< zeropoint's type, where it has one (else pass-through only)
};
/// Every dtype the format defines; nothing for an unknown name.
std::optional<DtypeInfo> dtype_info(std::string_view name) noexcept;
/// The format's name of a zeropoint dtype ("F32", "BF16", "I8", ...).
std::string_view dtype_name(DType dtype) noexcept;
/// Bytes of a tensor of `shape` in `dtype`: numel x element size. Throws zp::Error (without
/// file or tensor: callers add them) when the count or the product overflows.
std::uint64_t byte_size(const DtypeInfo& dtype, const Shape& shape);

struct TensorInfo {
  std::string name;
  std::string dtype;          ///< as written in the file
  std::optional<DType> type;  ///< zeropoint's dtype when it has one
  Shape shape;
  std::uint64_t offset = 0;   ///< data_offsets[0], from the start of the data section
  std::uint64_t size = 0;     ///< data_offsets[1] - data_offsets[0] = numel x element size
};

/// A parsed and validated header. Tensors are in the order of their data offsets.
struct Header {
  std::uint64_t header_size = 0;  ///< N
  std::uint64_t data_size = 0;    ///< bytes after the header
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;  ///< "__metadata__"

  std::uint64_t data_start() const noexcept { return 8 + header_size; }
  const TensorInfo* find(std::string_view name) const noexcept;
};

/// Parses the start of a file of `file_size` bytes (`prefix` holds at least its first
/// min(file_size, 8 + N) bytes) and checks it: N fits the file (and is at most 100 MB); the
/// JSON is an object; every entry has a known dtype, a shape of non-negative integers and
/// offsets [begin, end] with begin <= end <= data size and end - begin = numel x element size;
/// no two tensors share a name or overlap, and together they cover the data section without
/// gaps. `file` names the file in messages.
Header parse_header(std::span<const std::byte> prefix, std::uint64_t file_size, std::string_view file);

/// A safetensors file opened for reading, memory-mapped (read-only; the file is never modified).
class File {
 public:
  static File open(const std::filesystem::path& path);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  const std::filesystem::path& path() const noexcept;
  const Header& header() const noexcept;
  /// The raw bytes of a tensor of this file's header.
  std::span<const std::byte> bytes(const TensorInfo& t) const;
  /// The tensor as a view (a known dtype is required). Data that is not aligned to its element
  /// size is copied into `scratch` first, which must then outlive the view.
  TensorView view(const TensorInfo& t, Tensor& scratch) const;
  /// Copies a tensor's bytes into `out` (exactly its size) through the kernel (pread): for data
  /// read several times, a copy into memory of the caller's choosing (huge pages) is cheaper than
  /// walking the file's mapping 4 KiB page by page.
  void read(const TensorInfo& t, std::span<std::byte> out) const;
  /// Asks the kernel to map a tensor's pages now, in one call, before it is read: much cheaper
  /// than a page fault per few pages. A hint: ignored where the kernel cannot do it.
  void prefetch(const TensorInfo& t) const noexcept;
  /// Lets the kernel drop the pages of a tensor already processed, so that resident memory
  /// follows the tensor being worked on, not the whole file.
  void release(const TensorInfo& t) const noexcept;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// model.safetensors.index.json: which shard holds which tensor.
struct Index {
  std::map<std::string, std::string> weight_map;     ///< tensor name -> shard file name
  std::optional<std::uint64_t> total_size;            ///< "metadata": {"total_size": ...}
  std::string metadata_json = "{}";                   ///< the whole "metadata" object, as JSON
};
/// Parses and checks an index (an object with a "weight_map" object of strings; a shard name
/// is a plain file name in the same folder, never a path). `file` names the file in messages.
Index parse_index(std::string_view json, std::string_view file);
std::string serialize_index(const Index& index);

/// A whole checkpoint: one .safetensors file, or the shards of an index. Opening it checks
/// that every shard the index names exists and holds exactly the tensors the index gives it,
/// and that no tensor name appears twice.
class Checkpoint {
 public:
  /// `path`: a .safetensors file, a *.safetensors.index.json, or a folder holding one of them
  /// (the index when there is one, else the only .safetensors file).
  static Checkpoint open(const std::filesystem::path& path);

  struct Entry {
    std::size_t file;     ///< index into files()
    const TensorInfo* info;
  };
  const std::vector<File>& files() const noexcept;
  /// Every tensor, shard by shard, each in its file's offset order.
  const std::vector<Entry>& tensors() const noexcept;
  /// The metadata of the first file (shards normally carry the same).
  const std::map<std::string, std::string>& metadata() const noexcept;
  /// The index when the checkpoint is sharded.
  const std::optional<Index>& index() const noexcept;
  std::uint64_t total_bytes() const noexcept;  ///< sum of the tensors' data

 private:
  std::vector<File> files_;
  std::vector<Entry> tensors_;
  std::optional<Index> index_;
  std::map<std::string, std::string> empty_;
};

/// What a writer will write: the header is fixed before the first byte of data.
struct PlannedTensor {
  std::string name;
  std::string dtype;  ///< safetensors dtype name
  Shape shape;
};

/// Writes one .safetensors file in a stream: the header first (padded with spaces to a multiple
/// of 8 bytes), then each tensor's data in the planned order. The file is written under a
/// temporary name in the destination folder and renamed into place by commit(); a writer
/// destroyed before commit() removes it, so no partial file ever remains.
class Writer {
 public:
  Writer(const std::filesystem::path& path, std::vector<PlannedTensor> tensors,
         const std::map<std::string, std::string>& metadata);
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  ~Writer();

  /// The data of the next planned tensor, in one or several pieces (their sizes add up to
  /// numel x element size; too much or too little is an error naming the tensor).
  void write(std::span<const std::byte> data);
  /// Finishes: every tensor complete, data flushed, then the rename.
  void commit();
  /// Bytes of the file so far, the 8-byte length and the header included.
  std::uint64_t bytes_written() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Bytes a file with these tensors and metadata will have.
std::uint64_t file_size(const std::vector<PlannedTensor>& tensors, const std::map<std::string, std::string>& metadata);

/// Splits tensors (in order) into shards of at most `max_shard_bytes` of data each (a tensor
/// larger than that gets a shard of its own), named as Hugging Face does:
/// model-00001-of-00003.safetensors, ... With one shard (also when there are no tensors) the
/// name is model.safetensors.
struct ShardPlan {
  std::vector<std::string> file_names;
  std::vector<std::size_t> shard_of;  ///< per tensor
};
ShardPlan plan_shards(const std::vector<PlannedTensor>& tensors, std::uint64_t max_shard_bytes,
                      std::string_view stem = "model");

}  // namespace zp::safetensors
