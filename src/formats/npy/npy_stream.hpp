// The .npy reader as a stream, shared by .npy files (read from disk or memory) and .npz entries
// (read through libzip), so all three check a file's claims in the same place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "zeropoint/formats/npy.hpp"
#include "zeropoint/tensor.hpp"

namespace zp::npy::detail {

/// Bytes read front to back. read() fills all of `dst` unless the source ends first, and
/// returns how many bytes it gave; it throws zp::Error when the underlying read fails.
class Source {
 public:
  virtual std::size_t read(std::span<std::byte> dst) = 0;

 protected:
  ~Source() = default;
};

/// A checked .npy header. Its sizes agree with the `total` it was read against.
struct Header {
  Info info;
  std::uint64_t data_offset = 0;  ///< preamble + header dict
  std::uint64_t data_bytes = 0;
  std::uint64_t text_chars = 0;  ///< code points of a '<U{n}' text entry
};

/// Reads the preamble and header dict from the start of `src`, whose length the caller claims is
/// `total` bytes (the file's size, or the size a zip entry declares). Throws unless the header
/// is one zeropoint reads and header plus data is exactly `total` bytes. Allocates at most the
/// header (capped at 1 MiB), so a lying `total` costs nothing here.
Header read_header(Source& src, std::uint64_t total, std::string_view what);

/// Reads the data that follows read_header into a tensor (into `reuse`'s memory when it has the
/// header's dtype and shape); throws if the source ends early or has bytes after the data.
/// Requires !header.info.is_text.
Tensor read_tensor(Source& src, const Header& header, std::string_view what, Tensor reuse = {});

/// Reads the data of a text header and decodes it to UTF-8. Requires header.info.is_text.
std::string read_text(Source& src, const Header& header, std::string_view what);

/// Reads a whole .npy file (tensor or text) from memory through the functions above.
class SpanSource final : public Source {
 public:
  explicit SpanSource(std::span<const std::byte> bytes) : bytes_(bytes) {}
  std::size_t read(std::span<std::byte> dst) override;

 private:
  std::span<const std::byte> bytes_;
  std::size_t pos_ = 0;
};

/// `text` fit for a one-line message: control and non-ASCII bytes escaped as \xNN, cut to
/// `max` characters. File contents quoted in messages go through this.
std::string printable(std::string_view text, std::size_t max = 80);

/// True if `text` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace zp::npy::detail
