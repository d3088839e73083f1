// zeropoint calibrate: the range of an activation tensor from batches of it saved as .npy files,
// by one of the calibration observers, and the parameters that range gives.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "output.hpp"
#include "zeropoint/calib.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"
#include "zeropoint/params.hpp"

namespace zp::cli {
namespace {

struct CalibrateOptions {
  std::vector<std::string> inputs;
  std::string method = "minmax";
  std::string scheme = "uint8:asym";
  int bins = calib::ObserverOptions{}.bins;
  double percentile = calib::ObserverOptions{}.percentile;
  double momentum = calib::ObserverOptions{}.momentum;
  bool json = false;
};

// One batch: the file's values as float32, read whole (a batch is what one inference produced).
Tensor read_batch(const std::string& path) {
  Tensor t = npy::read(path);
  if (!is_float(t.dtype())) {
    throw Error(fmt::format("{}: dtype {}: calibration data must be float (f32, f64, f16)", path, dtype_name(t.dtype())));
  }
  return t.dtype() == DType::f32 ? std::move(t) : to_f32(t);
}

std::string skipped(const calib::Observer& obs) {
  if (obs.nan_count() == 0 && obs.inf_count() == 0) return "";
  return fmt::format(" ({} NaN and {} {} skipped)", obs.nan_count(), obs.inf_count(),
                     obs.inf_count() == 1 ? "infinity" : "infinities");
}

}  // namespace

void add_calibrate(CLI::App& app) {
  auto opts = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Calibrate the range of an activation tensor from batches of it (.npy files), and show its parameters");
  cmd->add_option("batches", opts->inputs, "One .npy file per batch of the same tensor (float32, float16 or float64)")
      ->required();
  cmd->add_option("-m,--method", opts->method, "minmax, moving_average, percentile, entropy or mse")->capture_default_str();
  cmd->add_option("-s,--scheme", opts->scheme,
                  "The per-tensor scheme the range is for (entropy and mse judge clipping by its quantizer)")
      ->capture_default_str();
  cmd->add_option("--bins", opts->bins, "Histogram counters (percentile, entropy, mse)")->capture_default_str();
  cmd->add_option("--percentile", opts->percentile, "percentile: the share of values kept, in (0, 100]")->capture_default_str();
  cmd->add_option("--momentum", opts->momentum, "moving_average: weight of each new batch's range, in (0, 1]")
      ->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print one JSON object instead of text");
  cmd->footer(
      "Examples:\n"
      "  zeropoint calibrate act_0.npy act_1.npy act_2.npy --method entropy\n"
      "  zeropoint calibrate act_*.npy --method percentile --percentile 99.99 --scheme int8 --json\n"
      "  zeropoint calibrate act_*.npy --method mse --scheme uint8:asym --bins 4096\n"
      "Each file is one batch of the same tensor. NaN and infinities are counted and left out. Symmetric\n"
      "schemes clip |x| (percentile); docs/math.md section 12 has every method's formula.");
  cmd->callback([opts] {
    calib::ObserverOptions o;
    o.method = calib::parse_method(opts->method);
    o.scheme = Scheme::parse(opts->scheme);
    o.bins = opts->bins;
    o.percentile = opts->percentile;
    o.momentum = opts->momentum;
    calib::Observer obs(o);
    for (const std::string& path : opts->inputs) {
      const Tensor batch = read_batch(path);
      obs.update(batch.span<float>());
    }
    calib::Range r;
    try {
      r = obs.range();
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", opts->inputs.size() == 1 ? opts->inputs[0] : "the batches", e.what()));
    }
    const ParamDerivation d = derive_params(r.min, r.max, o.scheme);
    const AffineParams& p = d.result;
    if (opts->json) {
      nlohmann::json j{{"method", calib::method_name(o.method)},
                       {"scheme", o.scheme.str()},
                       {"batches", obs.batches()},
                       {"count", obs.count()},
                       {"nan_count", obs.nan_count()},
                       {"inf_count", obs.inf_count()},
                       {"observed_min", obs.observed_min()},
                       {"observed_max", obs.observed_max()},
                       {"min", r.min},
                       {"max", r.max},
                       {"scale", p.scale},
                       {"degenerate", d.degenerate}};
      if (o.scheme.zero_point == ZeroPointKind::integer) j["zero_point"] = p.zero_point;
      else j["offset"] = p.offset;
      if (const calib::HistogramView h = obs.histogram(); !h.counts.empty()) {
        j["bins"] = h.counts.size();
        j["bin_width"] = h.width;
      }
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("{} batches, method {}, scheme {}: {}\n", obs.batches(), calib::method_name(o.method), o.scheme.str(),
               describe(o.scheme));
    fmt::print("  values      {}{}\n", obs.count(), skipped(obs));
    fmt::print("  observed    [{}, {}]\n", num(obs.observed_min()), num(obs.observed_max()));
    if (const calib::HistogramView h = obs.histogram(); !h.counts.empty()) {
      fmt::print("  histogram   {} bins of width {}\n", h.counts.size(), num(h.width));
    }
    fmt::print("  range       [{}, {}]\n", num(r.min), num(r.max));
    fmt::print("  scale       {}{}\n", num(p.scale), d.degenerate ? " (degenerate range: ONNX Runtime's scale 1)" : "");
    if (o.scheme.zero_point == ZeroPointKind::integer) fmt::print("  zero point  {}\n", p.zero_point);
    else fmt::print("  offset      {}\n", num(p.offset));
  });
}

}  // namespace zp::cli
