#include "zeropoint/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kernels/convert_ref.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"

namespace zp {

std::int64_t checked_numel(const Shape& shape) {
  // The product of the non-zero dimensions must fit too: strides are built from it, and a
  // shape like [0, 2^32, 2^32] holds no elements yet would overflow them.
  std::int64_t nonzero = 1;
  bool empty = false;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error(fmt::format("shape {} has a negative dimension", shape_str(shape)));
    if (d == 0) {
      empty = true;
      continue;
    }
    if (nonzero > std::numeric_limits<std::int64_t>::max() / d) {
      throw Error(fmt::format("shape {} has more elements than fit in 64 bits", shape_str(shape)));
    }
    nonzero *= d;
  }
  return empty ? 0 : nonzero;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string index_str(const Shape& shape, std::int64_t flat) {
  Shape index(shape.size());
  for (std::size_t k = shape.size(); k-- > 0;) {
    const std::int64_t d = shape[k] > 0 ? shape[k] : 1;
    index[k] = flat % d;
    flat /= d;
  }
  return shape_str(index);
}

// ---------------------------------------------------------------------------------------------
TensorView::TensorView(const void* data, DType dtype, Shape shape)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), numel_(checked_numel(shape_)) {
  strides_.resize(shape_.size());
  std::int64_t stride = 1;
  for (std::size_t k = shape_.size(); k-- > 0;) {
    strides_[k] = stride;
    stride *= shape_[k];
  }
}

TensorView::TensorView(const void* data, DType dtype, Shape shape, std::vector<std::int64_t> strides)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)),
      numel_(checked_numel(shape_)) {
  if (strides_.size() != shape_.size()) {
    throw Error(fmt::format("a view of shape {} needs {} strides, got {}", shape_str(shape_),
                            shape_.size(), strides_.size()));
  }
  for (std::int64_t s : strides_) {
    if (s < 0) throw Error("negative strides are not supported; make the tensor contiguous first");
  }
}

bool TensorView::is_contiguous() const noexcept {
  std::int64_t expected = 1;
  for (std::size_t k = shape_.size(); k-- > 0;) {
    if (shape_[k] != 1 && strides_[k] != expected) return numel_ == 0;
    expected *= shape_[k];
  }
  return true;
}

void TensorView::check_span(std::size_t element_size) const {
  if (element_size != dtype_size(dtype_)) {
    throw Error(fmt::format("a {} tensor was read with an element type of {} bytes",
                            dtype_name(dtype_), element_size));
  }
  if (!is_contiguous()) throw Error("a strided view was read as a contiguous span");
}

// ---------------------------------------------------------------------------------------------
void Tensor::AlignedFree::operator()(std::byte* p) const noexcept { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), numel_(checked_numel(shape_)) {
  const std::size_t esize = dtype_size(dtype_);
  if (static_cast<std::uint64_t>(numel_) > std::numeric_limits<std::size_t>::max() / esize) {
    throw Error(fmt::format("a {} tensor of shape {} does not fit in memory", dtype_name(dtype_),
                            shape_str(shape_)));
  }
  // aligned_alloc wants a size that is a multiple of the alignment, and never zero.
  const std::size_t bytes = (static_cast<std::size_t>(numel_) * esize + 63) / 64 * 64 + 64;
  auto* p = static_cast<std::byte*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) {
    throw Error(fmt::format("out of memory allocating {} bytes for a {} tensor of shape {}", bytes,
                            dtype_name(dtype_), shape_str(shape_)));
  }
  std::memset(p, 0, bytes);
  storage_.reset(p);
}

void Tensor::check_span(std::size_t element_size) const {
  if (element_size != dtype_size(dtype_)) {
    throw Error(fmt::format("a {} tensor was read with an element type of {} bytes",
                            dtype_name(dtype_), element_size));
  }
}

namespace {

// Calls fn(flat_destination_index, source_element_pointer) for every element of a strided view,
// in C order.
template <class Fn>
void for_each_element(const TensorView& v, Fn&& fn) {
  const auto* base = static_cast<const std::byte*>(v.data());
  const std::size_t esize = dtype_size(v.dtype());
  if (v.is_contiguous()) {
    for (std::int64_t i = 0; i < v.numel(); ++i) fn(i, base + static_cast<std::size_t>(i) * esize);
    return;
  }
  const int rank = v.rank();
  std::vector<std::int64_t> index(static_cast<std::size_t>(rank), 0);
  for (std::int64_t i = 0; i < v.numel(); ++i) {
    std::int64_t offset = 0;
    for (int k = 0; k < rank; ++k) offset += index[k] * v.strides()[k];
    fn(i, base + static_cast<std::size_t>(offset) * esize);
    for (int k = rank - 1; k >= 0; --k) {
      if (++index[k] < v.shape()[k]) break;
      index[k] = 0;
    }
  }
}

template <class T>
T load(const std::byte* p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

float element_as_f32(DType dtype, const std::byte* p) noexcept {
  switch (dtype) {
    case DType::f32: return load<float>(p);
    case DType::f64: return static_cast<float>(load<double>(p));
    case DType::f16: return kernels::f16_f32_convert_ref(load<std::uint16_t>(p));
    case DType::bf16: return kernels::bf16_f32_convert_ref(load<std::uint16_t>(p));
    case DType::i8: return load<std::int8_t>(p);
    case DType::u8: return load<std::uint8_t>(p);
    case DType::i16: return load<std::int16_t>(p);
    case DType::u16: return load<std::uint16_t>(p);
    case DType::i32: return static_cast<float>(load<std::int32_t>(p));
    case DType::u32: return static_cast<float>(load<std::uint32_t>(p));
    case DType::i64: return static_cast<float>(load<std::int64_t>(p));
  }
  return 0.0f;
}

}  // namespace

Tensor Tensor::copy_of(const TensorView& view) {
  Tensor out(view.dtype(), view.shape());
  const std::size_t esize = dtype_size(view.dtype());
  auto* dst = static_cast<std::byte*>(out.data());
  if (view.is_contiguous()) {
    if (out.nbytes() != 0) std::memcpy(dst, view.data(), out.nbytes());
    return out;
  }
  for_each_element(view, [&](std::int64_t i, const std::byte* src) {
    std::memcpy(dst + static_cast<std::size_t>(i) * esize, src, esize);
  });
  return out;
}

Tensor to_f32(const TensorView& view) {
  if (view.dtype() == DType::f32 && view.is_contiguous()) return Tensor::copy_of(view);
  Tensor out(DType::f32, view.shape());
  float* dst = out.span<float>().data();
  const DType dtype = view.dtype();
  for_each_element(view, [&](std::int64_t i, const std::byte* src) { dst[i] = element_as_f32(dtype, src); });
  return out;
}

Tensor from_f32(const Tensor& f32, DType dtype) {
  if (f32.dtype() != DType::f32) throw Error("from_f32 needs a float32 tensor");
  const auto src = f32.span<const float>();
  Tensor out(dtype, f32.shape());
  switch (dtype) {
    case DType::f32: std::memcpy(out.data(), f32.data(), f32.nbytes()); break;
    case DType::f64: {
      auto dst = out.span<double>();
      for (std::size_t i = 0; i < src.size(); ++i) dst[i] = src[i];
      break;
    }
    case DType::f16: kernels::f32_f16_convert(src, out.span<std::uint16_t>()); break;
    case DType::bf16: kernels::f32_bf16_convert(src, out.span<std::uint16_t>()); break;
    default:
      throw Error(fmt::format("cannot convert float32 to {}: choose f32, f64, f16 or bf16",
                              dtype_name(dtype)));
  }
  return out;
}

}  // namespace zp
