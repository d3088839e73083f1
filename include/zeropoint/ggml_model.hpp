// zeropoint/ggml_model.hpp — whole models in llama.cpp's block formats: which tensor gets which
// ggml type (the rules llama-quantize applies), and the jobs quantize, inspect and convert on
// GGUF files. analyze (model.hpp) measures ggml types too, through Candidate.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "zeropoint/dtype.hpp"
#include "zeropoint/ggml.hpp"
#include "zeropoint/model.hpp"

namespace zp {

// --- The plan -------------------------------------------------------------------------------

/// Tensors whose name matches `pattern` (ECMAScript regex, searched anywhere in the name) get
/// `type`, or stay as they are when there is none.
struct GgmlRule {
  std::string pattern;
  std::optional<ggml::Type> type;

  /// "REGEX=TYPE", e.g. 'ffn_down=q6_K' (the last '=' separates them).
  static GgmlRule parse(std::string_view text);
  static GgmlRule keep(std::string_view pattern);
  std::string str() const;
};

struct GgmlPlanOptions {
  ggml::Type type = ggml::Type::q8_0;  ///< for every weight matrix no rule names
  std::vector<GgmlRule> rules;         ///< tried in order first; the first match wins
  /// output.weight (token_embd.weight when the model has no output.weight: they are tied).
  /// Unset: q6_K, or q8_0 when `type` is q8_0 or the rows do not fit q6_K's 256-value blocks,
  /// as llama-quantize does; with `pure`, `type`.
  std::optional<ggml::Type> output_type;
  std::optional<ggml::Type> token_embedding_type;  ///< token_embd.weight; unset: `type`
  bool pure = false;              ///< no output.weight special case (llama-quantize --pure)
  bool allow_requantize = false;  ///< quantize tensors that are already in a block format
};

struct GgmlDecision {
  ggml::Type type;      ///< the type the tensor is written in (its own when kept)
  bool convert = false; ///< false: copied byte for byte
  std::string reason;   ///< which rule or default decided, and any fallback
};

/// Decides tensor by tensor. `dims` are in ggml order (dims[0] is the row, the contiguous
/// dimension); `has_output` says whether the model has an output.weight. Default: tensors named
/// "*weight" with two or more dimensions get the plan's type, except those llama-quantize
/// never quantizes (norms, MoE routers, position embeddings, small recurrent-state matrices).
/// A row whose length is not a multiple of the chosen type's block falls back as llama-quantize
/// does (q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0; q2_K and q3_K -> q4_0 where llama.cpp picks
/// iq4_nl, which zeropoint does not write; finally f16). Throws zp::Error naming the tensor
/// for a type zeropoint cannot write, or a block-format input without allow_requantize.
class GgmlPlan {
 public:
  explicit GgmlPlan(GgmlPlanOptions options);  ///< throws zp::Error for a bad regex or type
  GgmlDecision decide(std::string_view name, ggml::Type current, const std::vector<std::uint64_t>& dims,
                      bool has_output) const;
  const GgmlPlanOptions& options() const noexcept { return options_; }

 private:
  GgmlPlanOptions options_;
  std::vector<std::regex> patterns_;
};

/// The types tried for rows of `row_length` values when `type` is asked for: `type` first, then
/// the fallbacks GgmlPlan describes; the last one is used (its blocks fit the row).
std::vector<ggml::Type> fallback_chain(ggml::Type type, std::uint64_t row_length);

// --- Jobs -----------------------------------------------------------------------------------

struct GgufQuantizeOptions {
  GgmlPlanOptions plan;
  /// llama.cpp's importance matrix (llama-imatrix's output, GGUF or legacy .dat), or empty.
  /// The K-quants (q2_K..q6_K) use it exactly as llama-quantize does; q8_0 and the float types
  /// ignore it, as llama-quantize does; q4_0, q4_1, q5_0 and q5_1 have importance-weighted
  /// searches in llama.cpp that zeropoint does not implement, so those tensors are written
  /// without it (llama.cpp's bytes for no imatrix) and their record says so.
  std::filesystem::path imatrix;
  bool dry_run = false;  ///< plan and sizes only; nothing is read or written
  Progress progress;
};

/// Requantizes a GGUF file as llama-quantize does: every metadata key kept (general.file_type
/// and general.quantization_version set), tensors in file order, the plan's tensors converted
/// with the fast kernels (the bytes of ggml's reference quantizers), the others copied byte for
/// byte. The output appears only when complete. Records: dtype is the input's ggml type name;
/// `reason` and `stored` say what became of each tensor.
ModelReport quantize_gguf(const std::filesystem::path& input, const std::filesystem::path& output,
                          const GgufQuantizeOptions& options);

/// Every tensor of a GGUF file (ggml type, shape in ggml order reversed to row-major like
/// safetensors', bytes), with the metadata count in the report.
ModelReport inspect_gguf(const std::filesystem::path& input);

struct ConvertOptions {
  /// GGUF -> safetensors: the dtype block-format tensors are expanded to (f32, f16, bf16).
  DType dtype = DType::f32;
  Progress progress;
};

/// Converts the tensors of a model between safetensors (one file, an index or a folder) and
/// GGUF, by the output's extension. Names are kept; shapes are reversed between row-major
/// (safetensors) and ggml order; element types map one to one; GGUF block-format tensors are
/// dequantized. Metadata: safetensors' string pairs become GGUF strings and back; GGUF numbers
/// and booleans become text; GGUF arrays (tokenizer vocabularies) are not carried. Nothing of a
/// model's architecture is translated (that is llama.cpp's convert_hf_to_gguf.py).
ModelReport convert_model(const std::filesystem::path& input, const std::filesystem::path& output,
                          const ConvertOptions& options = {});

bool is_gguf_path(const std::filesystem::path& path);

}  // namespace zp
