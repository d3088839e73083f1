// zeropoint/kernels.hpp — the element-level formulas and the scalar reference kernels.
//
// These are the specification: every faster path must produce the same bits. They take spans
// and parameters, allocate nothing and know no file formats. docs/math.md maps each formula to
// the function here that computes it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zeropoint/params.hpp"
#include "zeropoint/scheme.hpp"

namespace zp::kernels {

/// Rounds to an integer-valued float. Ties follow `mode`; everything else goes to the nearest
/// integer. Independent of the floating-point environment. NaN and +-inf pass through.
inline float round_to_integer(float v, Rounding mode) noexcept {
  // From 2^23 on every float is an integer; the test is also false for NaN.
  if (!(std::fabs(v) < 8388608.0f)) return v;
  // Integer arithmetic on purpose: written with float selects, GCC turns the common case into
  // an unpredictable branch and the loop runs four times slower on random data.
  const auto truncated = static_cast<std::int32_t>(v);  // exact below 2^23
  const float frac = std::fabs(v - static_cast<float>(truncated));  // exact (Sterbenz)
  const std::int32_t toward_v = v < 0.0f ? -1 : 1;
  if (frac != 0.5f) return static_cast<float>(truncated + toward_v * static_cast<std::int32_t>(frac > 0.5f));
  switch (mode) {  // an exact tie: rare, so a branch costs nothing
    case Rounding::half_even: return static_cast<float>(truncated + toward_v * (truncated & 1));
    case Rounding::half_away: return static_cast<float>(truncated + toward_v);
    case Rounding::half_up: return static_cast<float>(truncated + static_cast<std::int32_t>(v > 0.0f));
  }
  return static_cast<float>(truncated);
}

struct CodeRange {
  int qmin;
  int qmax;
};

/// How the quotient x / scale is formed: a true division (ONNX, TFLite), or a multiplication
/// by the float32 reciprocal 1 / scale (PyTorch's fbgemm, ggml).
enum class Quotient : std::uint8_t { divide, reciprocal };

/// Everything quantize_value needs besides the value and its group's parameters.
struct QuantizeSpec {
  CodeRange range;
  Rounding rounding = Rounding::half_even;
  Quotient quotient = Quotient::divide;
};

/// The quantization formula for one value (docs/math.md §4):
///   q = clamp(round((x - offset) / scale) + zero_point, qmin, qmax)
/// evaluated in float32 (the subtraction is skipped when offset is 0, which changes no result).
/// NaN gives clamp(zero_point); +-inf saturate.
inline std::int32_t quantize_value(float x, const AffineParams& p, const QuantizeSpec& spec) noexcept {
  const CodeRange r = spec.range;
  const Rounding mode = spec.rounding;
  const float shifted = p.offset == 0.0f ? x : x - p.offset;
  const float v = spec.quotient == Quotient::divide ? shifted / p.scale : shifted * (1.0f / p.scale);
  float q;
  if (v != v) {
    q = static_cast<float>(p.zero_point);
  } else {
    q = round_to_integer(v, mode) + static_cast<float>(p.zero_point);
  }
  // Clamp in float: the rounded value may be far outside int32. q is not NaN here.
  q = std::min(std::max(q, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));
  return static_cast<std::int32_t>(q);
}

/// The dequantization formula for one code (docs/math.md §5):
///   x = float(q - zero_point) * scale + offset   (two roundings, never fused)
inline float dequantize_value(std::int32_t q, const AffineParams& p) noexcept {
  const float v = static_cast<float>(q - p.zero_point) * p.scale;
  return p.offset == 0.0f ? v : v + p.offset;
}

/// The QuantizeSpec a scheme asks for.
inline QuantizeSpec quantize_spec(const Scheme& s) noexcept {
  return {{s.qmin(), s.qmax()}, s.rounding, s.reciprocal ? Quotient::reciprocal : Quotient::divide};
}

// --- Span kernels over one parameter group ------------------------------------------------
// Named input_output_operation, as XNNPACK does; `_ref` marks the scalar reference.

void f32_qs8_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                          std::span<std::int8_t> q) noexcept;
void f32_qu8_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                          std::span<std::uint8_t> q) noexcept;
void f32_qs16_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                           std::span<std::int16_t> q) noexcept;
void f32_qu16_quantize_ref(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec,
                           std::span<std::uint16_t> q) noexcept;

void qs8_f32_dequantize_ref(std::span<const std::int8_t> q, const AffineParams& p, std::span<float> x) noexcept;
void qu8_f32_dequantize_ref(std::span<const std::uint8_t> q, const AffineParams& p, std::span<float> x) noexcept;
void qs16_f32_dequantize_ref(std::span<const std::int16_t> q, const AffineParams& p, std::span<float> x) noexcept;
void qu16_f32_dequantize_ref(std::span<const std::uint16_t> q, const AffineParams& p, std::span<float> x) noexcept;

// --- Span kernels with a parameter set per element ------------------------------------------
// Channels along the innermost axis (and blocks along an outer axis) give neighbouring elements
// neighbouring parameter groups: element i of the span uses entry i of every parameter span.

/// The parameters of consecutive groups, as QParams stores them (its arrays from some group on).
struct ParamSpans {
  std::span<const float> scale;
  std::span<const std::int32_t> zero_point;
  std::span<const float> offset;
  /// Whether any offset is non-zero (float_offset schemes); the kernels skip the subtraction
  /// otherwise. Leaving it true is always correct.
  bool has_offset = true;

  AffineParams at(std::size_t i) const noexcept { return {scale[i], zero_point[i], offset[i]}; }
};

/// q[i] = quantize_value(x[i], p.at(i), spec).
void f32_qs8_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                               std::span<std::int8_t> q) noexcept;
void f32_qu8_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                               std::span<std::uint8_t> q) noexcept;
void f32_qs16_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                                std::span<std::int16_t> q) noexcept;
void f32_qu16_quantize_each_ref(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec,
                                std::span<std::uint16_t> q) noexcept;

/// x[i] = dequantize_value(q[i], p.at(i)).
void qs8_f32_dequantize_each_ref(std::span<const std::int8_t> q, const ParamSpans& p, std::span<float> x) noexcept;
void qu8_f32_dequantize_each_ref(std::span<const std::uint8_t> q, const ParamSpans& p, std::span<float> x) noexcept;
void qs16_f32_dequantize_each_ref(std::span<const std::int16_t> q, const ParamSpans& p, std::span<float> x) noexcept;
void qu16_f32_dequantize_each_ref(std::span<const std::uint16_t> q, const ParamSpans& p, std::span<float> x) noexcept;

/// Running ranges of groups that recur every row. x holds rows of min.size() values (x.size() a
/// multiple of it; min and max are as long), taken in order: for each finite value v of column
/// j, min[j] = v if v < min[j], and max[j] = v if v > max[j] (so of equal values, -0.0 and +0.0
/// included, the one seen first stays). NaN and +-inf are skipped; returns false when there was
/// any.
bool f32_minmax_accumulate_ref(std::span<const float> x, std::span<float> min, std::span<float> max) noexcept;

/// Min and max of x. With skip_nonfinite, NaN and +-inf are left out; otherwise `finite` says
/// whether there were any. An input with no (finite) value gives {+inf, -inf}; a zero extreme
/// is always +0.0.
struct MinMax {
  float min;
  float max;
  /// False when x holds a NaN or infinity (without skip_nonfinite min/max then mean nothing), so
  /// one pass both observes the range and checks the values.
  bool finite = true;
};
MinMax f32_minmax_ref(std::span<const float> x, bool skip_nonfinite) noexcept;

/// max |x| (0 for an empty input). With skip_nonfinite, NaN and +-inf are left out.
float f32_absmax_ref(std::span<const float> x, bool skip_nonfinite) noexcept;

/// Index of the first NaN or infinity in x, or x.size() if there is none.
std::size_t f32_find_nonfinite_ref(std::span<const float> x) noexcept;

/// The sums behind ErrorMetrics (metrics.hpp) for finite `reference` against `approx`, in
/// double: elements go to 8 lanes by index (lane i % 8 for the first n - n % 8), each lane adds
/// in order, the lanes are added 0 to 7, then the last n % 8 elements one by one. The order is
/// part of the contract so that every instruction set gives the same bits.
struct ErrorSums {
  double err2 = 0, ref2 = 0, app2 = 0, dot = 0;  ///< sums of e^2, r^2, a^2, r*a with e = r - a
  double max_abs_error = 0;                      ///< max |r - a|
  std::size_t max_index = 0;                     ///< its first index (0 for an empty input)
};
ErrorSums f32_error_sums_ref(std::span<const float> reference, std::span<const float> approx) noexcept;

/// Packs one code per byte (the low `container_bits` bits of each) into
/// ceil(n * container_bits / 8) bytes, element 0 in the lowest bits. container_bits is 2 or 4.
void pack_ref(std::span<const std::uint8_t> codes, int container_bits, std::span<std::uint8_t> packed) noexcept;

/// Inverse of pack_ref for n = codes.size() codes; with is_signed the `container_bits`-bit
/// fields are sign-extended (two's complement), otherwise zero-extended.
void unpack_ref(std::span<const std::uint8_t> packed, int container_bits, bool is_signed,
                std::span<std::uint8_t> codes) noexcept;

// --- SIMD kernels ---------------------------------------------------------------------------
// The same contracts as the references above, bit for bit, compiled for every instruction set
// Highway targets (AVX-512, AVX2, SSE4, ... ; NEON on ARM) and chosen at run time for the CPU.
// f16 / bf16 inputs are raw 16-bit patterns, widened exactly inside the kernel (no extra pass).
// Preconditions, checked on every call (a violation aborts: these functions are noexcept and
// the alternative is writing out of bounds): outputs are at least as long as stated, never
// overlap the inputs, and every pointer is aligned to its element type.

void f32_qs8_quantize(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::int8_t> q) noexcept;
void f32_qu8_quantize(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::uint8_t> q) noexcept;
void f32_qs16_quantize(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::int16_t> q) noexcept;
void f32_qu16_quantize(std::span<const float> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::uint16_t> q) noexcept;
void f16_qs8_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::int8_t> q) noexcept;
void f16_qu8_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::uint8_t> q) noexcept;
void f16_qs16_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::int16_t> q) noexcept;
void f16_qu16_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::uint16_t> q) noexcept;
void bf16_qs8_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::int8_t> q) noexcept;
void bf16_qu8_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::uint8_t> q) noexcept;
void bf16_qs16_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::int16_t> q) noexcept;
void bf16_qu16_quantize(std::span<const std::uint16_t> x, const AffineParams& p, const QuantizeSpec& spec, std::span<std::uint16_t> q) noexcept;

void qs8_f32_dequantize(std::span<const std::int8_t> q, const AffineParams& p, std::span<float> x) noexcept;
void qu8_f32_dequantize(std::span<const std::uint8_t> q, const AffineParams& p, std::span<float> x) noexcept;
void qs16_f32_dequantize(std::span<const std::int16_t> q, const AffineParams& p, std::span<float> x) noexcept;
void qu16_f32_dequantize(std::span<const std::uint16_t> q, const AffineParams& p, std::span<float> x) noexcept;

void f32_qs8_quantize_each(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::int8_t> q) noexcept;
void f32_qu8_quantize_each(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::uint8_t> q) noexcept;
void f32_qs16_quantize_each(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::int16_t> q) noexcept;
void f32_qu16_quantize_each(std::span<const float> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::uint16_t> q) noexcept;
void f16_qs8_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::int8_t> q) noexcept;
void f16_qu8_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::uint8_t> q) noexcept;
void f16_qs16_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::int16_t> q) noexcept;
void f16_qu16_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::uint16_t> q) noexcept;
void bf16_qs8_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::int8_t> q) noexcept;
void bf16_qu8_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::uint8_t> q) noexcept;
void bf16_qs16_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::int16_t> q) noexcept;
void bf16_qu16_quantize_each(std::span<const std::uint16_t> x, const ParamSpans& p, const QuantizeSpec& spec, std::span<std::uint16_t> q) noexcept;

void qs8_f32_dequantize_each(std::span<const std::int8_t> q, const ParamSpans& p, std::span<float> x) noexcept;
void qu8_f32_dequantize_each(std::span<const std::uint8_t> q, const ParamSpans& p, std::span<float> x) noexcept;
void qs16_f32_dequantize_each(std::span<const std::int16_t> q, const ParamSpans& p, std::span<float> x) noexcept;
void qu16_f32_dequantize_each(std::span<const std::uint16_t> q, const ParamSpans& p, std::span<float> x) noexcept;

bool f32_minmax_accumulate(std::span<const float> x, std::span<float> min, std::span<float> max) noexcept;

/// Whether every code lies in [qmin, qmax]: how a file's codes are validated.
bool codes_in_range(std::span<const std::int8_t> q, int qmin, int qmax) noexcept;
bool codes_in_range(std::span<const std::uint8_t> q, int qmin, int qmax) noexcept;
bool codes_in_range(std::span<const std::int16_t> q, int qmin, int qmax) noexcept;
bool codes_in_range(std::span<const std::uint16_t> q, int qmin, int qmax) noexcept;

/// Exact widening of 16-bit floats (raw bit patterns) to float32, as the _convert_ref functions.
void f16_f32_convert(std::span<const std::uint16_t> x, std::span<float> out) noexcept;
void bf16_f32_convert(std::span<const std::uint16_t> x, std::span<float> out) noexcept;
/// Rounding of float32 to 16-bit floats, bit for bit as f32_f16_convert_ref / f32_bf16_convert_ref
/// (to nearest even; NaN stays a quiet NaN).
void f32_f16_convert(std::span<const float> x, std::span<std::uint16_t> out) noexcept;
void f32_bf16_convert(std::span<const float> x, std::span<std::uint16_t> out) noexcept;

MinMax f32_minmax(std::span<const float> x, bool skip_nonfinite) noexcept;
float f32_absmax(std::span<const float> x, bool skip_nonfinite) noexcept;
std::size_t f32_find_nonfinite(std::span<const float> x) noexcept;
ErrorSums f32_error_sums(std::span<const float> reference, std::span<const float> approx) noexcept;

/// What the per-block kernels need of a scheme, prepared once (BlockScheme::of).
struct BlockScheme {
  Scheme scheme;
  QuantizeSpec spec;
  int qmin = 0, qmax = 0;
  double divisor = 1;  ///< scale_divisor(scheme)
  bool symmetric = true;
  bool float_offset = false;
  std::int32_t symmetric_zero_point = 0;
  bool skip_nonfinite = false;  ///< leave NaN/inf out of each block's range (else: none present)

  static BlockScheme of(const Scheme& s, bool skip_nonfinite) noexcept {
    return {s, quantize_spec(s), s.qmin(), s.qmax(), scale_divisor(s), s.symmetric,
            s.zero_point == ZeroPointKind::float_offset, s.symmetric_zero_point(), skip_nonfinite};
  }
};

/// Per-block quantization in one pass: x holds `blocks` consecutive blocks of `block` values;
/// each block gets its min/max (f32_minmax), its parameters (exactly choose_params) written to
/// scale/zero_point/offset[b], and its codes. Bit-identical to doing those three steps with the
/// reference functions. Returns false when x holds a NaN or infinity (as MinMax::finite): without
/// skip_nonfinite that block's parameters and codes then mean nothing.
bool f32_qs8_quantize_blocks(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,
                             std::span<std::int32_t> zero_point, std::span<float> offset, std::span<std::int8_t> q) noexcept;
bool f32_qu8_quantize_blocks(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,
                             std::span<std::int32_t> zero_point, std::span<float> offset, std::span<std::uint8_t> q) noexcept;
bool f32_qs16_quantize_blocks(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,
                              std::span<std::int32_t> zero_point, std::span<float> offset, std::span<std::int16_t> q) noexcept;
bool f32_qu16_quantize_blocks(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,
                              std::span<std::int32_t> zero_point, std::span<float> offset, std::span<std::uint16_t> q) noexcept;

/// f32_qs8/qu8_quantize_blocks for 4-bit codes, written packed two per byte in pack_ref's order
/// (packed holds x.size() / 2 bytes; block must be even).
bool f32_qs4_quantize_blocks(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,
                             std::span<std::int32_t> zero_point, std::span<float> offset,
                             std::span<std::uint8_t> packed) noexcept;
bool f32_qu4_quantize_blocks(std::span<const float> x, std::size_t block, const BlockScheme& b, std::span<float> scale,
                             std::span<std::int32_t> zero_point, std::span<float> offset,
                             std::span<std::uint8_t> packed) noexcept;

/// pack_ref(codes, 4, packed): the low nibbles of byte codes, two per byte.
void u8_u4_pack(std::span<const std::uint8_t> codes, std::span<std::uint8_t> packed) noexcept;
/// unpack_ref(packed, 4, is_signed, codes): codes.size() codes from their nibbles.
void u4_u8_unpack(std::span<const std::uint8_t> packed, bool is_signed, std::span<std::uint8_t> codes) noexcept;

/// Instruction sets this binary contains and this CPU runs, best first ("AVX3", "AVX2", "SSE4",
/// "EMU128", ...).
std::vector<std::string> available_targets();

/// Makes every SIMD kernel use `name` (one of available_targets()), or the best again for "".
/// The environment variable ZEROPOINT_TARGET does the same at start-up. Throws zp::Error for a
/// name that is not available. Not thread-safe: call it before kernels run.
void force_target(std::string_view name);

/// The instruction set the SIMD kernels use now.
std::string current_target();

}  // namespace zp::kernels
