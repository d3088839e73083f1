#include "zeropoint/formats/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/file_io.hpp"
#include "formats/npy/npy_stream.hpp"
#include "zeropoint/error.hpp"

// The element bytes are copied between file and memory as they are; '<' in a file means the
// machine's own order only on a little-endian machine.
static_assert(std::endian::native == std::endian::little,
              "the .npy reader and writer assume a little-endian machine");

namespace zp::npy {
namespace {

constexpr std::array<std::byte, 6> kMagic{std::byte{0x93}, std::byte{'N'}, std::byte{'U'},
                                          std::byte{'M'},  std::byte{'P'}, std::byte{'Y'}};
// Real headers are a few hundred bytes; the cap only stops a lying length from allocating.
constexpr std::uint64_t kMaxHeaderBytes = std::uint64_t{1} << 20;
// numpy 2 reads at most 64 dimensions (numpy 1: 32); more is not an array anyone wrote.
constexpr std::size_t kMaxRank = 64;
// numpy pads the header so the data starts on this boundary.
constexpr std::size_t kAlign = 64;
// numpy leaves room in the header for the first dimension to grow to this many digits.
constexpr std::size_t kGrowthAxisMaxDigits = 21;

struct ElementType {
  std::string_view code;  // numpy's type string without its byte-order character
  DType dtype;
};

// Every numeric type a .npy file can hold here; reading, writing and messages all use this table.
constexpr std::array<ElementType, 10> kElementTypes{{
    {"f2", DType::f16},
    {"f4", DType::f32},
    {"f8", DType::f64},
    {"i1", DType::i8},
    {"u1", DType::u8},
    {"i2", DType::i16},
    {"u2", DType::u16},
    {"i4", DType::i32},
    {"u4", DType::u32},
    {"i8", DType::i64},
}};

// numpy writes '|' (no byte order) for one-byte types and '<' for the others on a
// little-endian machine.
std::string descr_of(const ElementType& t) {
  return fmt::format("{}{}", t.code[1] == '1' ? '|' : '<', t.code);
}

std::string supported_list() {
  std::string out;
  for (const auto& t : kElementTypes) out += fmt::format("'{}', ", descr_of(t));
  return out + "and 0-d '<U{n}' text";
}

std::optional<ElementType> element_type_of(DType dtype) {
  for (const auto& t : kElementTypes) {
    if (t.dtype == dtype) return t;
  }
  return std::nullopt;
}

std::string shape_repr(const Shape& shape) {
  if (shape.empty()) return "()";
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

// ---------------------------------------------------------------------------------------------
// UTF-8 <-> code points. Hand-written because the standard library has nothing that validates.

// The code points of `text`, or the byte offset of the first malformed sequence.
struct Utf8Decoded {
  std::u32string code_points;
  std::optional<std::size_t> bad_offset;
};

Utf8Decoded decode_utf8(std::string_view text) {
  Utf8Decoded out;
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < text.size()) {
    const unsigned char b = byte(i);
    std::size_t extra = 0;
    char32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (b < 0x80) {
      cp = b;
    } else if (b >= 0xC2 && b <= 0xDF) {
      extra = 1, cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      extra = 2, cp = b & 0x0Fu;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      extra = 3, cp = b & 0x07u;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      out.bad_offset = i;
      return out;
    }
    if (i + extra >= text.size() && extra > 0) {
      out.bad_offset = i;
      return out;
    }
    for (std::size_t k = 1; k <= extra; ++k) {
      const unsigned char c = byte(i + k);
      const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
      if (c < min || c > max) {
        out.bad_offset = i;
        return out;
      }
      cp = (cp << 6) | (c & 0x3Fu);
    }
    out.code_points.push_back(cp);
    i += extra + 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ---------------------------------------------------------------------------------------------
// The header dict, as numpy writes it: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".
// numpy reads it with ast.literal_eval; this accepts the subset of Python literal syntax that a
// header can meaningfully contain and nothing else, so no input can make it recurse or guess.

struct RawHeader {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view what) : text_(text), what_(what) {}

  RawHeader parse() {
    RawHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{', "the header does not start with '{'");
    for (;;) {
      skip_space();
      if (consume('}')) break;
      if (!at_quote()) fail("expected a quoted key");
      const std::string key = parse_string();
      skip_space();
      expect(':', "expected ':' after a key");
      skip_space();
      const auto once = [&](bool& seen) {
        if (seen) {
          throw Error(fmt::format("{}: the .npy header has the key '{}' twice", what_, key));
        }
        seen = true;
      };
      if (key == "descr") {
        once(have_descr);
        if (peek('[')) {
          throw Error(
              fmt::format("{}: the array has a structured dtype (a list of fields), which is not supported; "
                          "save each field as its own array",
                          what_));
        }
        if (!at_quote()) fail("'descr' is not a string");
        h.descr = parse_string();
      } else if (key == "fortran_order") {
        once(have_order);
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        once(have_shape);
        h.shape = parse_shape();
      } else {
        throw Error(
            fmt::format("{}: the .npy header has an unexpected key '{}'", what_, detail::printable(key, 40)));
      }
      skip_space();
      if (consume(',')) continue;
      expect('}', "expected ',' or '}' after a value");
      break;
    }
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    for (const auto& [seen, name] : {std::pair{have_descr, "descr"}, std::pair{have_order, "fortran_order"},
                                     std::pair{have_shape, "shape"}}) {
      if (!seen) throw Error(fmt::format("{}: the .npy header has no '{}' key", what_, name));
    }
    return h;
  }

 private:
  [[noreturn]] void fail(std::string_view why) const {
    throw Error(fmt::format("{}: malformed .npy header: {} at byte {} of the header dict", what_, why, pos_));
  }

  bool peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  bool consume(char c) {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }
  void expect(char c, std::string_view why) {
    if (!consume(c)) fail(why);
  }
  bool at_quote() const { return peek('\'') || peek('"'); }

  // Python allows any of these between tokens inside braces; numpy writes spaces and a final '\n'.
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  std::string parse_string() {
    const char quote = text_[pos_++];
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      // No header value needs an escape, and honouring them would only widen what is accepted.
      if (text_[pos_] == '\\') fail("escape sequences are not expected in a header string");
      if (text_[pos_] == '\n') fail("unterminated string");
      ++pos_;
    }
    if (pos_ == text_.size()) fail("unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }

  bool is_word_char(std::size_t at) const {
    if (at >= text_.size()) return false;
    const char c = text_[at];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }

  bool parse_bool() {
    for (const auto& [word, value] :
         {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word && !is_word_char(pos_ + word.size())) {
        pos_ += word.size();
        return value;
      }
    }
    fail("'fortran_order' is not True or False");
  }

  Shape parse_shape() {
    expect('(', "'shape' is not a tuple");
    Shape shape;
    skip_space();
    if (consume(')')) return shape;
    for (;;) {
      if (shape.size() == kMaxRank) {
        throw Error(fmt::format("{}: the array has more than {} dimensions", what_, kMaxRank));
      }
      shape.push_back(parse_dimension());
      skip_space();
      if (consume(')')) {
        if (shape.size() == 1) fail("'shape' is a parenthesized integer, not a tuple (no comma)");
        return shape;
      }
      expect(',', "expected ',' or ')' in 'shape'");
      skip_space();
      if (consume(')')) return shape;
    }
  }

  std::int64_t parse_dimension() {
    const std::size_t start = pos_;
    const bool negative = consume('-');
    const std::size_t digits_start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    std::size_t end = pos_;
    // Anything glued to the digits ('2.0', '3L', '1e3', '0x10', '1_000') makes it not a plain integer.
    while (is_word_char(end) || (end < text_.size() && text_[end] == '.')) ++end;
    // When nothing was consumed, quote the one character that is there instead.
    const std::string_view token = text_.substr(start, end > start ? end - start : 1);
    const std::string_view digits = text_.substr(digits_start, pos_ - digits_start);
    if (digits.empty() || end != pos_) {
      pos_ = start;
      fail(fmt::format("dimension '{}' is not an integer", detail::printable(token, 30)));
    }
    if (digits.size() > 1 && digits[0] == '0') {
      pos_ = start;
      fail(fmt::format("dimension '{}' has a leading zero", detail::printable(token, 30)));
    }
    std::int64_t value = 0;
    for (char c : digits) {
      const int d = c - '0';
      if (value > (std::numeric_limits<std::int64_t>::max() - d) / 10) {
        throw Error(
            fmt::format("{}: the .npy header's shape has a dimension ({}) that does not "
                        "fit in 64 bits",
                        what_, detail::printable(token, 30)));
      }
      value = value * 10 + d;
    }
    if (negative && value != 0) {
      throw Error(fmt::format("{}: the .npy header's shape has a negative dimension (-{})", what_, value));
    }
    return value;
  }

  std::string_view text_;
  std::string_view what_;
  std::size_t pos_ = 0;
};

// Turns the dict's values into a Header (everything except where the data starts and ends).
detail::Header interpret(const RawHeader& raw, std::string_view what) {
  detail::Header h;
  const std::string& descr = raw.descr;
  const std::string quoted = fmt::format("'{}'", detail::printable(descr, 40));
  const auto unsupported = [&]() {
    return Error(fmt::format("{}: dtype {} is not supported; supported: {}", what, quoted, supported_list()));
  };
  if (descr.size() < 2 || std::string_view("<>|=").find(descr[0]) == std::string_view::npos) {
    throw unsupported();
  }
  const char order = descr[0];
  const std::string_view code = std::string_view(descr).substr(1);
  const auto big_endian = [&]() {
    return Error(
        fmt::format("{}: dtype {} is big-endian, which is not supported; save it with "
                    "a.astype(a.dtype.newbyteorder('<'))",
                    what, quoted));
  };

  std::uint64_t element_bytes = 0;
  if (code[0] == 'U') {
    const std::string_view count = code.substr(1);
    // 15 digits keeps 4 * count far from overflow; no real text is that long.
    if (count.empty() || count.size() > 15 ||
        !std::all_of(count.begin(), count.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw unsupported();
    }
    if (order == '>') throw big_endian();
    h.info.is_text = true;
    for (char c : count) h.text_chars = h.text_chars * 10 + static_cast<std::uint64_t>(c - '0');
    element_bytes = 4 * h.text_chars;
    if (!raw.shape.empty()) {
      throw Error(
          fmt::format("{}: a {} string array of shape {} is not supported; only a 0-d string "
                      "(np.array('text')) is read, as text",
                      what, quoted, shape_str(raw.shape)));
    }
  } else {
    const auto* row = std::find_if(kElementTypes.begin(), kElementTypes.end(),
                                   [&](const ElementType& t) { return t.code == code; });
    if (row == kElementTypes.end()) {
      if (code == "O") {
        throw Error(
            fmt::format("{}: the array holds Python objects (dtype 'O', pickled), which are "
                        "not supported",
                        what));
      }
      throw unsupported();
    }
    element_bytes = dtype_size(row->dtype);
    if (order == '>' && element_bytes > 1) throw big_endian();
    h.info.dtype = row->dtype;
  }
  if (raw.fortran_order) {
    throw Error(
        fmt::format("{}: Fortran-order arrays are not supported; save with np.ascontiguousarray", what));
  }
  h.info.shape = raw.shape;

  std::int64_t numel = 0;
  try {
    numel = checked_numel(raw.shape);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", what, e.what()));
  }
  // As numpy does, the non-zero dimensions times the element size must fit in a signed 64-bit
  // size even when another dimension is 0 and the array is empty. Besides matching numpy, this
  // keeps every stride later computed from the shape (TensorView's) from overflowing.
  std::int64_t extent = std::max<std::int64_t>(static_cast<std::int64_t>(element_bytes), 1);
  for (const std::int64_t d : raw.shape) {
    if (d == 0) continue;
    if (extent > std::numeric_limits<std::int64_t>::max() / d) {
      throw Error(fmt::format("{}: a {} array of shape {} would take more bytes than fit in 64 bits", what,
                              quoted, shape_str(raw.shape)));
    }
    extent *= d;
  }
  h.data_bytes = static_cast<std::uint64_t>(numel) * element_bytes;
  return h;
}

std::string describe(const detail::Header& h) {
  if (h.info.is_text) return fmt::format("'<U{}' string", h.text_chars);
  return fmt::format("{} array of shape {}", dtype_name(h.info.dtype), shape_str(h.info.shape));
}

void expect_end(detail::Source& src, const detail::Header& h, std::string_view what) {
  std::byte extra{};
  if (src.read({&extra, 1}) != 0) {
    throw Error(
        fmt::format("{}: unexpected data after the {} bytes of a {}", what, h.data_bytes, describe(h)));
  }
}

// A .npy file on disk, read front to back. The size comes from fstat, so the header's claims
// are checked before the data is read.
class FileSource final : public detail::Source {
 public:
  explicit FileSource(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      throw Error(fmt::format("{}: cannot stat: {}", path.string(), std::strerror(err)));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw Error(fmt::format("{}: not a regular file", path.string()));
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ~FileSource() { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::uint64_t size() const noexcept { return size_; }

  std::size_t read(std::span<std::byte> dst) override {
    std::size_t done = 0;
    while (done < dst.size()) {
      const ssize_t got = ::read(fd_, dst.data() + done, dst.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw Error(fmt::format("{}: read failed: {}", path_.string(), std::strerror(errno)));
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

std::vector<std::byte> file_start(std::string_view descr, const Shape& shape, std::uint64_t data_bytes) {
  // Byte for byte what numpy.lib.format._write_array_header writes (keys sorted, repr values,
  // growth room for the first dimension, padded with spaces to the alignment, then '\n').
  std::string dict =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_repr(shape));
  if (!shape.empty()) dict.append(kGrowthAxisMaxDigits - fmt::formatted_size("{}", shape[0]), ' ');
  const std::size_t preamble = kMagic.size() + 2 + 2;
  const std::size_t unpadded = dict.size() + 1;  // + '\n'
  const std::size_t pad = kAlign - (preamble + unpadded) % kAlign;
  const std::size_t header_len = unpadded + pad;
  // The rank limit keeps every header far below version 1.0's 16-bit length.
  static_assert(kMaxRank * 24 + 128 < 65536 - kAlign);

  std::vector<std::byte> out;
  out.reserve(preamble + header_len + data_bytes);
  const auto put = [&out](auto byte) { out.push_back(static_cast<std::byte>(byte)); };
  for (std::byte b : kMagic) put(b);
  put(1);
  put(0);
  put(header_len & 0xFF);
  put(header_len >> 8);
  for (char c : dict) put(c);
  for (std::size_t k = 0; k < pad; ++k) put(' ');
  put('\n');
  return out;
}

// Appends the elements of `view` in C order.
void append_c_order(const TensorView& view, std::vector<std::byte>& out) {
  const std::size_t esize = dtype_size(view.dtype());
  const std::size_t start = out.size();
  out.resize(start + static_cast<std::size_t>(view.numel()) * esize);
  if (view.numel() == 0) return;
  std::byte* dst = out.data() + start;
  const auto* src = static_cast<const std::byte*>(view.data());
  if (view.is_contiguous()) {
    std::memcpy(dst, src, static_cast<std::size_t>(view.numel()) * esize);
    return;
  }
  // A strided view has rank >= 1. Walk the outer dimensions as an odometer and copy rows of the
  // innermost dimension.
  const auto& shape = view.shape();
  const auto& strides = view.strides();
  const std::size_t outer_rank = shape.size() - 1;
  const std::int64_t inner = shape.back();
  const std::int64_t inner_stride = strides.back();
  std::vector<std::int64_t> index(outer_rank, 0);
  const std::int64_t rows = view.numel() / inner;
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < outer_rank; ++k) offset += index[k] * strides[k];
    const std::byte* row = src + static_cast<std::size_t>(offset) * esize;
    if (inner_stride == 1) {
      std::memcpy(dst, row, static_cast<std::size_t>(inner) * esize);
    } else {
      for (std::int64_t j = 0; j < inner; ++j) {
        std::memcpy(dst + static_cast<std::size_t>(j) * esize,
                    row + static_cast<std::size_t>(j * inner_stride) * esize, esize);
      }
    }
    dst += static_cast<std::size_t>(inner) * esize;
    for (std::size_t k = outer_rank; k-- > 0;) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
namespace detail {

std::size_t SpanSource::read(std::span<std::byte> dst) {
  const std::size_t n = std::min(dst.size(), bytes_.size() - pos_);
  if (n > 0) std::memcpy(dst.data(), bytes_.data() + pos_, n);
  pos_ += n;
  return n;
}

std::string printable(std::string_view text, std::size_t max) {
  const bool utf8 = is_valid_utf8(text);
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    // Cut only at the start of a character, so a UTF-8 sequence is never split.
    if (out.size() >= max && (c & 0xC0) != 0x80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8)) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view text) noexcept {
  try {
    return !decode_utf8(text).bad_offset.has_value();
  } catch (...) {  // only allocation can fail
    return false;
  }
}

Header read_header(Source& src, std::uint64_t total, std::string_view what) {
  std::array<std::byte, 12> pre{};
  const std::size_t got = src.read(std::span(pre).first(8));
  if (got == 0) throw Error(fmt::format("{}: empty file, not a .npy array", what));
  if (!std::equal(pre.begin(), pre.begin() + std::min(got, kMagic.size()), kMagic.begin())) {
    throw Error(
        fmt::format("{}: not a .npy file (it does not start with the .npy magic \"\\x93NUMPY\")", what));
  }
  if (got < 8) {
    throw Error(
        fmt::format("{}: truncated .npy file: it ends inside the magic and version ({} bytes)", what, got));
  }
  const auto major = std::to_integer<unsigned>(pre[6]);
  const auto minor = std::to_integer<unsigned>(pre[7]);
  if (major < 1 || major > 3 || minor != 0) {
    throw Error(fmt::format("{}: .npy format version {}.{} is not supported (only 1.0, 2.0 and 3.0)", what,
                            major, minor));
  }
  const std::size_t length_size = major == 1 ? 2 : 4;
  if (src.read(std::span(pre).subspan(8, length_size)) != length_size) {
    throw Error(fmt::format("{}: truncated .npy file: it ends inside the header length", what));
  }
  std::uint64_t header_len = 0;
  for (std::size_t k = length_size; k-- > 0;)
    header_len = (header_len << 8) | std::to_integer<unsigned>(pre[8 + k]);
  const std::uint64_t preamble = 8 + length_size;
  const std::uint64_t after_preamble = total > preamble ? total - preamble : 0;
  if (header_len > after_preamble || total < preamble) {
    throw Error(
        fmt::format("{}: truncated .npy file: the header claims {} bytes but only {} follow "
                    "the preamble",
                    what, header_len, after_preamble));
  }
  if (header_len > kMaxHeaderBytes) {
    throw Error(fmt::format("{}: the .npy header claims {} bytes, more than any array header needs", what,
                            header_len));
  }
  std::string text(static_cast<std::size_t>(header_len), '\0');
  if (src.read(std::as_writable_bytes(std::span(text))) != text.size()) {
    throw Error(fmt::format("{}: truncated .npy file: it ends inside the header", what));
  }

  Header h = interpret(HeaderParser(text, what).parse(), what);
  h.data_offset = preamble + header_len;
  const std::uint64_t available = total - h.data_offset;
  if (h.data_bytes > available) {
    throw Error(fmt::format("{}: truncated .npy file: a {} needs {} bytes of data, the file has {}", what,
                            describe(h), h.data_bytes, available));
  }
  if (h.data_bytes < available) {
    throw Error(fmt::format("{}: {} bytes of unexpected data after the {} bytes of a {}", what,
                            available - h.data_bytes, h.data_bytes, describe(h)));
  }
  return h;
}

Tensor read_tensor(Source& src, const Header& header, std::string_view what, Tensor reuse) {
  Tensor tensor;
  if (reuse.data() != nullptr && reuse.dtype() == header.info.dtype && reuse.shape() == header.info.shape) {
    tensor = std::move(reuse);
  } else {
    try {
      tensor = Tensor(header.info.dtype, header.info.shape);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", what, e.what()));
    }
  }
  const auto dst = tensor.bytes();
  const std::size_t got = src.read(dst);
  if (got != dst.size()) {
    throw Error(fmt::format("{}: truncated .npy data: it ended after {} of {} bytes", what, got, dst.size()));
  }
  expect_end(src, header, what);
  return tensor;
}

std::string read_text(Source& src, const Header& header, std::string_view what) {
  std::vector<std::byte> raw(static_cast<std::size_t>(header.data_bytes));
  const std::size_t got = src.read(raw);
  if (got != raw.size()) {
    throw Error(fmt::format("{}: truncated .npy data: it ended after {} of {} bytes", what, got, raw.size()));
  }
  expect_end(src, header, what);

  std::vector<std::uint32_t> code_points(raw.size() / 4);
  // A '<U0' has no bytes, and memcpy from an empty vector's null data() is undefined even for 0.
  if (!code_points.empty()) std::memcpy(code_points.data(), raw.data(), code_points.size() * 4);  // little-endian
  // numpy pads a string shorter than its dtype with NULs and drops them on reading.
  while (!code_points.empty() && code_points.back() == 0) code_points.pop_back();
  std::string out;
  out.reserve(code_points.size());
  for (std::size_t i = 0; i < code_points.size(); ++i) {
    const std::uint32_t cp = code_points[i];
    if (cp >= 0x110000 || (cp >= 0xD800 && cp <= 0xDFFF)) {
      throw Error(
          fmt::format("{}: the text holds an invalid code point 0x{:X} at character {}", what, cp, i));
    }
    append_utf8(out, cp);
  }
  return out;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
Tensor parse(std::span<const std::byte> bytes, std::string_view what) {
  detail::SpanSource src(bytes);
  const detail::Header h = detail::read_header(src, bytes.size(), what);
  if (h.info.is_text) {
    throw Error(fmt::format("{}: holds text (a {}), not a numeric array", what, describe(h)));
  }
  return detail::read_tensor(src, h, what);
}

Tensor read(const std::filesystem::path& path, Tensor reuse) {
  FileSource src(path);
  const std::string what = path.string();
  const detail::Header h = detail::read_header(src, src.size(), what);
  if (h.info.is_text) {
    throw Error(fmt::format("{}: holds text (a {}), not a numeric array", what, describe(h)));
  }
  return detail::read_tensor(src, h, what, std::move(reuse));
}

Info parse_info(std::span<const std::byte> bytes, std::string_view what) {
  detail::SpanSource src(bytes);
  return detail::read_header(src, bytes.size(), what).info;
}

Info read_info(const std::filesystem::path& path) {
  FileSource src(path);
  return detail::read_header(src, src.size(), path.string()).info;
}

std::vector<std::byte> serialize(const TensorView& tensor) {
  const auto type = element_type_of(tensor.dtype());
  if (!type) {
    throw Error(
        fmt::format("cannot write a {} tensor to .npy: numpy has no such type; convert it "
                    "first (bf16: zp::to_f32)",
                    dtype_name(tensor.dtype())));
  }
  if (tensor.shape().size() > kMaxRank) {
    throw Error(fmt::format("cannot write a tensor of {} dimensions to .npy: numpy reads at most {}",
                            tensor.shape().size(), kMaxRank));
  }
  const std::size_t esize = dtype_size(tensor.dtype());
  if (static_cast<std::uint64_t>(tensor.numel()) > std::numeric_limits<std::size_t>::max() / 2 / esize) {
    throw Error(fmt::format("cannot write a {} tensor of shape {} to .npy: it does not fit in memory",
                            dtype_name(tensor.dtype()), shape_str(tensor.shape())));
  }
  const std::size_t data_bytes = static_cast<std::size_t>(tensor.numel()) * esize;
  std::vector<std::byte> out = file_start(descr_of(*type), tensor.shape(), data_bytes);
  append_c_order(tensor, out);
  return out;
}

void write(const std::filesystem::path& path, const TensorView& tensor) {
  std::vector<std::byte> bytes;
  try {
    bytes = serialize(tensor);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path.string(), e.what()));
  }
  zp::detail::write_file_atomically(path, bytes);
}

std::string parse_text(std::span<const std::byte> bytes, std::string_view what) {
  detail::SpanSource src(bytes);
  const detail::Header h = detail::read_header(src, bytes.size(), what);
  if (!h.info.is_text) {
    throw Error(fmt::format("{}: holds a {}, not text (a 0-d '<U{{n}}' string)", what, describe(h)));
  }
  return detail::read_text(src, h, what);
}

std::vector<std::byte> serialize_text(std::string_view utf8) {
  const Utf8Decoded decoded = decode_utf8(utf8);
  if (decoded.bad_offset) {
    throw Error(fmt::format("cannot write text to .npy: it is not valid UTF-8 (bad byte at offset {})",
                            *decoded.bad_offset));
  }
  const std::u32string& cps = decoded.code_points;
  if (!cps.empty() && cps.back() == 0) {
    throw Error("cannot write text ending in a NUL character to .npy: numpy drops trailing NULs on reading");
  }
  // np.array("") has dtype '<U1' holding one NUL: numpy has no zero-length string dtype in files.
  const std::size_t chars = std::max<std::size_t>(cps.size(), 1);
  std::vector<std::byte> out = file_start(fmt::format("<U{}", chars), {}, chars * 4);
  const std::size_t start = out.size();
  out.resize(start + chars * 4);
  if (!cps.empty()) std::memcpy(out.data() + start, cps.data(), cps.size() * 4);
  return out;
}

}  // namespace zp::npy
