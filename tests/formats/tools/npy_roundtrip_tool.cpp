// Reads .npy/.npz files with zeropoint and writes them back, so tests/formats/npy_interop.py can
// check with numpy itself that what zeropoint writes is what numpy writes and reads. Lives in its
// own folder because tests/formats/*.cpp all go into the GoogleTest binary.
//
//   npy_roundtrip_tool npy IN.npy OUT.npy        array or text, read and written back
//   npy_roundtrip_tool npz IN.npz OUT.npz [NOTE] every entry copied in order, plus a text entry
//                                                "zeropoint_note" holding NOTE when given
//   npy_roundtrip_tool text TEXT OUT.npy         TEXT written as a 0-d string
//
// Prints zeropoint's message and exits 1 on any error.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "core/file_io.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"

namespace {

int run(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "npy" && argc == 4) {
    if (zp::npy::read_info(argv[2]).is_text) {
      const std::vector<std::byte> in = zp::detail::read_file(argv[2]);
      const std::vector<std::byte> out = zp::npy::serialize_text(zp::npy::parse_text(in, argv[2]));
      zp::detail::write_file_atomically(argv[3], out);
    } else {
      zp::npy::write(argv[3], zp::npy::read(argv[2]));
    }
    return 0;
  }
  if (mode == "npz" && (argc == 4 || argc == 5)) {
    const zp::npz::Reader reader{std::filesystem::path(argv[2])};
    zp::npz::Writer writer(argv[3]);
    for (const std::string& name : reader.names()) {
      if (reader.info(name).is_text) {
        writer.add_text(name, reader.text(name));
      } else {
        writer.add(name, reader.tensor(name));
      }
    }
    if (argc == 5) writer.add_text("zeropoint_note", argv[4]);
    writer.commit();
    return 0;
  }
  if (mode == "text" && argc == 4) {
    zp::detail::write_file_atomically(argv[3], zp::npy::serialize_text(argv[2]));
    return 0;
  }
  std::fprintf(stderr, "usage: %s npy IN OUT | npz IN OUT [NOTE] | text TEXT OUT\n", argv[0]);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const zp::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 3;
  }
}
