// libFuzzer target for the ONNX model loader (src/formats/onnx/). Only zp::Error may come out of
// parse(), and never an allocation the input's size does not justify (fuzz-smoke runs it with a
// malloc limit). The model's folder holds one external data file, weights.data (256 bytes, see
// kWeightsSize), so inputs can reach the external-data checks; fuzz/make_onnx_seeds.py writes
// seeds that refer to it.
//
// A model that parses must keep the loader's promises:
//  - find_constants and find_uses work on it, and read_float either reads each float constant or
//    refuses it with zp::Error; the values read have the tensor's own element count;
//  - save() accepts it (a zp::Error there escapes and fails the run), both with the default
//    choice of inline/external and with every raw tensor of 16 bytes or more external;
//  - load() of what save() wrote accepts it, and every constant reads back as the same bytes.
// The outputs go to /dev/shm when it is writable (tmpfs: save's fsync costs nothing), otherwise
// to the temporary folder.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/onnx/onnx_model.hpp"
#include "zeropoint/dtype.hpp"
#include "zeropoint/error.hpp"

namespace io = zp::onnx_io;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kWeightsSize = 256;

struct Folders {
  fs::path root;
  fs::path in;   // the fuzzed model's folder: weights.data
  fs::path out;  // what save() writes
};

// Made once per process and never destroyed (the exit handler still needs the path).
const Folders& folders() {
  static const Folders* const f = [] {
    const fs::path shm = "/dev/shm";
    const fs::path base = fs::is_directory(shm) && ::access(shm.c_str(), W_OK) == 0 ? shm : fs::temp_directory_path();
    auto* d = new Folders;
    d->root = base / ("zp-onnx-fuzz-" + std::to_string(::getpid()));
    d->in = d->root / "in";
    d->out = d->root / "out";
    fs::create_directories(d->in);
    fs::create_directories(d->out);
    // Bytes that are ordinary floats, halves and doubles alike, so read values are not all NaN.
    std::string weights(kWeightsSize, '\0');
    for (std::size_t k = 0; k < weights.size(); ++k) weights[k] = static_cast<char>((k * 37 + 11) & 0x3F);
    std::ofstream(d->in / "weights.data", std::ios::binary)
        .write(weights.data(), static_cast<std::streamsize>(weights.size()));
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(folders().root, ec);
    });
    return d;
  }();
  return *f;
}

bool is_float_type(int data_type) {
  const auto dtype = io::dtype_of(data_type);
  return dtype && zp::is_float(*dtype);
}

// A constant's bytes as read_raw gives them, or nothing when it refuses (a typed field it does
// not read); the same on both sides of a save.
std::optional<std::vector<std::byte>> raw_of(const io::Model& model, const io::pb::TensorProto& t) {
  try {
    return io::read_raw(model, t);
  } catch (const zp::Error&) {
    return std::nullopt;
  }
}

void exercise(io::Model& model) {
  const std::vector<io::Constant> constants = io::find_constants(model.proto);
  for (const io::Constant& c : constants) {
    if (c.tensor == nullptr || c.graph == nullptr) __builtin_trap();
    if (is_float_type(c.tensor->data_type())) {
      try {
        const zp::Tensor t = io::read_float(model, *c.tensor);
        if (t.numel() != io::numel(*c.tensor)) __builtin_trap();
      } catch (const zp::Error&) {
      }
    }
  }
  // Bounded: a few names, each a walk over the whole model.
  for (std::size_t k = 0; k < constants.size() && k < 8; ++k) {
    for (const io::Use& u : io::find_uses(*model.proto.mutable_graph(), constants[k].name)) {
      if (u.node == nullptr || u.input < 0 || u.input >= u.node->input_size()) __builtin_trap();
      if (u.node->input(u.input) != constants[k].name) __builtin_trap();
    }
  }
}

// save() and load() again; every constant must come back with the same bytes.
void check_copy(io::Model& model, const std::string& name, std::int64_t threshold) {
  const fs::path path = folders().out / name;
  const std::vector<fs::path> written = io::save(model, path, io::SaveOptions{.external_threshold = threshold});
  io::Model again = io::load(path);
  const std::vector<io::Constant> before = io::find_constants(model.proto);
  const std::vector<io::Constant> after = io::find_constants(again.proto);
  if (before.size() != after.size()) __builtin_trap();
  for (std::size_t k = 0; k < before.size(); ++k) {
    if (before[k].name != after[k].name || before[k].scope != after[k].scope) __builtin_trap();
    if (raw_of(model, *before[k].tensor) != raw_of(again, *after[k].tensor)) __builtin_trap();
  }
  for (const fs::path& p : written) fs::remove(p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Folders& dirs = folders();
  std::optional<io::Model> model;
  try {
    model = io::parse(std::as_bytes(std::span(data, size)), "fuzz.onnx", dirs.in);
  } catch (const zp::Error&) {
    return 0;
  }
  exercise(*model);
  check_copy(*model, "default.onnx", 0);
  check_copy(*model, "external.onnx", 16);
  return 0;
}
