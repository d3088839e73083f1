// A GGUF file mapped into memory (core/mapped_file.hpp): the header is parsed from the mapping at
// open; a tensor's bytes are then a pointer into the mapping and cost nothing until touched.
#include "core/mapped_file.hpp"
#include "formats/gguf/gguf_detail.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace zp::gguf {

struct File::Impl {
  std::filesystem::path path;
  std::string name;  // path as text, for messages
  zp::detail::MappedFile file;
  Header header;

  Impl(const std::filesystem::path& p, std::string n) : path(p), name(std::move(n)), file(p.string(), name) {}

  // The tensor's place in the file, after checking that it is one this file's header allows:
  // a TensorInfo from another file must not turn into a read past the end of this one.
  std::uint64_t start_of(const TensorInfo& t) const {
    if (t.offset > header.data_size || t.bytes > header.data_size - t.offset) {
      throw Error(fmt::format("{}: tensor {} ({} bytes at offset {}) is not inside this file's data section", name,
                              detail::in_quotes(t.name), t.bytes, t.offset));
    }
    return header.data_offset + t.offset;
  }

  bool inside(const TensorInfo& t) const noexcept {
    return t.bytes > 0 && t.offset <= header.data_size && t.bytes <= header.data_size - t.offset;
  }
};

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>(path, path.string());
  // An empty file is refused by parse_header.
  impl->header = parse_header(impl->file.bytes(), impl->file.size(), impl->name);
  return File(std::move(impl));
}

const std::filesystem::path& File::path() const noexcept { return impl_->path; }
const Header& File::header() const noexcept { return impl_->header; }

std::span<const std::uint8_t> File::data(const TensorInfo& t) const {
  const std::uint64_t start = impl_->start_of(t);
  if (t.bytes == 0) return {};
  return impl_->file.bytes().subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(t.bytes));
}

void File::read(const TensorInfo& t, std::span<std::uint8_t> out) const {
  const std::uint64_t start = impl_->start_of(t);
  if (out.size() != t.bytes) {
    throw Error(fmt::format("{}: tensor {} has {} bytes, not {}", impl_->name, detail::in_quotes(t.name), t.bytes,
                            out.size()));
  }
  impl_->file.read(start, out, fmt::format("tensor {}", detail::in_quotes(t.name)));
}

void File::read(const TensorInfo& t, std::uint64_t offset, std::span<std::uint8_t> out) const {
  const std::uint64_t start = impl_->start_of(t);
  if (offset > t.bytes || out.size() > t.bytes - offset) {
    throw Error(fmt::format("{}: tensor {} has {} bytes, not {} from byte {}", impl_->name, detail::in_quotes(t.name),
                            t.bytes, out.size(), offset));
  }
  impl_->file.read(start + offset, out, fmt::format("tensor {}", detail::in_quotes(t.name)));
}

void File::prefetch(const TensorInfo& t) const noexcept {
  if (impl_->inside(t)) impl_->file.prefetch(impl_->header.data_offset + t.offset, t.bytes);
}

void File::release(const TensorInfo& t) const noexcept {
  if (impl_->inside(t)) impl_->file.release(impl_->header.data_offset + t.offset, t.bytes);
}

}  // namespace zp::gguf
