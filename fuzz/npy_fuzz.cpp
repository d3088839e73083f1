// libFuzzer target for the .npy reader. Any bytes must give an array, text or a zp::Error: never
// a crash, an out-of-bounds read or an allocation the input's size does not justify (fuzz-smoke
// runs it with a malloc limit). Whatever parses must serialize to a file that parses back to the
// same thing; a failure there escapes as an exception or a trap, which libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::optional<zp::Tensor> tensor;
  std::optional<std::string> text;
  try {
    if (zp::npy::parse_info(bytes, "fuzz.npy").is_text) {
      text = zp::npy::parse_text(bytes, "fuzz.npy");
    } else {
      tensor = zp::npy::parse(bytes, "fuzz.npy");
    }
  } catch (const zp::Error&) {
    return 0;
  }

  if (text) {
    if (zp::npy::parse_text(zp::npy::serialize_text(*text), "again") != *text) __builtin_trap();
  } else {
    const zp::Tensor again = zp::npy::parse(zp::npy::serialize(*tensor), "again");
    if (again.dtype() != tensor->dtype() || again.shape() != tensor->shape() ||
        std::memcmp(again.data(), tensor->data(), tensor->nbytes()) != 0) {
      __builtin_trap();
    }
  }
  return 0;
}
