// A safetensors file mapped into memory (core/mapped_file.hpp): a tensor's bytes are a pointer into
// the mapping and cost nothing until touched; release() hands pages back once a tensor is done.
#include <cstring>

#include <fmt/format.h>

#include "core/mapped_file.hpp"
#include "formats/safetensors/strict_json.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace zp::safetensors {

struct File::Impl {
  std::filesystem::path path;
  std::string name;  // path as text, for messages
  zp::detail::MappedFile file;
  Header header;

  Impl(const std::filesystem::path& p, std::string n) : path(p), name(std::move(n)), file(p.string(), name) {}

  // The tensor's place in the file, after checking that it is one this file's header allows:
  // a TensorInfo from another file must not turn into a read past the end of this one.
  std::uint64_t start_of(const TensorInfo& t) const {
    if (t.offset > header.data_size || t.size > header.data_size - t.offset) {
      throw Error(fmt::format("{}: tensor {} (data_offsets [{}, {}]) is not inside this file's data section", name,
                              detail::in_quotes(t.name), t.offset, t.offset + t.size));
    }
    return header.data_start() + t.offset;
  }

  bool inside(const TensorInfo& t) const noexcept {
    return t.size > 0 && t.offset <= header.data_size && t.size <= header.data_size - t.offset;
  }
};

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>(path, path.string());
  // A file shorter than 8 bytes is refused by parse_header.
  const std::span<const std::uint8_t> all = impl->file.bytes();
  impl->header = parse_header(std::as_bytes(all), impl->file.size(), impl->name);
  return File(std::move(impl));
}

const std::filesystem::path& File::path() const noexcept { return impl_->path; }
const Header& File::header() const noexcept { return impl_->header; }

std::span<const std::byte> File::bytes(const TensorInfo& t) const {
  const std::uint64_t start = impl_->start_of(t);
  return std::as_bytes(impl_->file.bytes()).subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(t.size));
}

TensorView File::view(const TensorInfo& t, Tensor& scratch) const {
  if (!t.type) {
    throw Error(fmt::format("{}: tensor {} has dtype {}, which zeropoint cannot compute with", impl_->name,
                            detail::in_quotes(t.name), t.dtype));
  }
  const std::span<const std::byte> data = bytes(t);
  if (data.size() != static_cast<std::uint64_t>(checked_numel(t.shape)) * dtype_size(*t.type)) {
    throw Error(fmt::format("{}: tensor {}: {} bytes do not make {} x {}", impl_->name, detail::in_quotes(t.name),
                            data.size(), t.dtype, shape_str(t.shape)));
  }
  // The header fixes where each tensor starts, and nothing in the format aligns it: a U8 tensor of
  // odd length puts every tensor after it off its element boundary.
  if (reinterpret_cast<std::uintptr_t>(data.data()) % dtype_size(*t.type) == 0) {
    return TensorView(data.data(), *t.type, t.shape);
  }
  scratch = Tensor(*t.type, t.shape);
  std::memcpy(scratch.data(), data.data(), data.size());
  return scratch.view();
}

void File::read(const TensorInfo& t, std::span<std::byte> out) const {
  const std::uint64_t start = impl_->start_of(t);
  if (out.size() != t.size) {
    throw Error(fmt::format("{}: tensor '{}' has {} bytes, not {}", impl_->name, t.name, t.size, out.size()));
  }
  impl_->file.read(start, {reinterpret_cast<std::uint8_t*>(out.data()), out.size()}, fmt::format("tensor '{}'", t.name));
}

void File::prefetch(const TensorInfo& t) const noexcept {
  if (impl_->inside(t)) impl_->file.prefetch(impl_->header.data_start() + t.offset, t.size);
}

void File::release(const TensorInfo& t) const noexcept {
  if (impl_->inside(t)) impl_->file.release(impl_->header.data_start() + t.offset, t.size);
}

}  // namespace zp::safetensors
