// libFuzzer target for the importance-matrix reader (llama.cpp's imatrix files, GGUF and legacy).
// Only zp::Error may come out, and never an allocation the input's size does not justify
// (fuzz-smoke runs it with a malloc limit). A file that is read must keep the reader's promises:
// every name found, each entry's weights matrices x row_length long and all finite, weights_for
// handing back exactly the entry for a tensor of the matching dims and refusing other sizes, and
// the legacy format's limits (one dataset at most, no chunk size).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/imatrix.hpp"

namespace imatrix = zp::imatrix;

namespace {

void check_promises(const imatrix::ImportanceMatrix& m) {
  if (m.size() == 0 || m.names().size() != m.size()) __builtin_trap();
  if (m.format() == imatrix::Format::legacy && (m.datasets().size() > 1 || m.chunk_size() != 0)) __builtin_trap();
  for (const auto& name : m.names()) {
    const imatrix::Entry* e = m.find(name);
    if (!e) __builtin_trap();
    if (e->row_length == 0 || e->matrices == 0) __builtin_trap();
    if (e->weights.size() / e->row_length != e->matrices || e->weights.size() % e->row_length != 0) __builtin_trap();
    for (float w : e->weights) {
      if (!std::isfinite(w)) __builtin_trap();
    }
    // A tensor of dims [row_length, rows, matrices] gets exactly this entry; a zp::Error here
    // escapes and fails the run.
    const std::vector<std::uint64_t> dims{e->row_length, 3, e->matrices};
    const std::span<const float> w = m.weights_for(name, dims);
    if (w.data() != e->weights.data() || w.size() != e->weights.size()) __builtin_trap();
    // One column more must be refused (or ignored, for token_embd.weight).
    const std::vector<std::uint64_t> wrong{e->row_length + 1, 3, e->matrices};
    bool refused = false;
    try {
      refused = m.weights_for(name, wrong).empty() && name == "token_embd.weight";
    } catch (const zp::Error&) {
      refused = true;
    }
    if (!refused) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::optional<imatrix::ImportanceMatrix> m;
  try {
    m = imatrix::ImportanceMatrix::parse(std::span(data, size), "fuzz.imatrix");
  } catch (const zp::Error&) {
  }
  if (m) check_promises(*m);
  return 0;
}
