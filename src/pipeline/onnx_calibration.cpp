#include "pipeline/onnx_calibration.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "core/thread_pool.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"
#include "zeropoint/ort_runner.hpp"

namespace zp::onnx_calib {
namespace {

namespace fs = std::filesystem;
using namespace onnx_io;

// A folder of its own under /tmp for the augmented models, removed with its contents.
class TempFolder {
 public:
  TempFolder() {
    char name[] = "/tmp/zeropoint-calib-XXXXXX";
    if (!::mkdtemp(name)) throw Error("cannot create a temporary folder for calibration");
    path_ = name;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const fs::path& path() const noexcept { return path_; }

 private:
  fs::path path_;
};

// The float model with every activation to observe added as a graph output: what the histogram
// methods read, value by value. Written when first asked for: minmax needs it only for a batch
// holding NaN or infinity.
class ValuesModel {
 public:
  ValuesModel(const Model& float_model, const std::vector<std::string>& names, fs::path path)
      : float_model_(float_model), names_(names), path_(std::move(path)) {}

  const fs::path& path() {
    if (written_) return path_;
    Model augmented = float_model_;
    auto& g = *augmented.proto.mutable_graph();
    std::set<std::string> outputs;
    for (const auto& o : g.output()) outputs.insert(o.name());
    for (const auto& n : names_) {
      if (outputs.contains(n)) continue;
      auto* v = g.add_output();
      v->set_name(n);
      v->mutable_type()->mutable_tensor_type()->set_elem_type(pb::TensorProto::FLOAT);
    }
    save(augmented, path_, {});
    written_ = true;
    return path_;
  }

 private:
  const Model& float_model_;
  const std::vector<std::string>& names_;
  fs::path path_;
  bool written_ = false;
};

// minmax and moving_average need only each batch's extremes: ONNX Runtime computes them in the
// graph, and four scalars per activation cross over instead of the whole tensor, which also
// leaves ONNX Runtime free to reuse the activation's memory. ReduceMin and ReduceMax may skip a
// NaN, so a ReduceSum tells whether the batch held any NaN or infinity (or a finite sum
// overflowed); such a batch goes through the values model instead, so that what is skipped is
// counted.
enum Extreme : std::size_t { kMin, kMax, kSum, kSize, kExtremesPerActivation };
constexpr std::array<std::string_view, kExtremesPerActivation> kExtremeOps = {"ReduceMin", "ReduceMax", "ReduceSum",
                                                                                "Size"};

struct ExtremesModel {
  Model model;
  std::vector<std::string> outputs;  // kExtremesPerActivation per name, in the order of `names`
};

ExtremesModel with_extremes_as_outputs(const Model& float_model, const std::vector<std::string>& names) {
  ExtremesModel m{float_model, {}};
  auto& g = *m.model.proto.mutable_graph();
  auto output_name = [](const std::string& n, std::string_view op) { return fmt::format("zeropoint_calibration/{}/{}", n, op); };
  for (const auto& n : names) {
    for (const std::string_view op : kExtremeOps) {
      auto* v = g.add_output();
      v->set_name(output_name(n, op));
      v->mutable_type()->mutable_tensor_type()->set_elem_type(op == "Size" ? pb::TensorProto::INT64 : pb::TensorProto::FLOAT);
      m.outputs.push_back(v->name());
    }
  }
  // The reductions go in last-produced-first order. ONNX Runtime's default execution order is a
  // depth-first walk back from the leaf nodes, the last in the file first: listed this way, each
  // activation's reductions run right after the node that makes it, while it is in cache and
  // before its memory is reused. Appended in the graph's own order, they all ran at the end,
  // keeping every activation alive until then (PaddleOCR's detector: 32 runs took 3.47 s
  // against 2.88 s this way and 2.6 s for the model alone).
  std::map<std::string, int> produced_at;
  for (int i = 0; i < g.node_size(); ++i) {
    for (const auto& o : g.node(i).output()) produced_at[o] = i;
  }
  auto position = [&](const std::string& n) {
    const auto it = produced_at.find(n);
    return it == produced_at.end() ? -1 : it->second;  // a graph input: before every node
  };
  std::vector<std::string> last_first = names;
  std::stable_sort(last_first.begin(), last_first.end(),
                   [&](const std::string& a, const std::string& b) { return position(a) > position(b); });
  for (const auto& n : last_first) {
    for (const std::string_view op : kExtremeOps) {
      const std::string out = output_name(n, op);
      pb::NodeProto node = make_node(std::string(op), out + "_node", {n}, {out});
      if (op != "Size") add_int_attribute(node, "keepdims", 0);
      *g.add_node() = std::move(node);
    }
  }
  return m;
}

// One sample: the model's inputs by name.
using Sample = std::vector<std::pair<std::string, Tensor>>;

std::vector<NamedView> views_of(const Sample& sample) {
  std::vector<NamedView> views;
  for (const auto& [name, tensor] : sample) views.push_back({name, tensor.view()});
  return views;
}

// Reads samples and checks them against what the session says the model takes.
class SampleReader {
 public:
  SampleReader(const std::vector<OrtTensorInfo>& inputs, const fs::path& model_path)
      : inputs_(inputs), model_(model_path.string()) {}

  // Replaces `sample` with the one in `file`, reading into its tensors' memory where the shapes
  // match: fresh memory costs page faults on every sample (0.4-0.9 s of reading over 32 samples
  // of PaddleOCR's detector, against 0.1 s reusing it).
  void read(const fs::path& file, Sample& sample) const {
    Sample previous = std::move(sample);
    sample.clear();
    auto reuse = [&](const std::string& name) {
      for (auto& [n, t] : previous) {
        if (n == name) return std::move(t);
      }
      return Tensor();
    };
    if (file.extension() == ".npz") {
      const npz::Reader reader(file);
      for (const auto& in : inputs_) {
        if (!reader.contains(in.name)) {
          throw Error(fmt::format("{}: no array named '{}', an input of {} (it has: {})", file.string(), in.name,
                                  model_, fmt::join(reader.names(), ", ")));
        }
        sample.emplace_back(in.name, reader.tensor(in.name, reuse(in.name)));
      }
      for (const auto& name : reader.names()) {
        if (!info(name)) throw Error(fmt::format("{}: array '{}' is not an input of {}", file.string(), name, model_));
      }
    } else {
      if (inputs_.size() != 1) {
        throw Error(fmt::format("{}: {} has {} inputs; give each sample as an .npz with one array per input",
                                file.string(), model_, inputs_.size()));
      }
      sample.emplace_back(inputs_[0].name, npy::read(file, reuse(inputs_[0].name)));
    }
    for (const auto& [name, tensor] : sample) check(file, name, tensor, *info(name));
  }

 private:
  const OrtTensorInfo* info(const std::string& name) const {
    const auto it = std::find_if(inputs_.begin(), inputs_.end(), [&](const auto& in) { return in.name == name; });
    return it == inputs_.end() ? nullptr : &*it;
  }

  static void check(const fs::path& file, const std::string& name, const Tensor& tensor, const OrtTensorInfo& info) {
    if (tensor.dtype() != info.dtype) {
      throw Error(fmt::format("{}: input '{}' is {} but the model wants {}", file.string(), name,
                              dtype_name(tensor.dtype()), dtype_name(info.dtype)));
    }
    bool fits = info.shape.empty() || tensor.shape().size() == info.shape.size();
    for (std::size_t i = 0; fits && !info.shape.empty() && i < info.shape.size(); ++i) {
      fits = info.shape[i] < 0 || info.shape[i] == tensor.shape()[i];
    }
    if (!fits) {
      std::vector<std::string> dims;
      for (auto d : info.shape) dims.push_back(d < 0 ? "?" : std::to_string(d));
      throw Error(fmt::format("{}: input '{}' has shape {} but the model wants [{}]", file.string(), name,
                              shape_str(tensor.shape()), fmt::join(dims, ", ")));
    }
  }

  const std::vector<OrtTensorInfo>& inputs_;
  std::string model_;
};

// What both loops share. Two samples are held in turn: the next one is read while ONNX Runtime
// runs this one (a request is fully written when submit returns, so its tensors are free again
// then).
struct Run {
  const std::vector<std::string>& names;
  const OnnxQuantizeOptions& options;
  const SampleReader& reader;
  ObservedActivations& seen;
  std::array<Sample, 2> samples;

  const std::vector<fs::path>& files() const { return options.calibration; }
  void progress(std::size_t k) const {
    if (options.progress) options.progress(k, files().size(), files()[k].string());
  }
  calib::Observer& observer(const std::string& name) { return seen.observers.at(name); }
};

// minmax, moving_average: the extremes model, one sample at a time (its answers are a few
// scalars), and the values model for a batch holding NaN or infinity.
void observe_extremes(Run& run, OrtSession& session, ValuesModel& values_model) {
  std::optional<OrtSession> values_session;
  std::vector<std::pair<std::string, TensorView>> extremes;
  const auto& files = run.files();
  for (std::size_t k = 0; k < files.size(); ++k) {
    run.progress(k);
    const Sample& sample = run.samples[k % 2];
    session.submit(views_of(sample));
    if (k + 1 < files.size()) run.reader.read(files[k + 1], run.samples[(k + 1) % 2]);
    session.receive(extremes);
    run.seen.inference_seconds += session.last_ort_seconds();
    std::set<std::string> with_nonfinite;
    for (std::size_t i = 0; i < run.names.size(); ++i) {
      const auto extreme = [&](Extreme e) -> const TensorView& { return extremes[kExtremesPerActivation * i + e].second; };
      const float lo = extreme(kMin).span<float>()[0];
      const float hi = extreme(kMax).span<float>()[0];
      const float sum = extreme(kSum).span<float>()[0];
      const std::int64_t size = extreme(kSize).span<std::int64_t>()[0];
      if (size == 0 || (std::isfinite(sum) && std::isfinite(lo) && std::isfinite(hi))) {
        run.observer(run.names[i]).update_extremes(lo, hi, size);
      } else {
        with_nonfinite.insert(run.names[i]);
      }
    }
    if (with_nonfinite.empty()) continue;
    if (!values_session) values_session.emplace(values_model.path(), run.names, run.options.ort);
    values_session->run(views_of(sample), [&](const std::string& name, const TensorView& value) {
      if (with_nonfinite.contains(name)) run.observer(name).update(value.span<float>());
    });
    run.seen.inference_seconds += values_session->last_ort_seconds();
  }
}

// percentile, entropy, mse: the values model, pipelined: while ONNX Runtime computes sample
// k + 1, the observers digest sample k's activations where the session received them (at most
// two samples' worth are held), each observer on one thread.
void observe_values(Run& run, OrtSession& session) {
  std::vector<std::pair<std::string, TensorView>> activations;
  std::vector<calib::Observer*> by_output;
  const auto& files = run.files();
  session.submit(views_of(run.samples[0]));
  if (files.size() > 1) run.reader.read(files[1], run.samples[1]);
  for (std::size_t k = 0; k < files.size(); ++k) {
    run.progress(k);
    session.receive(activations);
    run.seen.inference_seconds += session.last_ort_seconds();
    if (k + 1 < files.size()) session.submit(views_of(run.samples[(k + 1) % 2]));
    if (by_output.empty()) {
      for (const auto& [name, tensor] : activations) {
        const auto it = run.seen.observers.find(name);
        by_output.push_back(it != run.seen.observers.end() && tensor.dtype() == DType::f32 ? &it->second : nullptr);
      }
    }
    detail::parallel_for(static_cast<std::int64_t>(activations.size()), 1, [&](std::int64_t begin, std::int64_t end) {
      for (auto i = static_cast<std::size_t>(begin); i < static_cast<std::size_t>(end); ++i) {
        if (auto* o = by_output[i]) o->update(activations[i].second.span<float>());
      }
    });
    if (k + 2 < files.size()) run.reader.read(files[k + 2], run.samples[k % 2]);
  }
}

}  // namespace

ObservedActivations observe(const Model& float_model, const fs::path& model_path, const std::vector<std::string>& names,
                            const OnnxQuantizeOptions& options) {
  if (options.calibration.empty()) {
    throw Error("static mode needs calibration data: give sample inputs with --calibration (.npz with one array per "
                "model input, or .npy for a single-input model)");
  }
  const TempFolder dir;
  ValuesModel values_model(float_model, names, dir.path() / "values.onnx");
  const bool extremes_only = !calib::Observer::needs_values(options.observer.method);
  OrtSession session = [&] {
    if (!extremes_only) return OrtSession(values_model.path(), names, options.ort);
    const fs::path extremes_path = dir.path() / "extremes.onnx";
    ExtremesModel extremes = with_extremes_as_outputs(float_model, names);
    save(extremes.model, extremes_path, {});
    return OrtSession(extremes_path, extremes.outputs, options.ort);
  }();

  ObservedActivations seen;
  for (const auto& n : names) seen.observers.emplace(n, calib::Observer(options.observer));
  const SampleReader reader(session.inputs(), model_path);
  Run run{names, options, reader, seen, {}};
  reader.read(options.calibration[0], run.samples[0]);
  if (extremes_only) {
    observe_extremes(run, session, values_model);
  } else {
    observe_values(run, session);
  }
  return seen;
}

}  // namespace zp::onnx_calib
