// ONNX models out: the model file and, when tensors go external, its data file, both written to
// temporary files and renamed into place only when complete.
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "core/file_io.hpp"
#include "formats/onnx/onnx_model.hpp"
#include "zeropoint/error.hpp"

namespace zp::onnx_io {
namespace {

// protobuf refuses to write a message over 2 GiB; leave room for the graph itself.
constexpr std::uint64_t kInlineLimit = 1800ull << 20;
// As onnx.save_model's default size_threshold: small tensors stay inline, where they cost nothing.
constexpr std::int64_t kDefaultThreshold = 1024;
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
    threshold = (input_external || too_big) ? kDefaultThreshold : std::numeric_limits<std::int64_t>::max();
  }

  std::vector<std::filesystem::path> written;
  const std::string data_name = path.filename().string() + ".data";
  std::optional<detail::AtomicFile> data_file;
  std::ofstream data;
  std::uint64_t offset = 0;
  for_each_tensor(model.proto, [&](pb::TensorProto& t, bool initializer) {
    const bool from_input = is_external(t);
    const bool raw_form = from_input || t.has_raw_data();
    const std::vector<std::byte> bytes = from_input ? read_raw(source, t) : std::vector<std::byte>();
    const std::int64_t size = from_input ? static_cast<std::int64_t>(bytes.size())
                                         : static_cast<std::int64_t>(t.raw_data().size());
    if (initializer && raw_form && size >= threshold) {
      if (!data_file) {
        data_file.emplace(path.parent_path().empty() ? std::filesystem::path(data_name) : path.parent_path() / data_name);
        data.open(data_file->temp_path(), std::ios::binary | std::ios::trunc);
      }
      const std::uint64_t pad = (kAlignment - offset % kAlignment) % kAlignment;
      static const char zeros[kAlignment] = {};
      data.write(zeros, static_cast<std::streamsize>(pad));
      offset += pad;
      const char* p = from_input ? reinterpret_cast<const char*>(bytes.data()) : t.raw_data().data();
      data.write(p, size);
      set_external(t, data_name, offset, static_cast<std::uint64_t>(size));
      offset += static_cast<std::uint64_t>(size);
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
      throw Error(fmt::format("{}: cannot write the model", path.string()));
    }
  }
  if (data_file) {
    if (!data.flush()) throw Error(fmt::format("{}: cannot write external data", data_file->target().string()));
    data.close();
    data_file->commit();
    written.push_back(data_file->target());
  }
  model_file.commit();
  written.insert(written.begin(), path);
  return written;
}

}  // namespace zp::onnx_io
