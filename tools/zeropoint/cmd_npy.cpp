// zeropoint quantize / dequantize for NumPy arrays (.npy in, quantized .npz out, and back).
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "output.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/pipeline.hpp"

namespace zp::cli {
namespace {

namespace fs = std::filesystem;

struct QuantizeOptions {
  std::string input;
  std::string output;
  std::string scheme = "int8";
  bool ignore_nonfinite = false;
  bool json = false;
};

struct DequantizeOptions {
  std::string input;
  std::string output;
  std::string dtype = "f32";
  bool json = false;
};

// "weights.npy" -> "weights.npz"; the quantized archive sits beside its source by default.
std::string default_output(const std::string& input, const char* extension) {
  fs::path p(input);
  if (p.extension() == extension) p.replace_extension(std::string(".dq") + extension);
  else p.replace_extension(extension);
  return p.string();
}

void print_report(const QuantizeReport& r) {
  const QParams& p = r.params;
  const double ratio = static_cast<double>(r.input_bytes) / static_cast<double>(r.code_bytes + r.param_bytes);
  fmt::print("{} -> {}\n", r.input.string(), r.output.string());
  fmt::print("  tensor      {} {} ({} bytes)\n", dtype_name(r.dtype), shape_str(r.shape), r.input_bytes);
  fmt::print("  scheme      {}: {}\n", p.scheme.str(), describe(p.scheme));
  fmt::print("  scale       {}\n", summarize(p.scale));
  if (p.scheme.zero_point == ZeroPointKind::integer) fmt::print("  zero point  {}\n", summarize(p.zero_point));
  else fmt::print("  offset      {}\n", summarize(p.offset));
  fmt::print("  size        {} bytes of codes + {} bytes of parameters = {:.2f} bits per value, {:.2f}x smaller\n",
             r.code_bytes, r.param_bytes, r.bits_per_value(), ratio);
  fmt::print("  error       {}\n", describe(r.error));
  if (r.error.max_abs_error_index >= 0) {
    fmt::print("              largest error at index {}\n", index_str(r.shape, r.error.max_abs_error_index));
  }
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto opts = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a .npy array into a .npz of codes, scales and zero points");
  cmd->add_option("input", opts->input, "Input .npy file (float32, float16 or float64)")->required();
  cmd->add_option("-o,--output", opts->output, "Output .npz (default: the input's name with .npz)");
  cmd->add_option("-s,--scheme", opts->scheme, "Quantization scheme, e.g. int8, uint8:asym, int8:channel=0, int4:block=32")
      ->capture_default_str();
  cmd->add_flag("--ignore-nonfinite", opts->ignore_nonfinite,
                "Leave NaN/Inf out of the range (NaN becomes the zero point, Inf saturates) instead of failing");
  cmd->add_flag("--json", opts->json, "Print the report as one JSON object");
  cmd->footer(
      "Examples:\n"
      "  zeropoint quantize weights.npy --scheme int8:channel=0 -o weights.q.npz\n"
      "  zeropoint quantize weights.npy --scheme uint4:block=32:asym --json\n"
      "In Python: z = numpy.load('weights.q.npz'); z['codes'], z['scale'], z['zero_point'], str(z['scheme'])");
  cmd->callback([opts] {
    const Scheme scheme = Scheme::parse(opts->scheme);
    const std::string output = opts->output.empty() ? default_output(opts->input, ".npz") : opts->output;
    ObserveOptions observe;
    observe.ignore_nonfinite = opts->ignore_nonfinite;
    QuantizeReport r;
    try {
      r = quantize_npy_file(opts->input, output, scheme, observe);
    } catch (const NonFiniteError& e) {
      throw Error(fmt::format("{} (pass --ignore-nonfinite to quantize the finite values only)", e.what()));
    }
    if (!opts->json) {
      print_report(r);
      return;
    }
    const nlohmann::json j{{"input", r.input.string()},
                           {"output", r.output.string()},
                           {"dtype", dtype_name(r.dtype)},
                           {"shape", r.shape},
                           {"scheme", r.params.scheme.str()},
                           {"params", to_json(r.params)},
                           {"input_bytes", r.input_bytes},
                           {"code_bytes", r.code_bytes},
                           {"param_bytes", r.param_bytes},
                           {"bits_per_value", r.bits_per_value()},
                           {"error", to_json(r.error)}};
    fmt::print("{}\n", j.dump(2));
  });
}

void add_dequantize(CLI::App& app) {
  auto opts = std::make_shared<DequantizeOptions>();
  CLI::App* cmd = app.add_subcommand("dequantize", "Turn a quantized .npz back into a float .npy");
  cmd->add_option("input", opts->input, "Quantized .npz written by 'zeropoint quantize'")->required();
  cmd->add_option("-o,--output", opts->output, "Output .npy (default: the input's name with .npy)");
  cmd->add_option("--dtype", opts->dtype, "Output element type: f32, f16 or f64")->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print the report as one JSON object");
  cmd->footer("Example:\n  zeropoint dequantize weights.q.npz -o weights.dq.npy --dtype f16");
  cmd->callback([opts] {
    const auto dtype = dtype_from_name(opts->dtype);
    if (!dtype) throw Error(fmt::format("unknown --dtype '{}': choose f32, f16 or f64", opts->dtype));
    const std::string output = opts->output.empty() ? default_output(opts->input, ".npy") : opts->output;
    const DequantizeReport r = dequantize_npz_file(opts->input, output, *dtype);
    if (opts->json) {
      const nlohmann::json j{{"input", r.input.string()}, {"output", r.output.string()}, {"scheme", r.scheme.str()},
                             {"shape", r.shape}, {"dtype", dtype_name(r.dtype)}, {"output_bytes", r.output_bytes}};
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("{} -> {}\n  {} {} from {} codes ({} bytes)\n", r.input.string(), r.output.string(), dtype_name(r.dtype),
               shape_str(r.shape), r.scheme.str(), r.output_bytes);
  });
}

}  // namespace zp::cli
