// libFuzzer target for the .npz reader: any bytes, opened as an archive in memory, and every
// array in it read as what its header says. Only zp::Error may come out.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* first = reinterpret_cast<const std::byte*>(data);
  try {
    const zp::npz::Reader reader(std::vector<std::byte>(first, first + size), "fuzz.npz");
    for (const std::string& name : reader.names()) {
      try {
        if (reader.info(name).is_text) {
          (void)reader.text(name);
        } else {
          (void)reader.tensor(name);
        }
      } catch (const zp::Error&) {
        // One bad entry says nothing about the next; keep reading.
      }
    }
    (void)reader.contains("a");
  } catch (const zp::Error&) {
  }
  return 0;
}
