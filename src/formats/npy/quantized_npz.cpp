#include "zeropoint/formats/quantized_npz.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"

namespace zp::npz {
namespace {

bool packed(const Scheme& s) { return container_bits(s.bits) < 8; }

}  // namespace

void write_quantized(const std::filesystem::path& path, const QuantizedTensor& q) {
  const Scheme& s = q.params.scheme;
  q.params.check_fits(q.shape);
  Writer out(path);
  out.add_text("format", kQuantizedFormat);
  out.add_text("scheme", s.str());
  const Shape rank{static_cast<std::int64_t>(q.shape.size())};
  out.add("shape", TensorView(q.shape.data(), DType::i64, rank));
  if (packed(s)) {
    out.add("codes", TensorView(q.data.data(), DType::u8, {static_cast<std::int64_t>(q.data.size())}));
  } else {
    out.add("codes", unpack_codes(q));
  }
  out.add("scale", TensorView(q.params.scale.data(), DType::f32, q.params.param_shape));
  if (stores_zero_point(s)) out.add("zero_point", zero_points_as_codes(q.params));
  if (s.zero_point == ZeroPointKind::float_offset) {
    out.add("offset", TensorView(q.params.offset.data(), DType::f32, q.params.param_shape));
  }
  out.commit();
}

QuantizedTensor read_quantized(const std::filesystem::path& path) {
  const Reader in(path);
  const std::string file = path.string();
  auto require = [&](std::string_view name) {
    if (!in.contains(name)) {
      throw Error(fmt::format("{}: not a zeropoint quantized archive: no '{}' entry (it has: {})", file, name,
                              fmt::join(in.names(), ", ")));
    }
  };
  require("format");
  const std::string format = in.text("format");
  if (format != kQuantizedFormat) {
    throw Error(fmt::format("{}: format '{}' is not one this version reads ({})", file, format, kQuantizedFormat));
  }
  for (const char* name : {"scheme", "shape", "codes", "scale"}) require(name);

  QuantizedTensor q;
  try {
    q.params.scheme = Scheme::parse(in.text("scheme"));
  } catch (const Error& e) {
    throw Error(fmt::format("{}, entry 'scheme': {}", file, e.what()));
  }
  const Scheme& s = q.params.scheme;
  auto entry_error = [&](std::string_view name, const std::string& why) {
    return Error(fmt::format("{}, entry '{}': {}", file, name, why));
  };

  const Tensor shape = in.tensor("shape");
  if (shape.dtype() != DType::i64 || shape.rank() != 1) throw entry_error("shape", "expected a 1-D int64 array");
  for (std::int64_t d : shape.span<std::int64_t>()) {
    if (d < 0) throw entry_error("shape", fmt::format("negative dimension {}", d));
    q.shape.push_back(d);
  }
  const std::int64_t numel = checked_numel(q.shape);

  const ParamLayout layout = [&] {
    try {
      return ParamLayout::of(q.shape, s);
    } catch (const Error& e) {
      throw entry_error("scheme", e.what());
    }
  }();
  auto param_array = [&](std::string_view name, DType dtype) {
    require(name);
    Tensor t = in.tensor(name);
    if (t.dtype() != dtype || t.shape() != layout.param_shape) {
      throw entry_error(name, fmt::format("expected {} {} for {} on a tensor of shape {}, found {} {}",
                                          dtype_name(dtype), shape_str(layout.param_shape), s.str(),
                                          shape_str(q.shape), dtype_name(t.dtype()), shape_str(t.shape())));
    }
    return t;
  };
  const Tensor scale = param_array("scale", DType::f32);
  q.params.param_shape = layout.param_shape;
  q.params.scale.assign(scale.span<float>().begin(), scale.span<float>().end());
  // What choose_params gives a symmetric scheme; check_fits below rejects anything else stored.
  q.params.zero_point.assign(q.params.scale.size(), s.symmetric ? s.symmetric_zero_point() : 0);
  q.params.offset.assign(q.params.scale.size(), 0.0f);
  if (stores_zero_point(s)) {
    q.params.zero_point = zero_points_from_codes(param_array("zero_point", code_dtype(s)));
  } else if (s.zero_point == ZeroPointKind::float_offset) {
    const Tensor off = param_array("offset", DType::f32);
    q.params.offset.assign(off.span<float>().begin(), off.span<float>().end());
  }
  try {
    q.params.check_fits(q.shape);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", file, e.what()));
  }

  const Tensor codes = in.tensor("codes");
  try {
    if (packed(s)) {
      const Shape expected{packed_size(numel, s.bits)};
      if (codes.dtype() != DType::u8 || codes.shape() != expected) {
        throw Error(fmt::format("expected u8 {} (the packed codes of {} values), found {} {}", shape_str(expected),
                                numel, dtype_name(codes.dtype()), shape_str(codes.shape())));
      }
      q.data.assign(codes.span<std::uint8_t>().begin(), codes.span<std::uint8_t>().end());
      unpack_codes(q);  // every code inside the scheme's range
    } else {
      if (codes.shape() != q.shape) {
        throw Error(fmt::format("expected shape {}, found {}", shape_str(q.shape), shape_str(codes.shape())));
      }
      q = pack_codes(codes, std::move(q.params));
    }
  } catch (const Error& e) {
    throw entry_error("codes", e.what());
  }
  return q;
}

}  // namespace zp::npz
