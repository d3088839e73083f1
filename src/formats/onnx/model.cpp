// ONNX models in: parsing and the checks that make every later access safe.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>

#include "core/mapped_file.hpp"
#include "formats/onnx/onnx_model.hpp"
#include "zeropoint/error.hpp"

namespace zp::onnx_io {
namespace {

// Bytes per element of the types stored as raw little-endian bytes; 0 for sub-byte and variable
// ones. INT4/UINT4 pack two per byte (handled by raw_bytes_of).
std::int64_t element_bytes(int data_type) {
  switch (data_type) {
    case pb::TensorProto::FLOAT: case pb::TensorProto::INT32: case pb::TensorProto::UINT32: return 4;
    case pb::TensorProto::UINT8: case pb::TensorProto::INT8: case pb::TensorProto::BOOL: return 1;
    case pb::TensorProto::UINT16: case pb::TensorProto::INT16: case pb::TensorProto::FLOAT16:
    case pb::TensorProto::BFLOAT16: return 2;
    case pb::TensorProto::INT64: case pb::TensorProto::UINT64: case pb::TensorProto::DOUBLE:
    case pb::TensorProto::COMPLEX64: return 8;
    case pb::TensorProto::COMPLEX128: return 16;
    case 17: case 18: case 19: case 20: return 1;  // the float8 types
    default: return 0;
  }
}

std::optional<std::int64_t> raw_bytes_of(int data_type, std::int64_t n) {
  // Two per byte, rounded up; not (n + 1) / 2, which overflows for n = 2^63 - 1 (UBSan in onnx_fuzz).
  if (data_type == kInt4 || data_type == kUint4) return n / 2 + n % 2;
  const std::int64_t size = element_bytes(data_type);
  if (size == 0) return std::nullopt;
  if (n > std::numeric_limits<std::int64_t>::max() / size) return std::nullopt;
  return n * size;
}

// How many values a typed (non-raw) field holds for `n` elements of `data_type`, and which field.
enum class Field { float_data, int32_data, int64_data, double_data, uint64_data, string_data, none };

Field field_of(int data_type) {
  switch (data_type) {
    case pb::TensorProto::FLOAT: case pb::TensorProto::COMPLEX64: return Field::float_data;
    case pb::TensorProto::INT32: case pb::TensorProto::INT16: case pb::TensorProto::INT8:
    case pb::TensorProto::UINT16: case pb::TensorProto::UINT8: case pb::TensorProto::BOOL:
    case pb::TensorProto::FLOAT16: case pb::TensorProto::BFLOAT16: case 17: case 18: case 19: case 20:
    case kInt4: case kUint4: return Field::int32_data;
    case pb::TensorProto::INT64: return Field::int64_data;
    case pb::TensorProto::DOUBLE: case pb::TensorProto::COMPLEX128: return Field::double_data;
    case pb::TensorProto::UINT32: case pb::TensorProto::UINT64: return Field::uint64_data;
    case pb::TensorProto::STRING: return Field::string_data;
    default: return Field::none;
  }
}

std::int64_t typed_count(const pb::TensorProto& t, Field field) {
  switch (field) {
    case Field::float_data: return t.float_data_size();
    case Field::int32_data: return t.int32_data_size();
    case Field::int64_data: return t.int64_data_size();
    case Field::double_data: return t.double_data_size();
    case Field::uint64_data: return t.uint64_data_size();
    case Field::string_data: return t.string_data_size();
    case Field::none: return 0;
  }
  return 0;
}

// How many values the typed field must hold for `n` elements; nothing when that count does not fit
// in 64 bits (complex types hold two per element: 2 * n overflowed for n >= 2^62: UBSan in onnx_fuzz).
std::optional<std::int64_t> expected_typed_count(int data_type, std::int64_t n) {
  if (data_type == pb::TensorProto::COMPLEX64 || data_type == pb::TensorProto::COMPLEX128) {
    if (n > std::numeric_limits<std::int64_t>::max() / 2) return std::nullopt;
    return 2 * n;
  }
  if (data_type == kInt4 || data_type == kUint4) return n / 2 + n % 2;
  return n;
}

struct External {
  std::string location;
  std::int64_t offset = 0;
  std::int64_t length = -1;  // -1: to the end of the file
};

External external_of(const pb::TensorProto& t, std::string_view who) {
  External e;
  for (const auto& kv : t.external_data()) {
    auto number = [&](const std::string& text) {
      std::int64_t v = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || end != text.data() + text.size() || v < 0) {
        throw Error(fmt::format("{}: external data {} '{}' is not a non-negative integer", who, kv.key(), text));
      }
      return v;
    };
    if (kv.key() == "location") e.location = kv.value();
    else if (kv.key() == "offset") e.offset = number(kv.value());
    else if (kv.key() == "length") e.length = number(kv.value());
  }
  if (e.location.empty()) throw Error(fmt::format("{}: external data without a location", who));
  return e;
}

// The external file of a tensor, refused when its location would leave the model's folder
// (an absolute path or "..": a model file must not make zeropoint read elsewhere).
std::filesystem::path external_path(const Model& model, const External& e, std::string_view who) {
  const std::filesystem::path location(e.location);
  if (e.location.find('\0') != std::string::npos) {
    throw Error(fmt::format("{}: external data location holds a NUL byte", who));
  }
  if (location.is_absolute() || location.empty()) {
    throw Error(fmt::format("{}: external data location '{}' must be relative to the model's folder", who, e.location));
  }
  for (const auto& part : location) {
    if (part == "..") {
      throw Error(fmt::format("{}: external data location '{}' leaves the model's folder", who, e.location));
    }
  }
  return model.dir / location;
}

std::string tensor_who(const Model& model, const pb::TensorProto& t) {
  return fmt::format("{}: tensor '{}'", model.path.string(), t.name());
}

// Checks a tensor's dims and data size against each other and, for external data, against the
// file it lives in.
void check_tensor(const Model& model, const pb::TensorProto& t, std::string_view who) {
  std::int64_t n = 1;
  // The product of the non-zero dimensions must fit too (the rule of zp::checked_numel), so a
  // shape like [2^62, 0, 2^62] is refused here, naming the tensor, not later.
  std::int64_t nonzero = 1;
  for (int i = 0; i < t.dims_size(); ++i) {
    const std::int64_t d = t.dims(i);
    if (d < 0) throw Error(fmt::format("{}: dimension {} is {}", who, i, d));
    if (d != 0 && nonzero > std::numeric_limits<std::int64_t>::max() / d) {
      throw Error(fmt::format("{}: its dimensions overflow 64 bits", who));
    }
    if (d != 0) nonzero *= d;
    n *= d;
  }
  if (t.data_type() == pb::TensorProto::UNDEFINED) throw Error(fmt::format("{}: no data type", who));
  if (t.has_segment()) throw Error(fmt::format("{}: segmented tensors are not supported", who));
  const auto raw = raw_bytes_of(t.data_type(), n);
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    if (!raw) throw Error(fmt::format("{}: {} data cannot be external", who, data_type_name(t.data_type())));
    const External e = external_of(t, who);
    const auto path = external_path(model, e, who);
    std::error_code ec;
    const auto file_size = std::filesystem::file_size(path, ec);
    if (ec) throw Error(fmt::format("{}: external data file '{}' cannot be read: {}", who, path.string(), ec.message()));
    const std::int64_t length = e.length >= 0 ? e.length : static_cast<std::int64_t>(file_size) - e.offset;
    if (length != *raw) {
      throw Error(fmt::format("{}: external data holds {} bytes but {} values of {} need {}", who, length, n,
                              data_type_name(t.data_type()), *raw));
    }
    if (static_cast<std::uint64_t>(e.offset) > file_size || file_size - e.offset < static_cast<std::uint64_t>(length)) {
      // The end in unsigned arithmetic: offset and length are each below 2^63, so the sum fits,
      // where the signed sum overflowed for an offset near 2^63 (UBSan in onnx_fuzz).
      throw Error(fmt::format("{}: external data [{}, {}) is past the end of '{}' ({} bytes)", who, e.offset,
                              static_cast<std::uint64_t>(e.offset) + static_cast<std::uint64_t>(length),
                              path.string(), file_size));
    }
    return;
  }
  if (t.has_raw_data()) {
    if (!raw) throw Error(fmt::format("{}: {} data cannot be raw bytes", who, data_type_name(t.data_type())));
    if (static_cast<std::int64_t>(t.raw_data().size()) != *raw) {
      throw Error(fmt::format("{}: raw data holds {} bytes but {} values of {} need {}", who, t.raw_data().size(), n,
                              data_type_name(t.data_type()), *raw));
    }
    return;
  }
  const Field field = field_of(t.data_type());
  if (field == Field::none) throw Error(fmt::format("{}: unknown data type {}", who, t.data_type()));
  const auto expected = expected_typed_count(t.data_type(), n);
  if (!expected) throw Error(fmt::format("{}: its shape needs more values than 64 bits count", who));
  const std::int64_t have = typed_count(t, field);
  if (have != *expected) {
    throw Error(fmt::format("{}: holds {} values but its shape needs {}", who, have, *expected));
  }
}

// Which names a node may read in `graph`: its inputs, initializers and node outputs, plus
// everything visible in the enclosing graphs.
void check_graph(const Model& model, const pb::GraphProto& graph, const std::unordered_set<std::string>& outer,
                 const std::string& scope, int depth) {
  if (depth > 64) throw Error(fmt::format("{}: subgraphs nested more than 64 deep", model.path.string()));
  std::unordered_set<std::string> known = outer;
  for (const auto& v : graph.input()) known.insert(v.name());
  for (const auto& t : graph.initializer()) {
    check_tensor(model, t, tensor_who(model, t));
    known.insert(t.name());
  }
  if (graph.sparse_initializer_size() > 0) {
    throw Error(fmt::format("{}: sparse initializers are not supported", model.path.string()));
  }
  for (const auto& node : graph.node()) {
    for (const auto& out : node.output()) {
      if (!out.empty()) known.insert(out);
    }
  }
  const std::string where = scope.empty() ? std::string() : fmt::format(" (in {})", scope);
  for (const auto& node : graph.node()) {
    const std::string who = fmt::format("{}: node '{}' ({}){}", model.path.string(), node.name(), node.op_type(), where);
    for (const auto& in : node.input()) {
      if (!in.empty() && !known.contains(in)) {
        throw Error(fmt::format("{} reads '{}', which no initializer, graph input or node produces", who, in));
      }
    }
    for (const auto& attr : node.attribute()) {
      if (attr.has_t()) check_tensor(model, attr.t(), fmt::format("{}: attribute '{}'", who, attr.name()));
      if (attr.has_g()) check_graph(model, attr.g(), known, fmt::format("{}{}/{}", scope.empty() ? "" : scope + "/", node.name(), attr.name()), depth + 1);
      for (const auto& g : attr.graphs()) {
        check_graph(model, g, known, fmt::format("{}{}/{}", scope.empty() ? "" : scope + "/", node.name(), attr.name()), depth + 1);
      }
    }
  }
  for (const auto& v : graph.output()) {
    if (!known.contains(v.name())) {
      throw Error(fmt::format("{}: graph output '{}' is not produced by any node", model.path.string(), v.name()));
    }
  }
}

void validate(const Model& model) {
  const auto& p = model.proto;
  if (!p.has_graph()) throw Error(fmt::format("{}: not an ONNX model (no graph)", model.path.string()));
  if (p.ir_version() <= 0) throw Error(fmt::format("{}: not an ONNX model (no IR version)", model.path.string()));
  check_graph(model, p.graph(), {}, "", 0);
}

}  // namespace

std::string data_type_name(int data_type) {
  if (data_type == kInt4) return "INT4";
  if (data_type == kUint4) return "UINT4";
  if (pb::TensorProto_DataType_IsValid(data_type)) {
    return pb::TensorProto_DataType_Name(static_cast<pb::TensorProto_DataType>(data_type));
  }
  return fmt::format("type {}", data_type);
}

std::optional<DType> dtype_of(int data_type) {
  switch (data_type) {
    case pb::TensorProto::FLOAT: return DType::f32;
    case pb::TensorProto::DOUBLE: return DType::f64;
    case pb::TensorProto::FLOAT16: return DType::f16;
    case pb::TensorProto::BFLOAT16: return DType::bf16;
    case pb::TensorProto::INT8: return DType::i8;
    case pb::TensorProto::UINT8: return DType::u8;
    case pb::TensorProto::INT16: return DType::i16;
    case pb::TensorProto::UINT16: return DType::u16;
    case pb::TensorProto::INT32: return DType::i32;
    case pb::TensorProto::UINT32: return DType::u32;
    case pb::TensorProto::INT64: return DType::i64;
    default: return std::nullopt;
  }
}

int data_type_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return pb::TensorProto::FLOAT;
    case DType::f64: return pb::TensorProto::DOUBLE;
    case DType::f16: return pb::TensorProto::FLOAT16;
    case DType::bf16: return pb::TensorProto::BFLOAT16;
    case DType::i8: return pb::TensorProto::INT8;
    case DType::u8: return pb::TensorProto::UINT8;
    case DType::i16: return pb::TensorProto::INT16;
    case DType::u16: return pb::TensorProto::UINT16;
    case DType::i32: return pb::TensorProto::INT32;
    case DType::u32: return pb::TensorProto::UINT32;
    case DType::i64: return pb::TensorProto::INT64;
  }
  return pb::TensorProto::UNDEFINED;
}

Model parse(std::span<const std::byte> bytes, const std::filesystem::path& name, const std::filesystem::path& dir) {
  Model model;
  model.path = name;
  model.dir = dir;
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw Error(fmt::format("{}: {} bytes is past protobuf's 2 GiB limit for one message; a model this large keeps "
                            "its weights in external data files",
                            name.string(), bytes.size()));
  }
  google::protobuf::io::CodedInputStream stream(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                static_cast<int>(bytes.size()));
  stream.SetTotalBytesLimit(std::numeric_limits<int>::max());
  // Subgraphs nest messages; protobuf's own recursion limit (100) keeps a hostile file from
  // exhausting the stack.
  if (!model.proto.ParseFromCodedStream(&stream) || !stream.ConsumedEntireMessage()) {
    throw Error(fmt::format("{}: not an ONNX model (not a valid protobuf ModelProto; truncated?)", name.string()));
  }
  validate(model);
  return model;
}

Model load(const std::filesystem::path& path) {
  const detail::MappedFile file(path.string(), path.string());
  const auto bytes = file.bytes();
  return parse(std::as_bytes(std::span(bytes.data(), bytes.size())), path,
               path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
}

int opset(const pb::ModelProto& model) {
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return static_cast<int>(o.version());
  }
  return 1;
}

void set_opset(pb::ModelProto& model, int version) {
  for (auto& o : *model.mutable_opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") {
      o.set_version(version);
      return;
    }
  }
  auto* o = model.add_opset_import();
  o->set_domain("");
  o->set_version(version);
}

std::int64_t numel(const pb::TensorProto& tensor) {
  std::int64_t n = 1;
  for (const auto d : tensor.dims()) n *= d;
  return n;
}

Shape shape_of(const pb::TensorProto& tensor) { return Shape(tensor.dims().begin(), tensor.dims().end()); }

std::vector<std::byte> read_raw(const Model& model, const pb::TensorProto& t) {
  const std::string who = tensor_who(model, t);
  const auto size = raw_bytes_of(t.data_type(), numel(t));
  if (!size) throw Error(fmt::format("{}: {} has no raw byte form", who, data_type_name(t.data_type())));
  std::vector<std::byte> out(static_cast<std::size_t>(*size));
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    const External e = external_of(t, who);
    const detail::MappedFile file(external_path(model, e, who).string(), who);
    // Checked at load, checked again: the file may have changed since.
    if (file.size() < static_cast<std::uint64_t>(e.offset) || file.size() - e.offset < out.size()) {
      throw Error(fmt::format("{}: external data file is shorter than declared", who));
    }
    file.read(static_cast<std::uint64_t>(e.offset),
              std::span(reinterpret_cast<std::uint8_t*>(out.data()), out.size()), "external data");
  } else if (t.has_raw_data()) {
    if (!out.empty()) std::memcpy(out.data(), t.raw_data().data(), out.size());
  } else {
    auto put = [&](std::size_t i, const void* v, std::size_t bytes) { std::memcpy(out.data() + i * bytes, v, bytes); };
    const std::int64_t n = numel(t);
    switch (t.data_type()) {
      case pb::TensorProto::FLOAT:
        for (std::int64_t i = 0; i < n; ++i) put(i, &t.float_data().Get(static_cast<int>(i)), 4);
        break;
      case pb::TensorProto::DOUBLE:
        for (std::int64_t i = 0; i < n; ++i) put(i, &t.double_data().Get(static_cast<int>(i)), 8);
        break;
      case pb::TensorProto::INT64:
        for (std::int64_t i = 0; i < n; ++i) put(i, &t.int64_data().Get(static_cast<int>(i)), 8);
        break;
      case pb::TensorProto::INT32:
        for (std::int64_t i = 0; i < n; ++i) put(i, &t.int32_data().Get(static_cast<int>(i)), 4);
        break;
      case pb::TensorProto::FLOAT16: case pb::TensorProto::BFLOAT16: case pb::TensorProto::UINT16:
      case pb::TensorProto::INT16:
        for (std::int64_t i = 0; i < n; ++i) {
          const auto v = static_cast<std::uint16_t>(t.int32_data(static_cast<int>(i)));
          put(i, &v, 2);
        }
        break;
      case pb::TensorProto::INT8: case pb::TensorProto::UINT8: case pb::TensorProto::BOOL:
        for (std::int64_t i = 0; i < n; ++i) {
          const auto v = static_cast<std::uint8_t>(t.int32_data(static_cast<int>(i)));
          put(i, &v, 1);
        }
        break;
      default:
        throw Error(fmt::format("{}: reading {} from typed fields is not supported", who, data_type_name(t.data_type())));
    }
  }
  return out;
}

struct ExternalFiles::Impl {
  std::map<std::string, detail::MappedFile> files;
};
ExternalFiles::ExternalFiles() : impl_(std::make_unique<Impl>()) {}
ExternalFiles::~ExternalFiles() = default;

std::span<const std::byte> ExternalFiles::bytes(const std::filesystem::path& path, std::uint64_t offset,
                                                std::uint64_t length, std::string_view who) {
  auto it = impl_->files.find(path.string());
  if (it == impl_->files.end()) it = impl_->files.emplace(path.string(), detail::MappedFile(path.string(), who)).first;
  const auto all = it->second.bytes();
  // Checked at load, checked again: the file may have changed since.
  if (all.size() < offset || all.size() - offset < length) {
    throw Error(fmt::format("{}: external data file is shorter than declared", who));
  }
  // One call maps the whole tensor, instead of a page fault per 4 KiB as it is read.
  it->second.prefetch(offset, length);
  return std::as_bytes(all.subspan(offset, length));
}

void ExternalFiles::read(const std::filesystem::path& path, std::uint64_t offset, std::span<std::byte> out,
                         std::string_view who) {
  auto it = impl_->files.find(path.string());
  if (it == impl_->files.end()) it = impl_->files.emplace(path.string(), detail::MappedFile(path.string(), who)).first;
  if (it->second.size() < offset || it->second.size() - offset < out.size()) {
    throw Error(fmt::format("{}: external data file is shorter than declared", who));
  }
  it->second.read(offset, {reinterpret_cast<std::uint8_t*>(out.data()), out.size()}, who);
}

std::optional<ExternalFloats> external_floats(const Model& model, const pb::TensorProto& t) {
  if (t.data_type() != pb::TensorProto::FLOAT || t.data_location() != pb::TensorProto::EXTERNAL) return std::nullopt;
  std::string who = tensor_who(model, t);
  const External e = external_of(t, who);
  return ExternalFloats{external_path(model, e, who), static_cast<std::uint64_t>(e.offset),
                        static_cast<std::uint64_t>(numel(t)) * 4, std::move(who)};
}

TensorView float_view(const Model& model, const pb::TensorProto& t, ExternalFiles& files, Tensor& scratch) {
  if (t.data_type() == pb::TensorProto::FLOAT) {
    const std::string who = tensor_who(model, t);
    const auto n = static_cast<std::uint64_t>(numel(t));
    if (t.data_location() == pb::TensorProto::EXTERNAL) {
      const External e = external_of(t, who);
      const auto bytes = files.bytes(external_path(model, e, who), static_cast<std::uint64_t>(e.offset), n * 4, who);
      return TensorView(bytes.data(), DType::f32, shape_of(t));
    }
    if (t.has_raw_data()) return TensorView(t.raw_data().data(), DType::f32, shape_of(t));
    if (t.float_data_size() > 0 || n == 0) return TensorView(t.float_data().data(), DType::f32, shape_of(t));
  }
  scratch = read_float(model, t);
  return scratch.view();
}

Tensor read_float(const Model& model, const pb::TensorProto& t) {
  const auto dtype = dtype_of(t.data_type());
  if (!dtype || !is_float(*dtype)) {
    throw Error(fmt::format("{}: {} is not a floating-point type", tensor_who(model, t), data_type_name(t.data_type())));
  }
  const std::vector<std::byte> raw = read_raw(model, t);
  return to_f32(TensorView(raw.data(), *dtype, shape_of(t)));
}

void for_each_graph(pb::GraphProto& graph, const std::function<void(pb::GraphProto&, const std::string&)>& fn,
                    const std::string& scope) {
  fn(graph, scope);
  for (auto& node : *graph.mutable_node()) {
    for (auto& attr : *node.mutable_attribute()) {
      const std::string sub = fmt::format("{}{}/{}", scope.empty() ? "" : scope + "/", node.name(), attr.name());
      if (attr.has_g()) for_each_graph(*attr.mutable_g(), fn, sub);
      for (auto& g : *attr.mutable_graphs()) for_each_graph(g, fn, sub);
    }
  }
}

std::vector<Constant> find_constants(pb::ModelProto& model) {
  std::vector<Constant> out;
  for_each_graph(*model.mutable_graph(), [&](pb::GraphProto& graph, const std::string& scope) {
    for (auto& t : *graph.mutable_initializer()) out.push_back({&t, &graph, nullptr, t.name(), scope});
    for (auto& node : *graph.mutable_node()) {
      if (node.op_type() != "Constant" || !(node.domain().empty() || node.domain() == "ai.onnx")) continue;
      if (node.output_size() != 1) continue;
      for (auto& attr : *node.mutable_attribute()) {
        if (attr.name() == "value" && attr.has_t()) out.push_back({attr.mutable_t(), &graph, &node, node.output(0), scope});
      }
    }
  });
  return out;
}

namespace {
bool defines(const pb::GraphProto& graph, const std::string& name) {
  for (const auto& v : graph.input()) if (v.name() == name) return true;
  for (const auto& t : graph.initializer()) if (t.name() == name) return true;
  for (const auto& n : graph.node()) {
    for (const auto& o : n.output()) if (o == name) return true;
  }
  return false;
}

void collect_uses(pb::GraphProto& graph, const std::string& name, std::vector<Use>& out) {
  for (auto& node : *graph.mutable_node()) {
    for (int i = 0; i < node.input_size(); ++i) {
      if (node.input(i) == name) out.push_back({&node, &graph, i});
    }
    for (auto& attr : *node.mutable_attribute()) {
      auto visit = [&](pb::GraphProto& sub) {
        if (!defines(sub, name)) collect_uses(sub, name, out);
      };
      if (attr.has_g()) visit(*attr.mutable_g());
      for (auto& g : *attr.mutable_graphs()) visit(g);
    }
  }
}
}  // namespace

bool default_domain(const pb::NodeProto& n) { return n.domain().empty() || n.domain() == "ai.onnx"; }

const pb::AttributeProto* attribute(const pb::NodeProto& n, std::string_view name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

void remove_attribute(pb::NodeProto& n, std::string_view name) {
  auto* attrs = n.mutable_attribute();
  for (int i = 0; i < attrs->size(); ++i) {
    if (attrs->Get(i).name() == name) {
      attrs->DeleteSubrange(i, 1);
      return;
    }
  }
}

void add_int_attribute(pb::NodeProto& n, std::string_view name, std::int64_t value) {
  auto* a = n.add_attribute();
  a->set_name(std::string(name));
  a->set_type(pb::AttributeProto::INT);
  a->set_i(value);
}

pb::NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                        std::vector<std::string> outputs) {
  pb::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (auto& i : inputs) n.add_input(std::move(i));
  for (auto& o : outputs) n.add_output(std::move(o));
  return n;
}

UniqueNames::UniqueNames(pb::ModelProto& model) {
  for_each_graph(*model.mutable_graph(), [&](pb::GraphProto& g, const std::string&) {
    for (const auto& v : g.input()) used_.insert(v.name());
    for (const auto& t : g.initializer()) used_.insert(t.name());
    for (const auto& n : g.node()) {
      for (const auto& o : n.output()) used_.insert(o);
      used_.insert(n.name());
    }
  });
}

std::string UniqueNames::fresh(const std::string& base) {
  std::string name = base;
  for (int i = 1; used_.contains(name); ++i) name = fmt::format("{}_{}", base, i);
  used_.insert(name);
  return name;
}

std::vector<Use> find_uses(pb::GraphProto& graph, const std::string& name) {
  std::vector<Use> out;
  collect_uses(graph, name, out);
  return out;
}

}  // namespace zp::onnx_io
