// Checkpoint (safetensors) jobs behind `zeropoint quantize` / `dequantize`, and the progress bar.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "zeropoint/ggml_model.hpp"
#include "zeropoint/model.hpp"

namespace zp::cli {

/// Whether a path names a checkpoint (a .safetensors file, an index .json or a folder) rather
/// than a NumPy file.
bool is_model_path(const std::string& path);

/// "2GB", "500MB", "1GiB", "123" -> bytes.
std::uint64_t parse_size(const std::string& text);

struct ModelQuantizeArgs {
  std::string input, output, scheme, max_shard_size;
  std::vector<std::pair<bool, std::string>> rules;  ///< (keep?, text) in command-line order
  bool dry_run = false, ignore_nonfinite = false, quiet = false, json = false;
};
void run_model_quantize(const ModelQuantizeArgs& args);

struct ModelDequantizeArgs {
  std::string input, output, dtype, max_shard_size;
  bool quiet = false, json = false;
};
void run_model_dequantize(const ModelDequantizeArgs& args);

struct GgufQuantizeArgs {
  std::string input, output, type, output_type, token_embedding_type, imatrix;
  std::vector<std::pair<bool, std::string>> rules;  ///< (keep?, text) in command-line order
  bool pure = false, allow_requantize = false, dry_run = false, quiet = false, json = false;
};
void run_gguf_quantize(const GgufQuantizeArgs& args);

struct OnnxQuantizeArgs {
  std::string input, output, mode, scheme, activation_scheme, method;
  std::vector<std::pair<bool, std::string>> rules;  ///< (keep?, text) in command-line order
  std::vector<std::string> calibration, exclude_ops, exclude_nodes;
  double percentile = 0;
  int threads = 0;
  bool quantize_norm = false, dry_run = false, quiet = false, json = false;
};
void run_onnx_quantize(const OnnxQuantizeArgs& args);
void run_onnx_inspect(const std::string& input, bool json);

/// The report of quantize (or convert, as JSON): plan, errors, totals.
void print_model_report(const ModelReport& r, bool json, bool dry_run);

/// "1.50 MiB"
std::string bytes_text(std::uint64_t bytes);

/// A one-line bar on stderr, drawn only when stderr is a terminal and not quiet.
class ProgressBar {
 public:
  explicit ProgressBar(bool quiet);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  /// What to hand to a job (empty when the bar is off).
  Progress callback();
  void update(std::uint64_t done, std::uint64_t total, std::string_view tensor);
  void finish();  ///< clears the bar's line

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace zp::cli
