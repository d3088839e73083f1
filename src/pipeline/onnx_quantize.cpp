// ONNX models into QDQ form: the weights, dynamic and static modes of include/zeropoint/onnx_model.hpp.
//
// A quantized constant keeps its name as the output of the DequantizeLinear node that replaces
// it (the codes are renamed NAME_quantized), so every reader of the constant, in subgraphs too,
// is left untouched. An activation T that is quantized gets T -> QuantizeLinear -> T_quantized ->
// DequantizeLinear -> T_dequantized, and the readers that should see the quantized value are
// switched to T_dequantized; the others (normalization operators, graph outputs, subgraphs) keep
// T. That is the form ONNX Runtime fuses into its integer kernels (QLinearConv, QLinearMatMul).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <onnx/checker.h>

#include "formats/onnx/onnx_model.hpp"
#include "formats/onnx/upgrade.hpp"
#include "pipeline/onnx_calibration.hpp"
#include "pipeline/staging.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/onnx_model.hpp"
#include "zeropoint/quantize.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;
using namespace onnx_io;

// The operators that stay in float unless options.quantize_norm: decomposed LayerNorm and the
// normalizations themselves, whose inputs need the float range (a quantized mean or variance
// loses the small differences the operator exists to compute).
const std::set<std::string, std::less<>> kNormOps = {
    "ReduceMean", "Sub", "Pow", "Sqrt", "Div", "Softmax", "LogSoftmax", "LayerNormalization",
    "InstanceNormalization", "GroupNormalization", "BatchNormalization", "LpNormalization", "Erf"};

const std::set<std::string, std::less<>> kWeightOps = {"Conv", "ConvTranspose", "MatMul", "Gemm"};

std::int64_t int_attribute(const pb::NodeProto& n, std::string_view name, std::int64_t fallback) {
  const auto* a = attribute(n, name);
  return a ? a->i() : fallback;
}
float float_attribute(const pb::NodeProto& n, std::string_view name, float fallback) {
  const auto* a = attribute(n, name);
  return a ? a->f() : fallback;
}

std::string node_label(const pb::NodeProto& n) { return n.name().empty() ? n.output(0) : n.name(); }

// A graph's nodes taken out as owned pointers and put back in a new order, so that pointers to
// nodes held elsewhere in the job stay valid (copying them into a new list would not).
std::vector<pb::NodeProto*> take_nodes(pb::GraphProto& graph) {
  auto* nodes = graph.mutable_node();
  std::vector<pb::NodeProto*> out(static_cast<std::size_t>(nodes->size()));
  nodes->ExtractSubrange(0, nodes->size(), out.data());
  return out;
}
void put_nodes(pb::GraphProto& graph, const std::vector<pb::NodeProto*>& nodes) {
  for (auto* n : nodes) graph.mutable_node()->AddAllocated(n);
}
pb::NodeProto* new_node(pb::NodeProto n) { return new pb::NodeProto(std::move(n)); }


pb::TensorProto float_tensor(const std::string& name, const Shape& shape, std::span<const float> values, int data_type) {
  pb::TensorProto t;
  t.set_name(name);
  for (auto d : shape) t.add_dims(d);
  t.set_data_type(data_type);
  if (data_type == pb::TensorProto::FLOAT) {
    t.set_raw_data(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  } else {
    const DType dtype = *dtype_of(data_type);
    Tensor f32(DType::f32, {static_cast<std::int64_t>(values.size())});
    std::copy(values.begin(), values.end(), static_cast<float*>(f32.data()));
    const Tensor converted = from_f32(f32, dtype);
    t.set_raw_data(static_cast<const char*>(converted.data()), converted.nbytes());
  }
  return t;
}

template <class T>
pb::TensorProto int_tensor(const std::string& name, const Shape& shape, std::span<const T> values, int data_type) {
  pb::TensorProto t;
  t.set_name(name);
  for (auto d : shape) t.add_dims(d);
  t.set_data_type(data_type);
  t.set_raw_data(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  return t;
}

// ONNX packs 4-bit codes two to a byte, the first in the low nibble.
std::string pack_int4(const Tensor& codes) {
  const std::int64_t n = codes.numel();
  std::string out(static_cast<std::size_t>((n + 1) / 2), '\0');
  const auto* c = static_cast<const std::uint8_t*>(codes.data());
  for (std::int64_t i = 0; i < n; ++i) {
    const auto nibble = static_cast<std::uint8_t>(c[i] & 0x0f);
    out[static_cast<std::size_t>(i / 2)] |= static_cast<char>(i % 2 == 0 ? nibble : nibble << 4);
  }
  return out;
}

// --- What gets quantized -----------------------------------------------------------------------

struct WeightUse {
  pb::NodeProto* node;
  int axis;       // output-channel axis of the weight for this operator
  int in_axis;    // the reduction axis (blocks run along it)
  bool matmul;    // a MatMul reading it as B (dynamic mode's integer path)
};

struct WeightPlan {
  Constant constant;
  std::vector<WeightUse> uses;
  Scheme scheme;
  std::string reason;
  bool quantize = false;
};

// The output and reduction axes of a weight operator's weight, or nullopt when the input is not
// the weight slot or the operator's attributes put it out of reach.
std::optional<std::pair<int, int>> weight_axes(const pb::NodeProto& node, int input, int rank) {
  if (input != 1 || rank < 1) return std::nullopt;
  if (node.op_type() == "Conv") return rank >= 2 ? std::optional(std::pair{0, 1}) : std::nullopt;
  if (node.op_type() == "ConvTranspose") {
    // [C_in, C_out/group, k...]: the output channel axis is 1 only when there is one group.
    if (int_attribute(node, "group", 1) != 1 || rank < 2) return std::nullopt;
    return std::pair{1, 0};
  }
  if (node.op_type() == "MatMul") return rank >= 2 ? std::optional(std::pair{rank - 1, rank - 2}) : std::nullopt;
  if (node.op_type() == "Gemm") {
    if (rank != 2) return std::nullopt;
    return int_attribute(node, "transB", 0) ? std::pair{0, 1} : std::pair{1, 0};
  }
  return std::nullopt;
}

bool excluded(const pb::NodeProto& node, const OnnxQuantizeOptions& options, const std::vector<std::regex>& node_res) {
  if (std::find(options.exclude_ops.begin(), options.exclude_ops.end(), node.op_type()) != options.exclude_ops.end()) {
    return true;
  }
  return std::any_of(node_res.begin(), node_res.end(), [&](const std::regex& re) { return std::regex_search(node.name(), re); });
}

// A copy ONNX's checker can take, made without copying tensor payloads (the checker looks at
// types, shapes and where data lives, not at the bytes; copying a model's weights cost a quarter
// of a weight-only run): during the copy `model` holds one-byte stand-ins, then gets its data back.
// External tensors become one-byte inline stand-ins, since the checker would look for their files
// relative to its own idea of the model's folder.
pb::ModelProto checker_copy(pb::ModelProto& model) {
  std::vector<std::pair<pb::TensorProto*, std::string>> lent;
  auto lend = [&](pb::TensorProto& t) {
    if (t.raw_data().size() <= 16) return;  // keeps small constants, which shape inference may read
    lent.emplace_back(&t, std::string(1, '\0'));  // the checker wants a payload, of any size
    lent.back().second.swap(*t.mutable_raw_data());
  };
  for_each_graph(*model.mutable_graph(), [&](pb::GraphProto& g, const std::string&) {
    for (auto& t : *g.mutable_initializer()) lend(t);
    for (auto& node : *g.mutable_node()) {
      for (auto& a : *node.mutable_attribute()) {
        if (a.has_t()) lend(*a.mutable_t());
        for (auto& t : *a.mutable_tensors()) lend(t);
      }
    }
  });
  struct GiveBack {
    std::vector<std::pair<pb::TensorProto*, std::string>>& lent;
    ~GiveBack() {
      for (auto& [t, raw] : lent) t->mutable_raw_data()->swap(raw);
    }
  } give_back{lent};
  pb::ModelProto copy = model;
  for_each_graph(*copy.mutable_graph(), [](pb::GraphProto& g, const std::string&) {
    for (auto& t : *g.mutable_initializer()) {
      if (t.data_location() == pb::TensorProto::EXTERNAL) {
        t.clear_external_data();
        t.set_data_location(pb::TensorProto::DEFAULT);
        t.set_raw_data(std::string(1, '\0'));
      }
    }
  });
  return copy;
}

bool passes_checker(const pb::ModelProto& model) {
  try {
    ::onnx::checker::check_model(model);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool needs_opset_21(const Scheme& s) { return s.granularity == Granularity::block || s.bits < 8; }

// --- The job -----------------------------------------------------------------------------------

class OnnxJob {
 public:
  OnnxJob(const fs::path& input, const fs::path& output, const OnnxQuantizeOptions& options)
      : input_(input), output_(output), options_(options) {
    for (const auto& re : options.exclude_nodes) {
      try {
        node_res_.emplace_back(re);
      } catch (const std::regex_error& e) {
        throw Error(fmt::format("--exclude-node '{}' is not a regular expression: {}", re, e.what()));
      }
    }
    std::vector<PlanRule> rules = options.rules;
    rules_ = std::make_unique<Plan>(PlanOptions{options.weight_scheme, rules});
  }

  OnnxReport run();

 private:
  void plan_weights();
  int needed_opset() const;
  void begin_external_data();
  void quantize_weights();
  void replace_constant(WeightPlan& w, const QuantizedTensor& q);
  void add_dequantize(pb::GraphProto& graph, const pb::NodeProto* after, pb::NodeProto dq,
                      std::vector<pb::TensorProto> initializers);
  void rewrite_dynamic();
  std::vector<std::string> activations_to_calibrate();
  void calibrate(const std::vector<std::string>& names);
  void rewrite_static(const std::vector<std::string>& names);
  void quantize_bias(pb::NodeProto& node, const std::string& x_name);
  void finish();

  fs::path input_, output_;
  const OnnxQuantizeOptions& options_;
  std::vector<std::regex> node_res_;
  std::unique_ptr<Plan> rules_;
  Model model_;
  Model float_model_;  // static: the model as read (upgraded), which calibration runs
  pb::ModelProto float_input_;  // the upgraded input, for ONNX's checker
  std::unique_ptr<UniqueNames> names_;
  // The output's external data file when it has one (as save() decides: the input used external
  // data, or a threshold was given): codes of at least data_threshold_ bytes go there as they
  // are made.
  std::unique_ptr<DataWriter> data_;
  std::int64_t data_threshold_ = 0;
  std::vector<WeightPlan> weights_;
  std::map<std::string, std::size_t> weight_index_;      // constant name -> weights_
  std::map<std::string, QParams> weight_params_;         // quantized weights' parameters
  std::map<std::string, std::string> weight_scale_name_;  // quantized weight -> its scale initializer
  std::map<std::string, AffineParams> activation_params_;
  // The DequantizeLinear nodes to place, per graph: at the front (initializers) or after a node.
  struct Pending {
    const pb::NodeProto* after;
    pb::NodeProto node;
  };
  std::map<pb::GraphProto*, std::vector<Pending>> pending_;
  OnnxReport report_;
};

void OnnxJob::plan_weights() {
  std::map<std::string, int> seen;
  auto constants = find_constants(model_.proto);
  for (auto& c : constants) ++seen[c.name];
  for (auto& c : constants) {
    if (seen[c.name] > 1) {
      report_.notes.push_back(fmt::format("constant '{}' is defined more than once (in subgraphs); left as it is", c.name));
      continue;
    }
    weight_index_[c.name] = weights_.size();
    weights_.push_back({c, {}, {}, {}, false});
  }
  // Which nodes read each constant, and in what role.
  std::map<std::string, std::vector<std::pair<pb::NodeProto*, int>>> readers;
  for_each_graph(*model_.proto.mutable_graph(), [&](pb::GraphProto& graph, const std::string&) {
    for (auto& node : *graph.mutable_node()) {
      for (int i = 0; i < node.input_size(); ++i) {
        if (weight_index_.contains(node.input(i))) readers[node.input(i)].push_back({&node, i});
      }
    }
  });
  for (auto& w : weights_) {
    const auto& t = *w.constant.tensor;
    const auto it = readers.find(w.constant.name);
    if (it == readers.end()) continue;
    const auto dtype = dtype_of(t.data_type());
    bool all_weight_slots = true;
    std::set<std::pair<int, int>> axes;
    std::string why;
    for (auto [node, input] : it->second) {
      const auto ax = default_domain(*node) && kWeightOps.contains(node->op_type())
                          ? weight_axes(*node, input, t.dims_size()) : std::nullopt;
      if (!ax) {
        all_weight_slots = false;
        if (kWeightOps.contains(node->op_type()) && input == 1) why = fmt::format("node '{}' ({}) reads it in a form zeropoint does not quantize", node_label(*node), node->op_type());
        continue;
      }
      if (excluded(*node, options_, node_res_)) {
        all_weight_slots = false;
        why = fmt::format("node '{}' ({}) is excluded", node_label(*node), node->op_type());
        continue;
      }
      axes.insert(*ax);
      w.uses.push_back({node, ax->first, ax->second, node->op_type() == "MatMul"});
    }
    if (w.uses.empty()) {
      if (!why.empty()) report_.notes.push_back(fmt::format("weight '{}' kept: {}", w.constant.name, why));
      continue;
    }
    if (!all_weight_slots) {
      report_.notes.push_back(fmt::format("weight '{}' kept: it is also read as an activation", w.constant.name));
      w.uses.clear();
      continue;
    }
    if (axes.size() != 1) {
      report_.notes.push_back(fmt::format("weight '{}' kept: its readers want different channel axes", w.constant.name));
      w.uses.clear();
      continue;
    }
    if (!dtype || !(*dtype == DType::f32 || *dtype == DType::f16 || *dtype == DType::bf16)) {
      report_.notes.push_back(fmt::format("weight '{}' kept: {} weights are not quantized", w.constant.name,
                                          data_type_name(t.data_type())));
      w.uses.clear();
      continue;
    }
    const PlanDecision d = rules_->decide(w.constant.name, dtype, shape_of(t));
    // The plan's default excludes 1-D tensors, but a weight slot is a weight whatever its rank.
    const bool ruled = d.reason.rfind("--", 0) == 0;  // "--rule ..." or "--keep ..."
    if (ruled && !d.quantize) {
      w.reason = d.reason;
      report_.notes.push_back(fmt::format("weight '{}' kept: {}", w.constant.name, d.reason));
      w.uses.clear();
      continue;
    }
    Scheme s = ruled ? d.scheme : options_.weight_scheme;
    if (s.granularity == Granularity::channel) s.axis = w.uses[0].axis;
    if (s.granularity == Granularity::block) s.axis = w.uses[0].in_axis;
    w.reason = ruled ? d.reason : "weight of " + w.uses[0].node->op_type();
    if (s.granularity == Granularity::block && t.dims(s.axis) < s.block) {
      // Blocks longer than the reduction axis would give every value its own scale (a 1-channel
      // Conv's weight): int8 per output channel is both smaller and more accurate there.
      const std::int64_t length = t.dims(s.axis);
      s = Scheme::parse("int8:channel");
      s.axis = w.uses[0].axis;
      w.reason = fmt::format("fallback: reduction axis of {} < block", length);
    }
    w.scheme = s;
    w.quantize = true;
  }
}

int OnnxJob::needed_opset() const {
  int need = 13;
  for (const auto& r : options_.rules) {
    if (r.scheme && needs_opset_21(*r.scheme)) need = 21;
  }
  if (needs_opset_21(options_.weight_scheme)) need = 21;
  return need;
}

void OnnxJob::add_dequantize(pb::GraphProto& graph, const pb::NodeProto* after, pb::NodeProto dq,
                             std::vector<pb::TensorProto> initializers) {
  for (auto& t : initializers) *graph.add_initializer() = std::move(t);
  pending_[&graph].push_back({after, std::move(dq)});
}

void OnnxJob::replace_constant(WeightPlan& w, const QuantizedTensor& q) {
  pb::TensorProto& t = *w.constant.tensor;
  const std::string name = w.constant.name;
  const int float_type = t.data_type();
  const Scheme& s = q.params.scheme;
  const std::string codes_name = names_->fresh(name + "_quantized");
  const std::string scale_name = names_->fresh(name + "_scale");
  const std::string zp_name = names_->fresh(name + "_zero_point");
  const int code_type = s.bits == 4 ? (s.is_signed ? kInt4 : kUint4)
                                    : (s.is_signed ? pb::TensorProto::INT8 : pb::TensorProto::UINT8);
  if (s.bits != 8 && s.bits != 4) {
    throw Error(fmt::format("weight '{}': ONNX holds 8-bit and 4-bit codes; scheme {} has {} bits", name, s.str(), s.bits));
  }
  if (s.zero_point != ZeroPointKind::integer) {
    throw Error(fmt::format("weight '{}': ONNX's DequantizeLinear takes an integer zero point; drop zp=float from {}", name, s.str()));
  }
  // 8-bit codes are already one per byte; only 4-bit ones need unpacking before ONNX's packing.
  const Tensor codes = s.bits == 8 ? Tensor() : unpack_codes(q);
  // The codes replace the float data in place, so an initializer keeps its position.
  t.clear_raw_data();
  t.clear_float_data();
  t.clear_int32_data();
  t.clear_external_data();
  t.set_data_location(pb::TensorProto::DEFAULT);
  t.set_data_type(code_type);
  t.set_name(codes_name);
  // Initializers' codes go to the output's data file right away when it has one (Constant nodes
  // keep theirs inline, where ONNX wants attribute tensors).
  const bool external = data_ && !w.constant.node &&
                        static_cast<std::int64_t>(q.data.size()) >= data_threshold_;
  if (s.bits == 4) {
    std::string packed = pack_int4(codes);
    if (external) data_->put(t, std::as_bytes(std::span(packed.data(), packed.size())));
    else t.set_raw_data(std::move(packed));
  } else if (external) {
    data_->put(t, std::as_bytes(std::span(q.data.data(), q.data.size())));
  } else {
    detail::assign_huge(*t.mutable_raw_data(), q.data);
  }

  const Shape scale_shape = s.granularity == Granularity::tensor ? Shape{} : q.params.param_shape;
  std::vector<pb::TensorProto> params;
  params.push_back(float_tensor(scale_name, scale_shape, q.params.scale, float_type));
  const bool with_zero_point = std::any_of(q.params.zero_point.begin(), q.params.zero_point.end(), [](auto z) { return z != 0; }) ||
                               !s.is_signed;
  if (with_zero_point || s.bits == 4) {
    const Tensor zp_codes = zero_points_as_codes(q.params);
    pb::TensorProto z;
    z.set_name(zp_name);
    for (auto d : scale_shape) z.add_dims(d);
    z.set_data_type(code_type);
    if (s.bits == 4) z.set_raw_data(pack_int4(zp_codes));
    else z.set_raw_data(static_cast<const char*>(zp_codes.data()), zp_codes.nbytes());
    params.push_back(std::move(z));
  }
  weight_scale_name_[name] = scale_name;
  pb::NodeProto dq = make_node("DequantizeLinear", names_->fresh(name + "_DequantizeLinear"),
                               {codes_name, scale_name}, {name});
  if (params.size() == 2) dq.add_input(zp_name);
  if (s.granularity != Granularity::tensor) add_int_attribute(dq, "axis", s.axis);
  if (s.granularity == Granularity::block) add_int_attribute(dq, "block_size", s.block);

  pb::GraphProto& graph = *w.constant.graph;
  if (w.constant.node) {
    w.constant.node->set_output(0, codes_name);
    add_dequantize(graph, w.constant.node, std::move(dq), std::move(params));
  } else {
    // An initializer also listed as a graph input (IR < 4 models) would become a required input
    // under its new name; the codes are not meant to be overridden, so the listing goes.
    auto* inputs = graph.mutable_input();
    for (int i = 0; i < inputs->size(); ++i) {
      if (inputs->Get(i).name() == name) {
        inputs->DeleteSubrange(i, 1);
        break;
      }
    }
    add_dequantize(graph, nullptr, std::move(dq), std::move(params));
  }
}

void OnnxJob::begin_external_data() {
  bool input_external = false;
  for (const auto& c : find_constants(model_.proto)) {
    input_external |= c.tensor->data_location() == pb::TensorProto::EXTERNAL;
  }
  data_threshold_ = options_.external_threshold > 0 ? options_.external_threshold
                    : input_external                ? kDefaultExternalThreshold
                                                    : 0;
  if (data_threshold_ > 0) data_ = std::make_unique<DataWriter>(output_);
}

void OnnxJob::quantize_weights() {
  std::vector<WeightPlan*> todo;
  for (auto& w : weights_) {
    if (w.quantize) todo.push_back(&w);
  }
  // Float weights in external files are read (pread) into buffers of huge pages, the next one
  // while this one is quantized; walking the file's mapping instead costs a page walk per 4 KiB
  // on each of the passes over the values (range, codes), the largest cost of a weight-only run
  // on virtual machines. Weights inside the model are read where they lie.
  std::vector<std::optional<ExternalFloats>> external(todo.size());
  if (!options_.dry_run) {
    for (std::size_t k = 0; k < todo.size(); ++k) external[k] = external_floats(model_, *todo[k]->constant.tensor);
  }
  ExternalFiles reader_files;  // the read-ahead thread's own
  detail::ReadAhead ahead(
      options_.dry_run ? 0 : todo.size(), [&](std::size_t k) { return external[k] ? external[k]->bytes : 0; },
      [&](std::size_t k, std::span<std::byte> into) {
        if (external[k]) reader_files.read(external[k]->path, external[k]->offset, into, external[k]->who);
      });
  ExternalFiles files;
  Tensor scratch;
  QuantizedTensor q;  // reused: fresh pages for every weight cost more than quantizing them
  const auto total = static_cast<std::uint64_t>(todo.size());
  for (std::size_t k = 0; k < todo.size(); ++k) {
    WeightPlan& w = *todo[k];
    if (options_.progress) options_.progress(k, total, w.constant.name);
    const pb::TensorProto& t = *w.constant.tensor;
    TensorRecord rec;
    rec.name = w.constant.name;
    rec.dtype = data_type_name(t.data_type());
    rec.shape = shape_of(t);
    rec.reason = w.reason;
    rec.scheme = w.scheme;
    const auto dtype = *dtype_of(t.data_type());
    rec.bytes_in = static_cast<std::uint64_t>(numel(t)) * dtype_size(dtype);
    rec.bytes_out = static_cast<std::uint64_t>(quantized_bytes(rec.shape, w.scheme));
    if (!options_.dry_run) {
      const std::span<const std::byte> staged = ahead.next();
      const TensorView values = external[k] ? TensorView(staged.data(), DType::f32, rec.shape)
                                            : float_view(model_, t, files, scratch);
      ObserveOptions observe;
      observe.name = w.constant.name;
      ErrorMetrics error;
      try {
        quantize(values, w.scheme, observe, q, error);
      } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", input_.string(), e.what()));
      }
      rec.error = error;
      weight_params_[w.constant.name] = q.params;
      replace_constant(w, q);
    }
    report_.tensors.push_back(std::move(rec));
    for (const auto& u : w.uses) report_.nodes_quantized.push_back(node_label(*u.node));
  }
}


// --- dynamic -----------------------------------------------------------------------------------

void OnnxJob::rewrite_dynamic() {
  pb::GraphProto& graph = *model_.proto.mutable_graph();
  std::map<const pb::NodeProto*, const WeightPlan*> weight_of;
  for (const auto& w : weights_) {
    if (!w.quantize) continue;
    for (const auto& u : w.uses) weight_of[u.node] = &w;
  }
  // MatMul weights of the main graph that only MatMuls read go the integer way (MatMulInteger on
  // the codes), so their DequantizeLinear is not needed at all.
  auto integer_path = [&](const WeightPlan& w) {
    return w.scheme.bits == 8 && w.scheme.is_signed && w.scheme.granularity != Granularity::block &&
           w.constant.graph == &graph && std::all_of(w.uses.begin(), w.uses.end(), [&](const WeightUse& u) {
             return u.matmul && std::any_of(graph.node().begin(), graph.node().end(), [&](auto& n) { return &n == u.node; });
           });
  };
  std::set<std::string> integer_weights;
  for (const auto& w : weights_) {
    if (w.quantize && integer_path(w)) integer_weights.insert(w.constant.name);
  }
  for (auto& [g, list] : pending_) {
    std::erase_if(list, [&](const Pending& p) { return integer_weights.contains(p.node.output(0)); });
  }
  finish();

  std::vector<pb::NodeProto*> out;
  for (pb::NodeProto* node : take_nodes(graph)) {
    const auto it = weight_of.find(node);
    // Convolutions keep float activations (their weights are still int8): a per-tensor range
    // taken from each input at run time is too coarse for feature maps whose channels differ by
    // orders of magnitude (PP-OCR's recognizer drops to cosine 0.84), which is why ONNX Runtime
    // advises dynamic quantization for MatMul-heavy models and static for CNNs.
    const bool convolution = node->op_type() == "Conv" || node->op_type() == "ConvTranspose";
    if (it == weight_of.end() || convolution || node->input_size() < 1 || node->input(0).empty()) {
      out.push_back(node);
      continue;
    }
    const std::string x = node->input(0);
    const std::string base = node_label(*node);
    const std::string xq = names_->fresh(x + "_quantized"), xs = names_->fresh(x + "_scale"),
                      xz = names_->fresh(x + "_zero_point");
    out.push_back(new_node(make_node("DynamicQuantizeLinear", names_->fresh(base + "_DynamicQuantizeLinear"), {x}, {xq, xs, xz})));
    const WeightPlan& w = *it->second;
    if (integer_weights.contains(w.constant.name)) {
      // MatMulInteger on the codes, then one multiply by x_scale * w_scale (per output column).
      const std::string wz = names_->fresh(w.constant.name + "_zero_point");
      const std::int8_t zero = 0;
      *graph.add_initializer() = int_tensor<std::int8_t>(wz, {}, std::span(&zero, 1), pb::TensorProto::INT8);
      const std::string acc = names_->fresh(base + "_int32"), accf = names_->fresh(base + "_int32_float"),
                        scale = names_->fresh(base + "_output_scale");
      out.push_back(new_node(make_node("MatMulInteger", names_->fresh(base + "_MatMulInteger"),
                                       {xq, w.constant.tensor->name(), xz, wz}, {acc})));
      pb::NodeProto cast = make_node("Cast", names_->fresh(base + "_Cast"), {acc}, {accf});
      add_int_attribute(cast, "to", pb::TensorProto::FLOAT);
      out.push_back(new_node(std::move(cast)));
      out.push_back(new_node(make_node("Mul", names_->fresh(base + "_scales"), {xs, weight_scale_name_.at(w.constant.name)}, {scale})));
      out.push_back(new_node(make_node("Mul", names_->fresh(base + "_rescale"), {accf, scale}, {node->output(0)})));
      delete node;
    } else {
      const std::string xd = names_->fresh(x + "_dequantized");
      out.push_back(new_node(make_node("DequantizeLinear", names_->fresh(base + "_DequantizeLinear"), {xq, xs, xz}, {xd})));
      node->set_input(0, xd);
      out.push_back(node);
    }
  }
  put_nodes(graph, out);
}

// --- static ------------------------------------------------------------------------------------

std::vector<std::string> OnnxJob::activations_to_calibrate() {
  pb::GraphProto& graph = *model_.proto.mutable_graph();
  std::set<std::string> chosen;
  std::vector<std::string> order;
  std::set<std::string> constants;
  for (const auto& w : weights_) constants.insert(w.constant.name);
  for (auto& node : *graph.mutable_node()) {
    bool quantized = false;
    for (const auto& w : weights_) {
      if (!w.quantize) continue;
      for (const auto& u : w.uses) quantized |= u.node == &node;
    }
    if (!quantized) continue;
    auto add = [&](const std::string& name) {
      if (!name.empty() && !constants.contains(name) && chosen.insert(name).second) order.push_back(name);
    };
    // Only what a quantized operator reads: an output gets its pair when the next quantized
    // operator reads it (as ONNX Runtime's QDQ quantizer does), so a logit feeding a Sigmoid or
    // a graph output keeps its float precision.
    add(node.input(0));
  }
  return order;
}

void OnnxJob::calibrate(const std::vector<std::string>& names) {
  const auto start = std::chrono::steady_clock::now();
  const onnx_calib::ObservedActivations seen = onnx_calib::observe(float_model_, input_, names, options_);
  for (const auto& n : names) {
    const auto& o = seen.observers.at(n);
    ActivationRecord a;
    a.name = n;
    a.count = o.count();
    a.nan_count = o.nan_count();
    a.inf_count = o.inf_count();
    if (o.count() == 0) {
      report_.notes.push_back(fmt::format("activation '{}' had no finite value in calibration; left in float", n));
      continue;
    }
    const calib::Range r = o.range();
    a.min = r.min;
    a.max = r.max;
    a.observed_min = o.observed_min();
    a.observed_max = o.observed_max();
    const AffineParams p = choose_params(r.min, r.max, options_.activation_scheme);
    a.scale = p.scale;
    a.zero_point = p.zero_point;
    activation_params_[n] = p;
    report_.activations.push_back(a);
  }
  report_.calibration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report_.inference_seconds = seen.inference_seconds;
}

void OnnxJob::quantize_bias(pb::NodeProto& node, const std::string& x_name) {
  if (node.input_size() < 3 || node.input(2).empty()) return;
  if (node.op_type() == "Gemm" && float_attribute(node, "beta", 1.0f) != 1.0f) return;
  const auto wi = weight_index_.find(node.input(2));
  const auto xp = activation_params_.find(x_name);
  if (wi == weight_index_.end() || xp == activation_params_.end()) return;
  WeightPlan& b = weights_[wi->second];
  if (b.quantize || !b.uses.empty()) return;
  // The bias is read by this node alone, or its int32 form would be wrong for the others.
  int readers = 0;
  for_each_graph(*model_.proto.mutable_graph(), [&](pb::GraphProto& g, const std::string&) {
    for (const auto& n : g.node()) {
      for (const auto& in : n.input()) readers += in == b.constant.name;
    }
  });
  if (readers != 1 || b.constant.tensor->dims_size() != 1) return;
  const auto dtype = dtype_of(b.constant.tensor->data_type());
  if (!dtype || *dtype != DType::f32) return;
  const QParams& wp = weight_params_.at(node.input(1));
  if (wp.scheme.granularity == Granularity::block || wp.scheme.bits != 8) return;
  const Tensor bias = read_float(model_, *b.constant.tensor);
  const auto values = bias.view().span<float>();
  const std::size_t n = values.size();
  if (wp.scale.size() != 1 && wp.scale.size() != n) return;
  std::vector<std::int32_t> codes(n);
  std::vector<float> scales(n);
  for (std::size_t i = 0; i < n; ++i) {
    // ONNX Runtime's rule: bias scale = input scale * weight scale, zero point 0, rounded to
    // nearest even, saturated to int32.
    const float s = xp->second.scale * wp.scale[wp.scale.size() == 1 ? 0 : i];
    scales[i] = s;
    const double v = std::nearbyint(static_cast<double>(values[i]) / static_cast<double>(s));
    codes[i] = static_cast<std::int32_t>(std::clamp(v, -2147483648.0, 2147483647.0));
  }
  pb::TensorProto& t = *b.constant.tensor;
  const std::string name = b.constant.name;
  const std::string codes_name = names_->fresh(name + "_quantized"), scale_name = names_->fresh(name + "_scale");
  t.clear_raw_data();
  t.clear_float_data();
  t.clear_external_data();
  t.set_data_location(pb::TensorProto::DEFAULT);
  t.set_name(codes_name);
  t.set_data_type(pb::TensorProto::INT32);
  t.set_raw_data(reinterpret_cast<const char*>(codes.data()), codes.size() * 4);
  std::vector<pb::TensorProto> params{float_tensor(scale_name, {static_cast<std::int64_t>(n)}, scales, pb::TensorProto::FLOAT)};
  pb::NodeProto dq = make_node("DequantizeLinear", names_->fresh(name + "_DequantizeLinear"), {codes_name, scale_name}, {name});
  add_int_attribute(dq, "axis", 0);
  if (b.constant.node) {
    b.constant.node->set_output(0, codes_name);
    add_dequantize(*b.constant.graph, b.constant.node, std::move(dq), std::move(params));
  } else {
    add_dequantize(*b.constant.graph, nullptr, std::move(dq), std::move(params));
  }
  TensorRecord rec;
  rec.name = name;
  rec.dtype = "FLOAT";
  rec.shape = shape_of(t);
  rec.bytes_in = rec.bytes_out = n * 4;
  rec.reason = "bias: int32, scale = input scale x weight scale";
  report_.tensors.push_back(std::move(rec));
}

void OnnxJob::rewrite_static(const std::vector<std::string>& names) {
  pb::GraphProto& graph = *model_.proto.mutable_graph();
  std::set<const pb::NodeProto*> quantized_nodes;
  for (const auto& w : weights_) {
    if (!w.quantize) continue;
    for (const auto& u : w.uses) quantized_nodes.insert(u.node);
  }
  for (auto& node : *graph.mutable_node()) {
    if (quantized_nodes.contains(&node) && (node.op_type() == "Conv" || node.op_type() == "Gemm")) {
      quantize_bias(node, node.input(0));
    }
  }
  finish();
  // Q/DQ pairs, each placed right after the value's producer (graph inputs: first).
  const Scheme& s = options_.activation_scheme;
  const int code_type = s.is_signed ? pb::TensorProto::INT8 : pb::TensorProto::UINT8;
  std::map<std::string, std::string> dequantized;  // value -> its T_dequantized
  std::map<std::string, std::vector<pb::NodeProto>> after_value;
  for (const auto& n : names) {
    const auto p = activation_params_.find(n);
    if (p == activation_params_.end()) continue;
    const std::string q = names_->fresh(n + "_quantized"), d = names_->fresh(n + "_dequantized"),
                      sc = names_->fresh(n + "_scale"), zp = names_->fresh(n + "_zero_point");
    const float scale = p->second.scale;
    *graph.add_initializer() = float_tensor(sc, {}, std::span(&scale, 1), pb::TensorProto::FLOAT);
    if (s.is_signed) {
      const auto z = static_cast<std::int8_t>(p->second.zero_point);
      *graph.add_initializer() = int_tensor<std::int8_t>(zp, {}, std::span(&z, 1), code_type);
    } else {
      const auto z = static_cast<std::uint8_t>(p->second.zero_point);
      *graph.add_initializer() = int_tensor<std::uint8_t>(zp, {}, std::span(&z, 1), code_type);
    }
    after_value[n].push_back(make_node("QuantizeLinear", names_->fresh(n + "_QuantizeLinear"), {n, sc, zp}, {q}));
    after_value[n].push_back(make_node("DequantizeLinear", names_->fresh(n + "_DequantizeLinear"), {q, sc, zp}, {d}));
    dequantized[n] = d;
  }
  // Readers switch to the dequantized value, except normalization operators (unless asked).
  for (auto& node : *graph.mutable_node()) {
    if (!options_.quantize_norm && default_domain(node) && kNormOps.contains(node.op_type())) continue;
    for (int i = 0; i < node.input_size(); ++i) {
      const auto it = dequantized.find(node.input(i));
      if (it != dequantized.end()) node.set_input(i, it->second);
    }
  }
  std::vector<pb::NodeProto*> out;
  for (const auto& in : graph.input()) {
    const auto it = after_value.find(in.name());
    if (it != after_value.end()) for (auto& n : it->second) out.push_back(new_node(n));
  }
  for (pb::NodeProto* node : take_nodes(graph)) {
    out.push_back(node);
    for (const auto& o : node->output()) {
      const auto it = after_value.find(o);
      if (it != after_value.end()) for (auto& n : it->second) out.push_back(new_node(n));
    }
  }
  put_nodes(graph, out);
}

// Places the pending DequantizeLinear nodes: those of initializers first in their graph, those
// of Constant nodes right after them, so every graph stays in topological order.
void OnnxJob::finish() {
  for (auto& [graph, list] : pending_) {
    std::vector<pb::NodeProto*> out;
    for (auto& p : list) {
      if (!p.after) out.push_back(new_node(p.node));
    }
    for (pb::NodeProto* node : take_nodes(*graph)) {
      out.push_back(node);
      for (auto& p : list) {
        if (p.after == node) out.push_back(new_node(p.node));
      }
    }
    put_nodes(*graph, out);
  }
  pending_.clear();
}

OnnxReport OnnxJob::run() {
  const auto start = std::chrono::steady_clock::now();
  report_.input = input_;
  report_.output = output_;
  std::error_code ec;
  if (!options_.dry_run && fs::exists(output_, ec) && fs::equivalent(input_, output_, ec)) {
    throw Error(fmt::format("{}: the output would overwrite the input; choose another path", output_.string()));
  }
  model_ = load(input_);
  report_.opset_in = opset(model_.proto);
  for (const auto& node : model_.proto.graph().node()) {
    auto it = std::find_if(report_.ops.begin(), report_.ops.end(), [&](auto& p) { return p.first == node.op_type(); });
    if (it == report_.ops.end()) report_.ops.emplace_back(node.op_type(), 1);
    else ++it->second;
  }
  const int target = std::max(report_.opset_in, needed_opset());
  if (target >= 21 && options_.mode != OnnxMode::weights) {
    throw Error(fmt::format("{}: {} mode quantizes weights to 8 bits; 4-bit and blocked weight schemes are for "
                            "--mode weights (opset 21)", input_.string(), onnx_mode_name(options_.mode)));
  }
  upgrade_opset(model_, target);
  report_.opset_out = opset(model_.proto);
  if (!options_.dry_run && report_.opset_out <= 17) float_input_ = checker_copy(model_.proto);
  if (options_.mode == OnnxMode::static_) float_model_ = model_;
  names_ = std::make_unique<UniqueNames>(model_.proto);
  plan_weights();
  report_.static_activations = activations_to_calibrate();
  for (const auto& w : weights_) {
    if (!w.quantize || w.scheme.bits != 8 || w.constant.graph != model_.proto.mutable_graph()) continue;
    if (std::all_of(w.uses.begin(), w.uses.end(), [](const WeightUse& u) { return u.matmul; })) {
      for (const auto& u : w.uses) report_.dynamic_integer_matmuls.push_back(node_label(*u.node));
    }
  }
  if (!options_.dry_run) begin_external_data();
  quantize_weights();
  if (!options_.dry_run) {
    if (options_.mode == OnnxMode::dynamic) {
      rewrite_dynamic();
    } else if (options_.mode == OnnxMode::static_) {
      const auto names = activations_to_calibrate();
      calibrate(names);
      rewrite_static(names);
    } else {
      finish();
    }
    // A last guard against writing a model ONNX Runtime would refuse: ONNX's checker, on operator
    // sets libonnx knows (the tests run opset 21 outputs in ONNX Runtime instead), and only when
    // the input passes it too (else its own quirks would be blamed on the rewrite).
    if (report_.opset_out <= 17 && passes_checker(float_input_)) {
      try {
        ::onnx::checker::check_model(checker_copy(model_.proto));
      } catch (const std::exception& e) {
        throw Error(fmt::format("internal error: the quantized model fails ONNX's checker: {}", e.what()));
      }
    }
    SaveOptions save_options;
    save_options.external_threshold = options_.external_threshold;
    save_options.data = data_.get();
    report_.files = save(std::move(model_), output_, save_options);
  }
  for (const auto& t : report_.tensors) {
    report_.bytes_in += t.bytes_in;
    report_.bytes_out += t.bytes_out;
  }
  report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return std::move(report_);
}

}  // namespace

OnnxMode parse_onnx_mode(std::string_view text) {
  if (text == "weights") return OnnxMode::weights;
  if (text == "dynamic") return OnnxMode::dynamic;
  if (text == "static") return OnnxMode::static_;
  throw Error(fmt::format("unknown mode '{}': expected weights, dynamic or static", text));
}

std::string_view onnx_mode_name(OnnxMode mode) {
  switch (mode) {
    case OnnxMode::weights: return "weights";
    case OnnxMode::dynamic: return "dynamic";
    case OnnxMode::static_: return "static";
  }
  return "?";
}

bool is_onnx_path(const fs::path& path) { return path.extension() == ".onnx"; }

OnnxReport quantize_onnx(const fs::path& input, const fs::path& output, const OnnxQuantizeOptions& options) {
  OnnxJob job(input, output, options);
  return job.run();
}

OnnxReport inspect_onnx(const fs::path& input) {
  OnnxQuantizeOptions options;
  options.dry_run = true;
  OnnxReport r = quantize_onnx(input, {}, options);
  return r;
}

std::vector<std::pair<std::string, Tensor>> onnx_weights(const fs::path& input) {
  Model model = load(input);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& c : find_constants(model.proto)) {
    const auto dtype = dtype_of(c.tensor->data_type());
    if (!dtype || !is_float(*dtype) || c.tensor->dims_size() < 2) continue;
    out.emplace_back(c.name, read_float(model, *c.tensor));
  }
  return out;
}

}  // namespace zp
