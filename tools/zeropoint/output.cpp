#include "output.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace zp::cli {

std::string num(float v) { return fmt::format("{}", v); }

std::string num(double v) { return fmt::format("{:.10g}", v); }

std::string describe(const Scheme& s) {
  std::string out = s.symmetric ? "symmetric" : "asymmetric";
  out += fmt::format(", {} range [{}, {}]", s.narrow ? "narrow" : "full", s.qmin(), s.qmax());
  switch (s.rounding) {
    case Rounding::half_even: out += ", ties to even"; break;
    case Rounding::half_away: out += ", ties away from zero"; break;
    case Rounding::half_up: out += ", ties up"; break;
  }
  if (s.zero_point == ZeroPointKind::float_offset) out += ", float offset";
  switch (s.granularity) {
    case Granularity::tensor: out += ", one scale per tensor"; break;
    case Granularity::channel: out += fmt::format(", one scale per index of axis {}", s.axis); break;
    case Granularity::block:
      out += fmt::format(", one scale per {} values along axis {}", s.block, s.axis);
      break;
  }
  return out;
}

template <class T>
static std::string summarize_any(std::vector<T> values) {
  if (values.empty()) return "none";
  if (values.size() == 1) return fmt::format("{}", values[0]);
  std::sort(values.begin(), values.end());
  if (values.front() == values.back()) return fmt::format("{} (all {})", values.front(), values.size());
  return fmt::format("min {} / median {} / max {} ({} values)", values.front(), values[values.size() / 2],
                     values.back(), values.size());
}

std::string summarize(const std::vector<float>& values) { return summarize_any(values); }
std::string summarize(const std::vector<std::int32_t>& values) { return summarize_any(values); }

std::string describe(const ErrorMetrics& m) {
  std::string sqnr = std::isinf(m.sqnr_db) ? "inf" : fmt::format("{:.2f}", m.sqnr_db);
  return fmt::format("MSE {:.4g}, max |error| {:.4g}, SQNR {} dB, cosine {:.6f}", m.mse, m.max_abs_error, sqnr,
                     m.cosine);
}

nlohmann::json json_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

nlohmann::json to_json(const ErrorMetrics& m) {
  return {{"count", m.count},
          {"skipped", m.skipped},
          {"mse", json_number(m.mse)},
          {"relative_mse", json_number(m.relative_mse)},
          {"max_abs_error", json_number(m.max_abs_error)},
          {"max_abs_error_index", m.max_abs_error_index},
          {"sqnr_db", json_number(m.sqnr_db)},
          {"cosine", json_number(m.cosine)}};
}

nlohmann::json to_json(const QParams& p) {
  nlohmann::json j{{"scheme", p.scheme.str()}, {"shape", p.param_shape}, {"scale", p.scale}};
  if (p.scheme.zero_point == ZeroPointKind::integer) j["zero_point"] = p.zero_point;
  else j["offset"] = p.offset;
  return j;
}

}  // namespace zp::cli
