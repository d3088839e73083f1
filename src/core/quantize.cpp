// Tensor-level quantize / dequantize over the reference kernels.
#include "zeropoint/quantize.hpp"

#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "core/runs.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"

namespace zp {
namespace {

// Applies a per-group span kernel to every run; runs whose elements change group at every step
// are fed one element at a time.
template <class Kernel>
void for_each_group_span(const ParamLayout& layout, const QParams& params, Kernel&& kernel) {
  detail::for_each_run(layout, [&](const detail::Run& run) {
    if (run.group_step == 0) {
      kernel(run.start, run.length, params.at(static_cast<std::size_t>(run.group)));
      return;
    }
    for (std::int64_t i = 0; i < run.length; ++i) {
      kernel(run.start + i, 1, params.at(static_cast<std::size_t>(run.group + i)));
    }
  });
}

template <class Code, class Fn>
void quantize_into(std::span<const float> x, const ParamLayout& layout, const QParams& params, Code* codes, Fn kernel) {
  const kernels::QuantizeSpec spec = kernels::quantize_spec(params.scheme);
  for_each_group_span(layout, params, [&](std::int64_t start, std::int64_t length, const AffineParams& p) {
    const auto s = static_cast<std::size_t>(start);
    const auto n = static_cast<std::size_t>(length);
    kernel(x.subspan(s, n), p, spec, std::span<Code>(codes + s, n));
  });
}

template <class Code, class Fn>
void dequantize_into(const Code* codes, const ParamLayout& layout, const QParams& params, std::span<float> out, Fn kernel) {
  for_each_group_span(layout, params, [&](std::int64_t start, std::int64_t length, const AffineParams& p) {
    const auto s = static_cast<std::size_t>(start);
    const auto n = static_cast<std::size_t>(length);
    kernel(std::span<const Code>(codes + s, n), p, out.subspan(s, n));
  });
}

// Codes one per element in their natural type: what the kernels produce and consume.
Tensor quantize_unpacked(const TensorView& x, const QParams& params) {
  if (!is_float(x.dtype())) {
    throw Error(fmt::format("cannot quantize a {} tensor: only float tensors (f32, f64, f16, bf16) can be quantized",
                            dtype_name(x.dtype())));
  }
  params.check_fits(x.shape());
  const ParamLayout layout = ParamLayout::of(x.shape(), params.scheme);
  const Tensor values = to_f32(x);
  const auto v = values.span<float>();
  Tensor codes(code_dtype(params.scheme), x.shape());
  switch (codes.dtype()) {
    case DType::i8: quantize_into(v, layout, params, codes.span<std::int8_t>().data(), kernels::f32_qs8_quantize_ref); break;
    case DType::u8: quantize_into(v, layout, params, codes.span<std::uint8_t>().data(), kernels::f32_qu8_quantize_ref); break;
    case DType::i16: quantize_into(v, layout, params, codes.span<std::int16_t>().data(), kernels::f32_qs16_quantize_ref); break;
    default: quantize_into(v, layout, params, codes.span<std::uint16_t>().data(), kernels::f32_qu16_quantize_ref); break;
  }
  return codes;
}

Tensor dequantize_unpacked(const Tensor& codes, const QParams& params) {
  const ParamLayout layout = ParamLayout::of(codes.shape(), params.scheme);
  Tensor out(DType::f32, codes.shape());
  const auto dst = out.span<float>();
  switch (codes.dtype()) {
    case DType::i8: dequantize_into(codes.span<std::int8_t>().data(), layout, params, dst, kernels::qs8_f32_dequantize_ref); break;
    case DType::u8: dequantize_into(codes.span<std::uint8_t>().data(), layout, params, dst, kernels::qu8_f32_dequantize_ref); break;
    case DType::i16: dequantize_into(codes.span<std::int16_t>().data(), layout, params, dst, kernels::qs16_f32_dequantize_ref); break;
    default: dequantize_into(codes.span<std::uint16_t>().data(), layout, params, dst, kernels::qu16_f32_dequantize_ref); break;
  }
  return out;
}

// Codes outside the range would dequantize to values the scheme cannot produce: the file lies.
void check_codes_in_range(const Tensor& codes, const Scheme& s) {
  auto check = [&](auto span) {
    for (std::size_t i = 0; i < span.size(); ++i) {
      const std::int32_t c = span[i];
      if (c < s.qmin() || c > s.qmax()) {
        throw Error(fmt::format("code {} at index {} is outside the range [{}, {}] of {}", c,
                                index_str(codes.shape(), static_cast<std::int64_t>(i)), s.qmin(), s.qmax(), s.str()));
      }
    }
  };
  switch (codes.dtype()) {
    case DType::i8: check(codes.span<std::int8_t>()); break;
    case DType::u8: check(codes.span<std::uint8_t>()); break;
    case DType::i16: check(codes.span<std::int16_t>()); break;
    default: check(codes.span<std::uint16_t>()); break;
  }
}

// Packs codes already known to be valid for the parameters.
QuantizedTensor pack_valid_codes(const Tensor& codes, QParams params) {
  const int bits = params.scheme.bits;
  QuantizedTensor q;
  q.shape = codes.shape();
  q.data.resize(static_cast<std::size_t>(packed_size(codes.numel(), bits)));
  const int cbits = container_bits(bits);
  if (cbits < 8) {
    kernels::pack_ref(codes.span<std::uint8_t>(), cbits, q.data);
  } else if (!q.data.empty()) {
    std::memcpy(q.data.data(), codes.data(), q.data.size());  // little-endian host, as everywhere
  }
  q.params = std::move(params);
  return q;
}

}  // namespace

DType code_dtype(const Scheme& s) noexcept {
  if (s.bits <= 8) return s.is_signed ? DType::i8 : DType::u8;
  return s.is_signed ? DType::i16 : DType::u16;
}

int container_bits(int bits) noexcept {
  if (bits <= 2) return 2;
  if (bits <= 4) return 4;
  if (bits <= 8) return 8;
  return 16;
}

std::int64_t packed_size(std::int64_t count, int bits) {
  const std::int64_t cbits = container_bits(bits);
  if (count < 0 || count > std::numeric_limits<std::int64_t>::max() / cbits) {
    throw Error(fmt::format("{} codes of {} bits do not fit in memory", count, bits));
  }
  return (count * cbits + 7) / 8;
}

QuantizedTensor quantize(const TensorView& x, const QParams& params) {
  return pack_valid_codes(quantize_unpacked(x, params), params);
}

Tensor dequantize(const QuantizedTensor& q) { return dequantize_unpacked(unpack_codes(q), q.params); }

Tensor fake_quantize(const TensorView& x, const QParams& params) {
  return dequantize_unpacked(quantize_unpacked(x, params), params);
}

Tensor unpack_codes(const QuantizedTensor& q) {
  q.params.check_fits(q.shape);
  const Scheme& s = q.params.scheme;
  const std::int64_t n = q.numel();
  if (static_cast<std::int64_t>(q.data.size()) != packed_size(n, s.bits)) {
    throw Error(fmt::format("{} codes of {} need {} bytes, the data has {}", n, s.type_name(), packed_size(n, s.bits),
                            q.data.size()));
  }
  Tensor codes(code_dtype(s), q.shape);
  const int cbits = container_bits(s.bits);
  if (cbits < 8) {
    kernels::unpack_ref(q.data, cbits, s.is_signed, codes.span<std::uint8_t>());
  } else if (!q.data.empty()) {
    std::memcpy(codes.data(), q.data.data(), q.data.size());
  }
  check_codes_in_range(codes, s);
  return codes;
}

QuantizedTensor pack_codes(const TensorView& codes, QParams params) {
  const Scheme& s = params.scheme;
  if (codes.dtype() != code_dtype(s)) {
    throw Error(fmt::format("codes of {} must be {}, got {}", s.str(), dtype_name(code_dtype(s)), dtype_name(codes.dtype())));
  }
  params.check_fits(codes.shape());
  const Tensor c = Tensor::copy_of(codes);
  check_codes_in_range(c, s);
  return pack_valid_codes(c, std::move(params));
}

}  // namespace zp
