// zeropoint/model.hpp — whole checkpoints (safetensors, one file or sharded): which tensor gets
// which scheme, and the jobs quantize, dequantize, inspect and analyze.
//
// A quantized checkpoint stays a safetensors checkpoint (docs/formats.md, "Quantized
// safetensors"): for a tensor NAME, its codes are NAME (8- and 16-bit codes, the tensor's shape)
// or NAME_packed (2- and 4-bit codes packed into bytes), its scales NAME_scale, its integer zero
// points NAME_zero_point (asymmetric schemes) or float offsets NAME_offset; for a NAME ending in
// ".weight" these are the compressed-tensors names (weight_scale, weight_zero_point,
// weight_packed). "__metadata__" gains one entry, "zeropoint", a JSON object recording every
// quantized tensor's scheme, dtype and shape, so the file describes itself.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "zeropoint/dtype.hpp"
#include "zeropoint/ggml.hpp"
#include "zeropoint/metrics.hpp"
#include "zeropoint/observe.hpp"
#include "zeropoint/scheme.hpp"
#include "zeropoint/tensor.hpp"

namespace zp {

// --- The plan ---------------------------------------------------------------------------------

/// Tensors whose name matches `pattern` (ECMAScript regex, searched anywhere in the name, as
/// llama.cpp's --tensor-type does) get `scheme`, or stay as they are when there is none.
struct PlanRule {
  std::string pattern;
  std::optional<Scheme> scheme;

  /// "REGEX=SCHEME" (the last '=' separates them, as regexes rarely end in one).
  static PlanRule parse(std::string_view text);
  static PlanRule keep(std::string_view pattern);
  std::string str() const;  ///< "REGEX=SCHEME" or "keep REGEX"
};

struct PlanOptions {
  Scheme scheme;                ///< for every matrix no rule names
  std::vector<PlanRule> rules;  ///< tried in order before the default; the first match wins
};

struct PlanDecision {
  bool quantize = false;
  Scheme scheme;       ///< when quantize
  std::string reason;  ///< which rule, or which default, decided
};

/// Decides tensor by tensor: the first matching rule; otherwise floating-point tensors of rank
/// >= 2 get the default scheme and the rest (norms, biases, integer tensors) stay as they are.
class Plan {
 public:
  explicit Plan(PlanOptions options);  ///< throws zp::Error for a pattern that is not a regex
  /// Throws zp::Error naming the tensor if its rule's scheme cannot apply to it (an axis it
  /// does not have, a non-float tensor).
  PlanDecision decide(std::string_view name, std::optional<DType> dtype, const Shape& shape) const;
  const PlanOptions& options() const noexcept { return options_; }

 private:
  PlanOptions options_;
  std::vector<std::regex> patterns_;
};

/// Bytes the codes and parameters of a tensor of `shape` take under `scheme`, as stored in a
/// quantized checkpoint.
std::int64_t quantized_bytes(const Shape& shape, const Scheme& scheme);

// --- Jobs -------------------------------------------------------------------------------------

/// One tensor of a job's report.
struct TensorRecord {
  std::string name;
  std::string dtype;  ///< as stored in the input ("BF16", ...)
  Shape shape;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;       ///< codes + parameters when quantized
  std::optional<Scheme> scheme;      ///< when quantized (or, for inspect, stored quantized)
  std::string reason;                ///< the plan's reason (quantize)
  std::optional<ErrorMetrics> error;  ///< of the dequantized codes against the input
  /// GGUF: the tensor's ggml type in the output (inspect: in the file), and whether it was
  /// converted to it (false: copied byte for byte).
  std::optional<ggml::Type> ggml_type;
  bool converted = false;

  double bits_per_weight() const noexcept;
};

struct ModelReport {
  std::filesystem::path input, output;
  std::vector<TensorRecord> tensors;
  std::vector<std::filesystem::path> files;  ///< written (nothing for a dry run)
  /// inspect: the file's metadata in file order, each value as short text (GGUF; safetensors'
  /// "__metadata__").
  std::vector<std::pair<std::string, std::string>> metadata;
  std::uint64_t bytes_in = 0, bytes_out = 0;  ///< tensor data
  double seconds = 0;
};

/// Called as work proceeds: bytes of tensor data done so far, the total, the current tensor.
using Progress = std::function<void(std::uint64_t done, std::uint64_t total, std::string_view tensor)>;

struct ModelQuantizeOptions {
  PlanOptions plan;
  ObserveOptions observe;
  std::uint64_t max_shard_bytes = 0;  ///< 0: one output file
  bool dry_run = false;               ///< plan and sizes only; nothing is read or written
  Progress progress;
};

/// Quantizes a checkpoint (a .safetensors file, an index .json or a folder) into `output`: a
/// .safetensors path (shards, if any, named after it) or a folder (model.safetensors or
/// model-0000i-of-0000N.safetensors plus the index). Tensors are processed one at a time, and
/// those over 16 MiB whose parameter groups are rows 16 MiB of rows at a time (memory follows the
/// largest tensor, not the model); tensors the plan keeps are copied byte for byte. Outputs appear only when all of them are complete; an output path that is one of
/// the input files is refused. Throws zp::Error naming the file and tensor on any problem.
ModelReport quantize_model(const std::filesystem::path& input, const std::filesystem::path& output,
                           const ModelQuantizeOptions& options);

/// Turns a checkpoint written by quantize_model back into floats: every quantized tensor
/// dequantized to `dtype` (default: the dtype it had before quantization), every other tensor
/// copied byte for byte, the "zeropoint" metadata entry dropped. Output naming as for
/// quantize_model.
ModelReport dequantize_model(const std::filesystem::path& input, const std::filesystem::path& output,
                             std::optional<DType> dtype = std::nullopt, std::uint64_t max_shard_bytes = 0,
                             const Progress& progress = {});

/// Every tensor of a checkpoint, with its scheme when it is stored quantized (the codes and
/// parameter tensors of a quantized tensor are reported as one record, bytes_out their sum).
ModelReport inspect_model(const std::filesystem::path& input);

/// What analyze measures a tensor under: one of zeropoint's schemes ("int4:block=32"), or one
/// of llama.cpp's block formats ("q4_K"), applied to rows of the tensor's last dimension (a row
/// that does not fill the type's blocks gets the fallback quantize would give it).
struct Candidate {
  std::optional<Scheme> scheme;
  std::optional<ggml::Type> ggml_type;

  /// A ggml type name (q8_0, q4_K, ...; those zeropoint writes) or else a scheme.
  static Candidate parse(std::string_view text);
  std::string str() const;
};

/// For every tensor the plan's default would quantize (floating point, rank >= 2; a `filter`
/// regex narrows them), the error and size under each candidate. The input is a safetensors
/// checkpoint or a GGUF file (whose float tensors are analyzed).
struct AnalyzeReport {
  std::filesystem::path input;
  std::vector<Candidate> candidates;
  struct Row {
    std::string name;
    Shape shape;
    std::string dtype;
    std::uint64_t bytes_in = 0;
    std::vector<ErrorMetrics> error;       ///< per candidate
    std::vector<std::int64_t> bytes_out;   ///< per candidate
  };
  std::vector<Row> rows;  ///< in file order
  std::uint64_t other_bytes = 0;  ///< tensors left out of the analysis (kept as they are)
  double seconds = 0;
};
AnalyzeReport analyze_model(const std::filesystem::path& input, const std::vector<Candidate>& candidates,
                            const std::string& filter = {}, const ObserveOptions& observe = {},
                            const Progress& progress = {});

}  // namespace zp
