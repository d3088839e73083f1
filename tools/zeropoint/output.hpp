// Turning library results into text for people and JSON for scripts.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "zeropoint/metrics.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/scheme.hpp"

namespace zp::cli {

/// Shortest text that reads back as the same float32 ("0.07874016", "10").
std::string num(float v);
/// A double with up to 10 significant digits, for exact intermediate values.
std::string num(double v);

/// "symmetric, narrow range [-127, 127], ties to even, one scale per tensor"
std::string describe(const Scheme& s);

/// "0.0787" for one value; "min 0.001 / median 0.004 / max 0.05 (128 values)" for many.
std::string summarize(const std::vector<float>& values);
std::string summarize(const std::vector<std::int32_t>& values);

/// "MSE 1.2e-06, max |error| 0.0021, SQNR 42.1 dB, cosine 0.99997"
std::string describe(const ErrorMetrics& m);

nlohmann::json to_json(const ErrorMetrics& m);
/// Scales and zero points in full (they are what a script wants).
nlohmann::json to_json(const QParams& p);

/// JSON has no infinity: +-inf become the strings "inf" / "-inf".
nlohmann::json json_number(double v);

}  // namespace zp::cli
