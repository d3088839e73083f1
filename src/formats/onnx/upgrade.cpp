// Raising a model's operator set, so the Q/DQ forms zeropoint writes are available: per-channel
// QuantizeLinear/DequantizeLinear (axis) need opset 13, blocked DequantizeLinear (block_size) and
// INT4 need opset 21.
//
// Up to 17, libonnx's version converter does the work, after one fix: its Softmax 12->13 adapter
// needs the input's rank, which models exported with dynamic shapes (PaddleOCR's) do not carry.
// Softmax before 13 flattens its input to 2-D at `axis`; writing that out with Flatten, a
// last-axis Softmax and a Reshape back to the input's own Shape is exact at every opset and needs
// no rank. From 17 to 21 libonnx has no adapters: the one change of meaning among common
// operators is the Reduce* family taking `axes` as an input from 18, done here; the operators
// whose meaning changed in other ways are refused by name.
#include <set>

#include <fmt/format.h>
#include <onnx/version_converter/convert.h>

#include "formats/onnx/onnx_model.hpp"
#include "formats/onnx/upgrade.hpp"
#include "zeropoint/error.hpp"

namespace zp::onnx_io {
namespace {

void rewrite_softmax_before_13(pb::ModelProto& model) {
  UniqueNames names(model);
  for_each_graph(*model.mutable_graph(), [&](pb::GraphProto& graph, const std::string&) {
    pb::GraphProto rebuilt_nodes;
    bool changed = false;
    for (auto& node : *graph.mutable_node()) {
      const bool softmax_family = default_domain(node) &&
                                  (node.op_type() == "Softmax" || node.op_type() == "LogSoftmax" || node.op_type() == "Hardmax");
      const auto* axis_attr = attribute(node, "axis");
      const std::int64_t axis = axis_attr ? axis_attr->i() : 1;
      if (!softmax_family || axis == -1 || node.input_size() != 1 || node.output_size() != 1) {
        *rebuilt_nodes.add_node() = node;
        continue;
      }
      changed = true;
      const std::string& x = node.input(0);
      const std::string& y = node.output(0);
      const std::string base = node.name().empty() ? y : node.name();
      const std::string flat = names.fresh(base + "/flat"), soft = names.fresh(base + "/2d"),
                        shape = names.fresh(base + "/shape");
      auto* flatten = rebuilt_nodes.add_node();
      flatten->set_op_type("Flatten");
      flatten->set_name(names.fresh(base + "/Flatten"));
      flatten->add_input(x);
      flatten->add_output(flat);
      add_int_attribute(*flatten, "axis", axis);
      pb::NodeProto two_d = node;
      two_d.set_input(0, flat);
      two_d.set_output(0, soft);
      remove_attribute(two_d, "axis");
      add_int_attribute(two_d, "axis", -1);
      *rebuilt_nodes.add_node() = two_d;
      auto* shape_node = rebuilt_nodes.add_node();
      shape_node->set_op_type("Shape");
      shape_node->set_name(names.fresh(base + "/Shape"));
      shape_node->add_input(x);
      shape_node->add_output(shape);
      auto* reshape = rebuilt_nodes.add_node();
      reshape->set_op_type("Reshape");
      reshape->set_name(names.fresh(base + "/Reshape"));
      reshape->add_input(soft);
      reshape->add_input(shape);
      reshape->add_output(y);
    }
    if (changed) graph.mutable_node()->Swap(rebuilt_nodes.mutable_node());
  });
}

// Operators whose meaning changed between 17 and 21 in ways not handled here.
const std::set<std::string, std::less<>> kRefusedAfter17 = {"DFT", "GridSample", "GroupNormalization"};
const std::set<std::string, std::less<>> kReduceAxesInput = {
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};

void upgrade_17_to_21(pb::ModelProto& model, int from) {
  UniqueNames names(model);
  for_each_graph(*model.mutable_graph(), [&](pb::GraphProto& graph, const std::string& scope) {
    for (auto& node : *graph.mutable_node()) {
      if (!default_domain(node)) continue;
      if (kRefusedAfter17.contains(node.op_type())) {
        throw Error(fmt::format("node '{}' ({}){}: zeropoint cannot move this operator from opset {} to 21, whose "
                                "meaning changed; use an int8 scheme (opset 13) for this model",
                                node.name(), node.op_type(), scope.empty() ? "" : " in " + scope, from));
      }
      if (from < 18 && kReduceAxesInput.contains(node.op_type())) {
        const auto* axes = attribute(node, "axes");
        if (!axes) continue;
        const std::string base = !node.name().empty() ? node.name() : node.output_size() > 0 ? node.output(0) : node.op_type();
        const std::string name = names.fresh(base + "/axes");
        auto* t = graph.add_initializer();
        t->set_name(name);
        t->set_data_type(pb::TensorProto::INT64);
        t->add_dims(axes->ints_size());
        for (const auto v : axes->ints()) t->add_int64_data(v);
        // axes is the second input; a data input always comes first.
        while (node.input_size() < 1) node.add_input("");
        if (node.input_size() == 1) node.add_input(name);
        else node.set_input(1, name);
        remove_attribute(node, "axes");
      }
    }
  });
}

}  // namespace

void upgrade_opset(Model& model, int target) {
  const int from = opset(model.proto);
  if (from >= target) return;
  if (from < 7) {
    throw Error(fmt::format("{}: opset {} is too old to upgrade (zeropoint upgrades from opset 7)", model.path.string(), from));
  }
  for (const auto& o : model.proto.opset_import()) {
    if (!o.domain().empty() && o.domain() != "ai.onnx" && o.domain() != "ai.onnx.ml") {
      throw Error(fmt::format("{}: opset {} must be raised to {}, but the model also uses the custom domain '{}', "
                              "which the upgrade cannot vouch for",
                              model.path.string(), from, target, o.domain()));
    }
  }
  if (from < 13) rewrite_softmax_before_13(model.proto);
  const int converter_target = std::min(target, 17);
  if (from < converter_target) {
    try {
      model.proto = ::onnx::version_conversion::ConvertVersion(model.proto, converter_target);
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}: cannot upgrade from opset {} to {}: {}", model.path.string(), from,
                              converter_target, e.what()));
    }
  }
  if (target > 17) {
    try {
      upgrade_17_to_21(model.proto, std::max(from, 17));
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", model.path.string(), e.what()));
    }
    set_opset(model.proto, target);
  }
  // IR 7 cannot hold opset 21's types; IR 10 is the version of ONNX 1.16, which defined them.
  if (target >= 21 && model.proto.ir_version() < 10) model.proto.set_ir_version(10);
  if (target >= 13 && model.proto.ir_version() < 7) model.proto.set_ir_version(7);
}

}  // namespace zp::onnx_io
