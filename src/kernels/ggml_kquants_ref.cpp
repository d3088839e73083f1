// Scalar references for llama.cpp's K-quants (q2_K ... q8_K): the specification the SIMD paths
// (ggml_kquants_hwy.cpp) match byte for byte.
//
// Every function here reproduces the bytes of ggml's ggml-quants.c for the same float32 input:
// quantize_row_qX_K_ref without importance, quantize_qX_K with quant_weights (one row) with it,
// dequantize_row_qX_K for the way back. ggml compiles that file as C without -march flags, so on
// x86-64 no multiply-add is fused; zeropoint compiles with -ffp-contract=off, and each float
// expression below keeps ggml's operand order and grouping: reordering a sum or hoisting a
// product changes the last bit of a scale and, through a rounding decision, a code. The layouts
// and the search procedures are described in docs/math.md §11.4 (layouts: docs/formats.md, "llama.cpp block formats").
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.hpp"
#include "kernels/ggml_blocks.hpp"

namespace zp::ggml::kernels {
namespace {

constexpr int kQK = static_cast<int>(kSuperBlock);
// ggml's threshold below which a group's largest magnitude counts as zero.
constexpr float kGroupMaxEps = 1e-15f;

using detail::kq_nearest_int;

// The C macros MIN/MAX of ggml, whose NaN behaviour (the second operand wins when a comparison
// is false) the searches inherit.
template <class T>
constexpr T min_c(T a, T b) noexcept {
  return a < b ? a : b;
}
template <class T>
constexpr T max_c(T a, T b) noexcept {
  return a > b ? a : b;
}

float load_half(const std::uint8_t* p) noexcept {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_f32_ggml(h);
}
// Stores the half and returns its value, which the requantization step uses.
float store_half(std::uint8_t* p, float f) noexcept {
  const std::uint16_t h = f32_f16_ggml(f);
  std::memcpy(p, &h, 2);
  return f16_f32_ggml(h);
}

// ---------------------------------------------------------------------------------------------
// Searches for a group's scale (ggml's make_*_quants). Each returns the scale and writes the
// group's codes to L.

// Symmetric codes in [0, 2*nmax) (offset by nmax), weights x^2 or the given ones: the scale from
// the largest magnitude, then 18 trial scales around it, keeping the one with the best weighted
// least-squares fit (ggml's make_qx_quants with rmse_type 1).
float fit_symmetric(int n, int nmax, const float* x, std::int8_t* L, const float* qw) noexcept {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto weight = [&](int i) { return qw ? qw[i] : x[i] * x[i]; };
  auto code = [&](float iscale, int i) { return max_c(-nmax, min_c(nmax - 1, kq_nearest_int(iscale * x[i]))); };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = code(iscale, i);
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = weight(i);
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = code(iscale, i);
      const float w = weight(i);
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(nmax + code(iscale, i));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// q3_K's symmetric search: codes from the largest magnitude, then up to five sweeps that move
// one code at a time while the x^2-weighted fit improves (ggml's make_q3_quants, do_rmse).
// An all-zero group leaves codes 0, not nmax, as ggml does.
float fit_symmetric_q3(int n, int nmax, const float* x, std::int8_t* L) noexcept {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = max_c(-nmax, min_c(nmax - 1, kq_nearest_int(iscale * x[i])));
    L[i] = static_cast<std::int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
        const int new_l = max_c(-nmax, min_c(nmax - 1, kq_nearest_int(x[i] * sl2 / slx)));
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace

namespace detail {

// Scale and minimum with codes in [0, nmax]: the range [min(x, 0), max(x)] first, then nstep + 1
// trial inverse scales (rmin + rdelta*is + nmax) / range, each refined by the weighted
// least-squares scale and offset for its codes, keeping the trial with the least weighted error
// (|diff| when use_mad, diff^2 otherwise). ggml's make_qkx2_quants and make_qkx3_quants with
// weights given, which compute the same thing. Stores -min (>= 0) in *the_min.
float kq_fit_affine(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                    float rmin, float rdelta, int nstep, bool use_mad) noexcept {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  auto error_of = [&](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = kq_nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(max_c(0, min_c(nmax, l)));
    const float diff = scale * static_cast<float>(L[i]) + min - x[i];
    best_error += weights[i] * error_of(diff);
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  std::uint8_t Laux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = max_c(0, min_c(nmax, kq_nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        cur_error += weights[i] * error_of(diff);
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

}  // namespace detail

namespace {

using detail::kq_fit_affine;

// Non-negative values (sub-block scales or minimums) to codes in [0, nmax] with one scale, under
// the given weights: 8 trial scales around max/nmax by weighted squared error, then up to five
// sweeps of single-code moves (ggml's make_qp_quants). Codes are stored in bytes as ggml does,
// so a negative code wraps.
float fit_positive(int n, int nmax, const float* x, std::uint8_t* L, const float* quant_weights) noexcept {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max_c(max, x[i]);
  if (max < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::uint8_t>(kq_nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += quant_weights[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = min_c(nmax, kq_nearest_int(iscale_is * x[i]));
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += quant_weights[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = min_c(nmax, kq_nearest_int(iscale * x[i]));
    L[i] = static_cast<std::uint8_t>(l);
    const float w = quant_weights[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = quant_weights[i];
      const float Li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * Li;
      float sl2 = suml2 - w * Li * Li;
      if (slx > 0 && sl2 > 0) {
        const int new_l = min_c(nmax, kq_nearest_int(x[i] * sl2 / slx));
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Sum of squares of a super-block, in order.
float sum_squares(const float* x) noexcept {
  float s = 0;
  for (int j = 0; j < kQK; ++j) s += x[j] * x[j];
  return s;
}

void expect_quantize_args(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance,
                          std::size_t block_bytes) noexcept {
  zp::kernels::detail::expect(x.size() % kSuperBlock == 0);
  zp::kernels::detail::expect_output(x, out, x.size() / kSuperBlock * block_bytes);
  zp::kernels::detail::expect(importance.empty() || importance.size() == x.size());
}
void expect_dequantize_args(std::span<const std::uint8_t> blocks, std::span<float> out, std::size_t block_bytes) noexcept {
  zp::kernels::detail::expect(out.size() % kSuperBlock == 0);
  zp::kernels::detail::expect_output(blocks, out, 0);
  zp::kernels::detail::expect(blocks.size() >= out.size() / kSuperBlock * block_bytes);
}

// Packs 2-bit codes as q2_K and q3_K store them: byte l of each 32-byte group holds the codes
// of values l, l+32, l+64, l+96 of its 128 values, lowest bits first.
void pack_2bit(const std::uint8_t* L, std::uint8_t* qs) noexcept {
  for (int j = 0; j < kQK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

// q4_K/q5_K's 12 bytes of 6-bit scales and minimums (see get_scale_min below).
void pack_scale_min_k4(const std::uint8_t* ls, const std::uint8_t* lm, std::uint8_t* scales) noexcept {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = ls[j];
      scales[j + 4] = lm[j];
    } else {
      scales[j + 4] = static_cast<std::uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      scales[j - 4] |= static_cast<std::uint8_t>((ls[j] >> 4) << 6);
      scales[j - 0] |= static_cast<std::uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

// q3_K's 12 bytes of 6-bit signed scales (stored + 32): low nibbles of 0..7 in bytes 0..7, of
// 8..15 in their high nibbles; the top two bits of scale j in byte 8 + j%4 at bit 2*(j/4).
void pack_scales_q3(const int* l6, std::uint8_t* scales) noexcept {
  std::memset(scales, 0, 12);
  for (int j = 0; j < 16; ++j) {
    int l = l6[j];
    if (j < 8) {
      scales[j] = static_cast<std::uint8_t>(l & 0xF);
    } else {
      scales[j - 8] |= static_cast<std::uint8_t>((l & 0xF) << 4);
    }
    l >>= 4;
    scales[j % 4 + 8] |= static_cast<std::uint8_t>(l << (2 * (j / 4)));
  }
}
int unpack_scale_q3(const std::uint8_t* scales, int j) noexcept {
  std::int8_t sc = static_cast<std::int8_t>(j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4);
  sc = static_cast<std::int8_t>((sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
  return sc;
}

// ---------------------------------------------------------------------------------------------
// Block byte offsets (ggml-common.h's structs; halves little-endian).
namespace q2k { constexpr int scales = 0, qs = 16, d = 80, dmin = 82; }
namespace q3k { constexpr int hmask = 0, qs = 32, scales = 96, d = 108; }
namespace q4k { constexpr int d = 0, dmin = 2, scales = 4, qs = 16; }
namespace q5k { constexpr int d = 0, dmin = 2, scales = 4, qh = 16, qs = 48; }
namespace q6k { constexpr int ql = 0, qh = 128, scales = 192, d = 208; }
namespace q8k { constexpr int d = 0, qs = 4, bsums = 260; }

// q2_K tail shared by both paths: codes from the stored scales, then packing.
void q2_K_requantize_and_pack(const float* x, std::uint8_t* y, std::uint8_t* L) noexcept {
  const float dall = load_half(y + q2k::d), mall = load_half(y + q2k::dmin);
  for (int j = 0; j < 16; ++j) {
    const std::uint8_t sc = y[q2k::scales + j];
    const float d = dall * static_cast<float>(sc & 0xF);
    if (!d) continue;
    const float dm = mall * static_cast<float>(sc >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      const int l = kq_nearest_int((x[16 * j + ii] + dm) / d);
      L[16 * j + ii] = static_cast<std::uint8_t>(max_c(0, min_c(3, l)));
    }
  }
  pack_2bit(L, y + q2k::qs);
}

void q2_K_block(const float* x, std::uint8_t* y) noexcept {
  std::uint8_t L[kQK];
  float weights[16], mins[16], scales[16];
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = kq_fit_affine(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
  }
  detail::kq_q2_K_finish(x, scales, mins, L, y);
}

void q2_K_block_weighted(const float* x, const float* qw, std::uint8_t* y) noexcept {
  std::uint8_t L[kQK], Ls[16], Lm[16];
  float mins[16], scales[16], sw[16], weight[16];
  const float sigma2 = sum_squares(x) / static_cast<float>(kQK);
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += weight[l];
    scales[j] = kq_fit_affine(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], -0.9f, 0.05f, 36, false);
  }
  const float dm = fit_positive(16, 15, scales, Ls, sw);
  const float mm = fit_positive(16, 15, mins, Lm, sw);
  store_half(y + q2k::d, dm);
  store_half(y + q2k::dmin, mm);
  for (int j = 0; j < 16; ++j) y[q2k::scales + j] = static_cast<std::uint8_t>(Ls[j] | (Lm[j] << 4));
  q2_K_requantize_and_pack(x, y, L);
}

// q3_K tail: codes in [-4, 3] from the stored scales, high bits to hmask (bit j/32 of byte
// j%32), low two bits packed as q2_K's.
void q3_K_requantize_and_pack(const float* x, std::uint8_t* y, std::int8_t* L) noexcept {
  const float dall = load_half(y + q3k::d);
  for (int j = 0; j < 16; ++j) {
    const float d = dall * static_cast<float>(unpack_scale_q3(y + q3k::scales, j));
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = max_c(-4, min_c(3, kq_nearest_int(x[16 * j + ii] / d)));
      L[16 * j + ii] = static_cast<std::int8_t>(l + 4);
    }
  }
  detail::kq_q3_K_pack(L, y);
}

void q3_K_block(const float* x, std::uint8_t* y) noexcept {
  std::int8_t L[kQK];
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric_q3(16, 4, x + 16 * j, L + 16 * j);
  detail::kq_q3_K_scales(scales, y);
  q3_K_requantize_and_pack(x, y, L);
}

void q3_K_block_weighted(const float* x, const float* qw, std::uint8_t* y) noexcept {
  std::int8_t L[kQK], Ls[16];
  float scales[16], weight[16], sw[16];
  const float sigma2 = 2 * sum_squares(x) / static_cast<float>(kQK);
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 16; ++l) sumw += weight[l];
    sw[j] = sumw;
    scales[j] = fit_symmetric(16, 4, x + 16 * j, L + 16 * j, weight);
  }
  const float d_block = fit_symmetric(16, 32, scales, Ls, sw);
  int l6[16];
  for (int j = 0; j < 16; ++j) l6[j] = Ls[j];
  pack_scales_q3(l6, y + q3k::scales);
  store_half(y + q3k::d, d_block);
  q3_K_requantize_and_pack(x, y, L);
}

// Scale and minimum codes of sub-block j from q4_K/q5_K's 12 scale bytes: sub-blocks 0..3 in the
// low 6 bits of bytes 0..3 (scales) and 4..7 (minimums); 4..7 in the nibbles of bytes 8..11 with
// their top two bits in the high bits of bytes 0..7.
void get_scale_min(int j, const std::uint8_t* q, std::uint8_t& d, std::uint8_t& m) noexcept {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// q4_K/q5_K: codes in [0, nmax] from the stored 6-bit scales and minimums.
void requantize_k4(const float* x, const std::uint8_t* y, int nmax, std::uint8_t* L) noexcept {
  const float dall = load_half(y + q4k::d), mall = load_half(y + q4k::dmin);
  for (int j = 0; j < 8; ++j) {
    std::uint8_t sc, m;
    get_scale_min(j, y + q4k::scales, sc, m);
    const float d = dall * static_cast<float>(sc);
    if (!d) continue;
    const float dm = mall * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = kq_nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<std::uint8_t>(max_c(0, min_c(nmax, l)));
    }
  }
}

void pack_q4_K(const std::uint8_t* L, std::uint8_t* y) noexcept {
  std::uint8_t* q = y + q4k::qs;
  for (int j = 0; j < kQK; j += 64) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    q += 32;
  }
}

// q5_K: low nibbles as q4_K's; the fifth bit of value 64*p + l (l < 32) in bit 2p of qh[l], of
// value 64*p + 32 + l in bit 2p + 1.
void pack_q5_K(const std::uint8_t* L, std::uint8_t* y) noexcept {
  // ggml tests l > 15 and subtracts 16; codes are in [0, 31], so that is the fifth bit and the
  // low nibble, taken here without branches (the codes' bits are unpredictable).
  std::uint8_t* qh = y + q5k::qh;
  std::uint8_t* ql = y + q5k::qs;
  for (int j = 0; j < 32; ++j) {
    int h = 0;
    for (int p = 0; p < 4; ++p) {
      const int l1 = L[64 * p + j], l2 = L[64 * p + j + 32];
      h |= ((l1 >> 4) << (2 * p)) | ((l2 >> 4) << (2 * p + 1));
      ql[32 * p + j] = static_cast<std::uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
    }
    qh[j] = static_cast<std::uint8_t>(h);
  }
}

// q4_K and q5_K without importance: weights av_x + |x| per sub-block of 32, then the 6-bit
// scales and minimums relative to the largest of each.
template <int kNmax>
void k4_block(const float* x, std::uint8_t* y, float rmin, int nstep) noexcept {
  std::uint8_t L[kQK];
  float weights[32], mins[8], scales[8];
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = kq_fit_affine(32, kNmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
  }
  detail::kq_k4_finish(x, scales, mins, L, kNmax, y);
}

// With importance: weights qw * sqrt(sigma2 + x^2), then the scales and minimums fitted as
// values of their own (fit_positive). ggml's q5_K path clamps those codes to 63, q4_K's does not.
template <int kNmax>
void k4_block_weighted(const float* x, const float* qw, std::uint8_t* y) noexcept {
  std::uint8_t L[kQK], Ls[8], Lm[8];
  float weights[32], sw[8], mins[8], scales[8];
  const float sigma2 = 2 * sum_squares(x) / static_cast<float>(kQK);
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[l];
    sw[j] = sumw;
    scales[j] = kq_fit_affine(32, kNmax, x + 32 * j, weights, L + 32 * j, &mins[j], -0.9f, 0.05f, 36, false);
  }
  const float d_block = fit_positive(8, 63, scales, Ls, sw);
  const float m_block = fit_positive(8, 63, mins, Lm, sw);
  if constexpr (kNmax == 31) {
    for (int j = 0; j < 8; ++j) {
      Ls[j] = min_c<std::uint8_t>(63, Ls[j]);
      Lm[j] = min_c<std::uint8_t>(63, Lm[j]);
    }
  }
  pack_scale_min_k4(Ls, Lm, y + q4k::scales);
  store_half(y + q4k::d, d_block);
  store_half(y + q4k::dmin, m_block);
  requantize_k4(x, y, kNmax, L);
  if constexpr (kNmax == 15) {
    pack_q4_K(L, y);
  } else {
    pack_q5_K(L, y);
  }
}

// q6_K: codes l + 32 with l in [-32, 31]; low nibbles in ql, top two bits in qh. Within each
// 128 values: ql[l] holds values l (low nibble) and l+64 (high); ql[l+32] holds l+32 and l+96;
// qh[l] holds the top bits of l, l+32, l+64, l+96 at bits 0, 2, 4, 6.
void q6_K_block(const float* x, const float* qw, std::uint8_t* y) noexcept {
  std::int8_t L[kQK];
  float scales[16];
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = fit_symmetric(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : nullptr);
  }
  detail::kq_q6_K_finish(x, scales, L, y);
}

}  // namespace

namespace detail {

float kq_fit_symmetric(int n, int nmax, const float* x, std::int8_t* L, const float* qw) noexcept {
  return fit_symmetric(n, nmax, x, L, qw);
}
float kq_fit_symmetric_q3(const float* x, std::int8_t* L) noexcept { return fit_symmetric_q3(16, 4, x, L); }

void kq_q3_K_scales(const float* scales, std::uint8_t* y) noexcept {
  float max_scale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  if (max_scale) {
    const float iscale = -32.f / max_scale;
    int l6[16];
    for (int j = 0; j < 16; ++j) {
      const std::int8_t l = static_cast<std::int8_t>(kq_nearest_int(iscale * scales[j]));
      l6[j] = static_cast<std::int8_t>(max_c(-32, min_c(31, static_cast<int>(l))) + 32);
    }
    pack_scales_q3(l6, y + q3k::scales);
    store_half(y + q3k::d, 1 / iscale);
  } else {
    std::memset(y + q3k::scales, 0, 12);
    store_half(y + q3k::d, 0.f);
  }
}

void kq_q3_K_pack(const std::int8_t* L, std::uint8_t* y) noexcept {
  std::uint8_t* hmask = y + q3k::hmask;
  // ggml tests l > 3 and subtracts 4; codes are in [0, 7], so that is the third bit and the low
  // two bits, taken here without branches (the branches were 60% of the SIMD path's time).
  std::uint8_t low[kQK];
  for (int i = 0; i < 32; ++i) {
    int h = 0;
    for (int p = 0; p < 8; ++p) {
      const int l = L[32 * p + i];
      h |= (l >> 2) << p;
      low[32 * p + i] = static_cast<std::uint8_t>(l & 3);
    }
    hmask[i] = static_cast<std::uint8_t>(h);
  }
  pack_2bit(low, y + q3k::qs);
}

void kq_q2_K_finish(const float* x, const float* scales, const float* mins, std::uint8_t* L, std::uint8_t* y) noexcept {
  float max_scale = 0, max_min = 0;  // scales and minimums are never negative here
  for (int j = 0; j < 16; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float q4scale = 15.f;
  std::uint8_t* sc = y + q2k::scales;
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < 16; ++j) sc[j] = static_cast<std::uint8_t>(kq_nearest_int(iscale * scales[j]));
    store_half(y + q2k::d, max_scale / q4scale);
  } else {
    for (int j = 0; j < 16; ++j) sc[j] = 0;
    store_half(y + q2k::d, 0.f);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < 16; ++j) sc[j] |= static_cast<std::uint8_t>(kq_nearest_int(iscale * mins[j]) << 4);
    store_half(y + q2k::dmin, max_min / q4scale);
  } else {
    store_half(y + q2k::dmin, 0.f);
  }
  q2_K_requantize_and_pack(x, y, L);
}

void kq_k4_scales(const float* scales, const float* mins, std::uint8_t* y) noexcept {
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = min_c<std::uint8_t>(63, static_cast<std::uint8_t>(kq_nearest_int(inv_scale * scales[j])));
    lm[j] = min_c<std::uint8_t>(63, static_cast<std::uint8_t>(kq_nearest_int(inv_min * mins[j])));
  }
  pack_scale_min_k4(ls, lm, y + q4k::scales);
  store_half(y + q4k::d, max_scale / 63.f);
  store_half(y + q4k::dmin, max_min / 63.f);
}

void kq_k4_pack(const std::uint8_t* L, int nmax, std::uint8_t* y) noexcept {
  if (nmax == 15) {
    pack_q4_K(L, y);
  } else {
    pack_q5_K(L, y);
  }
}

void kq_k4_finish(const float* x, const float* scales, const float* mins, std::uint8_t* L, int nmax,
                  std::uint8_t* y) noexcept {
  kq_k4_scales(scales, mins, y);
  requantize_k4(x, y, nmax, L);
  kq_k4_pack(L, nmax, y);
}

bool kq_q6_K_scales(const float* scales, std::uint8_t* y) noexcept {
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(y, 0, 210);
    return false;
  }
  const float iscale = -128.f / max_scale;
  store_half(y + q6k::d, 1 / iscale);
  std::int8_t* sc = reinterpret_cast<std::int8_t*>(y + q6k::scales);
  for (int ib = 0; ib < 16; ++ib) sc[ib] = static_cast<std::int8_t>(min_c(127, kq_nearest_int(iscale * scales[ib])));
  return true;
}

void kq_q6_K_pack(const std::int8_t* L, std::uint8_t* y) noexcept {
  std::uint8_t* ql = y + q6k::ql;
  std::uint8_t* qh = y + q6k::qh;
  for (int j = 0; j < kQK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
      const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
      ql[l + 0] = static_cast<std::uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<std::uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<std::uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                        ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

void kq_q6_K_finish(const float* x, const float* scales, std::int8_t* L, std::uint8_t* y) noexcept {
  if (!kq_q6_K_scales(scales, y)) return;
  const float dall = load_half(y + q6k::d);
  const std::int8_t* sc = reinterpret_cast<const std::int8_t*>(y + q6k::scales);
  for (int j = 0; j < 16; ++j) {
    const float d = dall * static_cast<float>(sc[j]);
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = max_c(-32, min_c(31, kq_nearest_int(x[16 * j + ii] / d)));
      L[16 * j + ii] = static_cast<std::int8_t>(l + 32);
    }
  }
  kq_q6_K_pack(L, y);
}

}  // namespace detail

namespace {

// q8_K: one float scale max/-127 (the sign makes the largest magnitude's code -127... +127),
// int8 codes, and the sums of each 16 codes. An all-zero block writes zero sums (ggml leaves
// them unwritten).
void q8_K_block(const float* x, std::uint8_t* y) noexcept {
  float max = 0, amax = 0;
  for (int j = 0; j < kQK; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (!amax) {
    std::memset(y, 0, 292);
    return;
  }
  const float iscale = -127.f / max;
  std::int8_t qs[kQK];
  for (int j = 0; j < kQK; ++j) qs[j] = static_cast<std::int8_t>(min_c(127, kq_nearest_int(iscale * x[j])));
  std::memcpy(y + q8k::qs, qs, kQK);
  for (int j = 0; j < 16; ++j) {
    int sum = 0;
    for (int ii = 0; ii < 16; ++ii) sum += qs[16 * j + ii];
    const std::int16_t s = static_cast<std::int16_t>(sum);
    std::memcpy(y + q8k::bsums + 2 * j, &s, 2);
  }
  const float d = 1 / iscale;
  std::memcpy(y + q8k::d, &d, 4);
}

template <class Block, class BlockWeighted>
void quantize_rows(std::span<const float> x, std::span<std::uint8_t> out, std::span<const float> importance,
                   std::size_t block_bytes, Block block, BlockWeighted block_weighted) noexcept {
  expect_quantize_args(x, out, importance, block_bytes);
  const std::size_t nb = x.size() / kSuperBlock;
  for (std::size_t i = 0; i < nb; ++i) {
    const float* xb = x.data() + i * kSuperBlock;
    std::uint8_t* yb = out.data() + i * block_bytes;
    if (importance.empty()) {
      block(xb, yb);
    } else {
      block_weighted(xb, importance.data() + i * kSuperBlock, yb);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Quantize.

void f32_q2_K_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
                           std::span<const float> importance) noexcept {
  quantize_rows(x, out, importance, 84, q2_K_block, q2_K_block_weighted);
}
void f32_q3_K_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
                           std::span<const float> importance) noexcept {
  quantize_rows(x, out, importance, 110, q3_K_block, q3_K_block_weighted);
}
void f32_q4_K_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
                           std::span<const float> importance) noexcept {
  quantize_rows(
      x, out, importance, 144, [](const float* xb, std::uint8_t* yb) { k4_block<15>(xb, yb, -1.f, 20); },
      k4_block_weighted<15>);
}
void f32_q5_K_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
                           std::span<const float> importance) noexcept {
  quantize_rows(
      x, out, importance, 176, [](const float* xb, std::uint8_t* yb) { k4_block<31>(xb, yb, -0.5f, 15); },
      k4_block_weighted<31>);
}
void f32_q6_K_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
                           std::span<const float> importance) noexcept {
  quantize_rows(
      x, out, importance, 210, [](const float* xb, std::uint8_t* yb) { q6_K_block(xb, nullptr, yb); }, q6_K_block);
}
void f32_q8_K_quantize_ref(std::span<const float> x, std::span<std::uint8_t> out,
                           std::span<const float> importance) noexcept {
  // q8_K has no importance-weighted variant in ggml: the weights are ignored.
  quantize_rows(x, out, {}, 292, q8_K_block, [](const float*, const float*, std::uint8_t*) {});
  (void)importance;
}

// ---------------------------------------------------------------------------------------------
// Dequantize: each value is scale * code - offset, computed in ggml's order (the scale product
// first, then the code).

void q2_K_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize_args(blocks, out, 84);
  float* y = out.data();
  for (std::size_t i = 0; i < out.size() / kSuperBlock; ++i) {
    const std::uint8_t* b = blocks.data() + i * 84;
    const float d = load_half(b + q2k::d), min = load_half(b + q2k::dmin);
    const std::uint8_t* q = b + q2k::qs;
    int is = 0;
    for (int n = 0; n < kQK; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const std::uint8_t sc = b[q2k::scales + is++];
          const float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
      q += 32;
    }
  }
}

void q3_K_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize_args(blocks, out, 110);
  float* y = out.data();
  for (std::size_t i = 0; i < out.size() / kSuperBlock; ++i) {
    const std::uint8_t* b = blocks.data() + i * 110;
    const float d_all = load_half(b + q3k::d);
    const std::uint8_t* q = b + q3k::qs;
    const std::uint8_t* hm = b + q3k::hmask;
    std::uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < kQK; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * static_cast<float>(unpack_scale_q3(b + q3k::scales, is++));
          for (int l = 0; l < 16; ++l) {
            const int code = ((q[l + 16 * half] >> shift) & 3) - ((hm[l + 16 * half] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(code);
          }
        }
        m = static_cast<std::uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

void q4_K_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize_args(blocks, out, 144);
  float* y = out.data();
  for (std::size_t i = 0; i < out.size() / kSuperBlock; ++i) {
    const std::uint8_t* b = blocks.data() + i * 144;
    const float d = load_half(b + q4k::d), min = load_half(b + q4k::dmin);
    const std::uint8_t* q = b + q4k::qs;
    for (int is = 0; is < 8; is += 2) {
      std::uint8_t sc, m;
      get_scale_min(is, b + q4k::scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      get_scale_min(is + 1, b + q4k::scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
    }
  }
}

void q5_K_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize_args(blocks, out, 176);
  float* y = out.data();
  for (std::size_t i = 0; i < out.size() / kSuperBlock; ++i) {
    const std::uint8_t* b = blocks.data() + i * 176;
    const float d = load_half(b + q5k::d), min = load_half(b + q5k::dmin);
    const std::uint8_t* ql = b + q5k::qs;
    const std::uint8_t* qh = b + q5k::qh;
    std::uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2) {
      std::uint8_t sc, m;
      get_scale_min(is, b + q5k::scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      get_scale_min(is + 1, b + q5k::scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      u1 = static_cast<std::uint8_t>(u1 << 2);
      u2 = static_cast<std::uint8_t>(u2 << 2);
    }
  }
}

void q6_K_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize_args(blocks, out, 210);
  float* y = out.data();
  for (std::size_t i = 0; i < out.size() / kSuperBlock; ++i) {
    const std::uint8_t* b = blocks.data() + i * 210;
    const float d = load_half(b + q6k::d);
    const std::uint8_t* ql = b + q6k::ql;
    const std::uint8_t* qh = b + q6k::qh;
    const std::int8_t* sc = reinterpret_cast<const std::int8_t*>(b + q6k::scales);
    for (int n = 0; n < kQK; n += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void q8_K_f32_dequantize_ref(std::span<const std::uint8_t> blocks, std::span<float> out) noexcept {
  expect_dequantize_args(blocks, out, 292);
  float* y = out.data();
  for (std::size_t i = 0; i < out.size() / kSuperBlock; ++i) {
    const std::uint8_t* b = blocks.data() + i * 292;
    float d;
    std::memcpy(&d, b + q8k::d, 4);
    const std::int8_t* qs = reinterpret_cast<const std::int8_t*>(b + q8k::qs);
    for (int j = 0; j < kQK; ++j) *y++ = d * static_cast<float>(qs[j]);
  }
}

}  // namespace zp::ggml::kernels
