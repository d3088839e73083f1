// zeropoint — the command-line tool. Thin: parses arguments, calls the library, prints.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "zeropoint/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"zeropoint: quantize tensors to low-bit integer codes, measure what is lost, and explain the math.",
               "zeropoint"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "zeropoint 0.1.0");
  app.footer(
      "Examples:\n"
      "  zeropoint explain --range -10 10 --type int8 --values 0 10 -10 5 -7.5\n"
      "  zeropoint quantize weights.npy --scheme int4:block=32 -o weights.q.npz\n"
      "  zeropoint quantize model/ -o model-int8/ --scheme int8:channel=0 --keep 'lm_head'\n"
      "  zeropoint analyze model/ --schemes int8,int8:channel=0,int4:block=32\n"
      "  zeropoint quantize model-f16.gguf -o model-q4_K.gguf --type q4_K\n"
      "  zeropoint dequantize weights.q.npz -o weights.dq.npy\n"
      "  zeropoint bench --sizes 4 64 --threads 1 2\n"
      "Run 'zeropoint COMMAND --help' for a command's options; schemes are described in docs/math.md.");
  // One line on stderr for every usage error, as for every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return fmt::format("zeropoint: error: {} (see --help)\n", e.what());
  });

  zp::cli::add_explain(app);
  zp::cli::add_quantize(app);
  zp::cli::add_dequantize(app);
  zp::cli::add_inspect(app);
  zp::cli::add_analyze(app);
  zp::cli::add_convert(app);
  zp::cli::add_calibrate(app);
  zp::cli::add_bench(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here too, with status 0; usage errors get the usual 2.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const zp::Error& e) {
    fmt::print(stderr, "zeropoint: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "zeropoint: internal error: {}\n", e.what());
    return 3;
  }
  return 0;
}
