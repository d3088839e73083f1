// zeropoint on GGUF models: quantize with llama.cpp's block formats, and convert between GGUF and
// safetensors.
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd_model.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/ggml_model.hpp"

namespace zp::cli {
namespace {

namespace fs = std::filesystem;

ggml::Type type_option(const std::string& text, const char* option) {
  const auto t = ggml::type_from_name(text);
  if (!t) throw Error(fmt::format("{} '{}' is not a ggml type: choose q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, f16, bf16 or f32", option, text));
  return *t;
}

std::string default_gguf_output(const std::string& input, const std::string& type) {
  const fs::path p(input);
  return (p.parent_path() / (p.stem().string() + "-" + type + ".gguf")).string();
}

}  // namespace

void run_gguf_quantize(const GgufQuantizeArgs& a) {
  GgufQuantizeOptions options;
  options.plan.type = type_option(a.type, "--type");
  for (const auto& [keep, text] : a.rules) options.plan.rules.push_back(keep ? GgmlRule::keep(text) : GgmlRule::parse(text));
  if (!a.output_type.empty()) options.plan.output_type = type_option(a.output_type, "--output-type");
  if (!a.token_embedding_type.empty()) {
    options.plan.token_embedding_type = type_option(a.token_embedding_type, "--token-embedding-type");
  }
  options.plan.pure = a.pure;
  options.plan.allow_requantize = a.allow_requantize;
  options.dry_run = a.dry_run;
  options.imatrix = a.imatrix;
  const std::string output = a.output.empty() ? default_gguf_output(a.input, std::string(ggml::traits(options.plan.type).name)) : a.output;
  ProgressBar bar(a.quiet || a.json);
  options.progress = bar.callback();
  const ModelReport r = quantize_gguf(a.input, output, options);
  bar.finish();
  print_model_report(r, a.json, a.dry_run);
}

void add_convert(CLI::App& app) {
  struct Options {
    std::string input, output, dtype = "f32";
    bool json = false, quiet = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a model's tensors between safetensors and GGUF (names kept)");
  cmd->add_option("input", opts->input, "A .gguf file, or a safetensors checkpoint (.safetensors, index .json or folder)")->required();
  cmd->add_option("-o,--output", opts->output, "The output: a .gguf or a .safetensors file")->required();
  cmd->add_option("--dtype", opts->dtype, "GGUF to safetensors: what block-format tensors (q4_0, q4_K, ...) expand to: f32, f16 or bf16")
      ->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print the report as one JSON object");
  cmd->add_flag("-q,--quiet", opts->quiet, "No progress bar");
  cmd->footer(
      "Examples:\n"
      "  zeropoint convert model/ -o model.gguf\n"
      "  zeropoint convert model-q4_K.gguf -o model.safetensors --dtype bf16\n"
      "Tensors keep their names and bytes (shapes are reversed between row-major and ggml order);\n"
      "string metadata is carried both ways, GGUF numbers become text and GGUF arrays are left out.\n"
      "A model's architecture is not translated: for llama.cpp, convert a Hugging Face model with\n"
      "llama.cpp's convert_hf_to_gguf.py, then quantize the GGUF with zeropoint.");
  cmd->callback([opts] {
    ConvertOptions options;
    const auto dtype = dtype_from_name(opts->dtype);
    if (!dtype || !is_float(*dtype) || *dtype == DType::f64) {
      throw Error(fmt::format("unknown --dtype '{}': choose f32, f16 or bf16", opts->dtype));
    }
    options.dtype = *dtype;
    ProgressBar bar(opts->quiet || opts->json);
    options.progress = bar.callback();
    const ModelReport r = convert_model(opts->input, opts->output, options);
    bar.finish();
    if (opts->json) {
      print_model_report(r, true, false);
      return;
    }
    std::size_t expanded = 0;
    for (const TensorRecord& t : r.tensors) expanded += t.converted;
    fmt::print("{} -> {}\n  {} tensors ({} expanded from block formats); {} -> {} in {:.2f} s\n", r.input.string(),
               r.output.string(), r.tensors.size(), expanded, bytes_text(r.bytes_in), bytes_text(r.bytes_out), r.seconds);
  });
}

}  // namespace zp::cli
