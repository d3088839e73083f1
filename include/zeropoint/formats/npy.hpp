// zeropoint/formats/npy.hpp — NumPy .npy files and .npz archives.
//
// What is read: the .npy format versions 1.0, 2.0 and 3.0, C order, little-endian (or
// byte-order-free) element types that have a zp::DType: '<f2' '<f4' '<f8' '|i1' '|u1' '<i2'
// '<u2' '<i4' '<u4' '<i8' ('=' and '|' are taken as little-endian, the only byte order the
// library runs on), plus 0-d unicode strings ('<U{n}') as text. Everything else is refused with
// a zp::Error that names the file and says why: big-endian data, Fortran order, other dtypes
// (bool, uint64, complex, structured, object), more than 64 dimensions, and shapes whose
// non-zero dimensions times the element size overflow 64 bits (numpy refuses those too).
//
// Files are treated as hostile: every length and count is checked against the bytes actually
// there before anything is allocated. A file with bytes after the array data is refused, although
// numpy.load ignores them: numpy never writes them, so they mean a truncated rewrite or a file
// that is not what it claims to be, and a reader that silently skips data hides that.
//
// What is written is exactly what numpy.save writes for the same array: version 1.0, the header
// dict in numpy's key order and spacing, space-padded so the data starts at a multiple of 64
// bytes. Version 2.0 is never needed: the header of an array of at most 64 dimensions (all numpy
// can read) is far below 1.0's 64 KiB limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zeropoint/dtype.hpp"
#include "zeropoint/tensor.hpp"

namespace zp::npy {

/// What a .npy header says, without the data.
struct Info {
  /// A 0-d unicode string ('<U{n}'): read it with parse_text / npz::Reader::text. When true,
  /// `dtype` means nothing and `shape` is empty.
  bool is_text = false;
  DType dtype = DType::f32;
  Shape shape;
};

/// Parses a whole .npy file held in memory. `what` names it in messages (usually the path).
Tensor parse(std::span<const std::byte> bytes, std::string_view what);

/// Reads a .npy file. The data goes straight from the file into the tensor (no second copy), after
/// the header's claims have been checked against the file's size. When `reuse` has the file's
/// dtype and shape, the data goes into its memory, which a loop over files of one shape can pass
/// back each time: memory the process touches for the first time costs page faults, more than
/// the reading itself on some virtual machines. Otherwise `reuse` is freed.
Tensor read(const std::filesystem::path& path, Tensor reuse = {});

/// The header of a whole .npy file held in memory, checked as parse() checks it (including that
/// the file is exactly as long as the header says), without copying the data.
Info parse_info(std::span<const std::byte> bytes, std::string_view what);

/// Reads only the header of a .npy file, and checks that the file is as long as it says.
Info read_info(const std::filesystem::path& path);

/// The .npy file numpy.save would write for `tensor` (a strided view is written in C order).
/// Throws for bf16 (numpy has no bfloat16; convert it first) and for more than 64 dimensions.
std::vector<std::byte> serialize(const TensorView& tensor);

/// Writes serialize(tensor) to `path` atomically: readers see the old file or the new one, and
/// a failure leaves the old one untouched.
void write(const std::filesystem::path& path, const TensorView& tensor);

/// Parses a 0-d unicode string array (dtype '<U{n}'), as numpy.save(path, np.array("text"))
/// writes it, and returns it as UTF-8. Trailing NUL characters are dropped, as numpy does (it
/// pads shorter strings with them); code points that are not Unicode scalar values are refused.
std::string parse_text(std::span<const std::byte> bytes, std::string_view what);

/// The .npy file numpy.save(path, np.array(text)) would write for UTF-8 `utf8`. Throws for
/// invalid UTF-8, and for text ending in NUL (numpy would drop it on reading).
std::vector<std::byte> serialize_text(std::string_view utf8);

}  // namespace zp::npy

namespace zp::npz {

/// An .npz archive: a zip of .npy files named "<name>.npy", as numpy.savez writes (stored) and
/// numpy.savez_compressed writes (deflate). Names are given without ".npy"; entries whose name
/// does not end in ".npy" are not arrays and are ignored. Only stored and deflate entries are
/// read, and an entry claiming to inflate beyond what deflate can produce from its compressed
/// size is refused before anything is allocated.
///
/// Messages name the archive and the entry ("model.npz, array 'w': ..."). A Reader is not
/// thread-safe: its const functions share the archive's read position.
class Reader {
 public:
  explicit Reader(const std::filesystem::path& path);
  /// An archive held in memory; `what` names it in messages.
  Reader(std::vector<std::byte> bytes, std::string what);
  ~Reader();
  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;

  /// Array names in archive order.
  std::vector<std::string> names() const;
  bool contains(std::string_view name) const;

  /// The header of one array, without reading its data.
  npy::Info info(std::string_view name) const;
  /// One array; `reuse` as for npy::read.
  Tensor tensor(std::string_view name, Tensor reuse = {}) const;
  /// A text entry (a 0-d unicode string array), as UTF-8.
  std::string text(std::string_view name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Writes an .npz archive numpy.load reads, atomically: nothing appears at `target` until
/// commit(), and a Writer destroyed without commit() leaves no file behind and any old file at
/// `target` untouched. Entries are stored uncompressed (as numpy.savez does) in the order added,
/// with a fixed timestamp so the same arrays always give the same bytes.
class Writer {
 public:
  /// Creates the temporary file next to `target` at once, so an unwritable folder fails here
  /// rather than after the arrays were computed.
  explicit Writer(std::filesystem::path target);
  ~Writer();
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;

  /// Adds an array. The data is copied now, so the view need not outlive the call. Names must be
  /// non-empty, unique, valid UTF-8 and free of NUL characters.
  void add(std::string_view name, const TensorView& tensor);
  /// Adds a text entry that numpy.load(...)[name] returns as a 0-d string array.
  void add_text(std::string_view name, std::string_view utf8);
  /// Writes the archive and moves it into place. Nothing may be added afterwards.
  void commit();

 private:
  struct Impl;
  // Serializes one entry, naming the archive and the entry if that fails, then stores it.
  template <class Serialize>
  void add_entry(std::string_view name, Serialize&& serialize);

  std::unique_ptr<Impl> impl_;
};

}  // namespace zp::npz
