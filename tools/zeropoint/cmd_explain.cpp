// zeropoint explain: the quantization math for one range, every formula with its numbers.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "output.hpp"
#include "zeropoint/explain.hpp"

namespace zp::cli {
namespace {

struct ExplainOptions {
  std::vector<float> range;
  std::string scheme = "int8";
  std::vector<float> values;
  bool json = false;
};

std::string rounding_words(Rounding r) {
  switch (r) {
    case Rounding::half_even: return "ties go to the even integer";
    case Rounding::half_away: return "ties go away from zero";
    case Rounding::half_up: return "ties go up";
  }
  return "";
}

void print_params(const Explanation& e) {
  const Scheme& s = e.scheme;
  const ParamDerivation& d = e.params;
  const AffineParams& p = d.result;
  fmt::print("1. Codes\n   {}: qmin = {}, qmax = {}{}\n\n", s.type_name(), d.qmin, d.qmax,
             s.narrow ? " (narrow: the lowest code is left out so the range is symmetric)" : "");

  if (s.zero_point == ZeroPointKind::float_offset) {
    fmt::print("2. Range\n   a float offset absorbs the minimum, so the range is used as it is: [{}, {}]\n\n",
               num(e.min), num(e.max));
    fmt::print("3. Scale\n   scale = (max - min) / (qmax - qmin) = ({} - {}) / ({} - {}) = {}\n", num(d.hi), num(d.lo),
               d.qmax, d.qmin, num(d.exact_scale));
  } else {
    if (d.lo != e.min || d.hi != e.max) {
      fmt::print(
          "2. Range\n   an integer zero point must be a code, and 0.0 must map to it exactly, so the range is widened to\n"
          "   include 0: [{}, {}] becomes [{}, {}]\n\n",
          num(e.min), num(e.max), num(d.lo), num(d.hi));
    } else {
      fmt::print("2. Range\n   [{}, {}] already includes 0\n\n", num(e.min), num(e.max));
    }
    if (s.symmetric) {
      fmt::print("3. Scale\n   amax = max(|min|, |max|) = max({}, {}) = {}\n", num(std::fabs(d.lo)), num(std::fabs(d.hi)),
                 num(d.amax));
      if (s.narrow) {
        fmt::print("   scale = amax / qmax = {} / {} = {}\n", num(d.amax), d.qmax, num(d.exact_scale));
      } else {
        fmt::print("   scale = amax / ((qmax - qmin) / 2) = {} / {} = {}\n", num(d.amax), num(d.divisor),
                   num(d.exact_scale));
      }
    } else {
      fmt::print("3. Scale\n   scale = (max - min) / (qmax - qmin) = ({} - {}) / ({} - {}) = {}\n", num(d.hi), num(d.lo),
                 d.qmax, d.qmin, num(d.exact_scale));
    }
  }
  if (d.degenerate) {
    fmt::print("   that is below the smallest normal float, so the range is degenerate: scale = 1 (ONNX Runtime's rule)\n\n");
  } else {
    fmt::print("   stored as float32: scale = {}\n\n", num(p.scale));
  }

  if (s.zero_point == ZeroPointKind::float_offset) {
    fmt::print("4. Offset\n   offset = min - qmin * scale = {} - {} * {} = {}\n\n", num(d.lo), d.qmin, num(p.scale),
               num(p.offset));
  } else if (s.symmetric) {
    if (s.is_signed) fmt::print("4. Zero point\n   symmetric signed codes: zero_point = 0\n\n");
    else fmt::print("4. Zero point\n   symmetric unsigned codes centre on 2^(bits-1): zero_point = {}\n\n", p.zero_point);
  } else if (d.degenerate) {
    fmt::print("4. Zero point\n   degenerate range: zero_point = 0\n\n");
  } else {
    fmt::print("4. Zero point\n   zero_point = qmin - round(min / scale) = {} - round({} / {}) = {} - round({}) = {}\n\n",
               d.qmin, num(d.lo), num(p.scale), d.qmin, num(d.lo / static_cast<double>(p.scale)), p.zero_point);
  }
}

void print_values(const Explanation& e) {
  const Scheme& s = e.scheme;
  const AffineParams& p = e.params.result;
  const bool offset = s.zero_point == ZeroPointKind::float_offset;
  if (offset) {
    fmt::print("5. Quantize: q = clamp(round((x - offset) / scale), {}, {}), {}\n", s.qmin(), s.qmax(),
               rounding_words(s.rounding));
    fmt::print("   Dequantize: x' = q * scale + offset\n\n");
  } else {
    fmt::print("5. Quantize: q = clamp(round(x / scale) + zero_point, {}, {}), {}\n", s.qmin(), s.qmax(),
               rounding_words(s.rounding));
    fmt::print("   Dequantize: x' = (q - zero_point) * scale\n\n");
  }
  if (e.values.empty()) return;
  fmt::print("   {:>12} {:>14} {:>9} {:>9} {:>7} {:>14} {:>12}\n", "x", offset ? "(x-off)/scale" : "x / scale", "round",
             offset ? "" : "+ zp", "q", "x'", "x' - x");
  for (const ExplainedValue& v : e.values) {
    const double frac = std::fabs(v.quotient - std::trunc(v.quotient));
    std::string note;
    if (frac == 0.5) note = "  tie";
    if (v.saturated) note += "  clamped";
    fmt::print("   {:>12} {:>14} {:>9} {:>9} {:>7} {:>14} {:>12}{}\n", num(v.x), num(v.quotient), num(v.rounded),
               offset ? "" : num(v.unclamped), v.code, num(v.dequantized), num(v.error), note);
  }
  fmt::print("\n   A value inside the range is off by at most scale / 2 = {}.\n", num(p.scale / 2.0f));
}

void print_article(const Explanation& e) {
  if (!e.article) return;
  const ArticleAsymmetric& a = *e.article;
  const Scheme& s = e.scheme;
  std::string theirs, ours;
  for (std::size_t i = 0; i < e.values.size() && i < 3; ++i) {
    theirs += fmt::format("{}Q({}) = {}", i ? ", " : "", num(e.values[i].x), num(a.codes[i]));
    ours += fmt::format("{}{}", i ? ", " : "", e.values[i].code);
  }
  fmt::print(
      "\nWhere the seed article differs\n"
      "   The article subtracts the zero point from x before dividing, Q = round((x - zp) / scale); the standard\n"
      "   (ONNX, PyTorch, TFLite) adds it after dividing, q = round(x / scale) + zp, because the zero point counts codes,\n"
      "   not units of x.");
  if (s.qmin() != 0) {
    fmt::print(" The article also divides the range by qmax ({}) where the standard divides by qmax - qmin ({}).\n",
               s.qmax(), s.qmax() - s.qmin());
  } else {
    fmt::print(" Its scale divides by qmax, which equals qmax - qmin here only because qmin = 0.\n");
  }
  if (!e.values.empty()) {
    fmt::print("   Its numbers: scale = {}, zero point = {}, {} (codes run from {} to {}); the standard gives {}.\n",
               num(a.scale), num(a.zero_point), theirs, s.qmin(), s.qmax(), ours);
  }
}

nlohmann::json explanation_json(const Explanation& e) {
  const ParamDerivation& d = e.params;
  nlohmann::json j{{"scheme", e.scheme.str()},
                   {"range", {e.min, e.max}},
                   {"qmin", d.qmin},
                   {"qmax", d.qmax},
                   {"mapped_range", {d.lo, d.hi}},
                   {"exact_scale", d.exact_scale},
                   {"scale", d.result.scale},
                   {"zero_point", d.result.zero_point},
                   {"offset", d.result.offset},
                   {"degenerate", d.degenerate}};
  nlohmann::json values = nlohmann::json::array();
  for (const ExplainedValue& v : e.values) {
    values.push_back({{"x", v.x},
                      {"quotient", json_number(v.quotient)},
                      {"rounded", json_number(v.rounded)},
                      {"code", v.code},
                      {"saturated", v.saturated},
                      {"dequantized", v.dequantized},
                      {"error", v.error}});
  }
  j["values"] = values;
  if (e.article) {
    j["article"] = {{"scale", e.article->scale}, {"zero_point", e.article->zero_point}, {"codes", e.article->codes}};
  }
  return j;
}

}  // namespace

void add_explain(CLI::App& app) {
  auto opts = std::make_shared<ExplainOptions>();
  CLI::App* cmd = app.add_subcommand("explain", "Show the quantization math for one range, step by step");
  cmd->add_option("--range", opts->range, "The range to map: MIN MAX")->expected(2)->required();
  cmd->add_option("--type,--scheme", opts->scheme, "Code type or per-tensor scheme (int8, uint8:asym, int4:full, ...)")
      ->capture_default_str();
  cmd->add_option("--values", opts->values, "Values to quantize and dequantize (default: min, 0 and max)");
  cmd->add_flag("--json", opts->json, "Print one JSON object instead of text");
  cmd->footer(
      "Examples:\n"
      "  zeropoint explain --range -10 10 --type int8 --values 0 10 -10 5 -7.5\n"
      "  zeropoint explain --range 10 260 --type uint8 --values 10 260 135\n"
      "  zeropoint explain --range 10 260 --type uint8:asym:zp=float --values 10 260");
  cmd->callback([opts] {
    const Scheme scheme = Scheme::parse(opts->scheme);
    std::vector<float> values = opts->values;
    if (values.empty()) values = {opts->range[0], 0.0f, opts->range[1]};
    const Explanation e = explain(opts->range[0], opts->range[1], scheme, values);
    if (opts->json) {
      fmt::print("{}\n", explanation_json(e).dump(2));
      return;
    }
    fmt::print("Quantizing [{}, {}] to {}: {}\n\n", num(e.min), num(e.max), scheme.str(), describe(scheme));
    print_params(e);
    print_values(e);
    print_article(e);
  });
}

}  // namespace zp::cli
