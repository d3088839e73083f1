// ONNX models out: the model file and, when tensors go external, its data file, both written to
// temporary files and renamed into place only when complete.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/file_io.hpp"
#include "formats/onnx/onnx_model.hpp"
#include "zeropoint/error.hpp"

namespace zp::onnx_io {
namespace {

// protobuf refuses to write a message over 2 GiB; leave room for the graph itself.
constexpr std::uint64_t kInlineLimit = 1800ull << 20;
// Tensor offsets in the data file are aligned so a reader can map them directly.
constexpr std::uint64_t kAlignment = 64;

bool is_external(const pb::TensorProto& t) { return t.data_location() == pb::TensorProto::EXTERNAL; }

template <class Fn>
void for_each_tensor(pb::ModelProto& model, Fn&& fn) {
  for_each_graph(*model.mutable_graph(), [&](pb::GraphProto& graph, const std::string&) {
    for (auto& t : *graph.mutable_initializer()) fn(t, true);
    for (auto& node : *graph.mutable_node()) {
      for (auto& attr : *node.mutable_attribute()) {
        if (attr.has_t()) fn(*attr.mutable_t(), false);
      }
    }
  });
}

void clear_data(pb::TensorProto& t) {
  t.clear_raw_data();
  t.clear_float_data();
  t.clear_int32_data();
  t.clear_int64_data();
  t.clear_double_data();
  t.clear_uint64_data();
  t.clear_external_data();
  t.set_data_location(pb::TensorProto::DEFAULT);
}

void set_external(pb::TensorProto& t, const std::string& location, std::uint64_t offset, std::uint64_t length) {
  clear_data(t);
  t.set_data_location(pb::TensorProto::EXTERNAL);
  auto add = [&](const char* key, const std::string& value) {
    auto* kv = t.add_external_data();
    kv->set_key(key);
    kv->set_value(value);
  };
  add("location", location);
  add("offset", std::to_string(offset));
  add("length", std::to_string(length));
}

}  // namespace

struct DataWriter::Impl {
  detail::StreamedFile file;
  std::set<std::string> tensors;

  explicit Impl(std::filesystem::path path) : file(std::move(path)) {}
};

DataWriter::DataWriter(const std::filesystem::path& model_path)
    : name_(model_path.filename().string() + ".data") {
  impl_ = std::make_unique<Impl>(model_path.parent_path().empty() ? std::filesystem::path(name_)
                                                                   : model_path.parent_path() / name_);
}
DataWriter::~DataWriter() = default;

void DataWriter::put(pb::TensorProto& tensor, std::span<const std::byte> bytes) {
  detail::StreamedFile& file = impl_->file;
  file.write_zeros((kAlignment - file.size() % kAlignment) % kAlignment);
  const std::uint64_t offset = file.size();
  file.write(bytes.data(), bytes.size());
  set_external(tensor, name_, offset, bytes.size());
  impl_->tensors.insert(tensor.name());
}

bool DataWriter::holds(const pb::TensorProto& t) const {
  if (!is_external(t) || !impl_->tensors.contains(t.name())) return false;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") return kv.value() == name_;
  }
  return false;
}

void DataWriter::commit() { impl_->file.commit(); }

const std::filesystem::path& DataWriter::target() const { return impl_->file.target(); }

std::vector<std::filesystem::path> save(const Model& source, const std::filesystem::path& path,
                                        const SaveOptions& options) {
  // The caller's model keeps pointing at its own files; the copy is what gets rewritten.
  return save(Model(source), path, options);
}

std::vector<std::filesystem::path> save(Model&& model, const std::filesystem::path& path, const SaveOptions& options) {
  // Tensors still in the input's external files are read through `source` (the model's own
  // folder) before their references are rewritten, one tensor at a time.
  const Model& source = model;
  bool input_external = false;
  for_each_tensor(model.proto, [&](pb::TensorProto& t, bool) { input_external |= is_external(t); });
  std::int64_t threshold = options.external_threshold;
  if (threshold == 0) {
    const bool too_big = model.proto.ByteSizeLong() > kInlineLimit;
    threshold = (input_external || too_big) ? kDefaultExternalThreshold : std::numeric_limits<std::int64_t>::max();
  }

  std::vector<std::filesystem::path> written;
  std::optional<DataWriter> own_data;
  DataWriter* data = options.data;
  if (data && data->target() != (path.parent_path().empty() ? std::filesystem::path(data->name())
                                                            : path.parent_path() / data->name())) {
    throw Error(fmt::format("{}: the external data was begun for another model path ({})", path.string(),
                            data->target().string()));
  }
  for_each_tensor(model.proto, [&](pb::TensorProto& t, bool initializer) {
    if (data && data->holds(t)) return;  // already in the output's data file
    const bool from_input = is_external(t);
    const bool raw_form = from_input || t.has_raw_data();
    const std::vector<std::byte> bytes = from_input ? read_raw(source, t) : std::vector<std::byte>();
    const std::int64_t size = from_input ? static_cast<std::int64_t>(bytes.size())
                                         : static_cast<std::int64_t>(t.raw_data().size());
    if (initializer && raw_form && size >= threshold) {
      if (!data) data = &own_data.emplace(path);
      if (from_input) {
        data->put(t, bytes);
      } else {
        const std::string raw = std::move(*t.mutable_raw_data());
        data->put(t, std::as_bytes(std::span(raw.data(), raw.size())));
      }
    } else if (from_input) {
      clear_data(t);
      t.set_raw_data(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
  });
  if (model.proto.ByteSizeLong() > std::numeric_limits<int>::max()) {
    throw Error(fmt::format("{}: the model is over 2 GiB even with its large tensors in external data", path.string()));
  }
  detail::AtomicFile model_file(path);
  {
    std::ofstream out(model_file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!model.proto.SerializeToOstream(&out) || !out.flush()) {
      throw Error(fmt::format("{}: cannot write the model: {}", path.string(), std::strerror(errno)));
    }
  }
  if (data) {
    data->commit();
    written.push_back(data->target());
  }
  model_file.commit();
  written.insert(written.begin(), path);
  return written;
}

}  // namespace zp::onnx_io
