// zeropoint on whole checkpoints (safetensors): quantize / dequantize runners, inspect, analyze.
#include "cmd_model.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "output.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/onnx_model.hpp"

namespace zp::cli {
namespace {

namespace fs = std::filesystem;

std::string bytes_str(std::uint64_t b) { return bytes_text(b); }

// What a record was turned into (or is stored as): a scheme or a ggml type.
std::string format_of(const TensorRecord& r) {
  if (r.scheme) return r.scheme->str();
  if (r.ggml_type) return std::string(ggml::traits(*r.ggml_type).name);
  return "";
}
bool was_quantized(const TensorRecord& r) { return r.scheme.has_value() || r.converted; }

}  // namespace

std::string bytes_text(std::uint64_t b) {
  const double v = static_cast<double>(b);
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", v / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", v / (1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", v / (1ull << 10));
  return fmt::format("{} B", b);
}

namespace {

std::string sqnr_str(double db) { return std::isinf(db) ? (db > 0 ? "inf" : "-inf") : fmt::format("{:.1f}", db); }

std::int64_t numel_of(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

nlohmann::json record_json(const TensorRecord& r) {
  nlohmann::json j{{"name", r.name},
                   {"dtype", r.dtype},
                   {"shape", r.shape},
                   {"quantized", was_quantized(r)},
                   {"bytes_in", r.bytes_in},
                   {"bytes_out", r.bytes_out},
                   {"bits_per_weight", json_number(r.bits_per_weight())}};
  if (r.scheme) j["scheme"] = r.scheme->str();
  if (r.ggml_type) j["type"] = std::string(ggml::traits(*r.ggml_type).name);
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (r.error) j["error"] = to_json(*r.error);
  return j;
}

double ratio(std::uint64_t in, std::uint64_t out) { return out > 0 ? static_cast<double>(in) / static_cast<double>(out) : 0.0; }

// Total bits per weight over every tensor.
double model_bits_per_weight(const ModelReport& r) {
  std::int64_t n = 0;
  for (const TensorRecord& t : r.tensors) n += numel_of(t.shape);
  return n > 0 ? 8.0 * static_cast<double>(r.bytes_out) / static_cast<double>(n) : 0.0;
}

std::size_t name_width(const ModelReport& r) {
  std::size_t w = 6;
  for (const TensorRecord& t : r.tensors) w = std::max(w, t.name.size());
  return std::min<std::size_t>(w, 60);
}

void print_plan(const ModelReport& r) {
  const std::size_t w = name_width(r);
  fmt::print("plan ({} tensors):\n", r.tensors.size());
  fmt::print("  {:<{}}  {:>16}  {:<5}  {:<26}  {:>10}  {:>10}\n", "tensor", w, "shape", "dtype", "scheme", "before", "after");
  for (const TensorRecord& t : r.tensors) {
    std::string what = was_quantized(t) ? format_of(t) : "keep (" + t.reason + ")";
    if (t.converted && t.reason != "default for weight matrices") what += " (" + t.reason + ")";
    fmt::print("  {:<{}}  {:>16}  {:<5}  {:<26}  {:>10}  {:>10}\n", t.name, w, shape_str(t.shape), t.dtype, what,
               bytes_str(t.bytes_in), bytes_str(t.bytes_out));
  }
}

void print_errors(const ModelReport& r) {
  const std::size_t w = name_width(r);
  fmt::print("what quantization lost (each tensor against its input):\n");
  fmt::print("  {:<{}}  {:<22}  {:>9}  {:>10}  {:>10}  {:>9}  {:>6}\n", "tensor", w, "scheme", "SQNR dB", "rel. MSE",
             "max |err|", "cosine", "bits");
  for (const TensorRecord& t : r.tensors) {
    if (!t.error) continue;
    fmt::print("  {:<{}}  {:<22}  {:>9}  {:>10.3g}  {:>10.3g}  {:>9.6f}  {:>6.2f}\n", t.name, w, format_of(t),
               sqnr_str(t.error->sqnr_db), t.error->relative_mse, t.error->max_abs_error, t.error->cosine,
               t.bits_per_weight());
  }
}

void print_totals(const ModelReport& r) {
  std::size_t quantized = 0;
  for (const TensorRecord& t : r.tensors) quantized += was_quantized(t);
  fmt::print("size: {} -> {} ({:.2f}x smaller, {:.2f} bits per weight); {} of {} tensors quantized, the rest kept as they were\n",
             bytes_str(r.bytes_in), bytes_str(r.bytes_out), ratio(r.bytes_in, r.bytes_out), model_bits_per_weight(r),
             quantized, r.tensors.size());
}

nlohmann::json report_json(const ModelReport& r) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorRecord& t : r.tensors) tensors.push_back(record_json(t));
  nlohmann::json files = nlohmann::json::array();
  for (const fs::path& f : r.files) files.push_back(f.string());
  return {{"input", r.input.string()},
          {"output", r.output.string()},
          {"files", files},
          {"bytes_in", r.bytes_in},
          {"bytes_out", r.bytes_out},
          {"ratio", json_number(ratio(r.bytes_in, r.bytes_out))},
          {"bits_per_weight", json_number(model_bits_per_weight(r))},
          {"seconds", r.seconds},
          {"tensors", tensors}};
}

}  // namespace

// --- Progress on stderr -------------------------------------------------------------------------

ProgressBar::ProgressBar(bool quiet) : enabled_(!quiet && isatty(fileno(stderr))) {}

ProgressBar::~ProgressBar() { finish(); }

Progress ProgressBar::callback() {
  if (!enabled_) return {};
  return [this](std::uint64_t done, std::uint64_t total, std::string_view tensor) { update(done, total, tensor); };
}

void ProgressBar::update(std::uint64_t done, std::uint64_t total, std::string_view tensor) {
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && now - last_ < std::chrono::milliseconds(100) && done < total) return;
  last_ = now;
  shown_ = true;
  const double f = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int width = 30, filled = static_cast<int>(f * width);
  std::string name(tensor.substr(0, 40));
  fmt::print(stderr, "\r[{}{}] {:3.0f}%  {} / {}  {:<40}", std::string(static_cast<std::size_t>(filled), '#'),
             std::string(static_cast<std::size_t>(width - filled), ' '), 100 * f, bytes_str(done), bytes_str(total), name);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!shown_) return;
  fmt::print(stderr, "\r{:<100}\r", "");
  std::fflush(stderr);
  shown_ = false;
}

// --- Arguments ----------------------------------------------------------------------------------

bool is_model_path(const std::string& path) {
  const fs::path p(path);
  return p.extension() == ".safetensors" || p.extension() == ".json" || p.extension() == ".gguf" ||
         p.extension() == ".onnx" || fs::is_directory(p);
}

std::uint64_t parse_size(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw Error(fmt::format("'{}' is not a size: write e.g. 2GB, 500MB, 1GiB or a number of bytes", text));
  }
  std::string unit = text.substr(used);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  static const std::map<std::string, double> units{{"", 1},       {"B", 1},          {"KB", 1e3},         {"MB", 1e6},
                                                    {"GB", 1e9},   {"TB", 1e12},      {"KIB", 1024.0},     {"MIB", 1048576.0},
                                                    {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
  const auto u = units.find(unit);
  if (u == units.end() || !(value > 0)) {
    throw Error(fmt::format("'{}' is not a size: write e.g. 2GB, 500MB, 1GiB or a number of bytes", text));
  }
  return static_cast<std::uint64_t>(value * u->second);
}

std::string default_model_output(const std::string& input, const char* suffix) {
  fs::path p(input);
  if (p.extension() == ".json") p = p.parent_path();
  if (p.extension() == ".safetensors") return (p.parent_path() / (p.stem().string() + suffix + ".safetensors")).string();
  std::string folder = p.lexically_normal().string();
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  return folder + suffix;
}

// --- quantize / dequantize ----------------------------------------------------------------------

void run_model_quantize(const ModelQuantizeArgs& a) {
  ModelQuantizeOptions options;
  options.plan.scheme = Scheme::parse(a.scheme);
  for (const auto& [keep, text] : a.rules) options.plan.rules.push_back(keep ? PlanRule::keep(text) : PlanRule::parse(text));
  options.observe.ignore_nonfinite = a.ignore_nonfinite;
  options.dry_run = a.dry_run;
  if (!a.max_shard_size.empty()) options.max_shard_bytes = parse_size(a.max_shard_size);
  const std::string output = a.output.empty() ? default_model_output(a.input, "-zp") : a.output;
  ProgressBar bar(a.quiet || a.json);
  options.progress = bar.callback();
  ModelReport r;
  try {
    r = quantize_model(a.input, output, options);
  } catch (const NonFiniteError& e) {
    throw Error(fmt::format("{} (pass --ignore-nonfinite to quantize the finite values only)", e.what()));
  }
  bar.finish();
  print_model_report(r, a.json, a.dry_run);
}

void print_model_report(const ModelReport& r, bool json, bool dry_run) {
  if (json) {
    nlohmann::json j = report_json(r);
    j["dry_run"] = dry_run;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{} -> {}{}\n", r.input.string(), r.output.string(), dry_run ? " (dry run: nothing written)" : "");
  print_plan(r);
  if (!dry_run) print_errors(r);
  print_totals(r);
  if (!dry_run) {
    fmt::print("wrote {} file{} in {:.2f} s ({:.2f} GB/s of input)\n", r.files.size(), r.files.size() == 1 ? "" : "s",
               r.seconds, r.seconds > 0 ? static_cast<double>(r.bytes_in) / r.seconds / 1e9 : 0.0);
  }
}

void run_model_dequantize(const ModelDequantizeArgs& a) {
  std::optional<DType> dtype;
  if (!a.dtype.empty()) {
    dtype = dtype_from_name(a.dtype);
    if (!dtype || !is_float(*dtype) || *dtype == DType::f64) {
      throw Error(fmt::format("unknown --dtype '{}' for a checkpoint: choose f32, f16 or bf16", a.dtype));
    }
  }
  const std::string output = a.output.empty() ? default_model_output(a.input, "-dq") : a.output;
  ProgressBar bar(a.quiet || a.json);
  const std::uint64_t max_shard = a.max_shard_size.empty() ? 0 : parse_size(a.max_shard_size);
  const ModelReport r = dequantize_model(a.input, output, dtype, max_shard, bar.callback());
  bar.finish();
  if (a.json) {
    fmt::print("{}\n", report_json(r).dump(2));
    return;
  }
  std::size_t restored = 0;
  for (const TensorRecord& t : r.tensors) restored += t.scheme.has_value();
  fmt::print("{} -> {}\n  {} tensors dequantized, {} copied as they were; {} -> {} in {} file{}\n", r.input.string(), output,
             restored, r.tensors.size() - restored, bytes_str(r.bytes_in), bytes_str(r.bytes_out), r.files.size(),
             r.files.size() == 1 ? "" : "s");
}

// --- inspect ------------------------------------------------------------------------------------

void add_inspect(CLI::App& app) {
  struct Options {
    std::string input;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("inspect", "List a model's tensors: dtype or ggml type, shape, bytes, scheme if quantized");
  cmd->add_option("input", opts->input, "An .onnx or .gguf model, or a .safetensors file, an index .json or a folder holding a checkpoint")->required();
  cmd->add_flag("--json", opts->json, "Print the listing as one JSON object");
  cmd->footer("Examples:\n  zeropoint inspect det.onnx\n  zeropoint inspect model/\n  zeropoint inspect model.zp.safetensors --json\n  zeropoint inspect model-q4_K.gguf");
  cmd->callback([opts] {
    if (is_onnx_path(opts->input)) {
      run_onnx_inspect(opts->input, opts->json);
      return;
    }
    const ModelReport r = is_gguf_path(opts->input) ? inspect_gguf(opts->input) : inspect_model(opts->input);
    if (opts->json) {
      nlohmann::json j = report_json(r);
      j.erase("output");
      j.erase("files");
      nlohmann::json metadata = nlohmann::json::object();
      for (const auto& [key, value] : r.metadata) metadata[key] = value;
      if (!r.metadata.empty()) j["metadata"] = metadata;
      fmt::print("{}\n", j.dump(2));
      return;
    }
    const std::size_t w = name_width(r);
    if (!r.metadata.empty()) {
      fmt::print("{}: {} metadata keys\n", r.input.string(), r.metadata.size());
      std::size_t kw = 0;
      for (const auto& [key, value] : r.metadata) kw = std::max(kw, key.size());
      for (const auto& [key, value] : r.metadata) {
        fmt::print("  {:<{}}  {}\n", key, kw, value.size() > 100 ? value.substr(0, 97) + "..." : value);
      }
    }
    fmt::print("{}: {} tensors\n", r.input.string(), r.tensors.size());
    // GGUF tensors carry their ggml type as their dtype; zeropoint schemes exist only in safetensors.
    const bool gguf = std::any_of(r.tensors.begin(), r.tensors.end(), [](const TensorRecord& t) { return t.ggml_type.has_value(); });
    if (gguf) {
      fmt::print("  {:<{}}  {:<7}  {:>22}  {:>10}  {:>6}\n", "tensor", w, "type", "shape", "bytes", "bits");
    } else {
      fmt::print("  {:<{}}  {:<5}  {:>16}  {:>10}  {:<22}  {:>6}\n", "tensor", w, "dtype", "shape", "bytes", "scheme", "bits");
    }
    for (const TensorRecord& t : r.tensors) {
      if (gguf) {
        fmt::print("  {:<{}}  {:<7}  {:>22}  {:>10}  {:>6.2f}\n", t.name, w, t.dtype, shape_str(t.shape),
                   bytes_str(t.bytes_out), t.bits_per_weight());
        continue;
      }
      fmt::print("  {:<{}}  {:<5}  {:>16}  {:>10}  {:<22}  {:>6.2f}\n", t.name, w, t.dtype, shape_str(t.shape),
                 bytes_str(t.bytes_out), t.scheme ? t.scheme->str() : "-", t.bits_per_weight());
    }
    std::int64_t n = 0;
    for (const TensorRecord& t : r.tensors) n += numel_of(t.shape);
    fmt::print("total: {} weights in {} ({:.2f} bits per weight)", n, bytes_str(r.bytes_out), model_bits_per_weight(r));
    if (r.bytes_in != r.bytes_out) fmt::print("; {} before quantization", bytes_str(r.bytes_in));
    fmt::print("\n");
  });
}

// --- analyze ------------------------------------------------------------------------------------

void add_analyze(CLI::App& app) {
  struct Options {
    std::string input;
    std::vector<std::string> schemes;
    std::string filter;
    std::size_t top = 20;
    bool json = false, csv = false, quiet = false, ignore_nonfinite = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "analyze", "Measure every matrix of a model under candidate schemes or ggml types: error and size, worst tensors first");
  cmd->add_option("input", opts->input, "An .onnx or .gguf model, or a .safetensors file, an index .json or a folder holding a checkpoint")->required();
  cmd->add_option("--schemes", opts->schemes,
                  "Candidates, comma-separated or repeated: zeropoint schemes (int8:channel=0, int4:block=32, ...) and "
                  "llama.cpp types (q8_0, q4_0, q4_K, q6_K, ...). Default: int8, int8:channel=0, int4:block=32, "
                  "int4:block=128 for safetensors; q8_0, q6_K, q5_K, q4_K, q4_0, q3_K for GGUF")
      ->delimiter(',');
  cmd->add_option("--filter", opts->filter, "Only tensors whose name matches this regex");
  cmd->add_option("--top", opts->top, "Tensors to list in the text report (0: all)")->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print everything as one JSON object");
  cmd->add_flag("--csv", opts->csv, "Print one CSV row per tensor and scheme");
  cmd->add_flag("--quiet", opts->quiet, "No progress bar");
  cmd->add_flag("--ignore-nonfinite", opts->ignore_nonfinite, "Leave NaN/Inf out instead of failing");
  cmd->footer(
      "Examples:\n"
      "  zeropoint analyze model/ --schemes int8,int8:channel=0,int4:block=32,int4:block=128\n"
      "  zeropoint analyze model.safetensors --filter 'mlp' --csv > mlp.csv\n"
      "  zeropoint analyze model-f16.gguf --schemes q8_0,q4_K,q4_0,int4:block=32\n"
      "  zeropoint analyze det.onnx --schemes int8,int8:channel,int8:channel:mse,int4:block=32\n"
      "SQNR is 10 log10(sum x^2 / sum (x - dequantized)^2) per tensor: higher is better, each 6 dB is\n"
      "about one bit. Tensors that lose the most come first: candidates for --keep or a finer --rule.");
  cmd->callback([opts] {
    std::vector<std::string> names = opts->schemes;
    if (names.empty()) {
      names = is_gguf_path(opts->input) ? std::vector<std::string>{"q8_0", "q6_K", "q5_K", "q4_K", "q4_0", "q3_K"}
                                         : std::vector<std::string>{"int8", "int8:channel=0", "int4:block=32", "int4:block=128"};
    }
    std::vector<Candidate> schemes;
    for (const std::string& s : names) schemes.push_back(Candidate::parse(s));
    ObserveOptions observe;
    observe.ignore_nonfinite = opts->ignore_nonfinite;
    ProgressBar bar(opts->quiet || opts->json || opts->csv);
    const AnalyzeReport r = analyze_model(opts->input, schemes, opts->filter, observe, bar.callback());
    bar.finish();
    const std::size_t k = schemes.size();
    // Model-level figures per scheme.
    struct Summary {
      std::uint64_t bytes = 0;
      double sqnr_sum = 0, worst = INFINITY;
      std::string worst_name;
    };
    std::vector<Summary> sum(k);
    std::uint64_t bytes_in = 0;
    std::int64_t weights = 0;
    for (const auto& row : r.rows) {
      bytes_in += row.bytes_in;
      weights += numel_of(row.shape);
      for (std::size_t i = 0; i < k; ++i) {
        sum[i].bytes += static_cast<std::uint64_t>(row.bytes_out[i]);
        const double db = row.error[i].sqnr_db;
        sum[i].sqnr_sum += std::isinf(db) ? 0 : db;
        if (db < sum[i].worst) {
          sum[i].worst = db;
          sum[i].worst_name = row.name;
        }
      }
    }
    // Worst first: by SQNR under the scheme with the fewest bits.
    std::size_t tightest = 0;
    for (std::size_t i = 1; i < k; ++i) {
      if (sum[i].bytes < sum[tightest].bytes) tightest = i;
    }
    std::vector<const AnalyzeReport::Row*> order;
    for (const auto& row : r.rows) order.push_back(&row);
    std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) {
      return a->error[tightest].sqnr_db < b->error[tightest].sqnr_db;
    });
    auto bits = [&](std::uint64_t bytes, std::int64_t n) { return n > 0 ? 8.0 * static_cast<double>(bytes) / static_cast<double>(n) : 0.0; };

    if (opts->csv) {
      fmt::print("tensor,shape,dtype,scheme,bytes_in,bytes_out,bits_per_weight,sqnr_db,relative_mse,max_abs_error,cosine\n");
      for (const auto* row : order) {
        for (std::size_t i = 0; i < k; ++i) {
          const ErrorMetrics& m = row->error[i];
          fmt::print("{},\"{}\",{},{},{},{},{:.4f},{},{:.6g},{:.6g},{:.9f}\n", row->name, shape_str(row->shape), row->dtype,
                     schemes[i].str(), row->bytes_in, row->bytes_out[i],
                     bits(static_cast<std::uint64_t>(row->bytes_out[i]), numel_of(row->shape)), sqnr_str(m.sqnr_db),
                     m.relative_mse, m.max_abs_error, m.cosine);
        }
      }
      return;
    }
    if (opts->json) {
      nlohmann::json summary = nlohmann::json::array();
      for (std::size_t i = 0; i < k; ++i) {
        summary.push_back({{"scheme", schemes[i].str()},
                           {"bytes_in", bytes_in},
                           {"bytes_out", sum[i].bytes},
                           {"bits_per_weight", json_number(bits(sum[i].bytes, weights))},
                           {"mean_sqnr_db", json_number(r.rows.empty() ? 0 : sum[i].sqnr_sum / static_cast<double>(r.rows.size()))},
                           {"worst_sqnr_db", json_number(sum[i].worst)},
                           {"worst_tensor", sum[i].worst_name}});
      }
      nlohmann::json tensors = nlohmann::json::array();
      for (const auto* row : order) {
        nlohmann::json per = nlohmann::json::array();
        for (std::size_t i = 0; i < k; ++i) {
          per.push_back({{"scheme", schemes[i].str()},
                         {"bytes_out", row->bytes_out[i]},
                         {"bits_per_weight", json_number(bits(static_cast<std::uint64_t>(row->bytes_out[i]), numel_of(row->shape)))},
                         {"error", to_json(row->error[i])}});
        }
        tensors.push_back({{"name", row->name}, {"shape", row->shape}, {"dtype", row->dtype}, {"bytes_in", row->bytes_in}, {"schemes", per}});
      }
      const nlohmann::json j{{"input", r.input.string()}, {"summary", summary}, {"tensors", tensors},
                             {"other_bytes", r.other_bytes}, {"seconds", r.seconds}};
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("{}: {} matrices analyzed ({}), {} in other tensors left as they are; {:.1f} s\n", r.input.string(),
               r.rows.size(), bytes_str(bytes_in), bytes_str(r.other_bytes), r.seconds);
    fmt::print("model summary (the analyzed matrices):\n");
    fmt::print("  {:<24}  {:>10}  {:>6}  {:>10}  {:>11}  {}\n", "scheme", "size", "bits", "mean SQNR", "worst SQNR", "worst tensor");
    for (std::size_t i = 0; i < k; ++i) {
      fmt::print("  {:<24}  {:>10}  {:>6.2f}  {:>10}  {:>11}  {}\n", schemes[i].str(), bytes_str(sum[i].bytes),
                 bits(sum[i].bytes, weights),
                 sqnr_str(r.rows.empty() ? 0 : sum[i].sqnr_sum / static_cast<double>(r.rows.size())), sqnr_str(sum[i].worst),
                 sum[i].worst_name);
    }
    const std::size_t shown = opts->top == 0 ? order.size() : std::min(opts->top, order.size());
    fmt::print("tensors that lose the most first (SQNR in dB under {}){}:\n", schemes[tightest].str(),
               shown < order.size() ? fmt::format(", {} of {}", shown, order.size()) : "");
    std::size_t w = 6;
    for (std::size_t i = 0; i < shown; ++i) w = std::max(w, order[i]->name.size());
    std::string header = fmt::format("  {:<{}}  {:>16}", "tensor", w, "shape");
    for (const Candidate& s : schemes) header += fmt::format("  {:>16}", s.str());
    fmt::print("{}\n", header);
    for (std::size_t i = 0; i < shown; ++i) {
      std::string line = fmt::format("  {:<{}}  {:>16}", order[i]->name, w, shape_str(order[i]->shape));
      for (std::size_t s = 0; s < k; ++s) line += fmt::format("  {:>16}", sqnr_str(order[i]->error[s].sqnr_db));
      fmt::print("{}\n", line);
    }
  });
}

}  // namespace zp::cli
