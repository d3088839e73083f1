// zeropoint on ONNX models: quantize (weights / dynamic / static) and inspect.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd_model.hpp"
#include "output.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/onnx_model.hpp"

namespace zp::cli {
namespace {

std::string default_onnx_output(const std::string& input, OnnxMode mode) {
  std::filesystem::path p(input);
  const char* suffix = mode == OnnxMode::weights ? "-qdq-w" : mode == OnnxMode::dynamic ? "-qdq-dynamic" : "-qdq-static";
  return (p.parent_path() / (p.stem().string() + suffix + ".onnx")).string();
}

nlohmann::json onnx_json(const OnnxReport& r, bool dry_run) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorRecord& t : r.tensors) {
    nlohmann::json j{{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes_in", t.bytes_in},
                     {"bytes_out", t.bytes_out}, {"reason", t.reason}};
    if (t.scheme) j["scheme"] = t.scheme->str();
    if (t.error) j["error"] = to_json(*t.error);
    tensors.push_back(std::move(j));
  }
  nlohmann::json activations = nlohmann::json::array();
  for (const ActivationRecord& a : r.activations) {
    activations.push_back({{"name", a.name}, {"min", a.min}, {"max", a.max}, {"observed_min", a.observed_min},
                           {"observed_max", a.observed_max}, {"count", a.count}, {"nan", a.nan_count},
                           {"inf", a.inf_count}, {"scale", a.scale}, {"zero_point", a.zero_point}});
  }
  nlohmann::json ops = nlohmann::json::object();
  for (const auto& [op, n] : r.ops) ops[op] = n;
  nlohmann::json j{{"input", r.input.string()},
                   {"output", r.output.string()},
                   {"dry_run", dry_run},
                   {"opset_in", r.opset_in},
                   {"opset_out", r.opset_out},
                   {"ops", ops},
                   {"tensors", tensors},
                   {"activations", activations},
                   {"nodes_quantized", r.nodes_quantized},
                   {"static_activations", r.static_activations},
                   {"dynamic_integer_matmuls", r.dynamic_integer_matmuls},
                   {"notes", r.notes},
                   {"bytes_in", r.bytes_in},
                   {"bytes_out", r.bytes_out},
                   {"seconds", r.seconds}};
  if (!r.files.empty()) {
    std::vector<std::string> files;
    for (const auto& f : r.files) files.push_back(f.string());
    j["files"] = files;
  }
  if (!r.activations.empty()) {
    j["calibration_seconds"] = r.calibration_seconds;
    j["inference_seconds"] = r.inference_seconds;
  }
  return j;
}

std::string sqnr_text(double db) { return std::isinf(db) ? "inf" : fmt::format("{:.1f}", db); }

void print_onnx(const OnnxReport& r, bool dry_run, bool inspect) {
  if (inspect) {
    fmt::print("{}: ONNX, opset {}\n", r.input.string(), r.opset_in);
    std::string ops;
    for (const auto& [op, n] : r.ops) ops += fmt::format("{}{} x{}", ops.empty() ? "" : ", ", op, n);
    fmt::print("  operators: {}\n", ops);
    fmt::print("  weights of Conv/ConvTranspose/MatMul/Gemm ({}), which every mode quantizes:\n", r.tensors.size());
  } else {
    fmt::print("{} -> {}{} (opset {} -> {})\n", r.input.string(), r.output.string(),
               dry_run ? " (dry run: nothing written)" : "", r.opset_in, r.opset_out);
  }
  std::size_t width = 6;
  for (const auto& t : r.tensors) width = std::max(width, t.name.size());
  width = std::min<std::size_t>(width, 48);
  fmt::print("  {:<{}}  {:<8} {:<18} {:<22} {:>10} {:>10}{}\n", "tensor", width, "dtype", "shape", "scheme", "bytes", "after",
             inspect || dry_run ? "" : "   SQNR dB  cosine");
  for (const auto& t : r.tensors) {
    std::string shape = "[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) shape += fmt::format("{}{}", i ? ", " : "", t.shape[i]);
    shape += "]";
    std::string line = fmt::format("  {:<{}}  {:<8} {:<18} {:<22} {:>10} {:>10}", t.name, width, t.dtype, shape,
                                   t.scheme ? t.scheme->str() : t.reason.substr(0, 22), bytes_text(t.bytes_in),
                                   bytes_text(t.bytes_out));
    if (t.error) line += fmt::format(" {:>9} {:>8.6f}", sqnr_text(t.error->sqnr_db), t.error->cosine);
    fmt::print("{}\n", line);
  }
  if (!r.activations.empty()) {
    fmt::print("  activations calibrated ({}; {:.2f} s, of which ONNX Runtime {:.2f} s):\n", r.activations.size(),
               r.calibration_seconds, r.inference_seconds);
    for (const auto& a : r.activations) {
      std::string bad = a.nan_count || a.inf_count ? fmt::format("  ({} NaN, {} inf skipped)", a.nan_count, a.inf_count) : "";
      fmt::print("    {:<{}}  [{:.6g}, {:.6g}] of observed [{:.6g}, {:.6g}]  scale {:.6g} zero point {}{}\n", a.name,
                 width, a.min, a.max, a.observed_min, a.observed_max, a.scale, a.zero_point, bad);
    }
  }
  if (inspect) {
    auto list = [](const std::vector<std::string>& names) {
      std::string text;
      for (std::size_t i = 0; i < names.size() && i < 8; ++i) text += (i ? ", " : "") + names[i];
      if (names.size() > 8) text += fmt::format(", ... ({} in all)", names.size());
      return text.empty() ? std::string("none") : text;
    };
    fmt::print("  --mode weights: the {} weights above, as int8 codes + DequantizeLinear\n", r.tensors.size());
    fmt::print("  --mode dynamic: MatMulInteger for {}; other weight operators read int8 weights\n",
               list(r.dynamic_integer_matmuls));
    fmt::print("  --mode static: also calibrates and quantizes the {} values they read: {}\n",
               r.static_activations.size(), list(r.static_activations));
  }
  for (const auto& n : r.notes) fmt::print("  note: {}\n", n);
  fmt::print("  weights {} -> {} ({:.2f}x smaller)", bytes_text(r.bytes_in), bytes_text(r.bytes_out),
             r.bytes_out ? static_cast<double>(r.bytes_in) / static_cast<double>(r.bytes_out) : 0.0);
  if (!r.files.empty()) {
    std::uint64_t size = 0;
    for (const auto& f : r.files) size += std::filesystem::file_size(f);
    fmt::print("; wrote {} ({}) in {:.2f} s", r.files.front().string(), bytes_text(size), r.seconds);
  }
  fmt::print("\n");
}

// The samples named on the command line: files as given, and a folder as the .npy and .npz files
// in it, in name order (the order samples run in matters to moving_average).
std::vector<std::filesystem::path> calibration_files(const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& arg : args) {
    std::error_code ec;
    if (!fs::is_directory(arg, ec)) {
      files.emplace_back(arg);
      continue;
    }
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(arg)) {
      const auto ext = entry.path().extension();
      if ((ext == ".npy" || ext == ".npz") && entry.is_regular_file()) found.push_back(entry.path());
    }
    if (found.empty()) throw Error(fmt::format("{}: a folder with no .npy or .npz file in it", arg));
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

}  // namespace

void run_onnx_quantize(const OnnxQuantizeArgs& a) {
  OnnxQuantizeOptions options;
  options.mode = parse_onnx_mode(a.mode.empty() ? "weights" : a.mode);
  if (!a.scheme.empty()) options.weight_scheme = Scheme::parse(a.scheme);
  for (const auto& [keep, text] : a.rules) options.rules.push_back(keep ? PlanRule::keep(text) : PlanRule::parse(text));
  if (!a.activation_scheme.empty()) options.activation_scheme = Scheme::parse(a.activation_scheme);
  options.exclude_ops = a.exclude_ops;
  options.exclude_nodes = a.exclude_nodes;
  options.quantize_norm = a.quantize_norm;
  options.calibration = calibration_files(a.calibration);
  if (!options.calibration.empty() && options.mode != OnnxMode::static_) {
    throw Error("--calibration is for --mode static (weights and dynamic modes need no samples)");
  }
  options.observer.scheme = options.activation_scheme;
  if (!a.method.empty()) options.observer.method = calib::parse_method(a.method);
  if (a.percentile > 0) options.observer.percentile = a.percentile;
  options.ort.threads = a.threads;
  options.dry_run = a.dry_run;
  const std::string output = a.output.empty() ? default_onnx_output(a.input, options.mode) : a.output;
  ProgressBar bar(a.quiet || a.json);
  options.progress = bar.callback();
  const OnnxReport r = quantize_onnx(a.input, output, options);
  bar.finish();
  if (a.json) {
    fmt::print("{}\n", onnx_json(r, a.dry_run).dump(2));
    return;
  }
  print_onnx(r, a.dry_run, false);
}

void run_onnx_inspect(const std::string& input, bool json) {
  const OnnxReport r = inspect_onnx(input);
  if (json) {
    fmt::print("{}\n", onnx_json(r, true).dump(2));
    return;
  }
  print_onnx(r, true, true);
}

}  // namespace zp::cli
