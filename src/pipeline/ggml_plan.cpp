// Which tensor of a GGUF model gets which ggml type: llama-quantize's rules for a uniform type.
#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "zeropoint/error.hpp"
#include "zeropoint/ggml_model.hpp"

namespace zp {
namespace {

using ggml::Type;

ggml::Type parse_type(std::string_view text, std::string_view context) {
  const auto t = ggml::type_from_name(text);
  if (!t) throw Error(fmt::format("{}: '{}' is not a ggml type (e.g. q4_0, q8_0, q4_K, q6_K, f16)", context, text));
  return *t;
}

void check_writable(Type t, std::string_view context) {
  if (ggml::traits(t).quantize_ref == nullptr) {
    throw Error(fmt::format("{}: zeropoint cannot write ggml type {} (it writes f32, f16, bf16, q8_0, q4_0, q4_1, "
                            "q5_0, q5_1 and q2_K to q6_K)",
                            context, ggml::traits(t).name));
  }
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}
bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// Tensors llama-quantize leaves alone although they are weight matrices (llama-quant.cpp).
constexpr std::array kNeverQuantized = {
    "_norm.weight",          "ffn_gate_inp.weight",        "altup",                  "laurel",
    "per_layer_model_proj",  "ssm_conv1d.weight",          "shortconv.conv.weight",  "time_mix_first.weight",
    "time_mix_w0.weight",    "time_mix_w1.weight",         "time_mix_w2.weight",     "time_mix_v0.weight",
    "time_mix_v1.weight",    "time_mix_v2.weight",         "time_mix_a0.weight",     "time_mix_a1.weight",
    "time_mix_a2.weight",    "time_mix_g1.weight",         "time_mix_g2.weight",     "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
};

std::optional<std::string_view> never_quantized(std::string_view name) {
  if (name == "position_embd.weight" || name == "token_types.weight") return name;
  for (std::string_view part : kNeverQuantized) {
    if (contains(name, part)) return part;
  }
  return std::nullopt;
}

// The next type llama-quantize tries when rows do not fill whole blocks of `t`.
std::optional<Type> fallback_of(Type t) {
  switch (t) {
    case Type::q2_K:
    case Type::q3_K: return Type::q4_0;  // llama.cpp: iq4_nl, which zeropoint does not write
    case Type::q4_K: return Type::q5_0;
    case Type::q5_K: return Type::q5_1;
    case Type::q6_K: return Type::q8_0;
    default: return std::nullopt;
  }
}

}  // namespace

std::vector<ggml::Type> fallback_chain(ggml::Type type, std::uint64_t row_length) {
  std::vector<Type> chain{type};
  while (row_length % ggml::traits(chain.back()).block_size != 0) chain.push_back(fallback_of(chain.back()).value_or(Type::f16));
  return chain;
}

GgmlRule GgmlRule::parse(std::string_view text) {
  const auto eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    throw Error(fmt::format("rule '{}' is not REGEX=TYPE (e.g. 'ffn_down=q6_K')", text));
  }
  return GgmlRule{std::string(text.substr(0, eq)), parse_type(text.substr(eq + 1), fmt::format("rule '{}'", text))};
}

GgmlRule GgmlRule::keep(std::string_view pattern) { return GgmlRule{std::string(pattern), std::nullopt}; }

std::string GgmlRule::str() const {
  return type ? fmt::format("{}={}", pattern, ggml::traits(*type).name) : "keep " + pattern;
}

GgmlPlan::GgmlPlan(GgmlPlanOptions options) : options_(std::move(options)) {
  check_writable(options_.type, "--type");
  if (options_.output_type) check_writable(*options_.output_type, "--output-type");
  if (options_.token_embedding_type) check_writable(*options_.token_embedding_type, "--token-embedding-type");
  for (const GgmlRule& rule : options_.rules) {
    if (rule.type) check_writable(*rule.type, fmt::format("rule '{}'", rule.str()));
    try {
      patterns_.emplace_back(rule.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw Error(fmt::format("'{}' is not a regular expression: {}", rule.pattern, e.what()));
    }
  }
}

GgmlDecision GgmlPlan::decide(std::string_view name, Type current, const std::vector<std::uint64_t>& dims,
                              bool has_output) const {
  const std::string n(name);
  auto keep = [&](std::string reason) { return GgmlDecision{current, false, std::move(reason)}; };
  const ggml::TypeTraits& from = ggml::traits(current);
  const bool has_values = current == Type::f32 || current == Type::f16 || current == Type::bf16 || from.quantized;
  // The tensor's rows must fill whole blocks; fall back as llama-quantize does.
  auto convert_to = [&](Type t, std::string reason) {
    const std::uint64_t row = dims.empty() ? 1 : dims[0];
    const std::vector<Type> chain = fallback_chain(t, row);
    for (std::size_t i = 1; i < chain.size(); ++i) {
      const ggml::TypeTraits& tried = ggml::traits(chain[i - 1]);
      reason += fmt::format("; rows of {} do not fill {}'s {}-value blocks, so {}", row, tried.name, tried.block_size,
                            ggml::traits(chain[i]).name);
    }
    t = chain.back();
    if (t == current) return keep(reason + " (already)");
    if (!has_values) {
      throw Error(fmt::format("tensor '{}' holds {} values, which {} cannot quantize", n, from.name, reason));
    }
    if (from.quantized && !options_.allow_requantize) {
      throw Error(fmt::format("tensor '{}' is already {}: requantizing it to {} loses more than quantizing the float "
                              "model (pass --allow-requantize to do it anyway)",
                              n, from.name, ggml::traits(t).name));
    }
    if (from.dequantize == nullptr) {
      throw Error(fmt::format("tensor '{}' is {}, which zeropoint cannot read back to floats", n, from.name));
    }
    return GgmlDecision{t, true, std::move(reason)};
  };

  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (!std::regex_search(n, patterns_[i])) continue;
    const GgmlRule& rule = options_.rules[i];
    if (!rule.type) return keep(fmt::format("--keep '{}'", rule.pattern));
    return convert_to(*rule.type, fmt::format("--rule '{}'", rule.str()));
  }

  if (!has_values) return keep("not floating point");
  if (dims.size() < 2) return keep(dims.size() == 1 ? "1-D (norm or bias)" : "a scalar");
  if (!ends_with(n, "weight")) return keep("not a weight");
  if (const auto part = never_quantized(n)) return keep(fmt::format("llama-quantize keeps '{}'", *part));

  const bool is_output = n == "output.weight" || (!has_output && n == "token_embd.weight");
  if (is_output) {
    if (options_.output_type) return convert_to(*options_.output_type, "--output-type");
    if (!options_.pure && options_.type != Type::q8_0 && ggml::traits(options_.type).quantized) {
      const bool fits_k = dims[0] % ggml::kSuperBlock == 0;
      return convert_to(fits_k ? Type::q6_K : Type::q8_0,
                        fits_k ? "output tensor: q6_K as llama-quantize" : "output tensor: q8_0 as llama-quantize");
    }
  } else if (n == "token_embd.weight" && options_.token_embedding_type) {
    return convert_to(*options_.token_embedding_type, "--token-embedding-type");
  }
  return convert_to(options_.type, "default for weight matrices");
}

bool is_gguf_path(const std::filesystem::path& path) { return path.extension() == ".gguf"; }

}  // namespace zp
