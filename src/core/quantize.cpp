// Tensor-level quantize / dequantize: runs of shared parameters through the SIMD kernels,
// chunk by chunk on all threads.
#include "zeropoint/quantize.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <type_traits>

#include <fmt/format.h>

#include "core/chunk_input.hpp"
#include "core/quantize_parts.hpp"
#include "core/runs.hpp"
#include "core/thread_pool.hpp"
#include "zeropoint/observe.hpp"
#include "kernels/convert_ref.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"

namespace zp {
namespace {

// Elements per unit of work: big enough that a thread hand-off is noise, a multiple of 8 so
// that every chunk of packed codes starts on a byte boundary, and small enough (with its codes)
// to stay in L1/L2 between quantizing and packing.
constexpr std::int64_t kChunk = 16384;

enum class Input { f32, f16, bf16 };

template <Input in>
using InputElement = std::conditional_t<in == Input::f32, float, std::uint16_t>;

// The SIMD span kernel for an (input, code) pair.
template <Input in, class Code>
void quantize_span(std::span<const InputElement<in>> x, const AffineParams& p, const kernels::QuantizeSpec& spec,
                   std::span<Code> q) noexcept {
  using namespace kernels;
  if constexpr (in == Input::f32) {
    if constexpr (std::is_same_v<Code, std::int8_t>) f32_qs8_quantize(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::uint8_t>) f32_qu8_quantize(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::int16_t>) f32_qs16_quantize(x, p, spec, q);
    else f32_qu16_quantize(x, p, spec, q);
  } else if constexpr (in == Input::f16) {
    if constexpr (std::is_same_v<Code, std::int8_t>) f16_qs8_quantize(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::uint8_t>) f16_qu8_quantize(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::int16_t>) f16_qs16_quantize(x, p, spec, q);
    else f16_qu16_quantize(x, p, spec, q);
  } else {
    if constexpr (std::is_same_v<Code, std::int8_t>) bf16_qs8_quantize(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::uint8_t>) bf16_qu8_quantize(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::int16_t>) bf16_qs16_quantize(x, p, spec, q);
    else bf16_qu16_quantize(x, p, spec, q);
  }
}

template <class Code>
void dequantize_span(std::span<const Code> q, const AffineParams& p, std::span<float> x) noexcept {
  using namespace kernels;
  if constexpr (std::is_same_v<Code, std::int8_t>) qs8_f32_dequantize(q, p, x);
  else if constexpr (std::is_same_v<Code, std::uint8_t>) qu8_f32_dequantize(q, p, x);
  else if constexpr (std::is_same_v<Code, std::int16_t>) qs16_f32_dequantize(q, p, x);
  else qu16_f32_dequantize(q, p, x);
}

// The per-element form of quantize_span: element i uses the parameters p.at(i).
template <Input in, class Code>
void quantize_each(std::span<const InputElement<in>> x, const kernels::ParamSpans& p, const kernels::QuantizeSpec& spec,
                   std::span<Code> q) noexcept {
  using namespace kernels;
  if constexpr (in == Input::f32) {
    if constexpr (std::is_same_v<Code, std::int8_t>) f32_qs8_quantize_each(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::uint8_t>) f32_qu8_quantize_each(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::int16_t>) f32_qs16_quantize_each(x, p, spec, q);
    else f32_qu16_quantize_each(x, p, spec, q);
  } else if constexpr (in == Input::f16) {
    if constexpr (std::is_same_v<Code, std::int8_t>) f16_qs8_quantize_each(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::uint8_t>) f16_qu8_quantize_each(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::int16_t>) f16_qs16_quantize_each(x, p, spec, q);
    else f16_qu16_quantize_each(x, p, spec, q);
  } else {
    if constexpr (std::is_same_v<Code, std::int8_t>) bf16_qs8_quantize_each(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::uint8_t>) bf16_qu8_quantize_each(x, p, spec, q);
    else if constexpr (std::is_same_v<Code, std::int16_t>) bf16_qs16_quantize_each(x, p, spec, q);
    else bf16_qu16_quantize_each(x, p, spec, q);
  }
}

template <class Code>
void dequantize_each(std::span<const Code> q, const kernels::ParamSpans& p, std::span<float> x) noexcept {
  using namespace kernels;
  if constexpr (std::is_same_v<Code, std::int8_t>) qs8_f32_dequantize_each(q, p, x);
  else if constexpr (std::is_same_v<Code, std::uint8_t>) qu8_f32_dequantize_each(q, p, x);
  else if constexpr (std::is_same_v<Code, std::int16_t>) qs16_f32_dequantize_each(q, p, x);
  else qu16_f32_dequantize_each(q, p, x);
}

// The parameters of groups first, first + 1, ... as the per-element kernels take them.
kernels::ParamSpans param_spans(const QParams& params, std::int64_t first) noexcept {
  const auto g = static_cast<std::size_t>(first);
  return {std::span<const float>(params.scale).subspan(g), std::span<const std::int32_t>(params.zero_point).subspan(g),
          std::span<const float>(params.offset).subspan(g), params.scheme.zero_point == ZeroPointKind::float_offset};
}

template <class Code>
bool quantize_blocks(std::span<const float> x, std::size_t block, const kernels::BlockScheme& b, std::span<float> scale,
                     std::span<std::int32_t> zero_point, std::span<float> offset, std::span<Code> q) noexcept {
  using namespace kernels;
  if constexpr (std::is_same_v<Code, std::int8_t>) return f32_qs8_quantize_blocks(x, block, b, scale, zero_point, offset, q);
  else if constexpr (std::is_same_v<Code, std::uint8_t>) return f32_qu8_quantize_blocks(x, block, b, scale, zero_point, offset, q);
  else if constexpr (std::is_same_v<Code, std::int16_t>) return f32_qs16_quantize_blocks(x, block, b, scale, zero_point, offset, q);
  else return f32_qu16_quantize_blocks(x, block, b, scale, zero_point, offset, q);
}

// Quantizes elements [begin, end) of x into out[0, end - begin): runs that share one parameter
// set through the span kernels, runs whose parameters change at every element (channels along
// the innermost axis) through the per-element ones.
template <Input in, class Code>
void quantize_range(const InputElement<in>* x, const ParamLayout& layout, const QParams& params,
                    const kernels::QuantizeSpec& spec, std::int64_t begin, std::int64_t end, Code* out) {
  detail::for_each_run_in(layout, begin, end, [&](const detail::Run& r) {
    Code* dst = out + (r.start - begin);
    if (r.group_step == 0) {
      const auto n = static_cast<std::size_t>(r.length);
      quantize_span<in, Code>({x + r.start, n}, params.at(static_cast<std::size_t>(r.group)), spec, {dst, n});
      return;
    }
    const auto n = static_cast<std::size_t>(r.length);
    quantize_each<in, Code>({x + r.start, n}, param_spans(params, r.group), spec, {dst, n});
  });
}

template <class Code>
void dequantize_range(const Code* q, const ParamLayout& layout, const QParams& params, std::int64_t begin,
                      std::int64_t end, float* out) {
  detail::for_each_run_in(layout, begin, end, [&](const detail::Run& r) {
    float* dst = out + (r.start - begin);
    if (r.group_step == 0) {
      const auto n = static_cast<std::size_t>(r.length);
      dequantize_span<Code>({q + (r.start - begin), n}, params.at(static_cast<std::size_t>(r.group)), {dst, n});
      return;
    }
    const auto n = static_cast<std::size_t>(r.length);
    dequantize_each<Code>({q + (r.start - begin), n}, param_spans(params, r.group), {dst, n});
  });
}

// Runs fn(begin, end) over [0, n) in chunks of kChunk elements, on all threads.
template <class Fn>
void for_each_chunk(std::int64_t n, Fn&& fn) {
  detail::parallel_for(n, kChunk, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t begin = first; begin < last; begin += kChunk) fn(begin, std::min(begin + kChunk, last));
  });
}

// count sub-byte codes, one per byte, from their packed form (pack_ref's layout).
inline void unpack_chunk(const std::uint8_t* packed, std::size_t count, int cbits, bool is_signed, std::uint8_t* codes) {
  const std::span<const std::uint8_t> from{packed, (count * static_cast<std::size_t>(cbits) + 7) / 8};
  if (cbits == 4) kernels::u4_u8_unpack(from, is_signed, {codes, count});
  else kernels::unpack_ref(from, cbits, is_signed, {codes, count});
}

// count sub-byte codes (one per byte) packed into `packed`, as pack_ref lays them out.
template <class Code>
void pack_chunk(const Code* codes, std::size_t count, int cbits, std::uint8_t* packed) {
  const std::span<const std::uint8_t> from{reinterpret_cast<const std::uint8_t*>(codes), count};
  const std::span<std::uint8_t> into{packed, (count * static_cast<std::size_t>(cbits) + 7) / 8};
  if (cbits == 4) kernels::u8_u4_pack(from, into);
  else kernels::pack_ref(from, cbits, into);
}

// Calls after_chunk(begin, end) once the codes of each chunk [begin, end) are stored, on the
// thread that stored them, while the chunk is still in cache.
template <Input in, class Code, class AfterChunk>
void quantize_all(const InputElement<in>* x, std::int64_t n, const ParamLayout& layout, const QParams& params,
                  std::uint8_t* data, const AfterChunk& after_chunk) {
  const kernels::QuantizeSpec spec = kernels::quantize_spec(params.scheme);
  const int cbits = container_bits(params.scheme.bits);
  if (cbits >= 8) {
    Code* codes = reinterpret_cast<Code*>(data);
    for_each_chunk(n, [&](std::int64_t b, std::int64_t e) {
      quantize_range<in, Code>(x, layout, params, spec, b, e, codes + b);
      after_chunk(b, e);
    });
    return;
  }
  // Sub-byte codes: quantize a chunk into a small buffer while it is in cache, then pack it.
  for_each_chunk(n, [&](std::int64_t b, std::int64_t e) {
    std::array<Code, kChunk> buffer;
    quantize_range<in, Code>(x, layout, params, spec, b, e, buffer.data());
    pack_chunk(buffer.data(), static_cast<std::size_t>(e - b), cbits, data + b * cbits / 8);
    after_chunk(b, e);
  });
}

// Dequantizes chunk by chunk: codes [b, e) into into(b), then done(b, e) while they are in cache.
template <class Code, class Into, class Done>
void dequantize_all(const std::uint8_t* data, std::int64_t n, const ParamLayout& layout, const QParams& params,
                    const Into& into, const Done& done) {
  const int cbits = container_bits(params.scheme.bits);
  if (cbits >= 8) {
    const Code* codes = reinterpret_cast<const Code*>(data);
    for_each_chunk(n, [&](std::int64_t b, std::int64_t e) {
      dequantize_range<Code>(codes + b, layout, params, b, e, into(b));
      done(b, e);
    });
    return;
  }
  for_each_chunk(n, [&](std::int64_t b, std::int64_t e) {
    std::array<Code, kChunk> buffer;
    const auto count = static_cast<std::size_t>(e - b);
    unpack_chunk(data + b * cbits / 8, count, cbits, params.scheme.is_signed, reinterpret_cast<std::uint8_t*>(buffer.data()));
    dequantize_range<Code>(buffer.data(), layout, params, b, e, into(b));
    done(b, e);
  });
}

// Calls fn.template operator()<Code>() with the code type of the scheme.
template <class Fn>
void with_code_type(const Scheme& s, Fn&& fn) {
  switch (code_dtype(s)) {
    case DType::i8: fn.template operator()<std::int8_t>(); break;
    case DType::u8: fn.template operator()<std::uint8_t>(); break;
    case DType::i16: fn.template operator()<std::int16_t>(); break;
    default: fn.template operator()<std::uint16_t>(); break;
  }
}

// Codes outside the range would dequantize to values the scheme cannot produce: the file lies.
// The check is a SIMD kernel; the position is only searched for when there is something to report.
template <class Code>
void check_codes_in_range(std::span<const Code> codes, const Scheme& s, const Shape& shape, std::int64_t first_index) {
  if (kernels::codes_in_range(codes, s.qmin(), s.qmax())) return;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const std::int32_t c = codes[i];
    if (c < s.qmin() || c > s.qmax()) {
      throw Error(fmt::format("code {} at index {} is outside the range [{}, {}] of {}", c,
                              index_str(shape, first_index + static_cast<std::int64_t>(i)), s.qmin(), s.qmax(), s.str()));
    }
  }
}

// Everything a QuantizedTensor from outside must satisfy before it is decoded.
void validate_codes(const QuantizedTensor& q) {
  q.params.check_fits(q.shape);
  const Scheme& s = q.params.scheme;
  const std::int64_t n = q.numel();
  if (static_cast<std::int64_t>(q.data.size()) != packed_size(n, s.bits)) {
    throw Error(fmt::format("{} codes of {} need {} bytes, the data has {}", n, s.type_name(), packed_size(n, s.bits),
                            q.data.size()));
  }
  const int cbits = container_bits(s.bits);
  with_code_type(s, [&]<class Code>() {
    if (cbits >= 8) {
      check_codes_in_range<Code>({reinterpret_cast<const Code*>(q.data.data()), static_cast<std::size_t>(n)}, s, q.shape, 0);
      return;
    }
    for_each_chunk(n, [&](std::int64_t b, std::int64_t e) {
      std::array<Code, kChunk> buffer;
      const auto count = static_cast<std::size_t>(e - b);
      unpack_chunk(q.data.data() + b * cbits / 8, count, cbits, s.is_signed, reinterpret_cast<std::uint8_t*>(buffer.data()));
      check_codes_in_range<Code>({buffer.data(), count}, s, q.shape, b);
    });
  });
}

void require_float(const TensorView& x) {
  if (!is_float(x.dtype())) {
    throw Error(fmt::format("cannot quantize a {} tensor: only float tensors (f32, f64, f16, bf16) can be quantized",
                            dtype_name(x.dtype())));
  }
}

// Calls fn.template operator()<in>(values) with x's values as the kernels read them: f32, f16 and
// bf16 where they lie (16-bit floats widen inside the kernels), anything else (f64, strided
// views) converted to a float32 copy first.
template <class Fn>
void with_input(const TensorView& x, Fn&& fn) {
  const bool direct = x.is_contiguous() && x.dtype() != DType::f64;
  const Tensor converted = direct ? Tensor() : to_f32(x);
  const void* src = direct ? x.data() : converted.data();
  const DType in = direct ? x.dtype() : DType::f32;
  if (in == DType::f16) fn.template operator()<Input::f16>(static_cast<const std::uint16_t*>(src));
  else if (in == DType::bf16) fn.template operator()<Input::bf16>(static_cast<const std::uint16_t*>(src));
  else fn.template operator()<Input::f32>(static_cast<const float*>(src));
}

// quantize(x, params, q), calling after_chunk as quantize_all does.
template <class AfterChunk>
void quantize_with(const TensorView& x, const QParams& params, QuantizedTensor& q, const AfterChunk& after_chunk) {
  require_float(x);
  params.check_fits(x.shape());
  q.shape = x.shape();
  q.params = params;
  const std::int64_t n = x.numel();
  q.data.resize(static_cast<std::size_t>(packed_size(n, params.scheme.bits)));
  const ParamLayout layout = ParamLayout::of(x.shape(), params.scheme);
  std::uint8_t* data = q.data.data();
  with_code_type(params.scheme, [&]<class Code>() {
    with_input(x, [&]<Input in>(const InputElement<in>* values) {
      quantize_all<in, Code>(values, n, layout, params, data, after_chunk);
    });
  });
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

void quantize(const TensorView& x, const QParams& params, QuantizedTensor& q) {
  quantize_with(x, params, q, [](std::int64_t, std::int64_t) {});
}

QuantizedTensor quantize(const TensorView& x, const QParams& params) {
  QuantizedTensor q;
  quantize(x, params, q);
  return q;
}

void dequantize(const QuantizedTensor& q, std::span<float> out) {
  validate_codes(q);
  if (static_cast<std::int64_t>(out.size()) != q.numel()) {
    throw Error(fmt::format("dequantize needs room for {} values, the output has {}", q.numel(), out.size()));
  }
  const ParamLayout layout = ParamLayout::of(q.shape, q.params.scheme);
  with_code_type(q.params.scheme, [&]<class Code>() {
    dequantize_all<Code>(
        q.data.data(), q.numel(), layout, q.params, [&](std::int64_t b) { return out.data() + b; },
        [](std::int64_t, std::int64_t) {});
  });
}

Tensor dequantize(const QuantizedTensor& q) {
  Tensor out(DType::f32, q.shape);
  dequantize(q, out.span<float>());
  return out;
}

void dequantize(const QuantizedTensor& q, DType dtype, std::span<std::uint16_t> out) {
  if (dtype != DType::f16 && dtype != DType::bf16) {
    throw Error(fmt::format("dequantize to 16 bits needs f16 or bf16, not {}", dtype_name(dtype)));
  }
  validate_codes(q);
  if (static_cast<std::int64_t>(out.size()) != q.numel()) {
    throw Error(fmt::format("dequantize needs room for {} values, the output has {}", q.numel(), out.size()));
  }
  const ParamLayout layout = ParamLayout::of(q.shape, q.params.scheme);
  const int cbits = container_bits(q.params.scheme.bits);
  with_code_type(q.params.scheme, [&]<class Code>() {
    for_each_chunk(q.numel(), [&](std::int64_t b, std::int64_t e) {
      std::array<Code, kChunk> unpacked;
      const Code* codes = reinterpret_cast<const Code*>(q.data.data()) + b;
      if (cbits < 8) {
        unpack_chunk(q.data.data() + b * cbits / 8, static_cast<std::size_t>(e - b), cbits, q.params.scheme.is_signed,
                     reinterpret_cast<std::uint8_t*>(unpacked.data()));
        codes = unpacked.data();
      }
      // Floats a few KiB at a time, so that they are narrowed from L1 rather than L2.
      constexpr std::int64_t kPiece = 2048;
      std::array<float, kPiece> floats;
      for (std::int64_t p = b; p < e; p += kPiece) {
        const std::int64_t stop = std::min(p + kPiece, e);
        const auto count = static_cast<std::size_t>(stop - p);
        dequantize_range<Code>(codes + (p - b), layout, q.params, p, stop, floats.data());
        const std::span<const float> piece(floats.data(), count);
        const std::span<std::uint16_t> to = out.subspan(static_cast<std::size_t>(p), count);
        if (dtype == DType::f16) kernels::f32_f16_convert(piece, to);
        else kernels::f32_bf16_convert(piece, to);
      }
    });
  });
}

Tensor dequantize(const QuantizedTensor& q, DType dtype) {
  if (dtype == DType::f32) return dequantize(q);
  if (dtype != DType::f16 && dtype != DType::bf16) {
    throw Error(fmt::format("cannot dequantize to {}: choose f32, f16 or bf16", dtype_name(dtype)));
  }
  Tensor out(dtype, q.shape);
  dequantize(q, dtype, out.span<std::uint16_t>());
  return out;
}

Tensor fake_quantize(const TensorView& x, const QParams& params) {
  require_float(x);
  params.check_fits(x.shape());
  const ParamLayout layout = ParamLayout::of(x.shape(), params.scheme);
  const kernels::QuantizeSpec spec = kernels::quantize_spec(params.scheme);
  Tensor out(DType::f32, x.shape());
  float* values = out.span<float>().data();
  // One pass: each chunk's codes (one per byte or short, never packed) stay in a buffer in cache
  // and come back as values before the next chunk is read.
  with_code_type(params.scheme, [&]<class Code>() {
    with_input(x, [&]<Input in>(const InputElement<in>* input) {
      for_each_chunk(x.numel(), [&](std::int64_t b, std::int64_t e) {
        std::array<Code, kChunk> codes;
        quantize_range<in, Code>(input, layout, params, spec, b, e, codes.data());
        dequantize_range<Code>(codes.data(), layout, params, b, e, values + b);
      });
    });
  });
  return out;
}

bool stores_zero_point(const Scheme& s) noexcept { return s.zero_point == ZeroPointKind::integer && !s.symmetric; }

std::int64_t stored_param_bytes(const Shape& shape, const Scheme& scheme) {
  std::int64_t per_group = 4;  // f32 scale
  if (stores_zero_point(scheme)) per_group += static_cast<std::int64_t>(dtype_size(code_dtype(scheme)));
  if (scheme.zero_point == ZeroPointKind::float_offset) per_group += 4;
  return ParamLayout::of(shape, scheme).groups * per_group;
}

std::int64_t stored_param_bytes(const QParams& params) {
  std::int64_t per_group = 4;
  if (stores_zero_point(params.scheme)) per_group += static_cast<std::int64_t>(dtype_size(code_dtype(params.scheme)));
  if (params.scheme.zero_point == ZeroPointKind::float_offset) per_group += 4;
  return static_cast<std::int64_t>(params.size()) * per_group;
}

Tensor zero_points_as_codes(const QParams& p) {
  Tensor t(code_dtype(p.scheme), p.param_shape);
  for (std::size_t i = 0; i < p.zero_point.size(); ++i) {
    const std::int32_t z = p.zero_point[i];
    switch (t.dtype()) {
      case DType::i8: t.span<std::int8_t>()[i] = static_cast<std::int8_t>(z); break;
      case DType::u8: t.span<std::uint8_t>()[i] = static_cast<std::uint8_t>(z); break;
      case DType::i16: t.span<std::int16_t>()[i] = static_cast<std::int16_t>(z); break;
      default: t.span<std::uint16_t>()[i] = static_cast<std::uint16_t>(z); break;
    }
  }
  return t;
}

std::vector<std::int32_t> zero_points_from_codes(const TensorView& codes) {
  const Tensor wide = to_f32(codes);  // exact: every 16-bit integer is a float
  std::vector<std::int32_t> out;
  out.reserve(static_cast<std::size_t>(wide.numel()));
  for (float v : wide.span<float>()) out.push_back(static_cast<std::int32_t>(v));
  return out;
}

namespace {

// Whether every parameter group is one contiguous run whose packed codes start on a byte
// boundary: then a group can be observed and quantized while it is in cache (one DRAM pass).
bool fusable(const ParamLayout& l, const Scheme& s) {
  // mse searches each group's clipping over its values (compute_params): not a min/max pass.
  if (s.mse) return false;
  const std::int64_t per_byte = 8 / std::min(container_bits(s.bits), 8);
  if (l.granularity == Granularity::channel) return l.outer == 1 && l.inner > 1 && l.inner % per_byte == 0;
  if (l.granularity == Granularity::block) {
    return l.inner == 1 && l.block % per_byte == 0 && l.dim % per_byte == 0;
  }
  return false;  // per tensor: the whole range must be known before the first code
}

// The grid both the one-pass quantizer and quantization_error walk: batch k covers
// [edge(k), edge(k + 1)), edge(k) = k * kChunk moved to the next run start where runs are
// quantized whole (fusable layouts). The grid depends on the tensor only, not on how batches meet
// threads, so error sums accumulated per batch and merged in order have the same bits for any
// thread count.
struct BatchGrid {
  const ParamLayout& layout;
  bool by_runs;
  std::int64_t n;

  std::int64_t edge(std::int64_t k) const {
    const std::int64_t p = k * kChunk;
    if (p >= n) return n;
    if (!by_runs) return p;
    const detail::Run r = detail::run_at(layout, p);
    return r.start == p ? p : std::min(n, r.start + r.length);
  }
  std::int64_t batches() const { return (n + kChunk - 1) / kChunk; }
  // Calls fn(k, begin, end) for every non-empty batch, on the library's threads.
  template <class Fn>
  void for_each(Fn&& fn) const {
    detail::parallel_for(n, kChunk, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t k = first / kChunk; k < (last + kChunk - 1) / kChunk; ++k) {
        const std::int64_t b = edge(k), e = edge(k + 1);
        if (b < e) fn(k, b, e);
      }
    });
  }
};

// Accumulates the error of codes [begin, end) of q (already written) against `reference`, which
// the caller may know to be finite (its range pass found no NaN or infinity), as the elements
// index_base + begin, ... (x may be a part of a larger tensor).
enum class Reference { maybe_nonfinite, finite };
template <class Code>
void measure_batch(const QuantizedTensor& q, const ParamLayout& layout, std::int64_t begin, std::int64_t end,
                   std::span<const float> reference, Reference kind, std::int64_t index_base, ErrorAccumulator& acc) {
  thread_local std::vector<float> approx;
  thread_local std::vector<std::uint8_t> unpacked;
  const int cbits = container_bits(q.params.scheme.bits);
  const auto count = static_cast<std::size_t>(end - begin);
  approx.resize(count);
  const Code* codes = reinterpret_cast<const Code*>(q.data.data()) + begin;
  if (cbits < 8) {
    unpacked.resize(count);
    unpack_chunk(q.data.data() + begin * cbits / 8, count, cbits, q.params.scheme.is_signed, unpacked.data());
    codes = reinterpret_cast<const Code*>(unpacked.data());
  }
  dequantize_range<Code>(codes, layout, q.params, begin, end, approx.data());
  if (kind == Reference::finite) acc.add_finite(reference, approx, index_base + begin);
  else acc.add(reference, approx, index_base + begin);
}

ErrorMetrics merged(const std::vector<ErrorAccumulator>& parts) {
  ErrorAccumulator total;
  for (const ErrorAccumulator& part : parts) total.merge(part);
  return total.result();
}

void merge_into(ErrorAccumulator& total, const std::vector<ErrorAccumulator>& parts) {
  for (const ErrorAccumulator& part : parts) total.merge(part);
}

}  // namespace

ErrorMetrics quantization_error(const TensorView& x, const QuantizedTensor& q) {
  if (x.shape() != q.shape) {
    throw Error(fmt::format("cannot compare a tensor of shape {} with codes of shape {}", shape_str(x.shape()),
                            shape_str(q.shape)));
  }
  const bool direct = x.is_contiguous() && (x.dtype() == DType::f32 || x.dtype() == DType::f16 || x.dtype() == DType::bf16);
  if (!direct) return measure_error(x, dequantize(q));
  const ParamLayout layout = ParamLayout::of(q.shape, q.params.scheme);
  const BatchGrid grid{layout, fusable(layout, q.params.scheme), x.numel()};
  std::vector<ErrorAccumulator> parts(static_cast<std::size_t>(grid.batches()));
  with_code_type(q.params.scheme, [&]<class Code>() {
    grid.for_each([&](std::int64_t k, std::int64_t b, std::int64_t e) {
      thread_local std::vector<float> widened;
      const std::span<const float> reference = detail::float_values(x.data(), x.dtype(), b, e, widened);
      measure_batch<Code>(q, layout, b, e, reference, Reference::maybe_nonfinite, 0, parts[static_cast<std::size_t>(k)]);
    });
  });
  return merged(parts);
}

namespace {


// One pass: each thread takes the runs that start in its range, in batches of about kChunk
// elements: widen (16-bit input), find the range of each run, choose its parameters, quantize.
void quantize_fused(const TensorView& x, const ParamLayout& layout, const Scheme& scheme, const ObserveOptions& options,
                    QuantizedTensor& q, std::vector<ErrorAccumulator>* error_parts, std::int64_t index_base = 0) {
  const std::int64_t n = x.numel();
  q.shape = x.shape();
  q.params.scheme = scheme;
  q.params.param_shape = layout.param_shape;
  const auto groups = static_cast<std::size_t>(layout.groups);
  q.params.scale.resize(groups);
  q.params.zero_point.resize(groups);
  q.params.offset.resize(groups);
  q.data.resize(static_cast<std::size_t>(packed_size(n, scheme.bits)));
  const kernels::QuantizeSpec spec = kernels::quantize_spec(scheme);
  const kernels::BlockScheme block_scheme = kernels::BlockScheme::of(scheme, options.ignore_nonfinite);
  const bool symmetric_range = scheme.symmetric && scheme.zero_point != ZeroPointKind::float_offset;
  const int cbits = container_bits(scheme.bits);
  detail::FirstNonFinite first_bad(n);

  auto batch = [&]<class Code>(std::int64_t begin, std::int64_t end, std::vector<float>& widened, std::vector<Code>& codes) {
    const auto count = static_cast<std::size_t>(end - begin);
    const std::span<const float> values = detail::float_values(x.data(), x.dtype(), begin, end, widened);
    // Kernels report a NaN or infinity as they observe; its index is searched for only then.
    bool finite = true;
    Code* out = cbits >= 8 ? reinterpret_cast<Code*>(q.data.data()) + begin : (codes.resize(count), codes.data());
    // Observe, choose parameters and quantize the runs in [from, to), one call each.
    auto quantize_runs = [&](std::int64_t from, std::int64_t to) {
      detail::for_each_run_in(layout, from, to, [&](const detail::Run& r) {
        const auto part = values.subspan(static_cast<std::size_t>(r.start - begin), static_cast<std::size_t>(r.length));
        AffineParams p;
        if (symmetric_range) {
          // A symmetric range needs only the largest magnitude: half the work of min and max.
          const float amax = kernels::f32_absmax(part, options.ignore_nonfinite);
          if (!(amax <= std::numeric_limits<float>::max())) return first_bad.found_in(part, r.start);
          p = choose_params(-amax, amax, scheme);
        } else {
          kernels::MinMax m = kernels::f32_minmax(part, options.ignore_nonfinite);
          if (!m.finite && !options.ignore_nonfinite) return first_bad.found_in(part, r.start);
          if (m.min > m.max) m.min = m.max = 0.0f;  // no finite value in the group
          p = choose_params(m.min, m.max, scheme);
        }
        const auto g = static_cast<std::size_t>(r.group);
        q.params.scale[g] = p.scale;
        q.params.zero_point[g] = p.zero_point;
        q.params.offset[g] = p.offset;
        quantize_span<Input::f32, Code>(part, p, spec, {out + (r.start - begin), part.size()});
      });
    };
    // Whole blocks of the full length, one after another: the one-pass block kernel does many
    // per call (runs of a few dozen values are too short to pay a call each).
    std::int64_t pos = begin;
    bool packed = false;
    if (layout.granularity == Granularity::block && layout.dim % layout.block == 0) {
      // No partial blocks: the batch (whole runs) is one stretch of consecutive full blocks.
      const auto g = static_cast<std::size_t>(detail::run_at(layout, begin).group);
      const auto nb = count / static_cast<std::size_t>(layout.block);
      const std::span<float> scales{q.params.scale.data() + g, nb}, offsets{q.params.offset.data() + g, nb};
      const std::span<std::int32_t> zero_points{q.params.zero_point.data() + g, nb};
      const auto block = static_cast<std::size_t>(layout.block);
      if (cbits == 4) {  // the kernel packs the codes itself (fusable: blocks hold whole bytes)
        const std::span<std::uint8_t> into{q.data.data() + begin / 2, count / 2};
        finite = scheme.is_signed ? kernels::f32_qs4_quantize_blocks(values, block, block_scheme, scales, zero_points, offsets, into)
                                  : kernels::f32_qu4_quantize_blocks(values, block, block_scheme, scales, zero_points, offsets, into);
        packed = true;
      } else {
        finite = quantize_blocks<Code>(values, block, block_scheme, scales, zero_points, offsets, {out, count});
      }
      pos = end;
    }
    if (layout.granularity == Granularity::block) {
      while (pos < end) {
        const detail::Run first = detail::run_at(layout, pos);
        std::int64_t stop = pos, blocks = 0;
        for (detail::Run r = first; stop < end && r.length == layout.block && r.group == first.group + blocks;) {
          stop += r.length;
          ++blocks;
          if (stop < end) r = detail::run_at(layout, stop);
        }
        if (blocks == 0) break;
        const auto g = static_cast<std::size_t>(first.group);
        const auto nb = static_cast<std::size_t>(blocks);
        const auto values_of = values.subspan(static_cast<std::size_t>(pos - begin), static_cast<std::size_t>(stop - pos));
        finite = quantize_blocks<Code>(values_of, static_cast<std::size_t>(layout.block), block_scheme,
                                       {q.params.scale.data() + g, nb}, {q.params.zero_point.data() + g, nb},
                                       {q.params.offset.data() + g, nb}, {out + (pos - begin), values_of.size()}) &&
                 finite;
        pos = stop;
        if (pos < end && detail::run_at(layout, pos).length != layout.block) {
          const detail::Run partial = detail::run_at(layout, pos);
          quantize_runs(pos, partial.start + partial.length);
          pos = partial.start + partial.length;
        }
      }
    }
    quantize_runs(pos, end);
    if (!finite && !options.ignore_nonfinite) return first_bad.found_in(values, begin);
    if (cbits < 8 && !packed) pack_chunk(codes.data(), count, cbits, q.data.data() + begin * cbits / 8);
  };

  const Reference known = options.ignore_nonfinite ? Reference::maybe_nonfinite : Reference::finite;
  with_code_type(scheme, [&]<class Code>() {
    // Batches of about kChunk elements on the grid quantization_error uses (whole runs each), so
    // that the error measured here, while the batch is in cache, has the same bits.
    const BatchGrid grid{layout, true, n};
    grid.for_each([&](std::int64_t k, std::int64_t begin, std::int64_t end) {
      thread_local std::vector<float> widened;
      thread_local std::vector<Code> codes;
      batch.template operator()<Code>(begin, end, widened, codes);
      if (error_parts && first_bad.index() >= n) {
        // The batch's values as float32: x itself, or what batch() widened into `widened`. Unless
        // NaN and infinity are ignored, they are finite: batch() found their range.
        const auto count = static_cast<std::size_t>(end - begin);
        const std::span<const float> values = x.dtype() == DType::f32
                                                  ? std::span<const float>(static_cast<const float*>(x.data()) + begin, count)
                                                  : std::span<const float>(widened.data(), count);
        measure_batch<Code>(q, layout, begin, end, values, known, index_base, (*error_parts)[static_cast<std::size_t>(k)]);
      }
    });
  });
  if (const std::int64_t bad = first_bad.index(); bad < n) {
    compute_params(x, scheme, options);  // reports the first non-finite value in the usual words
  }
}

}  // namespace

void quantize(const TensorView& x, const Scheme& scheme, const ObserveOptions& options, QuantizedTensor& out) {
  scheme.validate();
  const bool direct = x.is_contiguous() && (x.dtype() == DType::f32 || x.dtype() == DType::f16 || x.dtype() == DType::bf16);
  if (direct && x.numel() > 0) {
    const ParamLayout layout = ParamLayout::of(x.shape(), scheme);
    if (fusable(layout, scheme)) return quantize_fused(x, layout, scheme, options, out, nullptr);
  }
  quantize(x, compute_params(x, scheme, options), out);
}

void quantize(const TensorView& x, const Scheme& scheme, const ObserveOptions& options, QuantizedTensor& out,
              ErrorMetrics& error) {
  ErrorAccumulator total;
  detail::quantize_measuring(x, scheme, options, out, total, 0);
  error = total.result();
}

namespace detail {

void quantize_measuring(const TensorView& x, const Scheme& scheme, const ObserveOptions& options, QuantizedTensor& out,
                        ErrorAccumulator& error, std::int64_t index_base) {
  scheme.validate();
  const bool direct = x.is_contiguous() && (x.dtype() == DType::f32 || x.dtype() == DType::f16 || x.dtype() == DType::bf16);
  if (!direct || x.numel() == 0) {
    quantize(x, compute_params(x, scheme, options), out);
    error.add(to_f32(x).span<float>(), dequantize(out).span<float>(), index_base);  // as measure_error
    return;
  }
  const ParamLayout layout = ParamLayout::of(x.shape(), scheme);
  if (fusable(layout, scheme)) {
    std::vector<ErrorAccumulator> parts(static_cast<std::size_t>(BatchGrid{layout, true, x.numel()}.batches()));
    quantize_fused(x, layout, scheme, options, out, &parts, index_base);
    merge_into(error, parts);
    return;
  }
  const QParams params = compute_params(x, scheme, options);
  // The error of each chunk while it is in cache, on quantization_error's grid (chunks of
  // kChunk, as quantize_all's): the same bits, one pass over x fewer.
  const BatchGrid grid{layout, false, x.numel()};
  std::vector<ErrorAccumulator> parts(static_cast<std::size_t>(grid.batches()));
  // compute_params found no NaN or infinity, unless told to ignore them.
  const Reference known = options.ignore_nonfinite ? Reference::maybe_nonfinite : Reference::finite;
  with_code_type(scheme, [&]<class Code>() {
    quantize_with(x, params, out, [&](std::int64_t b, std::int64_t e) {
      thread_local std::vector<float> widened;
      const std::span<const float> reference = detail::float_values(x.data(), x.dtype(), b, e, widened);
      measure_batch<Code>(out, layout, b, e, reference, known, index_base, parts[static_cast<std::size_t>(b / kChunk)]);
    });
  });
  merge_into(error, parts);
}

}  // namespace detail

QuantizedTensor quantize(const TensorView& x, const Scheme& scheme, const ObserveOptions& options) {
  QuantizedTensor q;
  quantize(x, scheme, options, q);
  return q;
}

Tensor unpack_codes(const QuantizedTensor& q) {
  validate_codes(q);
  const Scheme& s = q.params.scheme;
  Tensor codes(code_dtype(s), q.shape);
  const int cbits = container_bits(s.bits);
  if (cbits < 8) {
    unpack_chunk(q.data.data(), static_cast<std::size_t>(codes.numel()), cbits, s.is_signed, codes.span<std::uint8_t>().data());
  } else if (!q.data.empty()) {
    std::memcpy(codes.data(), q.data.data(), q.data.size());  // little-endian host, as everywhere
  }
  return codes;
}

QuantizedTensor pack_codes(const TensorView& codes, QParams params) {
  const Scheme& s = params.scheme;
  if (codes.dtype() != code_dtype(s)) {
    throw Error(fmt::format("codes of {} must be {}, got {}", s.str(), dtype_name(code_dtype(s)), dtype_name(codes.dtype())));
  }
  params.check_fits(codes.shape());
  const Tensor c = Tensor::copy_of(codes);
  QuantizedTensor q;
  q.shape = codes.shape();
  q.data.resize(static_cast<std::size_t>(packed_size(c.numel(), s.bits)));
  const int cbits = container_bits(s.bits);
  if (cbits < 8) {
    kernels::pack_ref(c.span<std::uint8_t>(), cbits, q.data);
  } else if (!q.data.empty()) {
    std::memcpy(q.data.data(), c.data(), q.data.size());
  }
  q.params = std::move(params);
  validate_codes(q);  // packing keeps only the low bits, so check the stored codes themselves
  return q;
}

}  // namespace zp
