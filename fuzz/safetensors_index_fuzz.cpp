// libFuzzer target for model.safetensors.index.json: any bytes as index text. Only zp::Error may
// come out. An index that parses must serialize to one that parses back to the same weight map,
// total size and metadata.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace st = zp::safetensors;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<st::Index> index;
  try {
    index = st::parse_index(text, "fuzz.index.json");
  } catch (const zp::Error&) {
    return 0;
  }

  const st::Index again = st::parse_index(st::serialize_index(*index), "again");
  if (again.weight_map != index->weight_map || again.total_size != index->total_size ||
      again.metadata_json != index->metadata_json) {
    __builtin_trap();
  }
  return 0;
}
