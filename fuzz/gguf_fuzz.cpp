// libFuzzer target for the GGUF header parser. Only zp::Error may come out, and never an
// allocation the input's size does not justify (fuzz-smoke runs it with a malloc limit). Each
// input is tried twice:
//  - as a whole file (the data section is whatever follows the header);
//  - as [2-byte little-endian size D][header], the file taken to be D bytes longer than the input:
//    tensors may then claim data the input need not hold, which lets small inputs reach the checks
//    on offsets, overlaps and sizes (and header-only seeds start here).
// A header that parses must keep the parser's promises: offsets aligned, tensors inside the data
// section and not overlapping, sizes as their type and dimensions say, names found. A whole file
// that parses must also go through the Writer (which must accept it) and read back the same:
// metadata bit for bit, tensor infos and bytes. That copy goes to /dev/shm (skipped without it).
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace gguf = zp::gguf;

namespace {

// Equal bit for bit: NaN payloads and -0.0 included, which operator== would not tell apart.
template <class T>
bool same_scalar(const T& a, const T& b) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::memcmp(&a, &b, sizeof a) == 0;
  } else {
    return a == b;
  }
}

bool same(const gguf::Array& a, const gguf::Array& b);

bool same(const gguf::Value& a, const gguf::Value& b) {
  if (a.type() != b.type()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const T& y = *b.get_if<T>();
        if constexpr (std::is_same_v<T, gguf::Array>) {
          return same(x, y);
        } else {
          return same_scalar(x, y);
        }
      },
      a.storage());
}

bool same(const gguf::Array& a, const gguf::Array& b) {
  if (a.items.index() != b.items.index() || a.size() != b.size()) return false;
  return std::visit(
      [&](const auto& xs) {
        using V = std::decay_t<decltype(xs)>;
        const V& ys = std::get<V>(b.items);
        for (std::size_t k = 0; k < xs.size(); ++k) {
          if constexpr (std::is_same_v<typename V::value_type, gguf::Array>) {
            if (!same(xs[k], ys[k])) return false;
          } else if constexpr (std::is_same_v<typename V::value_type, bool>) {
            if (xs[k] != ys[k]) return false;
          } else {
            if (!same_scalar(xs[k], ys[k])) return false;
          }
        }
        return true;
      },
      a.items);
}

void check_promises(const gguf::Header& h, std::uint64_t file_size) {
  if (h.version != 2 && h.version != 3) __builtin_trap();
  if (h.alignment == 0 || (h.alignment & (h.alignment - 1)) != 0) __builtin_trap();
  if (h.data_offset % h.alignment != 0) __builtin_trap();
  if (!h.tensors.empty() && h.data_offset + h.data_size != file_size) __builtin_trap();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const gguf::TensorInfo& t : h.tensors) {
    if (t.offset % h.alignment != 0) __builtin_trap();
    if (t.offset > h.data_size || t.bytes > h.data_size - t.offset) __builtin_trap();
    if (gguf::tensor_bytes(t.type, t.dims) != t.bytes) __builtin_trap();
    if (h.find_tensor(t.name) != &t) __builtin_trap();
    if (t.bytes > 0) ranges.emplace_back(t.offset, t.offset + t.bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t k = 1; k < ranges.size(); ++k) {
    if (ranges[k].first < ranges[k - 1].second) __builtin_trap();
  }
  for (const auto& [key, value] : h.metadata) {
    if (h.metadata.find(key) != &value) __builtin_trap();
  }
}

// Through the Writer and back. The Writer throwing on what the reader accepted escapes as an
// uncaught exception, which libFuzzer reports as a crash.
void check_copy(const gguf::Header& h, std::span<const std::uint8_t> file) {
  static const std::filesystem::path dir = "/dev/shm";
  static const bool usable = std::filesystem::is_directory(dir) && ::access(dir.c_str(), W_OK) == 0;
  if (!usable) return;
  static const std::filesystem::path path = dir / ("zp-gguf-fuzz-" + std::to_string(::getpid()) + ".gguf");

  std::vector<gguf::PlannedTensor> plan;
  for (const gguf::TensorInfo& t : h.tensors) plan.push_back({t.name, t.dims, t.type});
  // A file without tensors may declare an alignment of up to 2^31 and leave out the padding the
  // copy writes; such copies are correct but too slow to write on every run.
  if (gguf::file_size(h.metadata, plan) > (std::uint64_t{16} << 20)) return;
  {
    gguf::Writer w(path, h.metadata, plan);
    for (const gguf::TensorInfo& t : h.tensors) {
      w.write(t.name, file.subspan(static_cast<std::size_t>(h.data_offset + t.offset), static_cast<std::size_t>(t.bytes)));
    }
    w.commit();
  }
  const gguf::File again = gguf::File::open(path);
  if (again.metadata().size() != h.metadata.size()) __builtin_trap();
  for (std::size_t k = 0; k < h.metadata.size(); ++k) {
    const auto& [key, value] = h.metadata.entries()[k];
    const auto& [key2, value2] = again.metadata().entries()[k];
    if (key != key2 || !same(value, value2)) __builtin_trap();
  }
  if (again.alignment() != h.alignment || again.tensors().size() != h.tensors.size()) __builtin_trap();
  for (std::size_t k = 0; k < h.tensors.size(); ++k) {
    const gguf::TensorInfo& a = h.tensors[k];
    const gguf::TensorInfo& b = again.tensors()[k];
    if (a.name != b.name || a.dims != b.dims || a.type != b.type || a.bytes != b.bytes) __builtin_trap();
    const auto bytes = again.data(b);
    if (bytes.size() != a.bytes ||
        (a.bytes > 0 && std::memcmp(bytes.data(), file.data() + h.data_offset + a.offset, bytes.size()) != 0)) {
      __builtin_trap();
    }
  }
  std::filesystem::remove(path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  // Only the parsers may refuse; a zp::Error from the checks (the Writer refusing what the reader
  // accepted) escapes and fails the run.
  std::optional<gguf::Header> whole;
  try {
    whole = gguf::parse_header(bytes, size, "fuzz.gguf");
  } catch (const zp::Error&) {
  }
  if (whole) {
    check_promises(*whole, size);
    check_copy(*whole, bytes);
  }

  if (size < 2) return 0;
  const std::uint64_t file_size = (size - 2) + (data[0] | (std::uint64_t{data[1]} << 8));
  const std::span<const std::uint8_t> header = bytes.subspan(2);
  std::optional<gguf::Header> claimed;
  try {
    claimed = gguf::parse_header(header, file_size, "fuzz.gguf");
  } catch (const zp::Error&) {
  }
  if (claimed) {
    check_promises(*claimed, file_size);
    // The header alone is enough to parse the same header.
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(header.size(), claimed->data_offset));
    const gguf::Header again = gguf::parse_header(header.first(n), file_size, "again");
    if (again.tensors.size() != claimed->tensors.size() || again.metadata.size() != claimed->metadata.size()) {
      __builtin_trap();
    }
  }
  return 0;
}
