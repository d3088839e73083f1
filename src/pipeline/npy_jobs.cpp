#include <fmt/format.h>
#include <fmt/std.h>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"
#include "zeropoint/formats/quantized_npz.hpp"
#include "zeropoint/pipeline.hpp"
#include "zeropoint/quantize.hpp"

namespace zp {
namespace {

// Writing over the input would destroy it before (or while) it is read.
void refuse_same_file(const std::filesystem::path& input, const std::filesystem::path& output) {
  std::error_code ec;
  const bool same = std::filesystem::exists(output, ec) ? std::filesystem::equivalent(input, output, ec)
                                                        : std::filesystem::weakly_canonical(input, ec) ==
                                                              std::filesystem::weakly_canonical(output, ec);
  if (same) throw Error(fmt::format("{}: the output would overwrite the input; choose another -o path", output.string()));
}

}  // namespace

double QuantizeReport::bits_per_value() const noexcept {
  const std::int64_t n = checked_numel(shape);
  return n == 0 ? 0.0 : 8.0 * static_cast<double>(code_bytes + param_bytes) / static_cast<double>(n);
}

QuantizeReport quantize_npy_file(const std::filesystem::path& input, const std::filesystem::path& output,
                                 const Scheme& scheme, const ObserveOptions& options) {
  refuse_same_file(input, output);
  const Tensor x = npy::read(input);
  ObserveOptions named = options;
  if (named.name.empty()) named.name = input.filename().string();

  QuantizeReport r;
  r.input = input;
  r.output = output;
  r.dtype = x.dtype();
  r.shape = x.shape();
  r.input_bytes = static_cast<std::int64_t>(x.nbytes());
  QuantizedTensor q;
  try {
    q = quantize(x, scheme, named);
  } catch (const NonFiniteError& e) {
    throw NonFiniteError(fmt::format("{}: {}", input.string(), e.what()), e.flat_index());
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", input.string(), e.what()));
  }
  r.params = q.params;
  r.error = measure_error(x, dequantize(q));
  r.code_bytes = static_cast<std::int64_t>(q.data.size());
  r.param_bytes = stored_param_bytes(r.params);
  npz::write_quantized(output, q);
  return r;
}

DequantizeReport dequantize_npz_file(const std::filesystem::path& input, const std::filesystem::path& output,
                                     DType dtype) {
  if (dtype == DType::bf16 || !is_float(dtype)) {
    throw Error(fmt::format("cannot write {} to .npy: choose f32, f64 or f16", dtype_name(dtype)));
  }
  refuse_same_file(input, output);
  const QuantizedTensor q = npz::read_quantized(input);
  const Tensor values = dtype == DType::f64 ? from_f32(dequantize(q), dtype) : dequantize(q, dtype);
  npy::write(output, values);
  return {input, output, q.params.scheme, q.shape, dtype, static_cast<std::int64_t>(values.nbytes())};
}

}  // namespace zp
