// The safetensors dtype table and the header parser: the one place where a file's claims about
// its tensors are checked against the file.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "formats/safetensors/strict_json.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

// Element bytes are handed out as they are in the file, which is little-endian by definition.
static_assert(std::endian::native == std::endian::little,
              "the safetensors reader and writer assume a little-endian machine");

namespace zp::safetensors {
namespace {

using detail::in_quotes;
using nlohmann::json;

// The official library refuses larger headers; real ones are a few hundred KiB at most.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// Top-level object -> tensor entry -> shape list; nothing in a valid header nests deeper.
constexpr int kMaxDepth = 3;

constexpr std::array<DtypeInfo, 15> kDtypes{{
    {"BOOL", 1, std::nullopt},
    {"U8", 1, DType::u8},
    {"I8", 1, DType::i8},
    {"F8_E5M2", 1, std::nullopt},
    {"F8_E4M3", 1, std::nullopt},
    {"I16", 2, DType::i16},
    {"U16", 2, DType::u16},
    {"F16", 2, DType::f16},
    {"BF16", 2, DType::bf16},
    {"I32", 4, DType::i32},
    {"U32", 4, DType::u32},
    {"F32", 4, DType::f32},
    {"F64", 8, DType::f64},
    {"I64", 8, DType::i64},
    {"U64", 8, std::nullopt},
}};

std::string known_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += fmt::format("{}{}", out.empty() ? "" : ", ", d.name);
  return out;
}

// A JSON value as it appears in the file, short enough for a message.
std::string shown(const json& value) { return npy::detail::printable(value.dump(), 40); }

// The value of `key` in a tensor entry, which must be there.
const json& member(const json& entry, std::string_view key, std::string_view file, const std::string& name) {
  const auto it = entry.find(key);
  if (it == entry.end()) throw Error(fmt::format("{}: tensor {} has no '{}'", file, in_quotes(name), key));
  return *it;
}

// A non-negative integer of a shape or data_offsets; `what` names it ("shape entry 2").
std::uint64_t non_negative(const json& value, std::string_view what, std::string_view file, const std::string& name) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer()) {
    throw Error(fmt::format("{}: tensor {}: {} is {}, which is negative", file, in_quotes(name), what, shown(value)));
  }
  throw Error(fmt::format("{}: tensor {}: {} is {}, not an integer", file, in_quotes(name), what, shown(value)));
}

TensorInfo parse_entry(const std::string& name, const json& entry, std::uint64_t data_size, std::string_view file) {
  const auto fail = [&](const std::string& why) {
    return Error(fmt::format("{}: tensor {}: {}", file, in_quotes(name), why));
  };
  if (!entry.is_object()) {
    throw fail(fmt::format("the entry is {} ({}), not an object with dtype, shape and data_offsets",
                           detail::kind_of(entry), shown(entry)));
  }
  // Anything else may change what the bytes mean (a byte order, a quantization), so reading the
  // data as if the key were not there could give wrong numbers without a word.
  for (const auto& [key, value] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      throw fail(fmt::format("unknown key {} (an entry holds only dtype, shape and data_offsets)", in_quotes(key, 40)));
    }
  }

  TensorInfo t;
  t.name = name;
  const json& dtype = member(entry, "dtype", file, name);
  if (!dtype.is_string()) throw fail(fmt::format("'dtype' is {}, not a string", shown(dtype)));
  t.dtype = dtype.get<std::string>();
  const auto info = dtype_info(t.dtype);
  if (!info) throw fail(fmt::format("unknown dtype {} (known: {})", in_quotes(t.dtype, 40), known_dtypes()));
  t.type = info->dtype;

  const json& shape = member(entry, "shape", file, name);
  if (!shape.is_array()) throw fail(fmt::format("'shape' is {}, not a list", shown(shape)));
  t.shape.reserve(shape.size());
  for (std::size_t k = 0; k < shape.size(); ++k) {
    const std::uint64_t d = non_negative(shape[k], fmt::format("shape entry {}", k), file, name);
    if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw fail(fmt::format("shape entry {} is {}, larger than any dimension can be", k, d));
    }
    t.shape.push_back(static_cast<std::int64_t>(d));
  }
  std::uint64_t needed = 0;
  try {
    needed = byte_size(*info, t.shape);
  } catch (const Error& e) {
    throw fail(e.what());
  }

  const json& offsets = member(entry, "data_offsets", file, name);
  if (!offsets.is_array() || offsets.size() != 2) {
    throw fail(fmt::format("'data_offsets' is {}, not a list [begin, end]", shown(offsets)));
  }
  const std::uint64_t begin = non_negative(offsets[0], "data_offsets[0]", file, name);
  const std::uint64_t end = non_negative(offsets[1], "data_offsets[1]", file, name);
  if (begin > end) throw fail(fmt::format("data_offsets [{}, {}] end before they begin", begin, end));
  if (end > data_size) {
    throw fail(
        fmt::format("data_offsets [{}, {}] reach past the end of the data section ({} bytes)", begin, end, data_size));
  }
  if (end - begin != needed) {
    throw fail(fmt::format("data_offsets [{}, {}] hold {} bytes but {} x {} needs {}", begin, end, end - begin, t.dtype,
                           shape_str(t.shape), needed));
  }
  t.offset = begin;
  t.size = needed;
  return t;
}

std::map<std::string, std::string> parse_metadata(const json& value, std::string_view file) {
  std::map<std::string, std::string> out;
  if (value.is_null()) return out;  // the official library reads null as "no metadata"
  if (!value.is_object()) {
    throw Error(fmt::format("{}: '__metadata__' is {}, not an object of strings", file, shown(value)));
  }
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) {
      throw Error(fmt::format("{}: '__metadata__' entry {} is {}, not a string", file, in_quotes(key), shown(text)));
    }
    out.emplace(key, text.get<std::string>());
  }
  return out;
}

// The tensors, sorted by offset, must tile the data section: each starts where the one before
// ends. Overlaps would let one write clobber another; gaps are bytes nobody accounts for.
void check_tiling(const std::vector<TensorInfo>& tensors, std::uint64_t data_size, std::string_view file) {
  std::uint64_t cursor = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.offset < cursor) {
      throw Error(fmt::format("{}: tensors {} (data_offsets [{}, {}]) and {} (data_offsets [{}, {}]) overlap", file,
                              in_quotes(previous->name), previous->offset, previous->offset + previous->size,
                              in_quotes(t.name), t.offset, t.offset + t.size));
    }
    if (t.offset > cursor) {
      throw Error(fmt::format("{}: bytes [{}, {}) of the data section belong to no tensor ({} {})", file, cursor,
                              t.offset, previous ? "between " + in_quotes(previous->name) + " and" : "before",
                              in_quotes(t.name)));
    }
    cursor = t.offset + t.size;
    if (t.size > 0 || !previous) previous = &t;
  }
  if (cursor != data_size) {
    throw Error(
        fmt::format("{}: the data section has {} bytes but the tensors end at byte {}; the rest belongs "
                    "to no tensor",
                    file, data_size, cursor));
  }
}

}  // namespace

std::optional<DtypeInfo> dtype_info(std::string_view name) noexcept {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d;
  }
  return std::nullopt;
}

std::string_view dtype_name(DType dtype) noexcept {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";  // unreachable: every DType has a safetensors name
}

std::uint64_t byte_size(const DtypeInfo& dtype, const Shape& shape) {
  const std::int64_t numel = checked_numel(shape);
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), dtype.size, &bytes)) {
    throw Error(fmt::format("{} x {} is more bytes than fit in 64 bits", dtype.name, shape_str(shape)));
  }
  return bytes;
}

const TensorInfo* Header::find(std::string_view name) const noexcept {
  for (const TensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Header parse_header(std::span<const std::byte> prefix, std::uint64_t file_size, std::string_view file) {
  if (file_size < 8) {
    throw Error(fmt::format("{}: {} bytes is too short for a safetensors file (the header length alone takes 8)", file,
                            file_size));
  }
  if (prefix.size() < 8) {
    throw Error(fmt::format("{}: only {} bytes of the file were given to the header parser", file, prefix.size()));
  }
  std::uint64_t n = 0;
  std::memcpy(&n, prefix.data(), 8);
  if (n > kMaxHeaderBytes) {
    throw Error(
        fmt::format("{}: the header length {} is over the {}-byte limit of the format (not a safetensors "
                    "file, or a damaged one)",
                    file, n, kMaxHeaderBytes));
  }
  if (n > file_size - 8) {
    throw Error(fmt::format("{}: the header length {} reaches past the end of the file ({} bytes; truncated?)", file, n,
                            file_size));
  }
  if (prefix.size() < 8 + n) {
    throw Error(fmt::format("{}: only {} bytes of the file were given to the header parser, which needs {}", file,
                            prefix.size(), 8 + n));
  }

  Header h;
  h.header_size = n;
  h.data_size = file_size - 8 - n;
  const std::string_view text(reinterpret_cast<const char*>(prefix.data()) + 8, n);
  const std::string prefix_text = fmt::format("{}: the header", file);
  const json root = detail::parse_strict_json(
      text, kMaxDepth, prefix_text, [&](const std::vector<std::string>& parents, const std::string& key) {
        if (parents.empty()) return fmt::format("{}: tensor {} appears twice in the header", file, in_quotes(key));
        if (parents[0] == "__metadata__") {
          return fmt::format("{}: '__metadata__' has the key {} twice", file, in_quotes(key, 40));
        }
        return fmt::format("{}: tensor {} has the key {} twice", file, in_quotes(parents[0]), in_quotes(key, 40));
      });
  if (!root.is_object()) {
    throw Error(fmt::format("{}: the header is {} ({}), not a JSON object", file, detail::kind_of(root), shown(root)));
  }

  h.tensors.reserve(root.size());
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      h.metadata = parse_metadata(entry, file);
    } else {
      h.tensors.push_back(parse_entry(name, entry, h.data_size, file));
    }
  }
  // (begin, end) order, as the official library checks it: a zero-size tensor comes before the
  // tensor that starts where it sits.
  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.size < b.size;
  });
  check_tiling(h.tensors, h.data_size, file);
  return h;
}

}  // namespace zp::safetensors
