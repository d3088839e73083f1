// Which tensor of a model gets which scheme.
#include <fmt/format.h>

#include "zeropoint/error.hpp"
#include "zeropoint/model.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/quantize.hpp"

namespace zp {

PlanRule PlanRule::parse(std::string_view text) {
  const auto eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    throw Error(fmt::format("rule '{}' is not REGEX=SCHEME (e.g. 'mlp\\.down_proj=int8:channel=0')", text));
  }
  // A scheme holds '=' itself (block=32): split at the first '=' that leaves a valid scheme.
  for (std::size_t at = text.find('='); at != std::string_view::npos; at = text.find('=', at + 1)) {
    if (at == 0) continue;
    try {
      return PlanRule{std::string(text.substr(0, at)), Scheme::parse(text.substr(at + 1))};
    } catch (const Error&) {
    }
  }
  // None did: report the scheme error of the likeliest split (the first '=').
  const auto first = text.find('=');
  try {
    (void)Scheme::parse(text.substr(first + 1));
  } catch (const Error& e) {
    throw Error(fmt::format("rule '{}': {}", text, e.what()));
  }
  throw Error(fmt::format("rule '{}' is not REGEX=SCHEME", text));
}

PlanRule PlanRule::keep(std::string_view pattern) { return PlanRule{std::string(pattern), std::nullopt}; }

std::string PlanRule::str() const { return scheme ? fmt::format("{}={}", pattern, scheme->str()) : "keep " + pattern; }

Plan::Plan(PlanOptions options) : options_(std::move(options)) {
  options_.scheme.validate();
  for (const PlanRule& rule : options_.rules) {
    try {
      patterns_.emplace_back(rule.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw Error(fmt::format("'{}' is not a regular expression: {}", rule.pattern, e.what()));
    }
  }
}

PlanDecision Plan::decide(std::string_view name, std::optional<DType> dtype, const Shape& shape) const {
  const std::string n(name);
  const bool floating = dtype && is_float(*dtype);
  auto quantize_with = [&](const Scheme& scheme, std::string reason) {
    if (!floating) {
      throw Error(fmt::format("tensor '{}' is not floating point, so {} cannot quantize it", n, reason));
    }
    try {
      (void)ParamLayout::of(shape, scheme);
    } catch (const Error& e) {
      throw Error(fmt::format("tensor '{}' of shape {}: {} ({})", n, shape_str(shape), e.what(), reason));
    }
    return PlanDecision{true, scheme, std::move(reason)};
  };
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (!std::regex_search(n, patterns_[i])) continue;
    const PlanRule& rule = options_.rules[i];
    if (!rule.scheme) return PlanDecision{false, {}, fmt::format("--keep '{}'", rule.pattern)};
    return quantize_with(*rule.scheme, fmt::format("--rule '{}'", rule.str()));
  }
  if (!floating) return PlanDecision{false, {}, "not floating point"};
  if (shape.size() < 2) return PlanDecision{false, {}, shape.empty() ? "a scalar" : "1-D (norm or bias)"};
  return quantize_with(options_.scheme, "default for matrices");
}

std::int64_t quantized_bytes(const Shape& shape, const Scheme& scheme) {
  return packed_size(checked_numel(shape), scheme.bits) + stored_param_bytes(shape, scheme);
}

}  // namespace zp
