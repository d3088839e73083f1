// zeropoint quantize / dequantize: NumPy arrays (.npy in, quantized .npz out, and back) here;
// checkpoints (safetensors) are handed to cmd_model.cpp.
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd_model.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/ggml_model.hpp"
#include "zeropoint/onnx_model.hpp"
#include "zeropoint/pipeline.hpp"

namespace zp::cli {
namespace {

namespace fs = std::filesystem;

struct QuantizeOptions {
  std::string input;
  std::string output;
  std::string scheme;
  bool ignore_nonfinite = false;
  bool json = false;
  // checkpoints only
  std::vector<std::string> rules, keeps;
  CLI::Option* rule_option = nullptr;
  CLI::Option* keep_option = nullptr;
  bool dry_run = false, quiet = false;
  std::string max_shard_size;
  // ONNX only
  std::string mode, activation_scheme, method;
  std::vector<std::string> calibration, exclude_ops, exclude_nodes;
  double percentile = 0;
  int ort_threads = 0;
  bool quantize_norm = false;
  // GGUF only
  std::string type, output_type, token_embedding_type, imatrix;
  bool pure = false, allow_requantize = false;
};

struct DequantizeOptions {
  std::string input;
  std::string output;
  std::string dtype;
  bool json = false;
  bool quiet = false;
  std::string max_shard_size;
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

// --rule and --keep in the order they were given (the first match wins), as (keep?, text).
std::vector<std::pair<bool, std::string>> ordered_rules(CLI::App& cmd, const QuantizeOptions& opts) {
  std::vector<std::pair<bool, std::string>> rules;
  std::size_t next_rule = 0, next_keep = 0;
  for (const CLI::Option* o : cmd.parse_order()) {
    if (o == opts.rule_option) rules.emplace_back(false, opts.rules.at(next_rule++));
    if (o == opts.keep_option) rules.emplace_back(true, opts.keeps.at(next_keep++));
  }
  return rules;
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto opts = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Quantize a .npy array into a .npz, a safetensors checkpoint into a quantized checkpoint, or a GGUF model into llama.cpp's block formats");
  cmd->add_option("input", opts->input,
                  "A .npy file (float32, float16 or float64), a checkpoint (a .safetensors file, an index .json or a folder), a .gguf or an .onnx model")
      ->required();
  cmd->add_option("-o,--output", opts->output,
                  "Output .npz for an array; for a checkpoint a .safetensors file or a folder (default: beside the input, "
                  "with .npz / -zp)");
  cmd->add_option("-s,--scheme", opts->scheme,
                  "Quantization scheme, e.g. int8, uint8:asym, int8:channel=0, int4:block=32 (default: int8 for an "
                  "array, int8:channel=0 for the matrices of a checkpoint)");
  cmd->add_flag("--ignore-nonfinite", opts->ignore_nonfinite,
                "Leave NaN/Inf out of the range (NaN becomes the zero point, Inf saturates) instead of failing");
  cmd->add_flag("--json", opts->json, "Print the report as one JSON object");
  opts->rule_option = cmd->add_option("--rule", opts->rules,
                                      "Checkpoints: REGEX=SCHEME for the tensors whose name matches (repeatable; rules and "
                                      "--keep are tried in command-line order, the first match wins)");
  opts->keep_option = cmd->add_option("--keep", opts->keeps, "Checkpoints: leave the tensors whose name matches REGEX as they are (repeatable)");
  cmd->add_flag("--dry-run", opts->dry_run, "Checkpoints: print the plan (tensor, scheme, bytes before and after), write nothing");
  cmd->add_option("--max-shard-size", opts->max_shard_size, "Checkpoints: split the output into shards of at most this size (e.g. 2GB)");
  cmd->add_option("-t,--type", opts->type, "GGUF: llama.cpp type for the weight matrices: q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, f16, bf16, f32");
  cmd->add_option("--output-type", opts->output_type, "GGUF: type of output.weight (default q6_K, or q8_0 as llama-quantize)");
  cmd->add_option("--token-embedding-type", opts->token_embedding_type, "GGUF: type of token_embd.weight (default: --type)");
  cmd->add_option("--imatrix", opts->imatrix,
                  "GGUF: llama.cpp importance matrix (llama-imatrix's .gguf or legacy .dat), used by the K-quants as llama-quantize does");
  cmd->add_flag("--pure", opts->pure, "GGUF: no special type for output.weight (as llama-quantize --pure)");
  cmd->add_flag("--allow-requantize", opts->allow_requantize, "GGUF: also convert tensors already in a block format");
  cmd->add_option("--mode", opts->mode, "ONNX: weights (weight-only QDQ, default), dynamic (as quantize_dynamic) or static (W8A8, calibrated)");
  cmd->add_option("--activation-scheme", opts->activation_scheme, "ONNX static: the activations' scheme (default uint8:asym; or int8)");
  cmd->add_option("--calibration", opts->calibration, "ONNX static: sample inputs, one file per sample (.npz with one array per model input, or .npy for a single-input model), or folders of them");
  cmd->add_option("--method", opts->method, "ONNX static: calibration observer: minmax (default), moving_average, percentile, entropy, mse");
  cmd->add_option("--percentile", opts->percentile, "ONNX static, --method percentile: the percentile kept (default 99.999)");
  cmd->add_option("--exclude-op", opts->exclude_ops, "ONNX: leave every node of this operator type in float (repeatable)");
  cmd->add_option("--exclude-node", opts->exclude_nodes, "ONNX: leave the nodes whose name matches REGEX in float (repeatable)");
  cmd->add_flag("--quantize-norm", opts->quantize_norm, "ONNX static: also quantize what normalization operators (LayerNorm parts, Softmax) read");
  cmd->add_option("--ort-threads", opts->ort_threads, "ONNX static: ONNX Runtime's threads for calibration (default: its own)");
  cmd->add_flag("-q,--quiet", opts->quiet, "No progress bar");
  cmd->footer(
      "Examples:\n"
      "  zeropoint quantize det.onnx -o det-int8.onnx                       (weights: int8 per output channel)\n"
      "  zeropoint quantize det.onnx --mode static --calibration samples/*.npy --method entropy\n"
      "  zeropoint quantize encoder.onnx --mode weights --scheme int4:block=32  (opset 21)\n"
      "  zeropoint quantize model-f16.gguf -o model-q4_K.gguf --type q4_K\n"
      "  zeropoint quantize model-f16.gguf --type q4_0 --rule 'ffn_down=q8_0' --keep 'attn_v' --dry-run\n"
      "  zeropoint quantize weights.npy --scheme int8:channel=0 -o weights.q.npz\n"
      "  zeropoint quantize weights.npy --scheme uint4:block=32:asym --json\n"
      "  zeropoint quantize model/ -o model-int8/ --scheme int8:channel=0\n"
      "  zeropoint quantize model/ -o model-int4/ --scheme int4:block=32 --rule 'down_proj=int8:channel=0' --keep 'lm_head'\n"
      "  zeropoint quantize model.safetensors --scheme int4:block=128 --dry-run\n"
      "Checkpoints: matrices get the scheme, 1-D tensors (norms, biases) stay as they are; codes, scales and zero\n"
      "points are stored as compressed-tensors names them (docs/formats.md).\n"
      "GGUF: the bytes llama.cpp's reference quantizers write, with llama-quantize's rules for which tensors stay\n"
      "as they are (1-D tensors, norms, routers) and for output.weight; rows that do not fill a type's blocks fall\n"
      "back (q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0, q2_K/q3_K -> q4_0, then f16).\n"
      "In Python: z = numpy.load('weights.q.npz'); z['codes'], z['scale'], z['zero_point'], str(z['scheme'])");
  cmd->callback([opts, cmd] {
    const bool gguf_only = !opts->type.empty() || !opts->imatrix.empty() || !opts->output_type.empty() || !opts->token_embedding_type.empty() ||
                           opts->pure || opts->allow_requantize;
    const bool onnx_only = !opts->mode.empty() || !opts->activation_scheme.empty() || !opts->calibration.empty() ||
                           !opts->method.empty() || !opts->exclude_ops.empty() || !opts->exclude_nodes.empty() ||
                           opts->quantize_norm || opts->percentile > 0 || opts->ort_threads > 0;
    if (is_onnx_path(opts->input)) {
      if (gguf_only) throw Error("--type and the other GGUF options do not apply to ONNX models; use --scheme");
      if (!opts->max_shard_size.empty()) throw Error("--max-shard-size applies to safetensors checkpoints, not to ONNX");
      OnnxQuantizeArgs a;
      a.input = opts->input;
      a.output = opts->output;
      a.mode = opts->mode;
      a.scheme = opts->scheme;
      a.rules = ordered_rules(*cmd, *opts);
      a.activation_scheme = opts->activation_scheme;
      a.calibration = opts->calibration;
      a.method = opts->method;
      a.percentile = opts->percentile;
      a.exclude_ops = opts->exclude_ops;
      a.exclude_nodes = opts->exclude_nodes;
      a.quantize_norm = opts->quantize_norm;
      a.threads = opts->ort_threads;
      a.dry_run = opts->dry_run;
      a.quiet = opts->quiet;
      a.json = opts->json;
      run_onnx_quantize(a);
      return;
    }
    if (onnx_only) {
      throw Error("--mode, --calibration, --method, --activation-scheme, --exclude-op, --exclude-node and "
                  "--quantize-norm apply to ONNX models (.onnx)");
    }
    if (is_gguf_path(opts->input)) {
      if (!opts->scheme.empty()) throw Error("a GGUF model takes --type (q4_0, q4_K, ...), not --scheme");
      if (!opts->max_shard_size.empty()) throw Error("--max-shard-size applies to safetensors checkpoints, not to GGUF");
      if (opts->ignore_nonfinite) throw Error("--ignore-nonfinite does not apply to GGUF: NaN and infinity are quantized as llama.cpp does");
      GgufQuantizeArgs a;
      a.input = opts->input;
      a.output = opts->output;
      a.type = opts->type.empty() ? "q8_0" : opts->type;
      a.rules = ordered_rules(*cmd, *opts);
      a.output_type = opts->output_type;
      a.token_embedding_type = opts->token_embedding_type;
      a.imatrix = opts->imatrix;
      a.pure = opts->pure;
      a.allow_requantize = opts->allow_requantize;
      a.dry_run = opts->dry_run;
      a.quiet = opts->quiet;
      a.json = opts->json;
      run_gguf_quantize(a);
      return;
    }
    if (gguf_only) {
      throw Error("--type, --imatrix, --output-type, --token-embedding-type, --pure and --allow-requantize apply to GGUF models (.gguf)");
    }
    if (is_model_path(opts->input)) {
      ModelQuantizeArgs a;
      a.input = opts->input;
      a.output = opts->output;
      a.scheme = opts->scheme.empty() ? "int8:channel=0" : opts->scheme;
      a.rules = ordered_rules(*cmd, *opts);
      a.max_shard_size = opts->max_shard_size;
      a.dry_run = opts->dry_run;
      a.ignore_nonfinite = opts->ignore_nonfinite;
      a.quiet = opts->quiet;
      a.json = opts->json;
      run_model_quantize(a);
      return;
    }
    if (!opts->rules.empty() || !opts->keeps.empty() || opts->dry_run || !opts->max_shard_size.empty()) {
      throw Error("--rule, --keep, --dry-run and --max-shard-size apply to checkpoints (.safetensors, index .json or a "
                  "folder), not to a .npy array");
    }
    const Scheme scheme = Scheme::parse(opts->scheme.empty() ? "int8" : opts->scheme);
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
  CLI::App* cmd = app.add_subcommand("dequantize", "Turn a quantized .npz back into a .npy, or a quantized checkpoint into floats");
  cmd->add_option("input", opts->input, "Quantized .npz, or a checkpoint written by 'zeropoint quantize'")->required();
  cmd->add_option("-o,--output", opts->output, "Output .npy, or .safetensors / folder (default: beside the input)");
  cmd->add_option("--dtype", opts->dtype,
                  "Output element type: f32, f16 or f64 for an array (default f32); f32, f16 or bf16 for a checkpoint "
                  "(default: each tensor's dtype before quantization)");
  cmd->add_option("--max-shard-size", opts->max_shard_size, "Checkpoints: split the output into shards of at most this size");
  cmd->add_flag("--json", opts->json, "Print the report as one JSON object");
  cmd->add_flag("-q,--quiet", opts->quiet, "No progress bar");
  cmd->footer(
      "Examples:\n  zeropoint dequantize weights.q.npz -o weights.dq.npy --dtype f16\n"
      "  zeropoint dequantize model-int8/ -o model-dq/ --dtype bf16");
  cmd->callback([opts] {
    if (is_model_path(opts->input)) {
      run_model_dequantize({opts->input, opts->output, opts->dtype, opts->max_shard_size, opts->quiet, opts->json});
      return;
    }
    const std::string dtype_text = opts->dtype.empty() ? "f32" : opts->dtype;
    const auto dtype = dtype_from_name(dtype_text);
    if (!dtype) throw Error(fmt::format("unknown --dtype '{}': choose f32, f16 or f64", dtype_text));
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
