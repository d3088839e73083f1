// ONNX models: reading, validating, finding weights, writing (src/formats/onnx/).
//
// The model is protobuf (onnx.proto, from Debian's libonnx-dev with ONNX_ML=1). Everything in a
// model file is checked before it is used: every node input names something that exists, every
// tensor's data has the size its dims and type imply, every external-data reference stays inside
// the model's folder and inside its file. Errors are zp::Error naming the file and the tensor or
// node.
//
// libonnx 1.12 knows data types up to BFLOAT16 (16) and operator sets up to 17; the newer numbers
// zeropoint writes (INT4/UINT4, opset 21's block_size) are defined here (docs/formats.md, "ONNX").
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

#include "zeropoint/dtype.hpp"
#include "zeropoint/tensor.hpp"

namespace zp::onnx_io {

namespace pb = ::onnx;

/// TensorProto.DataType numbers libonnx 1.12 lacks (onnx.proto of ONNX 1.16).
inline constexpr int kUint4 = 21;
inline constexpr int kInt4 = 22;

/// The name ONNX gives a data type number ("FLOAT", "INT4", ...), or "type N".
std::string data_type_name(int data_type);

/// zeropoint's dtype for an ONNX data type, when it has one.
std::optional<DType> dtype_of(int data_type);

/// The ONNX data type number of a zeropoint dtype (int4 codes have none: see kInt4).
int data_type_of(DType dtype);

struct Model {
  pb::ModelProto proto;
  std::filesystem::path path;  ///< where it was read from (error messages)
  std::filesystem::path dir;   ///< external data locations are relative to this
};

/// Reads and validates a model file. External data stays in its files until a tensor is read.
Model load(const std::filesystem::path& path);

/// The same checks on bytes already in memory (the fuzz target); `dir` resolves external data.
Model parse(std::span<const std::byte> bytes, const std::filesystem::path& name, const std::filesystem::path& dir);

/// The default domain's operator set ("" or "ai.onnx"); 1 when the model imports none.
int opset(const pb::ModelProto& model);
void set_opset(pb::ModelProto& model, int version);

/// Element count of a validated tensor.
std::int64_t numel(const pb::TensorProto& tensor);
Shape shape_of(const pb::TensorProto& tensor);

/// A floating-point tensor's values as float32 (FLOAT, FLOAT16, BFLOAT16 or DOUBLE data, inline
/// or external). Throws zp::Error naming the tensor otherwise.
Tensor read_float(const Model& model, const pb::TensorProto& tensor);

/// A floating-point tensor's values without a copy where they already lie as they should: FLOAT
/// raw data in the model, or in an external file (mapped once per file and kept in `files`);
/// other storage is converted into `scratch`. The view lives as long as the model, `files` and
/// `scratch` are unchanged.
class ExternalFiles;
TensorView float_view(const Model& model, const pb::TensorProto& tensor, ExternalFiles& files, Tensor& scratch);

/// External data files mapped for reading, by path.
class ExternalFiles {
 public:
  ExternalFiles();
  ~ExternalFiles();
  ExternalFiles(const ExternalFiles&) = delete;
  ExternalFiles& operator=(const ExternalFiles&) = delete;
  /// The bytes [offset, offset + length) of `path`, checked against its size.
  std::span<const std::byte> bytes(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length,
                                   std::string_view who);
  /// The same bytes copied into `out` (out.size() of them) through the kernel (pread).
  void read(const std::filesystem::path& path, std::uint64_t offset, std::span<std::byte> out, std::string_view who);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Where a FLOAT tensor stored in an external file keeps its values, checked against the model's
/// folder (not yet against the file: ExternalFiles::read does that); nullopt for any other
/// tensor. For reading the values into memory of the caller's own rather than through the file's
/// mapping, which on virtual machines costs a nested page walk per 4 KiB on every pass.
struct ExternalFloats {
  std::filesystem::path path;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::string who;
};
std::optional<ExternalFloats> external_floats(const Model& model, const pb::TensorProto& tensor);

/// A tensor's data bytes exactly as stored (raw_data or external), when it is stored as raw bytes.
std::vector<std::byte> read_raw(const Model& model, const pb::TensorProto& tensor);

// --- Weights ------------------------------------------------------------------------------------

/// A constant tensor: an initializer of the main graph or of a subgraph, or the value of a
/// Constant node.
struct Constant {
  pb::TensorProto* tensor = nullptr;
  pb::GraphProto* graph = nullptr;      ///< the graph that holds it
  pb::NodeProto* node = nullptr;        ///< the Constant node, if it is one
  std::string name;                     ///< the value name nodes read it by
  std::string scope;                    ///< "" for the main graph, "If_0/then_branch" inside one
};

/// One node input that reads a value.
struct Use {
  pb::NodeProto* node = nullptr;
  pb::GraphProto* graph = nullptr;
  int input = 0;
};

/// Every graph of the model (the main graph first, then subgraphs of If/Loop/Scan, depth first)
/// with its scope name.
void for_each_graph(pb::GraphProto& graph, const std::function<void(pb::GraphProto&, const std::string& scope)>& fn,
                    const std::string& scope = "");

/// All constants of the model, in graph order.
std::vector<Constant> find_constants(pb::ModelProto& model);

/// Every node input in `graph` (and in its subgraphs, which may read outer values) that reads
/// `name`. A subgraph that defines its own `name` hides the outer one.
std::vector<Use> find_uses(pb::GraphProto& graph, const std::string& name);

// --- Graph editing helpers --------------------------------------------------------------------

/// The node belongs to ONNX's default operator domain ("" or "ai.onnx").
bool default_domain(const pb::NodeProto& node);

/// The node's attribute `name`, or nullptr.
const pb::AttributeProto* attribute(const pb::NodeProto& node, std::string_view name);
void remove_attribute(pb::NodeProto& node, std::string_view name);
void add_int_attribute(pb::NodeProto& node, std::string_view name, std::int64_t value);
/// A node of the default domain, without attributes.
pb::NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                        std::vector<std::string> outputs);

/// Value and node names no graph of the model uses yet: fresh("W_scale") is "W_scale", or
/// "W_scale_1", ... when taken.
class UniqueNames {
 public:
  explicit UniqueNames(pb::ModelProto& model);
  std::string fresh(const std::string& base);

 private:
  std::set<std::string> used_;
};

// --- Writing ----------------------------------------------------------------------------------

/// As onnx.save_model's default size_threshold: smaller tensors stay inline, where they cost
/// nothing, when a model's large tensors go to external data.
constexpr std::int64_t kDefaultExternalThreshold = 1024;

/// The external data file of a model being written, "<model file name>.data" next to it, filled
/// while the model is still being built: a quantized weight's codes go to the file as soon as
/// they exist, so memory holds one weight's codes rather than the model's. Written through a
/// temporary file that save() renames into place (or that is removed if save() never runs).
class DataWriter {
 public:
  explicit DataWriter(const std::filesystem::path& model_path);
  ~DataWriter();
  DataWriter(const DataWriter&) = delete;
  DataWriter& operator=(const DataWriter&) = delete;

  /// Appends `bytes` (at an offset aligned for mapping) and makes `tensor` refer to them; the
  /// tensor's other data is cleared. Tensor names must be unique in the model.
  void put(pb::TensorProto& tensor, std::span<const std::byte> bytes);
  /// Whether `tensor` is one put() wrote (its data then lies in the output's data file).
  bool holds(const pb::TensorProto& tensor) const;
  /// The file name tensors refer to ("<model file name>.data").
  const std::string& name() const noexcept { return name_; }
  /// Flushes and renames the file into place; save() calls it before it commits the model.
  void commit();
  const std::filesystem::path& target() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string name_;
};

struct SaveOptions {
  /// Tensors of at least this many bytes go to "<output file name>.data" next to the model;
  /// 0 chooses: external when the input used external data or the model would pass protobuf's
  /// 2 GiB limit, otherwise everything inline.
  std::int64_t external_threshold = 0;
  /// The data file already begun for this output path, if any: the tensors it holds stay as they
  /// are, the others that go external are appended to it, and save() commits it.
  DataWriter* data = nullptr;
};

/// Writes `model` to `path` (through a temporary file renamed into place, with its external data
/// file). Tensors that still refer to the input's external data are copied across. Returns the
/// files written.
std::vector<std::filesystem::path> save(const Model& model, const std::filesystem::path& path,
                                        const SaveOptions& options = {});
/// The same, rewriting `model` itself instead of a copy (for a caller done with it).
std::vector<std::filesystem::path> save(Model&& model, const std::filesystem::path& path,
                                        const SaveOptions& options = {});

}  // namespace zp::onnx_io
