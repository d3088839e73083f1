// zeropoint/tensor.hpp — non-owning tensor views in, owning tensors out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "zeropoint/dtype.hpp"

namespace zp {

/// Dimensions, outermost first (C order). Every dimension is >= 0.
using Shape = std::vector<std::int64_t>;

/// Product of the dimensions. Throws zp::Error on a negative dimension or when the product
/// does not fit in int64 (a file may claim any shape; this is where lies are caught).
std::int64_t checked_numel(const Shape& shape);

/// "[2, 3, 4]", for messages.
std::string shape_str(const Shape& shape);

/// "[1, 2]" for the multi-index of flat (C-order) position `flat` in `shape`, for messages
/// that name an element ("first NaN at index [1, 2]").
std::string index_str(const Shape& shape, std::int64_t flat);

/// A read-only window on memory someone else owns: data pointer, element type, shape and
/// strides (in elements, may be any non-negative values). The viewed memory must outlive the
/// view.
class TensorView {
 public:
  TensorView() = default;
  /// A C-contiguous view.
  TensorView(const void* data, DType dtype, Shape shape);
  /// A strided view; strides are counted in elements, one per dimension.
  TensorView(const void* data, DType dtype, Shape shape, std::vector<std::int64_t> strides);

  const void* data() const noexcept { return data_; }
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  const std::vector<std::int64_t>& strides() const noexcept { return strides_; }
  int rank() const noexcept { return static_cast<int>(shape_.size()); }
  std::int64_t numel() const noexcept { return numel_; }
  bool is_contiguous() const noexcept;

  /// The data as a typed span; requires a contiguous view of the matching dtype.
  template <class T>
  std::span<const T> span() const {
    check_span(sizeof(T));
    return {static_cast<const T*>(data_), static_cast<std::size_t>(numel_)};
  }

 private:
  void check_span(std::size_t element_size) const;

  const void* data_ = nullptr;
  DType dtype_ = DType::f32;
  Shape shape_;
  std::vector<std::int64_t> strides_;
  std::int64_t numel_ = 0;
};

/// An owning, C-contiguous tensor. Storage is 64-byte aligned so kernels can use any vector
/// width on it.
class Tensor {
 public:
  Tensor() = default;
  /// Zero-filled tensor of the given type and shape.
  Tensor(DType dtype, Shape shape);

  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return static_cast<int>(shape_.size()); }
  std::int64_t numel() const noexcept { return numel_; }
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }

  void* data() noexcept { return storage_.get(); }
  const void* data() const noexcept { return storage_.get(); }
  std::span<std::byte> bytes() noexcept { return {static_cast<std::byte*>(data()), nbytes()}; }
  std::span<const std::byte> bytes() const noexcept {
    return {static_cast<const std::byte*>(data()), nbytes()};
  }

  template <class T>
  std::span<T> span() {
    check_span(sizeof(T));
    return {static_cast<T*>(data()), static_cast<std::size_t>(numel_)};
  }
  template <class T>
  std::span<const T> span() const {
    check_span(sizeof(T));
    return {static_cast<const T*>(data()), static_cast<std::size_t>(numel_)};
  }

  TensorView view() const { return TensorView(data(), dtype_, shape_); }
  operator TensorView() const { return view(); }  // NOLINT: a tensor is usable wherever a view is

  /// A contiguous copy of any view, keeping its dtype.
  static Tensor copy_of(const TensorView& view);

 private:
  struct AlignedFree {
    void operator()(std::byte* p) const noexcept;
  };
  void check_span(std::size_t element_size) const;

  DType dtype_ = DType::f32;
  Shape shape_;
  std::int64_t numel_ = 0;
  std::unique_ptr<std::byte[], AlignedFree> storage_;
};

/// Converts any float or integer view to a contiguous float32 tensor (f16/bf16 widened
/// exactly, f64 and wide integers rounded to nearest).
Tensor to_f32(const TensorView& view);

/// Converts a float32 tensor to `dtype` (f32, f64, f16 or bf16), rounding to nearest even.
Tensor from_f32(const Tensor& f32, DType dtype);

}  // namespace zp
