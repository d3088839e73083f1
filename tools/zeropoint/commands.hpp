// The CLI's subcommands: each adds itself to the app and runs from its callback.
#pragma once

#include <CLI/CLI.hpp>

namespace zp::cli {

void add_explain(CLI::App& app);
void add_quantize(CLI::App& app);
void add_dequantize(CLI::App& app);
void add_bench(CLI::App& app);
void add_inspect(CLI::App& app);
void add_analyze(CLI::App& app);
void add_convert(CLI::App& app);
void add_calibrate(CLI::App& app);

}  // namespace zp::cli
