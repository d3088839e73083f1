// libFuzzer target for the safetensors header parser. Only zp::Error may come out, and never an
// allocation the input's size does not justify. Each input is tried twice:
//  - as a whole file (the data section is whatever follows the header);
//  - as [2-byte little-endian data size D][header JSON], the length field and the data made up:
//    mutations of a whole file almost always break its length field, so this is what lets the
//    fuzzer reach the checks behind the JSON (and header-only seeds start here).
// A header that parses must keep the promises the parser makes: tensors in offset order tiling
// the data section exactly, each as large as its dtype and shape say, and a plan the writer
// accepts (reader and writer agree on what is valid).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace st = zp::safetensors;

namespace {

void check(std::span<const std::byte> prefix, std::uint64_t file_size) {
  std::optional<st::Header> header;
  try {
    header = st::parse_header(prefix, file_size, "fuzz.safetensors");
  } catch (const zp::Error&) {
    return;
  }

  const st::Header& h = *header;
  if (8 + h.header_size + h.data_size != file_size) __builtin_trap();
  std::uint64_t cursor = 0;
  std::vector<st::PlannedTensor> plan;
  for (const st::TensorInfo& t : h.tensors) {
    const auto info = st::dtype_info(t.dtype);
    if (!info || info->dtype != t.type) __builtin_trap();
    if (t.offset != cursor) __builtin_trap();
    if (static_cast<std::uint64_t>(zp::checked_numel(t.shape)) * info->size != t.size) __builtin_trap();
    if (h.find(t.name) != &t) __builtin_trap();
    cursor += t.size;
    plan.push_back({t.name, t.dtype, t.shape});
  }
  if (cursor != h.data_size) __builtin_trap();
  // Throws (and so fails the run) if the writer refuses what the reader accepted.
  if (st::file_size(plan, h.metadata) < 8 + h.data_size) __builtin_trap();
  // The header alone is enough to parse the same header.
  if (st::parse_header(prefix.first(h.data_start()), file_size, "again").tensors.size() != h.tensors.size()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  check(bytes, size);

  if (size < 2) return 0;
  const std::uint64_t data_size = data[0] | (std::uint64_t{data[1]} << 8);
  const std::uint64_t n = size - 2;
  std::vector<std::byte> prefix(8 + n);
  for (std::size_t k = 0; k < 8; ++k) prefix[k] = static_cast<std::byte>((n >> (8 * k)) & 0xFF);
  std::memcpy(prefix.data() + 8, data + 2, n);
  check(prefix, 8 + n + data_size);
  return 0;
}
