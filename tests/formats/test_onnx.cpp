// ONNX models (src/formats/onnx/): one hand-made corrupt model per rule the loader enforces (each
// refused with the file and the tensor or node named), external data and where it may live,
// subgraphs and the names they may read, float values read from every storage form, save() round
// trips and its atomicity, the constant and use finders, and the opset upgrades (checked with
// libonnx's own checker where it knows the opset).
#include <gtest/gtest.h>

#include "formats/file_test_util.hpp"

#include <unistd.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "formats/onnx/onnx_model.hpp"
#include "formats/onnx/upgrade.hpp"
#include "zeropoint/error.hpp"

namespace {

namespace fs = std::filesystem;
namespace io = zp::onnx_io;
namespace pb = ::onnx;
using zp::testing::error_of;
using zp::testing::expect_names;
using zp::testing::TempDir;

// --- Building models --------------------------------------------------------------------------

// A TensorProto's raw_data: the values' little-endian bytes.
template <class T>
std::string raw_bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

pb::ValueInfoProto value(const std::string& name, int elem_type, const std::vector<std::int64_t>& dims) {
  pb::ValueInfoProto v;
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  auto* shape = t->mutable_shape();
  for (const auto d : dims) shape->add_dim()->set_dim_value(d);
  return v;
}

pb::TensorProto raw_tensor(const std::string& name, int data_type, const std::vector<std::int64_t>& dims,
                           const std::string& bytes) {
  pb::TensorProto t;
  t.set_name(name);
  t.set_data_type(data_type);
  for (const auto d : dims) t.add_dims(d);
  t.set_raw_data(bytes);
  return t;
}

pb::TensorProto f32_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                           const std::vector<float>& values) {
  return raw_tensor(name, pb::TensorProto::FLOAT, dims, raw_bytes<float>(values));
}

// A tensor whose data is in `location` (next to the model), [offset, offset + length).
pb::TensorProto external_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                                const std::string& location, std::string_view offset = "",
                                std::string_view length = "") {
  pb::TensorProto t;
  t.set_name(name);
  t.set_data_type(pb::TensorProto::FLOAT);
  for (const auto d : dims) t.add_dims(d);
  t.set_data_location(pb::TensorProto::EXTERNAL);
  auto add = [&](const char* key, std::string_view v) {
    if (v.empty()) return;
    auto* kv = t.add_external_data();
    kv->set_key(key);
    kv->set_value(std::string(v));
  };
  add("location", location);
  add("offset", offset);
  add("length", length);
  return t;
}

pb::NodeProto node(const std::string& op, const std::string& name, std::initializer_list<std::string> inputs,
                   std::initializer_list<std::string> outputs) {
  pb::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (const auto& i : inputs) n.add_input(i);
  for (const auto& o : outputs) n.add_output(o);
  return n;
}

void add_graph_attribute(pb::NodeProto& n, const std::string& name, const pb::GraphProto& g) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::GRAPH);
  *a->mutable_g() = g;
}

void add_tensor_attribute(pb::NodeProto& n, const std::string& name, const pb::TensorProto& t) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::TENSOR);
  *a->mutable_t() = t;
}

void add_int_attribute(pb::NodeProto& n, const std::string& name, std::int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::INT);
  a->set_i(v);
}

pb::ModelProto model_of(const pb::GraphProto& graph, int opset = 13, int ir_version = 8) {
  pb::ModelProto m;
  m.set_ir_version(ir_version);
  m.set_producer_name("zeropoint-test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  *m.mutable_graph() = graph;
  return m;
}

const std::vector<float> kW = {1.5f, -2.25f, 0.0f, 3.0e38f};

// Y = X + W, W a 4-float initializer in raw_data.
pb::ModelProto add_model() {
  pb::GraphProto g;
  g.set_name("g");
  *g.add_input() = value("X", pb::TensorProto::FLOAT, {4});
  *g.add_initializer() = f32_tensor("W", {4}, kW);
  *g.add_node() = node("Add", "add", {"X", "W"}, {"Y"});
  *g.add_output() = value("Y", pb::TensorProto::FLOAT, {4});
  return model_of(g);
}

// out = If(cond) { then: Identity(W) } else { Neg(W) }: both branches read the outer W.
pb::ModelProto if_model() {
  pb::GraphProto then_g;
  then_g.set_name("then");
  *then_g.add_node() = node("Identity", "then_id", {"W"}, {"t"});
  *then_g.add_output() = value("t", pb::TensorProto::FLOAT, {4});
  pb::GraphProto else_g;
  else_g.set_name("else");
  *else_g.add_node() = node("Neg", "else_neg", {"W"}, {"e"});
  *else_g.add_output() = value("e", pb::TensorProto::FLOAT, {4});

  pb::GraphProto g;
  g.set_name("g");
  *g.add_input() = value("cond", pb::TensorProto::BOOL, {});
  *g.add_initializer() = f32_tensor("W", {4}, kW);
  pb::NodeProto n = node("If", "if", {"cond"}, {"out"});
  add_graph_attribute(n, "then_branch", then_g);
  add_graph_attribute(n, "else_branch", else_g);
  *g.add_node() = n;
  *g.add_output() = value("out", pb::TensorProto::FLOAT, {4});
  return model_of(g);
}

pb::TensorProto* initializer(pb::ModelProto& m, int k = 0) { return m.mutable_graph()->mutable_initializer(k); }

fs::path write_model(const TempDir& dir, const std::string& name, const pb::ModelProto& m) {
  return dir.put(name, m.SerializeAsString());
}

// Loads `bytes` as bad.onnx and returns the error, which must name the file and every part.
std::string refused_bytes(std::string_view bytes, std::initializer_list<std::string_view> parts) {
  TempDir dir;
  const fs::path path = dir.put("bad.onnx", bytes);
  const std::string message = error_of([&] { io::load(path); });
  expect_names(message, {"bad.onnx"});
  expect_names(message, parts);
  return message;
}

std::string refused(const pb::ModelProto& m, std::initializer_list<std::string_view> parts) {
  return refused_bytes(m.SerializeAsString(), parts);
}

// The values, bit for bit (so -0.0 and NaN payloads count).
std::vector<std::uint32_t> bits_of(const zp::Tensor& t) {
  std::vector<std::uint32_t> out;
  for (const float v : t.span<float>()) out.push_back(std::bit_cast<std::uint32_t>(v));
  return out;
}
std::vector<std::uint32_t> bits_of(const std::vector<float>& values) {
  std::vector<std::uint32_t> out;
  for (const float v : values) out.push_back(std::bit_cast<std::uint32_t>(v));
  return out;
}

const pb::TensorProto& find_initializer(const pb::GraphProto& g, std::string_view name) {
  for (const auto& t : g.initializer()) {
    if (t.name() == name) return t;
  }
  ADD_FAILURE() << "no initializer " << name;
  static const pb::TensorProto none;
  return none;
}

std::string external_field(const pb::TensorProto& t, std::string_view key) {
  for (const auto& kv : t.external_data()) {
    if (kv.key() == key) return kv.value();
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Not a model at all

TEST(OnnxLoad, GoodModelLoads) {
  TempDir dir;
  const io::Model m = io::load(write_model(dir, "good.onnx", add_model()));
  EXPECT_EQ(m.path, dir / "good.onnx");
  EXPECT_EQ(m.dir, dir.path());
  EXPECT_EQ(io::opset(m.proto), 13);
  ASSERT_EQ(m.proto.graph().initializer_size(), 1);
  EXPECT_EQ(io::numel(m.proto.graph().initializer(0)), 4);
  EXPECT_EQ(io::shape_of(m.proto.graph().initializer(0)), zp::Shape{4});
}

TEST(OnnxLoad, RandomBytesAndTextAreRefused) {
  // Bytes that are not protobuf, and bytes that are protobuf but not a model, give the same
  // answer: not an ONNX model.
  std::string random(512, '\0');
  std::uint32_t x = 0x12345678u;
  for (auto& c : random) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  refused_bytes(random, {"not an ONNX model"});
  refused_bytes("ir_version: 8\ngraph { node { op_type: \"Add\" } }\n", {"not an ONNX model"});
  refused_bytes("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", {"not an ONNX model"});
}

TEST(OnnxLoad, EmptyFileIsRefused) {
  const std::string message = refused_bytes("", {});
  EXPECT_TRUE(message.ends_with("/bad.onnx: not an ONNX model (no graph)")) << message;
}

TEST(OnnxLoad, NoIrVersionIsRefused) {
  pb::ModelProto m = add_model();
  m.clear_ir_version();
  refused(m, {"not an ONNX model (no IR version)"});
}

TEST(OnnxLoad, TruncatedModelIsRefusedAtEveryCutInsideTheGraph) {
  const pb::ModelProto m = add_model();
  const std::string bytes = m.SerializeAsString();
  // Fields are written in number order: ir_version (1), producer_name (2), graph (7),
  // opset_import (8). Any cut from the graph's tag to its last byte leaves a length-delimited
  // field short, which protobuf refuses.
  pb::ModelProto before_graph = m;
  before_graph.clear_graph();
  before_graph.clear_opset_import();
  const std::size_t graph_begin = before_graph.ByteSizeLong();
  pb::ModelProto through_graph = m;
  through_graph.clear_opset_import();
  const std::size_t graph_end = through_graph.ByteSizeLong();
  ASSERT_LT(graph_begin + 10, graph_end);
  ASSERT_LT(graph_end, bytes.size());
  for (std::size_t cut = graph_begin + 1; cut < graph_end; ++cut) {
    const std::string message = error_of([&] {
      io::parse(std::as_bytes(std::span(bytes.data(), cut)), "cut.onnx", ".");
    });
    EXPECT_EQ(message, "cut.onnx: not an ONNX model (not a valid protobuf ModelProto; truncated?)") << cut;
  }
  // Cut before the graph: a model without one. Cut inside a varint: not protobuf.
  refused_bytes(bytes.substr(0, graph_begin), {"not an ONNX model (no graph)"});
  refused_bytes(bytes.substr(0, 1), {"not a valid protobuf ModelProto; truncated?"});
  // Cut through opset_import: still refused, not read past the end.
  for (std::size_t cut = graph_end + 1; cut < bytes.size(); ++cut) {
    refused_bytes(bytes.substr(0, cut), {"not a valid protobuf ModelProto"});
  }
}

// ---------------------------------------------------------------------------------------------
// Names that must exist

TEST(OnnxGraph, NodeReadingAMissingValueIsRefusedNamingNodeAndValue) {
  pb::ModelProto m = add_model();
  m.mutable_graph()->mutable_node(0)->set_input(1, "W_missing");
  const std::string message = refused(m, {});
  EXPECT_NE(message.find("node 'add' (Add) reads 'W_missing', which no initializer, graph input or node produces"),
            std::string::npos)
      << message;
}

TEST(OnnxGraph, OptionalEmptyInputIsAccepted) {
  pb::ModelProto m = add_model();
  m.mutable_graph()->mutable_node(0)->add_input("");
  TempDir dir;
  EXPECT_NO_THROW(io::load(write_model(dir, "ok.onnx", m)));
}

TEST(OnnxGraph, GraphOutputNotProducedIsRefused) {
  pb::ModelProto m = add_model();
  *m.mutable_graph()->add_output() = value("Z", pb::TensorProto::FLOAT, {4});
  refused(m, {"graph output 'Z' is not produced by any node"});
}

// ---------------------------------------------------------------------------------------------
// Tensor sizes

TEST(OnnxTensor, RawDataShorterOrLongerThanDimsIsRefused) {
  pb::ModelProto m = add_model();
  initializer(m)->set_raw_data(raw_bytes<float>({1, 2, 3}));
  refused(m, {"tensor 'W': raw data holds 12 bytes but 4 values of FLOAT need 16"});
  initializer(m)->set_raw_data(raw_bytes<float>({1, 2, 3, 4, 5}));
  refused(m, {"tensor 'W': raw data holds 20 bytes but 4 values of FLOAT need 16"});
  initializer(m)->set_raw_data(raw_bytes<float>({1, 2, 3, 4}) + "x");
  refused(m, {"tensor 'W': raw data holds 17 bytes but 4 values of FLOAT need 16"});
}

TEST(OnnxTensor, TypedFieldCountMismatchIsRefused) {
  pb::ModelProto m = add_model();
  pb::TensorProto* w = initializer(m);
  w->clear_raw_data();
  for (const float v : {1.0f, 2.0f, 3.0f}) w->add_float_data(v);
  refused(m, {"tensor 'W': holds 3 values but its shape needs 4"});
  w->add_float_data(4.0f);
  w->add_float_data(5.0f);
  refused(m, {"tensor 'W': holds 5 values but its shape needs 4"});
  // The wrong field for the type counts as none.
  w->clear_float_data();
  for (int k = 0; k < 4; ++k) w->add_int64_data(k);
  refused(m, {"tensor 'W': holds 0 values but its shape needs 4"});
}

TEST(OnnxTensor, NegativeDimsAreRefused) {
  pb::ModelProto m = add_model();
  pb::TensorProto* w = initializer(m);
  w->clear_dims();
  w->add_dims(-2);
  w->add_dims(-2);
  refused(m, {"tensor 'W': dimension 0 is -2"});
  w->set_dims(0, 2);
  refused(m, {"tensor 'W': dimension 1 is -2"});
}

TEST(OnnxTensor, DimsWhoseProductOverflowsAreRefused) {
  pb::ModelProto m = add_model();
  pb::TensorProto* w = initializer(m);
  w->clear_dims();
  w->add_dims(std::int64_t{1} << 32);
  w->add_dims(std::int64_t{1} << 31);
  refused(m, {"tensor 'W': its dimensions overflow 64 bits"});
  // A zero makes the product 0 (the other dimensions' product must still fit in 64 bits, as
  // zp::checked_numel wants).
  w->clear_dims();
  w->add_dims(std::int64_t{1} << 40);
  w->add_dims(0);
  w->add_dims(std::int64_t{1} << 20);
  w->set_raw_data("");
  TempDir dir;
  const io::Model loaded = io::load(write_model(dir, "zero.onnx", m));
  EXPECT_EQ(io::read_float(loaded, loaded.proto.graph().initializer(0)).numel(), 0);
}

TEST(OnnxTensor, ElementCountWhoseByteSizeOverflowsIsRefused) {
  // 2^62 floats fit in int64 as a count but not as bytes; 2^62 complex values need 2^63 floats.
  pb::ModelProto m = add_model();
  pb::TensorProto* w = initializer(m);
  w->clear_dims();
  w->add_dims(std::int64_t{1} << 62);
  refused(m, {"tensor 'W'"});
  w->clear_raw_data();
  refused(m, {"tensor 'W': holds 0 values but its shape needs 4611686018427387904"});
  w->set_data_type(pb::TensorProto::COMPLEX64);
  refused(m, {"tensor 'W': its shape needs more values than 64 bits count"});
  // The largest count: INT4 packs two per byte, rounding up.
  w->set_data_type(io::kInt4);
  w->set_dims(0, std::numeric_limits<std::int64_t>::max());
  refused(m, {"tensor 'W': holds 0 values but its shape needs 4611686018427387904"});
  w->set_raw_data("x");
  refused(m, {"tensor 'W': raw data holds 1 bytes but 9223372036854775807 values of INT4 need 4611686018427387904"});
}

TEST(OnnxTensor, NoDataTypeAndSegmentsAreRefused) {
  pb::ModelProto m = add_model();
  initializer(m)->set_data_type(pb::TensorProto::UNDEFINED);
  refused(m, {"tensor 'W': no data type"});
  m = add_model();
  initializer(m)->mutable_segment()->set_begin(0);
  refused(m, {"tensor 'W': segmented tensors are not supported"});
  m = add_model();
  initializer(m)->set_data_type(99);
  initializer(m)->clear_raw_data();
  refused(m, {"tensor 'W': unknown data type 99"});
}

TEST(OnnxTensor, BadConstantNodeValueIsRefusedNamingTheNode) {
  pb::ModelProto m = add_model();
  pb::NodeProto c = node("Constant", "c", {}, {"C"});
  add_tensor_attribute(c, "value", f32_tensor("", {2}, {1.0f}));
  *m.mutable_graph()->add_node() = c;
  refused(m, {"node 'c' (Constant): attribute 'value': raw data holds 4 bytes but 2 values of FLOAT need 8"});
}

// ---------------------------------------------------------------------------------------------
// External data

class OnnxExternal : public ::testing::Test {
 protected:
  // The model reads W from `location` in its own folder, which holds w.bin (16 floats).
  std::string refused_with(const pb::TensorProto& w, std::initializer_list<std::string_view> parts) {
    pb::ModelProto m = add_model();
    *initializer(m) = w;
    const fs::path path = write_model(dir_, "ext.onnx", m);
    const std::string message = error_of([&] { io::load(path); });
    expect_names(message, {"ext.onnx: tensor 'W': "});
    expect_names(message, parts);
    return message;
  }
  void SetUp() override {
    for (int k = 0; k < 16; ++k) values_.push_back(0.25f * static_cast<float>(k) - 1.0f);
    dir_.put("w.bin", raw_bytes<float>(values_));
  }
  TempDir dir_;
  std::vector<float> values_;
};

TEST_F(OnnxExternal, GoodReferenceReadsTheRightValues) {
  pb::ModelProto m = add_model();
  *initializer(m) = external_tensor("W", {4}, "w.bin", "32", "16");
  const io::Model loaded = io::load(write_model(dir_, "ext.onnx", m));
  const zp::Tensor w = io::read_float(loaded, loaded.proto.graph().initializer(0));
  EXPECT_EQ(w.shape(), zp::Shape{4});
  EXPECT_EQ(bits_of(w), bits_of({values_[8], values_[9], values_[10], values_[11]}));
  // No length: to the end of the file.
  *initializer(m) = external_tensor("W", {2, 2}, "w.bin", "48");
  const io::Model tail = io::load(write_model(dir_, "tail.onnx", m));
  EXPECT_EQ(bits_of(io::read_float(tail, tail.proto.graph().initializer(0))),
            bits_of({values_[12], values_[13], values_[14], values_[15]}));
  // A file in a subfolder is inside the model's folder.
  fs::create_directory(dir_ / "sub");
  fs::copy_file(dir_ / "w.bin", dir_ / "sub" / "w.bin");
  *initializer(m) = external_tensor("W", {4}, "sub/w.bin", "0", "16");
  const io::Model sub = io::load(write_model(dir_, "sub.onnx", m));
  EXPECT_EQ(bits_of(io::read_float(sub, sub.proto.graph().initializer(0))),
            bits_of({values_[0], values_[1], values_[2], values_[3]}));
}

TEST_F(OnnxExternal, MissingFileIsRefused) {
  refused_with(external_tensor("W", {4}, "missing.bin", "0", "16"),
               {fmt::format("external data file '{}' cannot be read", (dir_ / "missing.bin").string())});
}

TEST_F(OnnxExternal, FileShorterThanDeclaredIsRefused) {
  const std::string file = (dir_ / "w.bin").string();
  refused_with(external_tensor("W", {4}, "w.bin", "56", "16"),
               {fmt::format("external data [56, 72) is past the end of '{}' (64 bytes)", file)});
  refused_with(external_tensor("W", {4}, "w.bin", "64", "16"),
               {fmt::format("external data [64, 80) is past the end of '{}' (64 bytes)", file)});
  // An offset near the top of int64: the end is not computed by overflowing.
  refused_with(external_tensor("W", {4}, "w.bin", "9223372036854775800", "16"),
               {"external data [9223372036854775800, 9223372036854775816) is past the end of", "(64 bytes)"});
  // Without a length the data runs to the end of the file; past the end, that is a negative size.
  refused_with(external_tensor("W", {4}, "w.bin", "100"),
               {"external data holds -36 bytes but 4 values of FLOAT need 16"});
}

TEST_F(OnnxExternal, LocationOutsideTheModelFolderIsRefused) {
  refused_with(external_tensor("W", {4}, "/etc/passwd", "0", "16"),
               {"external data location '/etc/passwd' must be relative to the model's folder"});
  refused_with(external_tensor("W", {4}, (dir_ / "w.bin").string(), "0", "16"),
               {"must be relative to the model's folder"});
  refused_with(external_tensor("W", {4}, "../w.bin", "0", "16"),
               {"external data location '../w.bin' leaves the model's folder"});
  refused_with(external_tensor("W", {4}, "sub/../../w.bin", "0", "16"),
               {"external data location 'sub/../../w.bin' leaves the model's folder"});
  // Even when it would come back inside.
  refused_with(external_tensor("W", {4}, "sub/../w.bin", "0", "16"), {"leaves the model's folder"});
}

TEST_F(OnnxExternal, LengthNotWhatTheDimsNeedIsRefused) {
  refused_with(external_tensor("W", {4}, "w.bin", "0", "12"),
               {"external data holds 12 bytes but 4 values of FLOAT need 16"});
  refused_with(external_tensor("W", {4}, "w.bin", "0", "20"),
               {"external data holds 20 bytes but 4 values of FLOAT need 16"});
  refused_with(external_tensor("W", {4}, "w.bin"), {"external data holds 64 bytes but 4 values of FLOAT need 16"});
}

TEST_F(OnnxExternal, MalformedReferencesAreRefused) {
  refused_with(external_tensor("W", {4}, "", "0", "16"), {"external data without a location"});
  refused_with(external_tensor("W", {4}, "w.bin", "-16", "16"),
               {"external data offset '-16' is not a non-negative integer"});
  refused_with(external_tensor("W", {4}, "w.bin", "0", "16 "),
               {"external data length '16 ' is not a non-negative integer"});
  refused_with(external_tensor("W", {4}, "w.bin", "0", "99999999999999999999"),
               {"external data length '99999999999999999999' is not a non-negative integer"});
  refused_with(external_tensor("W", {4}, ".", "0", "16"), {"cannot be read"});
  pb::TensorProto s = external_tensor("W", {4}, "w.bin", "0", "16");
  s.set_data_type(pb::TensorProto::STRING);
  refused_with(s, {"STRING data cannot be external"});
}

// ---------------------------------------------------------------------------------------------
// Subgraphs

TEST(OnnxSubgraph, BranchesReadingAnOuterInitializerAreAccepted) {
  TempDir dir;
  const io::Model m = io::load(write_model(dir, "if.onnx", if_model()));
  EXPECT_EQ(m.proto.graph().node(0).attribute_size(), 2);
}

TEST(OnnxSubgraph, BranchReadingAMissingNameIsRefused) {
  pb::ModelProto m = if_model();
  m.mutable_graph()->mutable_node(0)->mutable_attribute(1)->mutable_g()->mutable_node(0)->set_input(0, "ghost");
  refused(m, {"node 'else_neg' (Neg) (in if/else_branch) reads 'ghost', which no initializer, graph input or node "
              "produces"});
}

TEST(OnnxSubgraph, NamesOfOneBranchAreNotVisibleInTheOther) {
  pb::ModelProto m = if_model();
  // else reads t, which only the then branch produces.
  m.mutable_graph()->mutable_node(0)->mutable_attribute(1)->mutable_g()->mutable_node(0)->set_input(0, "t");
  refused(m, {"node 'else_neg' (Neg) (in if/else_branch) reads 't'"});
}

TEST(OnnxSubgraph, BadInitializerAndUnproducedOutputInsideABranchAreRefused) {
  pb::ModelProto m = if_model();
  auto* then_g = m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  *then_g->add_initializer() = f32_tensor("T", {3}, {1.0f});
  refused(m, {"tensor 'T': raw data holds 4 bytes but 3 values of FLOAT need 12"});
  m = if_model();
  then_g = m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  *then_g->add_output() = value("never", pb::TensorProto::FLOAT, {4});
  refused(m, {"graph output 'never' is not produced by any node"});
}

// A model whose main graph ends in `levels` Loops nested in each other's bodies, the innermost
// reading the main graph's W.
pb::ModelProto nested_loops(int levels) {
  pb::GraphProto inner;
  *inner.add_node() = node("Identity", "leaf", {"W"}, {"o"});
  *inner.add_output() = value("o", pb::TensorProto::FLOAT, {4});
  for (int level = 0; level < levels; ++level) {
    pb::GraphProto outer;
    pb::NodeProto n = node("Loop", fmt::format("loop{}", level), {}, {"o"});
    add_graph_attribute(n, "body", inner);
    *outer.add_node() = n;
    *outer.add_output() = value("o", pb::TensorProto::FLOAT, {4});
    inner = outer;
  }
  pb::ModelProto m = add_model();
  *m.mutable_graph()->add_node() = inner.node(0);
  return m;
}

TEST(OnnxSubgraph, DeepNestingReadsOuterNamesAndPastProtobufsLimitIsRefused) {
  // Each level is GraphProto > NodeProto > AttributeProto: protobuf's recursion limit (100)
  // refuses a model long before the stack is at risk.
  TempDir dir;
  io::Model m = io::load(write_model(dir, "deep.onnx", nested_loops(20)));
  const auto uses = io::find_uses(*m.proto.mutable_graph(), "W");
  ASSERT_EQ(uses.size(), 2u);
  EXPECT_EQ(uses[1].node->name(), "leaf");
  refused(nested_loops(40), {"not a valid protobuf ModelProto"});
}

// ---------------------------------------------------------------------------------------------
// read_float: every float type, raw bytes and typed fields

io::Model model_with_initializer(const TempDir& dir, const pb::TensorProto& t) {
  pb::GraphProto g;
  *g.add_initializer() = t;
  *g.add_node() = node("Identity", "id", {t.name()}, {"Y"});
  *g.add_output() = value("Y", t.data_type(), {});
  return io::load(write_model(dir, "m.onnx", model_of(g)));
}

zp::Tensor read_back(const pb::TensorProto& t) {
  TempDir dir;
  const io::Model m = model_with_initializer(dir, t);
  return io::read_float(m, m.proto.graph().initializer(0));
}

TEST(OnnxReadFloat, FloatRawAndTyped) {
  const std::vector<float> values = {1.5f, -2.25f, -0.0f, 3.4028235e38f, 1e-45f, 0.1f};
  EXPECT_EQ(bits_of(read_back(f32_tensor("w", {2, 3}, values))), bits_of(values));
  pb::TensorProto typed;
  typed.set_name("w");
  typed.set_data_type(pb::TensorProto::FLOAT);
  typed.add_dims(2);
  typed.add_dims(3);
  for (const float v : values) typed.add_float_data(v);
  const zp::Tensor t = read_back(typed);
  EXPECT_EQ(t.shape(), (zp::Shape{2, 3}));
  EXPECT_EQ(bits_of(t), bits_of(values));
}

TEST(OnnxReadFloat, Float16RawAndTyped) {
  // 1, -2, the half nearest 1/3, the largest half, the smallest subnormal, -0.
  const std::vector<std::uint16_t> halves = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x8000};
  const std::vector<float> expected = {1.0f, -2.0f, 0.333251953125f, 65504.0f, 5.9604644775390625e-8f, -0.0f};
  EXPECT_EQ(bits_of(read_back(raw_tensor("h", pb::TensorProto::FLOAT16, {6}, raw_bytes<std::uint16_t>(halves)))),
            bits_of(expected));
  pb::TensorProto typed;
  typed.set_name("h");
  typed.set_data_type(pb::TensorProto::FLOAT16);
  typed.add_dims(6);
  for (const auto h : halves) typed.add_int32_data(h);
  EXPECT_EQ(bits_of(read_back(typed)), bits_of(expected));
}

TEST(OnnxReadFloat, Bfloat16Raw) {
  const std::vector<std::uint16_t> b = {0x3F80, 0xC040, 0x7F7F};
  const std::vector<float> expected = {1.0f, -3.0f, std::bit_cast<float>(0x7F7F0000u)};
  EXPECT_EQ(bits_of(read_back(raw_tensor("b", pb::TensorProto::BFLOAT16, {3}, raw_bytes<std::uint16_t>(b)))),
            bits_of(expected));
}

TEST(OnnxReadFloat, DoubleRawAndTypedRoundToNearestFloat) {
  const std::vector<double> values = {0.1, -2.5, 1e300, 1e-50, 1.0 / 3.0};
  std::vector<float> expected;
  for (const double v : values) expected.push_back(static_cast<float>(v));
  EXPECT_EQ(expected[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(bits_of(read_back(raw_tensor("d", pb::TensorProto::DOUBLE, {5}, raw_bytes<double>(values)))),
            bits_of(expected));
  pb::TensorProto typed;
  typed.set_name("d");
  typed.set_data_type(pb::TensorProto::DOUBLE);
  typed.add_dims(5);
  for (const double v : values) typed.add_double_data(v);
  EXPECT_EQ(bits_of(read_back(typed)), bits_of(expected));
}

TEST(OnnxReadFloat, ScalarAndEmpty) {
  EXPECT_EQ(bits_of(read_back(f32_tensor("s", {}, {7.5f}))), bits_of({7.5f}));
  EXPECT_EQ(read_back(f32_tensor("e", {0, 3}, {})).numel(), 0);
}

TEST(OnnxReadFloat, NonFloatTypeIsRefusedNamingTheTensor) {
  TempDir dir;
  pb::TensorProto t;
  t.set_name("ids");
  t.set_data_type(pb::TensorProto::INT64);
  t.add_dims(2);
  t.add_int64_data(1);
  t.add_int64_data(2);
  const io::Model m = model_with_initializer(dir, t);
  const std::string message = error_of([&] { io::read_float(m, m.proto.graph().initializer(0)); });
  expect_names(message, {"m.onnx: tensor 'ids': INT64 is not a floating-point type"});
  // read_raw gives its bytes.
  const auto raw = io::read_raw(m, m.proto.graph().initializer(0));
  ASSERT_EQ(raw.size(), 16u);
  std::int64_t v[2];
  std::memcpy(v, raw.data(), 16);
  EXPECT_EQ(v[0], 1);
  EXPECT_EQ(v[1], 2);
}

// ---------------------------------------------------------------------------------------------
// save()

// Three initializers: two of 16 bytes or more (external at threshold 16), one of 12 (inline),
// a typed-field one (stays typed), and a Constant node (stays inline).
pb::ModelProto mixed_model() {
  pb::GraphProto g;
  g.set_name("g");
  *g.add_input() = value("X", pb::TensorProto::FLOAT, {4});
  *g.add_initializer() = f32_tensor("big", {4}, kW);
  *g.add_initializer() = f32_tensor("small", {3}, {0.5f, 0.25f, 0.125f});
  *g.add_initializer() = f32_tensor("odd", {7}, {1, 2, 3, 4, 5, 6, 7});
  pb::TensorProto typed;
  typed.set_name("typed");
  typed.set_data_type(pb::TensorProto::FLOAT);
  typed.add_dims(8);
  for (int k = 0; k < 8; ++k) typed.add_float_data(static_cast<float>(k) * 0.5f);
  *g.add_initializer() = typed;
  pb::NodeProto c = node("Constant", "c", {}, {"C"});
  add_tensor_attribute(c, "value", f32_tensor("", {8}, {9, 8, 7, 6, 5, 4, 3, 2}));
  *g.add_node() = c;
  *g.add_node() = node("Add", "add", {"X", "big"}, {"Y"});
  *g.add_output() = value("Y", pb::TensorProto::FLOAT, {4});
  return model_of(g);
}

// Every constant's name, scope and values, in model order.
struct Values {
  std::string name;
  std::string scope;
  std::vector<std::uint32_t> bits;
  bool operator==(const Values&) const = default;
};
std::vector<Values> values_of(io::Model& m) {
  std::vector<Values> out;
  for (const auto& c : io::find_constants(m.proto)) {
    out.push_back({c.name, c.scope, bits_of(io::read_float(m, *c.tensor))});
  }
  return out;
}

TEST(OnnxSave, InlineRoundTripIsIdentical) {
  TempDir dir;
  io::Model m = io::load(write_model(dir, "in.onnx", mixed_model()));
  const auto written = io::save(m, dir / "out.onnx");
  EXPECT_EQ(written, std::vector<fs::path>{dir / "out.onnx"});
  EXPECT_EQ(dir.files(), (std::vector<std::string>{"in.onnx", "out.onnx"}));
  io::Model again = io::load(dir / "out.onnx");
  EXPECT_EQ(again.proto.SerializeAsString(), m.proto.SerializeAsString());
  EXPECT_EQ(values_of(again), values_of(m));
  EXPECT_EQ(values_of(again).size(), 5u);
}

TEST(OnnxSave, ExternalDataIsAlignedAndReadsBackTheSame) {
  TempDir dir;
  io::Model m = io::load(write_model(dir, "in.onnx", mixed_model()));
  const auto written = io::save(m, dir / "out.onnx", io::SaveOptions{.external_threshold = 16});
  EXPECT_EQ(written, (std::vector<fs::path>{dir / "out.onnx", dir / "out.onnx.data"}));
  ASSERT_TRUE(fs::exists(dir / "out.onnx.data"));
  // big at 0, odd at 64 (not 16): every tensor starts on a 64-byte boundary.
  EXPECT_EQ(fs::file_size(dir / "out.onnx.data"), 64u + 28u);
  // The model given to save() still points at its own data.
  EXPECT_NE(m.proto.graph().initializer(0).data_location(), pb::TensorProto::EXTERNAL);

  io::Model again = io::load(dir / "out.onnx");
  const auto& g = again.proto.graph();
  for (const auto* name : {"big", "odd"}) {
    const pb::TensorProto& t = find_initializer(g, name);
    EXPECT_EQ(t.data_location(), pb::TensorProto::EXTERNAL) << name;
    EXPECT_FALSE(t.has_raw_data()) << name;
    EXPECT_EQ(external_field(t, "location"), "out.onnx.data") << name;
    EXPECT_EQ(std::stoull(external_field(t, "offset")) % 64, 0u) << name;
  }
  EXPECT_EQ(external_field(find_initializer(g, "big"), "offset"), "0");
  EXPECT_EQ(external_field(find_initializer(g, "odd"), "offset"), "64");
  EXPECT_EQ(external_field(find_initializer(g, "odd"), "length"), "28");
  EXPECT_NE(find_initializer(g, "small").data_location(), pb::TensorProto::EXTERNAL);
  EXPECT_EQ(find_initializer(g, "typed").float_data_size(), 8);
  EXPECT_NE(g.node(0).attribute(0).t().data_location(), pb::TensorProto::EXTERNAL);
  EXPECT_EQ(values_of(again), values_of(m));
}

TEST(OnnxSave, ModelWithExternalDataSavedElsewhereCopiesTheData) {
  TempDir in, out;
  std::vector<float> large(512);
  for (std::size_t k = 0; k < large.size(); ++k) large[k] = static_cast<float>(k) * 0.75f - 100.0f;
  in.put("weights.bin", raw_bytes<float>(kW) + raw_bytes<float>(large));
  pb::ModelProto proto = add_model();
  *initializer(proto) = external_tensor("W", {4}, "weights.bin", "0", "16");
  *proto.mutable_graph()->add_initializer() = external_tensor("L", {512}, "weights.bin", "16", "2048");
  io::Model m = io::load(write_model(in, "m.onnx", proto));
  const std::vector<Values> before = values_of(m);
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[1].bits, bits_of(large));

  // The input used external data, so the default keeps tensors of 1 KiB and more external.
  const auto written = io::save(m, out / "copy.onnx");
  EXPECT_EQ(written, (std::vector<fs::path>{out / "copy.onnx", out / "copy.onnx.data"}));
  fs::remove_all(in.path());
  io::Model again = io::load(out / "copy.onnx");
  EXPECT_EQ(values_of(again), before);
  const auto& g = again.proto.graph();
  EXPECT_NE(find_initializer(g, "W").data_location(), pb::TensorProto::EXTERNAL);
  EXPECT_EQ(find_initializer(g, "W").raw_data().size(), 16u);
  EXPECT_EQ(external_field(find_initializer(g, "L"), "location"), "copy.onnx.data");
  EXPECT_EQ(fs::file_size(out / "copy.onnx.data"), 2048u);
}

TEST(OnnxSave, FailedSaveLeavesNoFile) {
  TempDir dir;
  io::Model m = io::load(write_model(dir, "in.onnx", mixed_model()));
  // A folder that does not exist, and a "folder" that is a file.
  std::string message = error_of([&] { io::save(m, dir / "absent" / "out.onnx"); });
  expect_names(message, {(dir / "absent" / "out.onnx").string(), "cannot create a file in"});
  message = error_of([&] { io::save(m, dir / "in.onnx" / "out.onnx", io::SaveOptions{.external_threshold = 16}); });
  expect_names(message, {(dir / "in.onnx" / "out.onnx.data").string(), "cannot create a file in"});
  EXPECT_EQ(dir.files(), std::vector<std::string>{"in.onnx"});
}

TEST(OnnxSave, UnwritableFolderLeavesNoFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only folders";
  TempDir dir;
  io::Model m = io::load(write_model(dir, "in.onnx", mixed_model()));
  fs::create_directory(dir / "ro");
  fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  const std::string message = error_of([&] { io::save(m, dir / "ro" / "out.onnx"); });
  expect_names(message, {"out.onnx", "cannot create a file in"});
  EXPECT_TRUE(fs::is_empty(dir / "ro"));
  fs::permissions(dir / "ro", fs::perms::owner_all);
}

TEST(OnnxSave, FailureHalfWayRemovesTheDataFileItStarted) {
  // The input's data file vanishes after load: the first tensor is copied to the new data file,
  // the second cannot be read, and the output folder is left as it was.
  TempDir in, out;
  in.put("a.bin", raw_bytes<float>(kW));
  in.put("b.bin", raw_bytes<float>(kW));
  pb::ModelProto proto = add_model();
  *initializer(proto) = external_tensor("W", {4}, "a.bin", "0", "16");
  *proto.mutable_graph()->add_initializer() = external_tensor("V", {4}, "b.bin", "0", "16");
  io::Model m = io::load(write_model(in, "m.onnx", proto));
  fs::remove(in / "b.bin");
  out.put("keep.txt", "x");
  const std::string message = error_of([&] { io::save(m, out / "x.onnx", io::SaveOptions{.external_threshold = 16}); });
  expect_names(message, {"m.onnx: tensor 'V'", "cannot open"});
  EXPECT_EQ(out.files(), std::vector<std::string>{"keep.txt"});
}

// ---------------------------------------------------------------------------------------------
// find_constants, find_uses

TEST(OnnxConstants, InitializersConstantNodesAndSubgraphInitializers) {
  pb::ModelProto proto = if_model();
  pb::NodeProto c = node("Constant", "c", {}, {"C"});
  add_tensor_attribute(c, "value", f32_tensor("ignored_name", {1}, {2.0f}));
  *proto.mutable_graph()->add_node() = c;
  pb::NodeProto not_value = node("Constant", "c2", {}, {"C2"});
  add_int_attribute(not_value, "value_int", 3);
  *proto.mutable_graph()->add_node() = not_value;
  auto* then_g = proto.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  *then_g->add_initializer() = f32_tensor("T", {1}, {4.0f});
  then_g->mutable_node(0)->set_input(0, "T");

  TempDir dir;
  io::Model m = io::load(write_model(dir, "c.onnx", proto));
  const auto constants = io::find_constants(m.proto);
  ASSERT_EQ(constants.size(), 3u);
  EXPECT_EQ(constants[0].name, "W");
  EXPECT_EQ(constants[0].scope, "");
  EXPECT_EQ(constants[0].node, nullptr);
  EXPECT_EQ(constants[0].graph, m.proto.mutable_graph());
  EXPECT_EQ(constants[1].name, "C");  // the output it is read by, not the tensor's own name
  EXPECT_EQ(constants[1].scope, "");
  ASSERT_NE(constants[1].node, nullptr);
  EXPECT_EQ(constants[1].node->name(), "c");
  EXPECT_EQ(constants[2].name, "T");
  EXPECT_EQ(constants[2].scope, "if/then_branch");
  pb::GraphProto* loaded_then = m.proto.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  EXPECT_EQ(constants[2].graph, loaded_then);
  EXPECT_EQ(constants[2].tensor, loaded_then->mutable_initializer(0));
  EXPECT_EQ(bits_of(io::read_float(m, *constants[1].tensor)), bits_of({2.0f}));
  EXPECT_EQ(bits_of(io::read_float(m, *constants[2].tensor)), bits_of({4.0f}));
}

TEST(OnnxUses, SubgraphReadersAreFoundAndShadowingIsRespected) {
  pb::ModelProto proto = if_model();
  *proto.mutable_graph()->add_node() = node("Mul", "mul", {"W", "W"}, {"M"});
  // The else branch defines its own W: its Neg reads that one, not the outer.
  auto* else_g = proto.mutable_graph()->mutable_node(0)->mutable_attribute(1)->mutable_g();
  *else_g->add_initializer() = f32_tensor("W", {4}, {0, 0, 0, 0});
  TempDir dir;
  io::Model m = io::load(write_model(dir, "u.onnx", proto));

  const auto uses = io::find_uses(*m.proto.mutable_graph(), "W");
  ASSERT_EQ(uses.size(), 3u);
  EXPECT_EQ(uses[0].node->name(), "then_id");
  EXPECT_EQ(uses[0].input, 0);
  EXPECT_EQ(uses[0].graph, m.proto.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g());
  EXPECT_EQ(uses[1].node->name(), "mul");
  EXPECT_EQ(uses[1].input, 0);
  EXPECT_EQ(uses[2].node->name(), "mul");
  EXPECT_EQ(uses[2].input, 1);
  EXPECT_EQ(uses[2].graph, m.proto.mutable_graph());
  // Inside the else branch its own W is what Neg reads.
  const auto inner = io::find_uses(*m.proto.mutable_graph()->mutable_node(0)->mutable_attribute(1)->mutable_g(), "W");
  ASSERT_EQ(inner.size(), 1u);
  EXPECT_EQ(inner[0].node->name(), "else_neg");
  EXPECT_TRUE(io::find_uses(*m.proto.mutable_graph(), "nothing").empty());
}

// ---------------------------------------------------------------------------------------------
// upgrade_opset

io::Model parsed(const pb::ModelProto& proto, const std::string& name) {
  const std::string bytes = proto.SerializeAsString();
  return io::parse(std::as_bytes(std::span(bytes.data(), bytes.size())), name, ".");
}

void expect_checker_accepts(const pb::ModelProto& m) {
  try {
    ::onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "onnx checker: " << e.what();
  }
}

TEST(OnnxUpgrade, Opset9SoftmaxOnRank3BecomesFlattenSoftmaxShapeReshapeAt13) {
  pb::GraphProto g;
  g.set_name("g");
  *g.add_input() = value("X", pb::TensorProto::FLOAT, {2, 3, 4});
  pb::NodeProto s = node("Softmax", "sm", {"X"}, {"Y"});
  add_int_attribute(s, "axis", 1);
  *g.add_node() = s;
  *g.add_output() = value("Y", pb::TensorProto::FLOAT, {2, 3, 4});
  io::Model m = parsed(model_of(g, 9, 4), "sm.onnx");
  expect_checker_accepts(m.proto);

  io::upgrade_opset(m, 13);
  EXPECT_EQ(io::opset(m.proto), 13);
  EXPECT_GE(m.proto.ir_version(), 7);
  std::vector<std::string> ops;
  for (const auto& n : m.proto.graph().node()) ops.push_back(n.op_type());
  EXPECT_EQ(ops, (std::vector<std::string>{"Flatten", "Softmax", "Shape", "Reshape"}));
  const auto& nodes = m.proto.graph().node();
  ASSERT_EQ(nodes.size(), 4);
  // Flatten at the old axis, Softmax over the last, reshaped back to X's own shape into Y.
  EXPECT_EQ(nodes[0].input(0), "X");
  ASSERT_EQ(nodes[0].attribute_size(), 1);
  EXPECT_EQ(nodes[0].attribute(0).name(), "axis");
  EXPECT_EQ(nodes[0].attribute(0).i(), 1);
  EXPECT_EQ(nodes[1].input(0), nodes[0].output(0));
  ASSERT_EQ(nodes[1].attribute_size(), 1);
  EXPECT_EQ(nodes[1].attribute(0).i(), -1);
  EXPECT_EQ(nodes[2].input(0), "X");
  EXPECT_EQ(nodes[3].input(0), nodes[1].output(0));
  EXPECT_EQ(nodes[3].input(1), nodes[2].output(0));
  EXPECT_EQ(nodes[3].output(0), "Y");
  expect_checker_accepts(m.proto);
  // And zeropoint's own loader still takes it.
  EXPECT_NO_THROW(parsed(m.proto, "again.onnx"));
}

TEST(OnnxUpgrade, ReduceMeanAxesBecomeAnInt64InputAt21) {
  pb::GraphProto g;
  g.set_name("g");
  *g.add_input() = value("X", pb::TensorProto::FLOAT, {2, 3});
  pb::NodeProto r = node("ReduceMean", "rm", {"X"}, {"Y"});
  auto* axes = r.add_attribute();
  axes->set_name("axes");
  axes->set_type(pb::AttributeProto::INTS);
  axes->add_ints(1);
  add_int_attribute(r, "keepdims", 1);
  *g.add_node() = r;
  *g.add_output() = value("Y", pb::TensorProto::FLOAT, {2, 1});
  io::Model m = parsed(model_of(g, 13, 7), "rm.onnx");
  expect_checker_accepts(m.proto);

  io::upgrade_opset(m, 21);
  EXPECT_EQ(io::opset(m.proto), 21);
  EXPECT_GE(m.proto.ir_version(), 10);
  const auto& graph = m.proto.graph();
  ASSERT_EQ(graph.node_size(), 1);
  const auto& n = graph.node(0);
  EXPECT_EQ(n.op_type(), "ReduceMean");
  ASSERT_EQ(n.input_size(), 2);
  EXPECT_EQ(n.input(0), "X");
  for (const auto& a : n.attribute()) EXPECT_NE(a.name(), "axes");
  const pb::TensorProto& t = find_initializer(graph, n.input(1));
  EXPECT_EQ(t.data_type(), pb::TensorProto::INT64);
  EXPECT_EQ(io::shape_of(t), zp::Shape{1});
  const auto raw = io::read_raw(m, t);
  std::int64_t axis = -1;
  ASSERT_EQ(raw.size(), 8u);
  std::memcpy(&axis, raw.data(), 8);
  EXPECT_EQ(axis, 1);
  EXPECT_NO_THROW(parsed(m.proto, "again.onnx"));
}

TEST(OnnxUpgrade, GridSampleRefuses21NamingTheNode) {
  pb::GraphProto g;
  g.set_name("g");
  *g.add_input() = value("X", pb::TensorProto::FLOAT, {1, 1, 4, 4});
  *g.add_input() = value("grid", pb::TensorProto::FLOAT, {1, 2, 2, 2});
  *g.add_node() = node("GridSample", "gs", {"X", "grid"}, {"Y"});
  *g.add_output() = value("Y", pb::TensorProto::FLOAT, {1, 1, 2, 2});
  io::Model m = parsed(model_of(g, 16, 8), "grid.onnx");
  const std::string message = error_of([&] { io::upgrade_opset(m, 21); });
  expect_names(message, {"grid.onnx: node 'gs' (GridSample)", "cannot move this operator", "to 21"});
  // 13 is below what it has: nothing to do.
  EXPECT_NO_THROW(io::upgrade_opset(m, 13));
}

TEST(OnnxUpgrade, TooOldOrCustomDomainIsRefused) {
  pb::ModelProto proto = add_model();
  proto.mutable_opset_import(0)->set_version(6);
  io::Model old = parsed(proto, "old.onnx");
  expect_names(error_of([&] { io::upgrade_opset(old, 13); }), {"old.onnx: opset 6 is too old to upgrade"});
  proto = add_model();
  proto.mutable_opset_import(0)->set_version(11);
  auto* custom = proto.add_opset_import();
  custom->set_domain("com.example");
  custom->set_version(1);
  io::Model with_custom = parsed(proto, "custom.onnx");
  expect_names(error_of([&] { io::upgrade_opset(with_custom, 13); }), {"custom.onnx", "custom domain 'com.example'"});
}

}  // namespace
